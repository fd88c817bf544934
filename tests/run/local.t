#!/usr/bin/env python3
"""moat-local: .qmail files and every kind of delivery, run directly
against temporary home directories with a message file on stdin.

When the suite runs as root (CI does), moat-local runs as nobody through
setpriv and the homes are given to nobody; running it as root must be
refused.  Forwards go to a fake $QMAILQUEUE that records its input."""
import fcntl
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import Tap, prog, as_user_argv, give_away

t = Tap()
ROOT = os.geteuid() == 0
BASE = tempfile.mkdtemp(prefix="moat-local-")
os.chmod(BASE, 0o755)

MSG = (b"Received: (moat 1 invoked by uid 0); Wed, 25 Nov 2026 09:19:41 +0000\n"
       b"From: a@example.org\nSubject: test\n\n"
       b"body\nFrom me\n>From you\nFromage\n>>From x\n From not\nFrom\n")
MSG_QUOTED = (b"Received: (moat 1 invoked by uid 0); Wed, 25 Nov 2026 09:19:41 +0000\n"
              b"From: a@example.org\nSubject: test\n\n"
              b"body\n>From me\n>>From you\nFromage\n>>>From x\n From not\nFrom\n")
DT = b"Delivered-To: joe@example.org\n"
RP = b"Return-Path: <s@example.net>\n"
UFLINE = re.compile(rb"^From (\S+) [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d "
                    rb"\d\d:\d\d:\d\d \d{4}\n")
NAME = re.compile(r"^\d+\.M\d{6}P\d+Q\d+\.[^/:]+$")

# control/envnoathost for forward addresses without @
CTL = os.path.join(BASE, "root")
os.makedirs(os.path.join(CTL, "control"))
with open(os.path.join(CTL, "control", "envnoathost"), "w") as f:
    f.write("noat.example\n")
give_away(CTL)

# a fake moat-queue: message (fd 0) to qq/msg, envelope (fd 1) to qq/env
QQDIR = os.path.join(BASE, "qq")
os.makedirs(QQDIR)
give_away(QQDIR)


def chown(path):
    """one file to the unprivileged account (give_away walks trees)"""
    if ROOT:
        give_away(os.path.dirname(path))


def fake_queue(code=0):
    path = os.path.join(BASE, "fakeqq%d" % code)
    with open(path, "w") as f:
        f.write("#!/bin/sh\ncat > %s/msg || exit 54\ncat <&1 > %s/env "
                "|| exit 54\nexit %d\n" % (QQDIR, QQDIR, code))
    os.chmod(path, 0o755)
    return path


def qq_clear():
    for n in ("msg", "env"):
        p = os.path.join(QQDIR, n)
        if os.path.exists(p):
            os.unlink(p)


def qq_read(n):
    p = os.path.join(QQDIR, n)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()


class Home:
    """a home directory with a Maildir and the given files"""

    def __init__(self, files=None, maildir=True, mode=0o755):
        self.path = tempfile.mkdtemp(dir=BASE, prefix="home-")
        if maildir:
            for d in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(self.path, "Maildir", d))
        for name, content in (files or {}).items():
            self.write(name, content)
        give_away(self.path)
        os.chmod(self.path, mode)

    def write(self, name, content, mode=0o644):
        p = os.path.join(self.path, name)
        with open(p, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(p, mode)
        chown(p)

    def p(self, *names):
        return os.path.join(self.path, *names)

    def read(self, name):
        with open(self.p(name), "rb") as f:
            return f.read()

    def new(self, md="Maildir"):
        """[(name, bytes)] of md/new"""
        d = self.p(md, "new")
        out = []
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                out.append((n, f.read()))
        return out

    def tmp(self, md="Maildir"):
        return os.listdir(self.p(md, "tmp"))


def run(home, user="joe", local="joe", dash="", ext="", domain="example.org",
        sender="s@example.net", dd="./Maildir/", opts=(), env=None,
        msg=MSG, wrap=True, stdin=None, preexec=None, timeout=60,
        background=False):
    """moat-local's (exit code, stdout text)"""
    mf = os.path.join(BASE, "message")
    with open(mf, "wb") as f:
        f.write(msg)
    argv = [prog("moat-local")] + list(opts) + \
        [user, home.path if isinstance(home, Home) else home, local, dash,
         ext, domain, sender, dd]
    if wrap:
        argv = as_user_argv(argv)
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MOAT_ROOT": CTL,
         "SECRET_FROM_CALLER": "leaked"}
    e.update(env or {})
    m = open(mf, "rb") if stdin is None else stdin
    if background:
        return subprocess.Popen(argv, stdin=m, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=e,
                                preexec_fn=preexec)
    p = subprocess.run(argv, stdin=m, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=timeout,
                       preexec_fn=preexec)
    if stdin is None:
        m.close()
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def one_line(out):
    return out.endswith("\n") and out.count("\n") == 1


