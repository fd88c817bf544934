#!/usr/bin/env python3
"""sendmail (moat-sendmail): every flag it accepts, refuses or ignores,
checked through a recording $QMAILQUEUE; the names mailq and newaliases;
-bs speaking SMTP (as nobody, and as root, which must become the queue's
owner); then real callers delivering into a Maildir under `moat run`:
`MOAT_ROOT=dir sendmail -t`, as the run account and as root, cron's
command line, bsd-mailx, GNU mailutils' mail and git send-email (each
skipped when Debian's package is not installed; tools/deps test installs
mailutils and git-email, not bsd-mailx, which would bring in an MTA)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, prog, make_root, remove_root, queued, message,
                      envelope, as_user_argv, give_away, MoatRun, adduser,
                      maildir_files, wait_for, read, unprivileged, SPLIT)

t = Tap()
ROOT = os.geteuid() == 0
TMP = tempfile.mkdtemp(prefix="moat-sendmail-")
os.chmod(TMP, 0o755)
SENDMAIL = prog("sendmail")
CONTROL = {"me": "mail.example.org", "defaulthost": "example.org",
           "defaultdomain": "example.org", "idhost": "example.org",
           "locals": "example.org\nlocalhost"}
root = make_root(CONTROL)

# a queue program that records what it was given
REC = os.path.join(TMP, "rec")
QQ = os.path.join(TMP, "qq")
with open(QQ, "w") as f:
    f.write("#!/bin/sh\ncat >%s.msg\ncat <&1 >%s.env\n" % (REC, REC))
os.chmod(QQ, 0o755)


def env(extra=None, qq=True):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "USER": "alice",
         "MOAT_ROOT": root, "TZ": "UTC"}
    if qq:
        e["QMAILQUEUE"] = QQ
    e.update(extra or {})
    return e


def sendmail(args, data=b"", extra=None, argv0=SENDMAIL, qq=True):
    for suffix in (".msg", ".env"):
        if os.path.exists(REC + suffix):
            os.unlink(REC + suffix)
    p = subprocess.run([argv0] + list(args), input=data,
                       capture_output=True, env=env(extra, qq), timeout=60)
    return p.returncode, p.stdout, p.stderr


def recorded():
    """(sender, [recipients], message) the queue program was given"""
    try:
        with open(REC + ".env", "rb") as f:
            recs = f.read().split(b"\0")
        with open(REC + ".msg", "rb") as f:
            msg = f.read()
    except FileNotFoundError:
        return None, [], b""
    sender = next((r[1:].decode() for r in recs if r[:1] == b"F"), None)
    rcpts = [r[1:].decode() for r in recs if r[:1] == b"T"]
    return sender, rcpts, msg


MSG = (b"From: Alice <alice@example.org>\nTo: bob@example.net\n"
       b"Cc: carol\nBcc: dave@example.net\nSubject: flags\n\n"
       b"one\n.\ntwo\n")


def case(desc, args, want_sender="alice@example.org", want_rcpts=None,
         check=None, data=MSG, extra=None):
    rc, out, err = sendmail(args, data, extra)
    sender, rcpts, msg = recorded()
    good = rc == 0 and sender == want_sender and rcpts == want_rcpts
    if good and check:
        good = check(msg, err)
    t.ok(good, desc, "exit %d %r\nsender %r rcpts %r\n%s" %
         (rc, err, sender, rcpts, msg.decode("utf-8", "replace")))


def truncated(msg, err):
    return msg.endswith(b"\n\none\n")


def whole(msg, err):
    return msg.endswith(b"\n\none\n.\ntwo\n")


t.ok(os.path.islink(SENDMAIL) and
     os.readlink(SENDMAIL) == "moat-sendmail", "bin/sendmail links to "
     "moat-sendmail")
# recipients from the arguments; a lone dot ends the input (no -i)
case("recipients from the arguments; a '.' line ends the message",
     ["bob@example.net"], want_rcpts=["bob@example.net"], check=truncated)
case("-bm is the default", ["-bm", "x@example.net"],
     want_rcpts=["x@example.net"], check=truncated)
case("-i keeps a '.' line", ["-i", "bob@example.net"],
     want_rcpts=["bob@example.net"], check=whole)
case("-oi keeps a '.' line", ["-oi", "bob@example.net"],
     want_rcpts=["bob@example.net"], check=whole)
case("CRLF '.' line ends the message too", ["bob@example.net"],
     want_rcpts=["bob@example.net"], data=MSG.replace(b"\n", b"\r\n"),
     check=truncated)
case("-t takes To, Cc, Bcc and removes Bcc", ["-t", "-i"],
     want_rcpts=["bob@example.net", "carol@example.org",
                 "dave@example.net"],
     check=lambda m, e: b"Bcc" not in m and b"Cc: carol@example.org" in m)
case("-t with arguments: both", ["-t", "-i", "extra@example.net"],
     want_rcpts=["extra@example.net", "bob@example.net",
                 "carol@example.org", "dave@example.net"])
case("-ti grouped", ["-ti"],
     want_rcpts=["bob@example.net", "carol@example.org",
                 "dave@example.net"], check=whole)
case("-f sender", ["-f", "bounce@example.net", "b@example.net"],
     want_sender="bounce@example.net", want_rcpts=["b@example.net"])
case("-fsender joined", ["-fbounce@example.net", "b@example.net"],
     want_sender="bounce@example.net", want_rcpts=["b@example.net"])
case("-r is -f", ["-r", "old@example.net", "b@example.net"],
     want_sender="old@example.net", want_rcpts=["b@example.net"])
case("-f '<>' is the null sender", ["-f", "<>", "b@example.net"],
     want_sender="", want_rcpts=["b@example.net"])
case("-f bare name is qualified", ["-f", "www", "b@example.net"],
     want_sender="www@example.org", want_rcpts=["b@example.net"])
NOFROM = b"To: bob@example.net\nSubject: x\n\nbody\n"
case("-F full name in the added From", ["-F", "Web Site", "-t"],
     want_rcpts=["bob@example.net"], data=NOFROM,
     check=lambda m, e: b"\nFrom: Web Site <alice@example.org>\n" in m)
case("-Fname joined", ["-FCronDaemon", "-t"],
     want_rcpts=["bob@example.net"], data=NOFROM,
     check=lambda m, e: b"\nFrom: CronDaemon <alice@example.org>\n" in m)
case("-v reports the queueing", ["-v", "b@example.net"],
     want_rcpts=["b@example.net"], check=lambda m, e: b"queued" in e)
case("-- ends the options", ["-i", "--", "-dash@example.net"],
     want_rcpts=["-dash@example.net"])
for flags in (["-oem"], ["-odb"], ["-oQ/var/spool"], ["-B", "8BITMIME"],
              ["-B8BITMIME"], ["-N", "never"], ["-Nsuccess,failure"],
              ["-R", "hdrs"], ["-Rfull"], ["-V", "envid1"], ["-Venvid"],
              ["-L", "label"], ["-X", os.path.join(TMP, "xlog")],
              ["-h", "17"], ["-O", "DeliveryMode=b"], ["-n"], ["-U"],
              ["-G"], ["-m"], ["-Am"], ["-Ac"]):
    case("%s accepted and ignored" % " ".join(flags),
         flags + ["-i", "b@example.net"], want_rcpts=["b@example.net"],
         check=whole)
t.ok(not os.path.exists(os.path.join(TMP, "xlog")), "-X writes no log")

# cron's and PHP's command lines
case("cron: -FCronDaemon -i -B8BITMIME -oem root",
     ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
     want_rcpts=["root@example.org"],
     data=b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> "
          b"true\n\noutput\n",
     check=lambda m, e: b"From: root@example.org (Cron Daemon)\n" in m)
case("PHP mail(): -t -i", ["-t", "-i"], want_rcpts=["bob@example.net"],
     data=b"To: bob@example.net\nSubject: php\nX-PHP-Originating-Script: "
          b"0:x.php\n\nbody\n")

# refused
for flags, text in ((["-Z", "b@example.net"], b"unknown option -Z"),
                    (["-bd"], b"-bd: mode not supported"),
                    (["-bv", "b@example.net"], b"mode not supported"),
                    (["-bt"], b"mode not supported"),
                    (["-q"], b"-q"),
                    (["-q1h"], b"-q"),
                    (["-C", "/etc/cf", "b@example.net"], b"unknown option -C"),
                    (["-i"], b"no recipients given"),
                    (["-f"], b"option -f needs an argument"),
                    (["-F"], b"option -F needs an argument"),
                    (["-B"], b"option -B needs an argument")):
    rc, out, err = sendmail(flags, MSG)
    t.ok(rc == 100 and text in err and b"usage" in err and
         not os.path.exists(REC + ".env"),
         "%s refused with exit 100" % " ".join(flags), "%d %r" % (rc, err))
rc, out, err = sendmail(["-t", "-i"], b"Subject: no rcpt\n\nx\n")
t.ok(rc == 100 and b"no recipients" in err, "-t without recipients: 100",
     err)
rc, out, err = sendmail(["-t", "-i"], b"To: Joe Bloggs\n\nx\n")
t.ok(rc == 100 and b"unable to parse" in err,
     "an unparseable header: 100", err)

# newaliases, -bi, -I
for argv0, args in ((prog("newaliases"), []), (SENDMAIL, ["-bi"]),
                    (SENDMAIL, ["-I"])):
    rc, out, err = sendmail(args, b"", argv0=argv0)
    t.ok(rc == 0 and b"no aliases database" in out,
         "%s %s explains that moat needs none" %
         (os.path.basename(argv0), " ".join(args)), "%d %r %r" %
         (rc, out, err))

# mailq and -bp list the queue (moat queue)
rc, out, err = sendmail(["-i", "queued@example.net"],
                        b"Subject: in the queue\n\nx\n", qq=False)
ids = queued(root)
t.ok(rc == 0 and len(ids) == 1, "a message queued for the listing", err)
rc1, out1, err1 = sendmail([], argv0=prog("mailq"), qq=False)
rc2, out2, err2 = sendmail(["-bp"], qq=False)
t.ok(rc1 == 0 and ids and str(ids[0]).encode() in out1 and
     b"queued@example.net" in out1, "mailq lists the queue",
     "%d %r %r" % (rc1, out1, err1))
# the listing shows each message's age, which may tick between the two runs
AGE = re.compile(rb"  age \S+  ")
t.ok(rc2 == 0 and out2 and AGE.sub(b"  age -  ", out2) ==
     AGE.sub(b"  age -  ", out1), "sendmail -bp lists the queue as mailq",
     "%d %r %r" % (rc2, out2, err2))


# -bs: SMTP on standard input and output
def smtp_session(argv, extra=None, rcpt=b"far@remote.example"):
    script = (b"EHLO client\r\nMAIL FROM:<alice@example.org>\r\n"
              b"RCPT TO:<" + rcpt + b">\r\nDATA\r\n"
              b"Subject: over -bs\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    p = subprocess.run(argv, input=script, capture_output=True,
                       env=env(extra, qq=False), timeout=60)
    codes = re.findall(rb"^(\d{3}) ", p.stdout, re.M)
    return p.returncode, codes, p.stdout, p.stderr


before = set(queued(root))
rc, codes, out, err = smtp_session(as_user_argv([SENDMAIL, "-bs"]))
new = sorted(set(queued(root)) - before)
t.ok(rc == 0 and codes == [b"220", b"250", b"250", b"250", b"354", b"250",
                           b"221"] and len(new) == 1,
     "-bs: a whole SMTP session, relaying for the local client",
     "%d %r\n%s%r" % (rc, codes, out.decode(), err))
if new:
    s, r = envelope(root, new[0])
    m = message(root, new[0])
    t.ok(s == "alice@example.org" and r == ["far@remote.example"] and
         b"127.0.0.1" in m and m.endswith(b"Subject: over -bs\n\nhello\n"),
         "-bs: the queued message", (s, r, m))
else:
    t.ok(False, "-bs: the queued message")
if ROOT:
    before = set(queued(root))
    rc, codes, out, err = smtp_session([SENDMAIL, "-bs"])
    new = sorted(set(queued(root)) - before)
    t.ok(rc == 0 and codes[-2:] == [b"250", b"221"] and len(new) == 1 and
         os.stat(os.path.join(root, "queue", "mess", str(new[0] % SPLIT),
                              str(new[0]))).st_uid == unprivileged()[0],
         "-bs as root runs moat-smtpd as the queue's owner",
         "%d %r\n%s%r" % (rc, codes, out.decode(), err))
    rootq = os.path.join(TMP, "rootq")
    os.makedirs(os.path.join(rootq, "queue"))
    p = subprocess.run([SENDMAIL, "-bs"], input=b"QUIT\r\n",
                       capture_output=True,
                       env=env({"MOAT_ROOT": rootq}, qq=False), timeout=60)
    t.ok(p.returncode == 100 and b"does not run as root" in p.stderr and
         b"unprivileged user" in p.stderr and p.stdout == b"",
         "-bs as root with a root-owned queue explains and refuses",
         p.stderr)
else:
    t.skip("-bs as root runs moat-smtpd as the queue's owner", "not root")
    t.skip("-bs as root with a root-owned queue explains and refuses",
           "not root")
remove_root(root)

# --- real callers under `moat run` ---
runroot = make_root({"me": "mail.test", "locals": "localhost\nmail.test",
                     "rcpthosts": "localhost\nmail.test"})
adduser(runroot, "bob")
run = None
try:
    run = MoatRun(runroot)
except RuntimeError as e:
    t.ok(False, "moat run starts", e)


def delivered(n, timeout=30):
    return wait_for(lambda: len(maildir_files(runroot, "bob")) >= n,
                    timeout)


def last_mail():
    files = maildir_files(runroot, "bob")
    newest = max(files, key=os.path.getmtime) if files else None
    return read(newest) if newest else b""


def deliver(desc, argv, data, extra, check, as_user=True):
    n = len(maildir_files(runroot, "bob"))
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
         "MOAT_ROOT": runroot, "HOME": TMP, "TZ": "UTC"}
    e.update(extra or {})
    argv = as_user_argv(argv) if as_user else argv
    p = subprocess.run(argv, input=data, capture_output=True, env=e,
                       timeout=120)
    got = p.returncode == 0 and delivered(n + 1)
    body = last_mail() if got else b""
    t.ok(got and check(body), desc,
         "exit %d\nstdout %r\nstderr %r\n%s\nrun log:\n%s" %
         (p.returncode, p.stdout, p.stderr, body.decode("utf-8", "replace"),
          run.logtext() if run else ""))


if run:
    msg = (b"From: Alice <alice@mail.test>\nTo: Bob <bob@mail.test>\n"
           b"Subject: sendmail -t\n\nHello Bob.\n")
    deliver("MOAT_ROOT=dir sendmail -t delivers to the Maildir",
            [SENDMAIL, "-t"], msg, {"USER": "alice"},
            lambda m: b"Subject: sendmail -t" in m and
            m.endswith(b"Hello Bob.\n"))
    if ROOT:
        deliver("as root: sendmail -t into nobody's run directory",
                [SENDMAIL, "-t"], msg.replace(b"-t\n", b"-t as root\n"),
                {"USER": "root"},
                lambda m: b"Subject: sendmail -t as root" in m,
                as_user=False)
    else:
        t.skip("as root: sendmail -t into nobody's run directory",
               "not root")
    deliver("cron's command line delivers",
            [SENDMAIL, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "bob"],
            b"From: root (Cron Daemon)\nTo: bob\nSubject: Cron <root@h> "
            b"date\nContent-Type: text/plain; charset=UTF-8\n\nTue\n",
            {"USER": "root"},
            lambda m: b"Subject: Cron <root@h> date" in m and
            b"To: bob@mail.test" in m)

    mailx = shutil.which("bsd-mailx")
    if mailx:
        rc_file = os.path.join(TMP, "mailrc")
        with open(rc_file, "w") as f:
            f.write("set sendmail=%s\n" % SENDMAIL)
        os.chmod(rc_file, 0o644)
        deliver("bsd-mailx (set sendmail= in $MAILRC) delivers",
                [mailx, "-s", "from mailx", "bob@mail.test"],
                b"Hello from mailx.\n", {"MAILRC": rc_file, "USER": "alice"},
                lambda m: b"Subject: from mailx" in m and
                b"Hello from mailx." in m and b"From: alice@" in m)
    else:
        t.skip("bsd-mailx delivers", "bsd-mailx not installed")

    # GNU mailutils' mail runs sendmail -oi -f user@host -t
    gmail = shutil.which("mail.mailutils")
    if gmail:
        deliver("GNU mailutils mail (set sendmail=sendmail://...) delivers",
                [gmail, "-E", "set sendmail=sendmail://" + SENDMAIL, "-s",
                 "from mailutils", "bob@mail.test"],
                b"Hello from mailutils.\n", {"USER": "alice"},
                lambda m: b"Subject: from mailutils" in m and
                b"Hello from mailutils." in m)
    else:
        t.skip("GNU mailutils mail delivers", "mailutils not installed")

    git = shutil.which("git")
    # git-email, with the Perl modules it needs (libmailtools-perl)
    have_send_email = git and subprocess.run(
        [git, "send-email", "--dump-aliases"], capture_output=True,
        stdin=subprocess.DEVNULL, cwd=TMP).returncode == 0
    if have_send_email:
        repo = os.path.join(TMP, "repo")
        genv = {"GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL":
                "alice@mail.test", "GIT_COMMITTER_NAME": "Alice",
                "GIT_COMMITTER_EMAIL": "alice@mail.test", "HOME": TMP,
                "GIT_CONFIG_NOSYSTEM": "1",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        subprocess.run([git, "init", "-q", repo], check=True, env=genv)
        with open(os.path.join(repo, "file"), "w") as f:
            f.write("content\n")
        subprocess.run([git, "-C", repo, "add", "file"], check=True,
                       env=genv)
        subprocess.run([git, "-C", repo, "commit", "-q", "-m",
                        "a patch for moat"], check=True, env=genv)
        patches = os.path.join(TMP, "patches")
        subprocess.run([git, "-C", repo, "format-patch", "-q", "-1", "-o",
                        patches], check=True, env=genv)
        give_away(TMP)
        patch = [os.path.join(patches, p) for p in os.listdir(patches)]
        deliver("git send-email --sendmail-cmd delivers",
                [git, "-C", repo, "send-email", "--to=bob@mail.test",
                 "--from=Alice <alice@mail.test>", "--suppress-cc=all",
                 "--confirm=never", "--no-validate",
                 "--sendmail-cmd=" + SENDMAIL] + patch,
                b"", dict(genv, MOAT_ROOT=runroot),
                lambda m: b"Subject: [PATCH] a patch for moat" in m and
                b"X-Mailer: git-send-email" in m)
    else:
        t.skip("git send-email --sendmail-cmd delivers",
               "git send-email not installed")
    run.stop()
remove_root(runroot)
shutil.rmtree(TMP, ignore_errors=True)
t.done()