# ---------------------------------------------------------------- privilege
h = Home()
if ROOT:
    code, out = run(h, wrap=False)
    t.ok(code == 111 and "(#4.3." in out and not h.new(),
         "running as root is refused (111) and nothing is written",
         (code, out))
else:
    t.skip("running as root is refused", "not running as root")

code, out = run(h, opts=["-x"])
t.ok(code == 100 and "usage" in out, "an unknown option is a usage error",
     (code, out))
code, out = run("relative/home")
t.ok(code == 100, "a relative home directory is a usage error", (code, out))

# ---------------------------------------------------------- default Maildir
h = Home()
code, out = run(h)
t.ok(code == 0 and out == "delivered to ./Maildir/\n",
     "no .qmail: defaultdelivery ./Maildir/, one report line", (code, out))
new = h.new()
t.ok(len(new) == 1 and new[0][1] == RP + DT + MSG,
     "the Maildir file is Return-Path + Delivered-To + the message, "
     "byte for byte", new)
t.ok(new and NAME.match(new[0][0]), "the unique name is "
     "time.MusecPpidQn.host", new and new[0][0])
st = os.stat(h.p("Maildir", "new", new[0][0])) if new else None
t.ok(st and stat.S_IMODE(st.st_mode) == 0o600, "the message is mode 0600")
t.ok(not h.tmp(), "nothing is left in tmp/")

code, out = run(h, sender="")
t.ok(code == 0 and len(h.new()) == 2 and
     any(m.startswith(b"Return-Path: <>\n" + DT) for _, m in h.new()),
     "the null sender: Return-Path: <>", (code, out))

h = Home()
code, out = run(h, sender="a b\\c@x.y")
t.ok(code == 0 and h.new()[0][1].startswith(
    b'Return-Path: <"a b\\\\c"@x.y>\n'),
    "a sender that is not a dot-atom is quoted in Return-Path",
    h.new() and h.new()[0][1][:60])

h = Home(maildir=False)
code, out = run(h)
t.ok(code == 111 and "(#4.2.1)" in out and one_line(out),
     "a missing Maildir is a temporary failure", (code, out))

# ------------------------------------------------------- .qmail Maildir/mbox
h = Home({".qmail": "./Maildir/\n./mbox\n./Other/\n"})
for d in ("tmp", "new", "cur"):
    os.makedirs(h.p("Other", d))
give_away(h.path)
code, out = run(h)
t.ok(code == 0 and out == "delivered to ./Maildir/, ./mbox, ./Other/\n",
     "three deliveries from one .qmail, one report line", (code, out))
t.ok(len(h.new()) == 1 and len(h.new("Other")) == 1 and
     h.new()[0][1] == h.new("Other")[0][1] == RP + DT + MSG,
     "both Maildirs get the same bytes")
t.ok(h.new()[0][0] != h.new("Other")[0][0],
     "two deliveries in one run get different unique names")
mb = h.read("mbox")
m = UFLINE.match(mb)
t.ok(m and m.group(1) == b"s@example.net",
     "the mbox starts with a From_ line: sender, asctime date", mb[:80])
t.ok(m and mb[m.end():] == RP + DT + MSG_QUOTED + b"\n",
     "then Return-Path, Delivered-To, the message with ^>*From quoted, "
     "a blank line", mb)
t.ok(stat.S_IMODE(os.stat(h.p("mbox")).st_mode) == 0o600,
     "a new mbox is created mode 0600")

code, out = run(h, sender="", msg=b"Subject: x\n\nFrom no newline")
mb2 = h.read("mbox")
t.ok(code == 0 and mb2.startswith(mb) and
     mb2[len(mb):].startswith(b"From MAILER-DAEMON ") and
     mb2.endswith(b"Return-Path: <>\n" + DT +
                  b"Subject: x\n\n>From no newline\n\n"),
     "a second message is appended; the null sender is MAILER-DAEMON; a "
     "missing final newline is added before the blank line", mb2[len(mb):])

h = Home({".qmail": "./mbox  \t\n"})
h.write("mbox", b"old contents\n", 0o600)
code, out = run(h)
t.ok(code == 0 and h.read("mbox").startswith(b"old contents\nFrom s@"),
     "an mbox line with trailing blanks appends to the existing file",
     (code, out))

# ------------------------------------------------------------ |program
h = Home({".qmail-list-default":
          "|env -0 > envdump; cat > msgdump; echo program says hi\n"})
code, out = run(h, local="joe-list-Sub-x", dash="-", ext="list-Sub-x",
                domain="mail.Example.co.uk", sender="s@example.net",
                env={"QMAILQUEUE": "/nonexistent/qq"})
t.ok(code == 0 and out == "delivered to program (program says hi)\n",
     "|program: delivered, its output in the report", (code, out))
env = {}
if os.path.exists(h.p("envdump")):
    for item in h.read("envdump").split(b"\0"):
        if item:
            k, _, v = item.decode().partition("=")
            env[k] = v
want = {
    "SENDER": "s@example.net",
    "NEWSENDER": "s@example.net",
    "RECIPIENT": "joe-list-Sub-x@mail.Example.co.uk",
    "USER": "joe",
    "HOME": h.path,
    "HOST": "mail.Example.co.uk",
    "HOST2": "mail.Example.co",
    "HOST3": "mail.Example",
    "HOST4": "mail",
    "LOCAL": "joe-list-Sub-x",
    "EXT": "list-Sub-x",
    "EXT2": "Sub-x",
    "EXT3": "x",
    "EXT4": "",
    "DEFAULT": "Sub-x",
    "DTLINE": "Delivered-To: joe-list-Sub-x@mail.Example.co.uk\n",
    "RPLINE": "Return-Path: <s@example.net>\n",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "MOAT_ROOT": CTL,
    "QMAILQUEUE": "/nonexistent/qq",
}
for k, v in want.items():
    t.ok(env.get(k) == v, "program environment: %s" % k, (env.get(k), v))
t.ok(UFLINE.match(env.get("UFLINE", "").encode()) and
     env["UFLINE"].startswith("From s@example.net "),
     "program environment: UFLINE", env.get("UFLINE"))
extra = set(env) - set(want) - {"UFLINE", "PWD", "SHLVL", "_", "OLDPWD"}
t.ok(not extra, "nothing else reaches the program (the caller's "
     "environment is cleared)", extra)
t.ok(os.path.exists(h.p("msgdump")) and h.read("msgdump") == MSG,
     "the program reads the message as it is, without Return-Path or "
     "Delivered-To")

h = Home({".qmail": "|pwd > where; exit 0\n"})
code, out = run(h)
t.ok(code == 0 and h.read("where") == h.path.encode() + b"\n",
     "the program runs in the home directory", (code, out))

# exit codes
cases = [
    ("|exit 0\n./Maildir/\n", 0, 1, "exit 0: success, the next line too"),
    ("|exit 99\n./Maildir/\n", 0, 0,
     "exit 99: success, the remaining lines are skipped"),
    ("|exit 100\n./Maildir/\n", 100, 0,
     "exit 100: permanent failure, nothing more delivered"),
    ("|exit 111\n./Maildir/\n", 111, 0, "exit 111: temporary failure"),
    ("|exit 64\n", 100, 0, "exit 64: permanent"),
    ("|exit 65\n", 100, 0, "exit 65: permanent"),
    ("|exit 70\n", 100, 0, "exit 70: permanent"),
    ("|exit 76\n", 100, 0, "exit 76: permanent"),
    ("|exit 77\n", 100, 0, "exit 77: permanent"),
    ("|exit 78\n", 100, 0, "exit 78: permanent"),
    ("|exit 112\n", 100, 0, "exit 112: permanent"),
    ("|exit 1\n", 111, 0, "exit 1: temporary"),
    ("|exit 101\n", 111, 0, "exit 101: temporary"),
    ("|kill -9 $$\n", 111, 0, "killed by a signal: temporary"),
    ("./Maildir/\n|exit 111\n", 111, 1,
     "a failure after a delivery: temporary, the delivery stays"),
]
for qm, want_code, want_new, desc in cases:
    h = Home({".qmail": qm})
    code, out = run(h)
    status = "(#5." if want_code == 100 else "(#4." if want_code else ""
    t.ok(code == want_code and len(h.new()) == want_new and
         status in out and one_line(out), desc, (code, out, len(h.new())))

h = Home({".qmail": "|echo 'Sorry, no such list. (#5.1.1)'; exit 100\n"})
code, out = run(h)
t.ok(code == 100 and out == "Sorry, no such list. (#5.1.1)\n",
     "a failing program's own words are the report", (code, out))
h = Home({".qmail": "|echo 'over quota'; echo more >&2; exit 111\n"})
code, out = run(h)
t.ok(code == 111 and out == "over quota more (#4.3.0)\n",
     "stdout and stderr, on one line, with a status added", (code, out))
h = Home({".qmail": "|head -c 1000000 /dev/zero | tr '\\0' x; "
                    "printf '\\033[31m\\n\\001'; exit 0\n"})
code, out = run(h)
t.ok(code == 0 and one_line(out) and len(out) < 1000 and
     all(32 <= ord(c) < 127 for c in out[:-1]),
     "a megabyte of output: one short printable report line", (code, out[:80]))
h = Home({".qmail": "|printf '\\033]0;x\\007\\r\\nbad'; exit 100\n"})
code, out = run(h)
t.ok(code == 100 and one_line(out) and "\033" not in out and "\r" not in out,
     "control characters in program output are neutralized", repr(out))
h = Home({".qmail": "|(sleep 30 &) ; exit 0\n"})
start = time.time()
code, out = run(h)
t.ok(code == 0 and time.time() - start < 20,
     "a background child holding the output open does not hold up "
     "delivery", (code, out, time.time() - start))

# ------------------------------------------------------------- forwards
qq = fake_queue(0)
qq_clear()
h = Home({".qmail": "&fwd@example.net\n./Maildir/\nbare\n"
                    "# comment\nOther@Example.COM\n"})
code, out = run(h, env={"QMAILQUEUE": qq})
t.ok(code == 0 and len(h.new()) == 1,
     "forward and Maildir lines in one .qmail: delivered", (code, out))
t.ok(qq_read("env") == b"Fs@example.net\0Tfwd@example.net\0"
     b"Tbare@noat.example\0TOther@Example.COM\0\0",
     "all forwards in one injection: the original sender, every address, "
     "an address without @ qualified with envnoathost", qq_read("env"))
t.ok(qq_read("msg") == DT + MSG,
     "the forwarded copy has Delivered-To but no Return-Path",
     (qq_read("msg") or b"")[:120])
t.ok("forward fwd@example.net bare@noat.example Other@Example.COM" in out,
     "the report names the forward addresses", out)

qq_clear()
h = Home({".qmail": "&fwd@example.net\n./Missing/\n"})
code, out = run(h, env={"QMAILQUEUE": qq})
t.ok(code == 111 and qq_read("env") is None,
     "forwards come last: a failed delivery before them forwards nothing",
     (code, out))

qq_clear()
h = Home({".qmail": "&a@example.net\n|exit 99\n&b@example.net\n"})
code, out = run(h, env={"QMAILQUEUE": qq})
t.ok(code == 0 and qq_read("env") == b"Fs@example.net\0Ta@example.net\0\0",
     "exit 99 skips later forward lines but keeps earlier ones",
     (code, qq_read("env")))

for qcode, want_code in ((11, 100), (31, 100), (91, 100), (53, 111),
                         (81, 111), (1, 111)):
    qq_clear()
    h = Home({".qmail": "&fwd@example.net\n"})
    code, out = run(h, env={"QMAILQUEUE": fake_queue(qcode)})
    t.ok(code == want_code and one_line(out) and "(#" in out,
         "moat-queue exit %d: moat-local exits %d" % (qcode, want_code),
         (code, out))
code, out = run(h, env={"QMAILQUEUE": "/nonexistent/queue"})
t.ok(code == 111, "a queue program that cannot run: temporary", (code, out))

# NEWSENDER and the -owner files
qm = {".qmail-list": "&member@example.net\n|printf %s \"$NEWSENDER\" > ns\n"}
for files, sender, want_s, desc in [
        ({}, "s@example.net", "s@example.net",
         "no -owner file: the original sender is kept"),
        ({".qmail-list-owner": "&owner@example.net\n"}, "s@example.net",
         "joe-list-owner@example.org", "with .qmail-ext-owner: local-owner@domain"),
        ({".qmail-list-owner": "x\n", ".qmail-list-owner-default": "x\n"},
         "s@example.net", "joe-list-owner-@example.org-@[]",
         "with -owner and -owner-default: the VERP form"),
        ({".qmail-list-owner": "x\n"}, "", "",
         "a bounce (null sender) keeps its null sender"),
        ({".qmail-list-owner": "x\n"}, "#@[]", "#@[]",
         "a double bounce (#@[]) keeps its sender")]:
    qq_clear()
    files = dict(files, **qm)
    h = Home(files)
    code, out = run(h, local="joe-list", dash="-", ext="list", sender=sender,
                    env={"QMAILQUEUE": qq})
    env = qq_read("env") or b""
    t.ok(code == 0 and env.startswith(b"F" + want_s.encode() + b"\0") and
         h.read("ns") == want_s.encode(), desc, (code, out, env))

# -------------------------------------------------------- extension search
files = {".qmail-a-b-c": "|echo abc\n", ".qmail-a-b-default": "|echo abd\n",
         ".qmail-a-default": "|echo ad\n", ".qmail-default": "|echo d\n"}
h = Home(files)
for remove, want in ((None, "abc"), (".qmail-a-b-c", "abd"),
                     (".qmail-a-b-default", "ad"), (".qmail-a-default", "d")):
    if remove:
        os.unlink(h.p(remove))
    code, out = run(h, opts=["-n"], local="joe-a-b-c", dash="-", ext="a-b-c")
    t.ok(code == 0 and out == "program echo %s\n" % want,
         "ext a-b-c: %s is used%s" % ({"abc": ".qmail-a-b-c",
                                       "abd": ".qmail-a-b-default",
                                       "ad": ".qmail-a-default",
                                       "d": ".qmail-default"}[want],
                                      " when the more specific ones are "
                                      "missing" if remove else ""),
         (code, out))
os.unlink(h.p(".qmail-default"))
code, out = run(h, local="joe-a-b-c", dash="-", ext="a-b-c")
t.ok(code == 100 and out == "Sorry, no mailbox here by that name. "
     "(#5.1.1)\n" and not h.new(),
     "ext with no .qmail file at all: bounced (#5.1.1)", (code, out))

h = Home({".qmail-a-b-c": "|echo abc\n", ".qmail-x:y": "|echo colon\n",
          ".qmail-": "|echo dashonly\n"})
code, out = run(h, opts=["-n"], local="joe-A-B-C", dash="-", ext="A-B-C")
t.ok(code == 0 and out == "program echo abc\n",
     "the extension is lowercased for the lookup", (code, out))
code, out = run(h, opts=["-n"], local="joe-x.y", dash="-", ext="x.y")
t.ok(code == 0 and out == "program echo colon\n",
     "dots in the extension are colons in the file name", (code, out))
code, out = run(h, opts=["-n"], local="joe-", dash="-", ext="")
t.ok(code == 0 and out == "program echo dashonly\n",
     "an empty extension with a dash: .qmail-", (code, out))

h = Home({".qmail-a-default": "|printf %s \"$DEFAULT\" > d; exit 0\n",
          ".qmail-exact": "|printf %s \"${DEFAULT-unset}\" > d; exit 0\n"})
code, out = run(h, local="joe-a-B-c.D", dash="-", ext="a-B-c.D")
t.ok(code == 0 and h.read("d") == b"B-c.D",
     "DEFAULT is the part matched by default, in its original case",
     (code, out, os.path.exists(h.p("d")) and h.read("d")))
code, out = run(h, local="joe-exact", dash="-", ext="exact")
t.ok(code == 0 and h.read("d") == b"unset",
     "DEFAULT is not set when no default file was used",
     (code, out, h.read("d")))

h = Home({".qmail-default": "|echo default\n"})
code, out = run(h, opts=["-n"])
t.ok(code == 0 and out == "maildir ./Maildir/\n",
     "the basic address with no .qmail: defaultdelivery, not "
     ".qmail-default", (code, out))

# ------------------------------------------------------------ .qmail forms
h = Home({".qmail": ""})
code, out = run(h, dd="./mbox")
t.ok(code == 0 and out == "delivered to ./mbox\n" and
     h.read("mbox").startswith(b"From s@example.net "),
     "an empty .qmail means defaultdelivery", (code, out))
h = Home({".qmail-empty": ""})
code, out = run(h, local="joe-empty", dash="-", ext="empty")
t.ok(code == 0 and len(h.new()) == 1,
     "an empty .qmail-ext means defaultdelivery too", (code, out))
h = Home({".qmail": "# nothing here\n#./Maildir/\n"})
code, out = run(h)
t.ok(code == 0 and not h.new() and one_line(out),
     "a .qmail with only comments delivers nowhere (as in qmail)",
     (code, out))
h = Home({".qmail": "\n./Maildir/\n"})
code, out = run(h)
t.ok(code == 111 and "blank" in out and not h.new(),
     "a blank first line is a temporary failure", (code, out))
h = Home({".qmail": "./Maildir/\n\n\n./Maildir/\n"})
code, out = run(h)
t.ok(code == 0 and len(h.new()) == 2,
     "blank lines after the first are ignored", (code, out))
h = Home({".qmail": "./Maildir/\r\n"})
code, out = run(h)
t.ok(code == 0 and len(h.new()) == 1,
     "a carriage return at the end of a line is ignored", (code, out))
h = Home({".qmail": "./Maildir/\n|echo x\n"})
os.chmod(h.p(".qmail"), 0o755)
code, out = run(h)
t.ok(code == 111 and "x bit" in out and not h.new(),
     "an executable .qmail may only forward: nothing at all is delivered",
     (code, out))
h = Home({".qmail": "&a@example.net\n"})
os.chmod(h.p(".qmail"), 0o755)
qq_clear()
code, out = run(h, env={"QMAILQUEUE": qq})
t.ok(code == 0 and qq_read("env") is not None,
     "an executable .qmail that only forwards works", (code, out))
h = Home({".qmail": "& a@example.net\n"})
code, out = run(h, env={"QMAILQUEUE": qq})
t.ok(code == 111 and one_line(out),
     "a forward address with a space is refused (temporary)", (code, out))
h = Home({".qmail": "./Maildir/\n" + "x" * 20000 + "\n"})
code, out = run(h)
t.ok(code == 111 and not h.new(), "an overlong line is refused", (code, out))
h = Home({".qmail": "#" * (1024 * 1024 + 10) + "\n"})
code, out = run(h)
t.ok(code == 111 and one_line(out), "a .qmail over 1 MB is refused",
     (code, out))
h = Home({".qmail": "./Maildir/\n" * 1001})
code, out = run(h)
t.ok(code == 111 and not h.new(),
     "more than 1000 deliveries are refused before any", (code, out))
h = Home({".qmail": "./Maildir/\n\0\n"})
code, out = run(h)
t.ok(code == 111 and not h.new(), "a NUL byte in .qmail is refused",
     (code, out))
h = Home()
os.makedirs(h.p(".qmail-dir"))
code, out = run(h, local="joe-dir", dash="-", ext="dir")
t.ok(code == 100, "a directory is not a .qmail file", (code, out))
h = Home({"real-qmail": "./Maildir/\n"})
os.symlink("real-qmail", h.p(".qmail"))
code, out = run(h, dd="./nothing")
t.ok(code == 0 and len(h.new()) == 1,
     ".qmail may be a symbolic link (qmail setups use them)", (code, out))

code, out = run(Home({".qmail": "./Maildir/\n./mbox\n|cmd arg\n&a@b.c\nd@e.f\n"
                      "noat\n"}), opts=["-n"])
t.ok(code == 0 and out == "maildir ./Maildir/\nmbox ./mbox\nprogram cmd arg\n"
     "forward a@b.c\nforward d@e.f\nforward noat@noat.example\n",
     "-n prints the instructions, one a line, and delivers nothing",
     (code, out))

# --------------------------------------------------------------- loops
for hdr, want, desc in [
        (b"Delivered-To: joe@example.org\n", 100,
         "our own Delivered-To line in the header: a loop, bounced"),
        (b"delivered-to: JOE@example.org\n", 100,
         "the same line in another case: a loop too"),
        (b"Delivered-To: other@example.org\n", 0,
         "another address's Delivered-To line is no loop"),
        (b"Delivered-To: joe@example.org.evil\n", 0,
         "a longer line that starts like ours is no loop")]:
    h = Home()
    code, out = run(h, msg=b"Received: x\n" + hdr + b"Subject: s\n\nbody\n")
    t.ok(code == want and (want or len(h.new()) == 1) and
         (not want or (out == "This message is looping: it already has my "
                       "Delivered-To line. (#5.4.6)\n" and not h.new())),
         desc, (code, out))
h = Home()
code, out = run(h, msg=b"Subject: s\n\n" + DT)
t.ok(code == 0 and len(h.new()) == 1,
     "the same line in the body is no loop", (code, out))

# ------------------------------------------------------- unsafe homes
h = Home(mode=0o757)
code, out = run(h)
t.ok(code == 111 and "(#4.7.0)" in out and not h.new(),
     "a world-writable home directory: deferred", (code, out))
h = Home(mode=0o1755)
code, out = run(h)
t.ok(code == 111 and "sticky" in out and not h.new(),
     "a sticky home directory: deferred", (code, out))
code, out = run(h, opts=["-n"])
t.ok(code == 0 and "maildir ./Maildir/" in out,
     "-n with a sticky home only warns", (code, out))
h = Home({".qmail": "./Maildir/\n"})
os.chmod(h.p(".qmail"), 0o646)
code, out = run(h)
t.ok(code == 111 and "(#4.7.0)" in out and not h.new(),
     "a world-writable .qmail: deferred", (code, out))

# ------------------------------------------------------------ symlinks
h = Home({".qmail": "./mbox\n", "target": b"precious\n"})
os.symlink("target", h.p("mbox"))
code, out = run(h)
t.ok(code == 111 and h.read("target") == b"precious\n",
     "an mbox that is a symbolic link is not written through", (code, out))
h = Home({".qmail": "./mbox\n"})
os.mkfifo(h.p("mbox"))
chown(h.p("mbox"))
code, out = run(h, timeout=20)
t.ok(code == 111 and one_line(out), "an mbox that is a fifo is refused",
     (code, out))
for sub in ("tmp", "new"):
    h = Home()
    os.makedirs(h.p("elsewhere"))
    shutil.rmtree(h.p("Maildir", sub))
    os.symlink("../elsewhere", h.p("Maildir", sub))
    give_away(h.path)
    code, out = run(h)
    t.ok(code == 111 and not os.listdir(h.p("elsewhere")),
         "Maildir/%s as a symbolic link is not written through" % sub,
         (code, out))

# ------------------------------------------------------- hostile input
h = Home({".qmail-default": "|printf %s \"$EXT\" > ext; printf %s "
                            "\"$LOCAL\" > local; exit 0\n"})
for ext in ["a;touch pwned", "$(touch pwned)", "`touch pwned`",
            "a|touch pwned", "x'\"&&touch pwned"]:
    code, out = run(h, local="joe-" + ext, dash="-", ext=ext)
    t.ok(code == 0 and h.read("ext") == ext.encode() and
         h.read("local") == ("joe-" + ext).encode() and
         not os.path.exists(h.p("pwned")),
         "extension %r reaches the program only as data" % ext, (code, out))
for ext in ["../../etc", "a/../../b", "/etc/passwd"]:
    h = Home({".qmail-default": "./Maildir/\n"})
    code, out = run(h, local="joe-" + ext, dash="-", ext=ext)
    t.ok(code == 100 and "(#5.1.1)" in out and not h.new(),
         "extension %r is refused" % ext, (code, out))
h = Home({".qmail-::": "|printf %s \"$EXT\" > ext\n"})
code, out = run(h, local="joe-..", dash="-", ext="..")
t.ok(code == 0 and h.read("ext") == b"..",
     "extension .. looks for .qmail-:: and stays in the home",
     (code, out))
h = Home()
code, out = run(h, local="joe\nX-Evil: 1", domain="example.org\r\nY: 2",
                sender="s\n@x")
new = h.new()
t.ok(code == 0 and new and new[0][1].startswith(
    b"Return-Path: <\"s_\"@x>\nDelivered-To: joe_X-Evil: 1@example.org__Y: 2\n"),
    "line breaks in addresses cannot add header lines",
    new and new[0][1][:120])

# --------------------------------------------------------- the message
r, w = os.pipe()
os.write(w, MSG)
os.close(w)
h = Home()
with os.fdopen(r, "rb") as pr:
    code, out = run(h, stdin=pr)
t.ok(code == 111 and "(#4.3.0)" in out,
     "a message that cannot be rewound (a pipe): temporary", (code, out))


def small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))


h = Home()
big = MSG + b"x" * 5000 + b"\n"
code, out = run(h, msg=big, preexec=small_files)
t.ok(code == 111 and not h.new() and not h.tmp(),
     "a Maildir write failure leaves nothing in tmp/ or new/", (code, out))
h = Home({".qmail": "./mbox\n"})
h.write("mbox", b"From old\n\nold message\n\n", 0o600)
code, out = run(h, msg=big, preexec=small_files)
t.ok(code == 111 and h.read("mbox") == b"From old\n\nold message\n\n",
     "an mbox write failure truncates the mbox back", (code, out))

# an mbox locked by someone else: moat-local waits for the lock
h = Home({".qmail": "./mbox\n"})
h.write("mbox", b"", 0o600)
with open(h.p("mbox"), "r+b") as lk:
    fcntl.lockf(lk, fcntl.LOCK_EX)
    p = run(h, background=True)
    time.sleep(1.5)
    waiting = p.poll() is None and h.read("mbox") == b""
    fcntl.lockf(lk, fcntl.LOCK_UN)
    out = p.communicate(timeout=30)[0].decode()
t.ok(waiting and p.returncode == 0 and h.read("mbox").startswith(b"From s@"),
     "moat-local waits while the mbox is locked, then delivers",
     (waiting, p.returncode, out))

shutil.rmtree(BASE, ignore_errors=True)
t.done()
