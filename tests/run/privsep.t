#!/usr/bin/env python3
"""Privilege separation of the installed system, end to end (root only).

Installs moat with `make install PREFIX=<temporary directory>` (its own
build, since the prefix is compiled in), runs moat-setup with test account
names, starts moat-start (with its logger) and moat-tcpd -u <moatd>, sends
mail in with smtplib (to a system user the test creates) and, when
moat-remote is built, out to a peer on 127.0.0.2 through smtproutes; then
checks, from /proc snapshots taken every few milliseconds meanwhile, that
every program ran as privs.h says and nothing else as root; the tree's
owners and modes against `moat-setup --list`; that moatd can write no queue
directory (only moat-queue can); that symbolic links planted in the queue
and in a Maildir are not written through; that moat-setup is safe to run
again and refuses a planted link; log rotation; a clean stop.  Every
account, process and file it made is removed at the end."""
import grp
import os
import pwd
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import moattest  # noqa: E402
from moattest import Tap, free_port, wait_port, wait_for, read  # noqa: E402

t = Tap()
if os.geteuid() != 0:
    t.skip("privilege separation end to end", "needs root")
    t.done()
for tool in ("useradd", "userdel", "groupdel", "setpriv", "make"):
    if not shutil.which(tool):
        t.skip("privilege separation end to end", "no " + tool)
        t.done()

TAG = "mt" + secrets.token_hex(3)          # account names: TAG + moatd ...
ROLES = ["moatd", "moatq", "moats", "moatr", "moatl", "alias"]
ACC = {r: TAG + r for r in ROLES}
GROUP = TAG + "moat"
RCPT = TAG + "rcpt"
base = tempfile.mkdtemp(prefix="moat-privsep-")
os.chmod(base, 0o755)
prefix = os.path.join(base, "moat")
home = os.path.join(base, "home", RCPT)
procs = {}          # name -> Popen
seen = {}           # pid -> set of observations
watch_stop = threading.Event()


class Abort(Exception):
    pass


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(argv, **kw)


def as_user(name, argv, **kw):
    pw = pwd.getpwnam(name)
    return run(["setpriv", "--reuid=%d" % pw.pw_uid,
                "--regid=%d" % pw.pw_gid, "--init-groups"] + argv, **kw)


def uid(name):
    return pwd.getpwnam(name).pw_uid


def gid_of_group(name):
    return grp.getgrnam(name).gr_gid


def bin_(name):
    return os.path.join(prefix, "bin", name)


def q(*parts):
    return os.path.join(prefix, "queue", *[str(p) for p in parts])


def write(path, data, owner=None, mode=0o644):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)
    if owner is not None:
        pw = pwd.getpwnam(owner)
        os.lchown(path, pw.pw_uid, pw.pw_gid)


def logtext():
    try:
        return read(os.path.join(prefix, "log", "moat.log")).decode(
            "utf-8", "replace")
    except OSError:
        return ""


# ------------------------------------------------------------ /proc watch

def snapshot():
    """{pid: (comm, ppid, (r, e, s, fs uid), groups)} for every process"""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
            with open("/proc/%s/status" % p) as f:
                status = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        uids = groups = None
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uids = tuple(int(x) for x in line.split()[1:5])
            elif line.startswith("Groups:"):
                groups = tuple(int(x) for x in line.split()[1:])
        if uids is not None:
            out[int(p)] = (comm, ppid, uids, groups or ())
    return out


def tops():
    return [p.pid for n, p in procs.items() if n in ("start", "tcpd")
            and p.poll() is None]


def watch():
    while not watch_stop.is_set():
        snap = snapshot()
        roots = set(tops())
        for pid, (comm, ppid, uids, groups) in snap.items():
            chain, q_ = [], pid
            while q_ in snap and q_ not in roots and q_ > 1:
                chain.append(snap[q_][0])
                q_ = snap[q_][1]
            if q_ not in roots:
                continue
            # the names of the ancestors below the top, nearest first
            seen.setdefault(pid, set()).add(
                (comm, ppid, uids, groups, tuple(chain[1:]), q_))
        time.sleep(0.005)


# ------------------------------------------------------------ a peer

class Peer(threading.Thread):
    """a minimal SMTP server on 127.0.0.2 that takes its time after DATA"""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.2", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages = []

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.session(c)
            except OSError:
                pass
            c.close()

    def session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 peer.test ESMTP\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line[:4].upper()
            if cmd in (b"EHLO", b"HELO"):
                c.sendall(b"250 peer.test\r\n")
            elif cmd == b"DATA":
                c.sendall(b"354 go on\r\n")
                data = []
                while True:
                    d = f.readline()
                    if not d or d == b".\r\n":
                        break
                    data.append(d)
                time.sleep(1.5)     # moat-remote waits: /proc sees it
                self.messages.append(b"".join(data))
                c.sendall(b"250 2.0.0 ok\r\n")
            elif cmd == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")


# ------------------------------------------------------------ helpers

def smtp_slow(port, sender, rcpts, body, hold=0.6):
    """SMTP by hand, pausing inside DATA so that moat-queue is seen"""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")

    def cmd(line, want):
        if line is not None:
            s.sendall(line + b"\r\n")
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
        if not reply.startswith(want):
            raise Abort("SMTP %r: %r" % (line, reply))
    cmd(None, b"220")
    cmd(b"HELO test", b"250")
    cmd(b"MAIL FROM:<" + sender.encode() + b">", b"250")
    for r in rcpts:
        cmd(b"RCPT TO:<" + r.encode() + b">", b"250")
    cmd(b"DATA", b"354")
    s.sendall(body[:20])
    time.sleep(hold)
    s.sendall(body[20:] + b".\r\n")
    cmd(None, b"250")
    cmd(b"QUIT", b"221")
    s.close()


def maildir(sub="Maildir"):
    d = os.path.join(home, sub, "new")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def delivered(subject, sub="Maildir"):
    """is a message with this subject in ~/sub/new?"""
    d = os.path.join(home, sub, "new")
    want = b"\nSubject: " + subject.encode() + b"\n"
    return any(want in read(os.path.join(d, f)) for f in maildir(sub))


def inject_as_moatd(rcpt, body):
    """moat-queue run by moatd: the sanctioned way into the queue"""
    pw = pwd.getpwnam(ACC["moatd"])
    r, w = os.pipe()
    idr, idw = os.pipe()
    p = subprocess.Popen(
        ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
         "--init-groups", bin_("moat-queue")],
        stdin=subprocess.PIPE, stdout=r, stderr=subprocess.PIPE,
        pass_fds=(idw,), env={"MOAT_IDFD": str(idw), "PATH": "/usr/bin:/bin"})
    os.close(r)
    os.close(idw)
    os.write(w, b"Fsender@example.org\0T" + rcpt.encode() + b"\0\0")
    os.close(w)
    p.stdin.write(body)
    p.stdin.close()
    err = p.stderr.read()
    rc = p.wait(30)
    mid = os.read(idr, 64).decode().strip()
    os.close(idr)
    return rc, int(mid) if mid.isdigit() else None, err


def stop(name, sig=signal.SIGTERM, timeout=60):
    p = procs.get(name)
    if not p or p.poll() is not None:
        return p.returncode if p else None
    p.send_signal(sig)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


def cleanup():
    watch_stop.set()
    for n in ("tcpd", "start"):
        stop(n, timeout=30)
    # whatever the test's accounts still run (we started it all)
    ours = set()
    for a in list(ACC.values()) + [RCPT]:
        try:
            ours.add(uid(a))
        except KeyError:
            pass
    for pid, (comm, ppid, uids, groups) in snapshot().items():
        if uids[0] in ours or uids[1] in ours:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.2)
    for a in [RCPT] + list(ACC.values()):
        run(["userdel", a])
    for g in [GROUP, RCPT] + list(ACC.values()):
        try:
            grp.getgrnam(g)
        except KeyError:
            continue
        run(["groupdel", g])
    shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------ the test

try:
    # -- install: a plain build of our own, for this prefix; nothing of
    # an outer make (check-asan's SAN=, BIN= ... arrive in the environment)
    # may reach it: a sanitizer runtime has no place in a setuid program
    env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG")
           if k in os.environ}
    r = run(["make", "-C", moattest.REPO, "-j2", "install",
             "PREFIX=" + prefix, "BIN=" + os.path.join(base, "build", "bin"),
             "BUILD=" + os.path.join(base, "build", "obj")],
            env=env, timeout=900)
    if not t.ok(r.returncode == 0, "make install PREFIX=<temporary>",
                (r.stdout + r.stderr)[-3000:]):
        raise Abort("no installation")

    # -- moat-setup
    r = run([bin_("moat-setup"), "--user-prefix", TAG, "--me",
             "privsep.test"])
    if not t.ok(r.returncode == 0, "moat-setup --user-prefix creates "
                "accounts and tree", r.stderr):
        raise Abort("no setup")
    accounts = dict(line.split(":", 1) for line in read(
        os.path.join(prefix, "control", "accounts")).decode().splitlines()
        if line and not line.startswith("#"))
    t.ok(accounts == dict(ACC, moat=GROUP),
         "control/accounts records the chosen names", accounts)
    moat_gid = gid_of_group(GROUP)
    ok = True
    for role, name in ACC.items():
        pw = pwd.getpwnam(name)
        member = pw.pw_gid == moat_gid or name in grp.getgrgid(
            moat_gid).gr_mem
        want = role in ("moatq", "moats", "moatr")
        ok &= pw.pw_uid != 0 and member == want and \
            pw.pw_shell.endswith(("nologin", "false"))
        ok &= pw.pw_uid < 1000   # a system account
    t.ok(ok, "system accounts, no shell; only moatq, moats, moatr in group "
         "moat")

    # nothing setuid but moat-queue, which is moatq's, 4711
    bad = []
    for f in os.listdir(os.path.join(prefix, "bin")):
        st = os.lstat(bin_(f))
        if os.path.islink(bin_(f)):
            continue
        sid = st.st_mode & 0o6000
        if f == "moat-queue":
            if st.st_mode & 0o7777 != 0o4711 or st.st_uid != uid(
                    ACC["moatq"]):
                bad.append(f)
        elif sid or st.st_uid != 0 or st.st_mode & 0o022:
            bad.append(f)
    t.ok(not bad, "moat-queue alone is setuid (moatq, 4711); the rest "
         "root's, 0755", bad)

    # the tree against the table moat-setup prints
    r = run([bin_("moat-setup"), "--list"])
    table = [line.split() for line in r.stdout.decode().splitlines()]
    runs_as = {f[1]: f[2] for f in table if f[0] == "run"}
    diffs = []
    for f in table:
        if f[0] not in "dpf" or (f[0] == "f" and not os.path.exists(
                os.path.join(prefix, f[4]))):
            continue
        p = os.path.join(prefix, f[4])
        st = os.lstat(p)
        got = (pwd.getpwuid(st.st_uid).pw_name,
               grp.getgrgid(st.st_gid).gr_name, st.st_mode & 0o7777)
        want = (f[2], f[3], int(f[1], 8))
        if got != want:
            diffs.append("%s: %s, want %s" % (f[4], got, want))
    t.ok(len(table) > 200 and not diffs,
         "every directory, the fifo and the programs match moat-setup "
         "--list", "\n".join(diffs[:20]))
    t.ok(runs_as.get("moat-send") == ACC["moats"] and
         runs_as.get("moat-lspawn") == "root" and
         runs_as.get("moat-queue") == ACC["moatq"],
         "--list names the account of every program", runs_as)
    r = run([bin_("moat-setup"), "--check"])
    t.ok(r.returncode == 0, "moat-setup --check finds nothing to correct",
         r.stderr)

    # -- running it again is safe
    write(os.path.join(prefix, "control", "me"), "custom.test\n")
    keep = q("pid", "keep.me")
    write(keep, "queue content\n", ACC["moatq"], 0o600)
    mtime = os.stat(keep).st_mtime_ns
    os.chmod(q("info", 3), 0o755)
    r = run([bin_("moat-setup")])
    t.ok(r.returncode == 0 and b"corrected" in r.stderr and
         os.stat(q("info", 3)).st_mode & 0o7777 == 0o700,
         "a second run corrects a mode it finds wrong", r.stderr)
    t.ok(read(os.path.join(prefix, "control", "me")) == b"custom.test\n"
         and read(keep) == b"queue content\n" and
         os.stat(keep).st_mtime_ns == mtime,
         "... and keeps control files and queue content")
    os.unlink(keep)
    r = run([bin_("moat-setup"), "--user-prefix", TAG + "x"])
    t.ok(r.returncode == 100, "other account names than recorded are "
         "refused", r.stderr)

    # a link planted where a queue directory was: refused, target untouched
    victim_dir = os.path.join(base, "victim-dir")
    os.mkdir(victim_dir, 0o700)
    os.rename(q("info", 5), q("info", "5.saved"))
    os.symlink(victim_dir, q("info", 5))
    r = run([bin_("moat-setup")])
    st = os.stat(victim_dir)
    t.ok(r.returncode == 100 and st.st_uid == 0 and
         st.st_mode & 0o7777 == 0o700,
         "moat-setup refuses a symlink in the queue and changes nothing "
         "through it", r.stderr)
    os.unlink(q("info", 5))
    os.rename(q("info", "5.saved"), q("info", 5))

    # sendmail links: never over another MTA's file
    lroot = os.path.join(base, "fs")
    for d in ("usr/sbin", "usr/bin", "usr/lib"):
        os.makedirs(os.path.join(lroot, d))
    write(os.path.join(lroot, "usr/bin/mailq"), "another MTA\n")
    r = run([bin_("moat-setup"), "--sendmail-links", "--links-root", lroot])
    t.ok(r.returncode == 100 and
         not os.path.lexists(os.path.join(lroot, "usr/sbin/sendmail")) and
         read(os.path.join(lroot, "usr/bin/mailq")) == b"another MTA\n",
         "--sendmail-links refuses to replace another MTA's file and "
         "changes nothing", r.stderr)
    if os.path.exists(bin_("sendmail")):
        os.unlink(os.path.join(lroot, "usr/bin/mailq"))
        r = run([bin_("moat-setup"), "--sendmail-links", "--links-root",
                 lroot])
        r2 = run([bin_("moat-setup"), "--sendmail-links", "--links-root",
                  lroot])
        t.ok(r.returncode == 0 and r2.returncode == 0 and
             os.readlink(os.path.join(lroot, "usr/sbin/sendmail")) ==
             bin_("sendmail") and
             os.readlink(os.path.join(lroot, "usr/bin/mailq")) ==
             bin_("mailq"), "... and links sendmail and mailq to moat "
             "otherwise, again and again", r.stderr + r2.stderr)
        write(os.path.join(lroot, "usr/lib/other"), "x")
        r = run([bin_("moat-setup"), "--remove-sendmail-links",
                 "--links-root", lroot])
        t.ok(r.returncode == 0 and
             not os.path.lexists(os.path.join(lroot, "usr/sbin/sendmail"))
             and os.path.exists(os.path.join(lroot, "usr/lib/other")),
             "--remove-sendmail-links removes its links only", r.stderr)
    else:
        t.skip("sendmail links", "no sendmail program installed")

    # -- the recipient: a system account with a home of its own
    r = run(["useradd", "--create-home", "--home-dir", home, "--shell",
             "/bin/sh", RCPT])
    if not t.ok(r.returncode == 0, "a test recipient account", r.stderr):
        raise Abort("no recipient")
    os.chmod(home, 0o755)
    ru = uid(RCPT)
    elsewhere = os.path.join(home, "elsewhere")
    for d in ("Maildir", "Maildir/tmp", "Maildir/new", "Maildir/cur",
              "Maildir2", "Maildir2/new", "Maildir2/cur", "elsewhere"):
        os.mkdir(os.path.join(home, d), 0o700)
        os.lchown(os.path.join(home, d), ru, ru)
    os.symlink(elsewhere, os.path.join(home, "Maildir2", "tmp"))
    os.lchown(os.path.join(home, "Maildir2", "tmp"), ru, ru)
    write(os.path.join(home, ".qmail-slow"), "|sleep 2\n./Maildir/\n", RCPT)
    write(os.path.join(home, ".qmail-later"), "|exit 111\n", RCPT)
    write(os.path.join(home, ".qmail-sym"), "./Maildir2/\n", RCPT)

    have_remote = os.path.exists(bin_("moat-remote")) and \
        os.path.exists(bin_("moat-rspawn"))
    peer = None
    if have_remote:
        peer = Peer()
        peer.start()
        write(os.path.join(prefix, "control", "smtproutes"),
              "example.test:[127.0.0.2]:%d\n" % peer.port)
    write(os.path.join(prefix, "control", "relayclients"), "127.0.0.1\n")
    write(os.path.join(prefix, "control", "me"), "privsep.test\n")

    # -- queue files, and links planted in the queue, before the start:
    # message A with links in local/, remote/, bounce/ (moat-send removes
    # such leftovers of a crash), message B with one in info/
    moatq, moats = uid(ACC["moatq"]), uid(ACC["moats"])
    ids = []
    for name in ("A", "B"):
        rc, mid, err = inject_as_moatd(
            RCPT + "@localhost", b"Subject: planted " + name.encode() +
            b"\n\nplanted\n")
        ids.append(mid or 0)
    t.ok(rc == 0 and all(ids), "moatd queues messages through moat-queue",
         err)
    fowners = []
    for d in ("mess", "intd", "todo"):
        st = os.stat(q(d, ids[0] % 23, ids[0]))
        fowners.append((d, st.st_uid == moatq, st.st_gid == moat_gid,
                        oct(st.st_mode & 0o7777)))
    t.ok(all(o[1] and o[2] and o[3] == "0o640" for o in fowners),
         "mess, intd, todo files: moatq, group moat, 0640", fowners)
    victims, planted = {}, []
    os.mkdir(os.path.join(base, "victim"), 0o755)
    for d, mid in (("local", ids[0]), ("remote", ids[0]), ("bounce", ids[0]),
                   ("info", ids[1])):
        v = os.path.join(base, "victim", d)
        write(v, "untouched\n", ACC["moats"], 0o644)
        victims[v] = os.stat(v).st_mtime_ns
        planted.append(q(d, mid % 23, mid))
        os.symlink(v, planted[-1])
        os.lchown(planted[-1], moats, moat_gid)

    # -- moatd cannot write into the queue, nor read a message
    probe = r'''
import os, sys
bad = []
for d in sys.argv[1:]:
    try:
        fd = os.open(os.path.join(d, "probe"), os.O_CREAT | os.O_EXCL |
                     os.O_WRONLY, 0o600)
        os.close(fd)
        bad.append(d)
    except OSError:
        pass
    try:
        os.mkdir(os.path.join(d, "probe.d"))
        bad.append(d)
    except OSError:
        pass
print("\n".join(bad))
'''
    qdirs = [os.path.join(prefix, f[4]) for f in table
             if f[0] == "d" and f[4].startswith("queue")]
    r = as_user(ACC["moatd"], [sys.executable, "-c", probe] + qdirs)
    t.ok(r.returncode == 0 and r.stdout.strip() == b"" and len(qdirs) > 150,
         "moatd can create nothing in any of %d queue directories"
         % len(qdirs), r.stdout + r.stderr)
    r = as_user(ACC["moatd"], ["cat", q("mess", ids[0] % 23, ids[0])])
    t.ok(r.returncode != 0, "moatd cannot read a queued message")
    r = as_user(ACC["moatd"], [bin_("moat-start")])
    t.ok(r.returncode == 100, "moat-start refuses to run as anyone but "
         "root", r.stderr)

    # -- start: the chain with its logger, and the listener
    port = free_port()
    procs["start"] = subprocess.Popen(
        [bin_("moat-start"), "--log", "moat.log"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(base, "start.err"), "wb"))
    procs["tcpd"] = subprocess.Popen(
        [bin_("moat-tcpd"), "-u", ACC["moatd"], "127.0.0.1:%d" % port, "--",
         bin_("moat-smtpd")], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(base, "tcpd.err"), "wb"))
    if not t.ok(wait_port("127.0.0.1", port) and
                wait_for(lambda: "moat-send: started" in logtext(), 20),
                "moat-start and moat-tcpd -u run",
                logtext() + read(os.path.join(base, "start.err")).decode()):
        raise Abort("not running")
    time.sleep(0.3)    # moat-tcpd has dropped root by now
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    # the planted links were not written through
    t.ok(wait_for(lambda: delivered("planted A"), 30),
         "message A, with links planted in local/, remote/, bounce/, is "
         "delivered", logtext()[-3000:])
    # info/ is removed first as a leftover (unlink does not follow a
    # link), then written afresh with O_NOFOLLOW
    t.ok(wait_for(lambda: delivered("planted B"), 30),
         "message B, with a link planted in info/: moat-send removes the "
         "link as a leftover and delivers B", logtext()[-3000:])
    changed = [v for v, m in victims.items()
               if read(v) != b"untouched\n" or os.stat(v).st_mtime_ns != m]
    t.ok(not changed, "nothing was written through the planted links",
         changed)

    # -- mail in: held inside DATA (moat-queue seen), a slow program
    # delivery (moat-local seen), a deferral, a Maildir with tmp a link
    smtp_slow(port, "sender@example.org", [RCPT + "-slow@localhost"],
              b"Subject: slow\r\n\r\nslow delivery\r\n")
    t.ok(wait_for(lambda: delivered("slow"), 30),
         "mail in: smtplib -> moat-smtpd -> moat-local (|sleep 2, then "
         "./Maildir/)", logtext()[-3000:])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("sender@example.org", [RCPT + "-later@localhost"],
                   b"Subject: later\r\n\r\nstays queued\r\n")
        s.sendmail("sender@example.org", [RCPT + "-sym@localhost"],
                   b"Subject: sym\r\n\r\ninto a linked tmp\r\n")
    t.ok(wait_for(lambda: logtext().count("deferral") >= 2, 30),
         "the program that exits 111 and the linked Maildir2/tmp defer",
         logtext()[-3000:])
    t.ok(os.listdir(elsewhere) == [] and maildir("Maildir2") == [],
         "moat-local wrote nothing through Maildir2/tmp -> elsewhere",
         os.listdir(elsewhere))

    # -- STARTTLS in the installed system: moat-setup made the certificate,
    # moat-tlsd reads it as moatd
    cert = os.path.join(prefix, "control", "servercert.pem")
    st = os.lstat(cert)
    t.ok((st.st_uid, st.st_mode & 0o7777) == (uid(ACC["moatd"]), 0o400),
         "moat-setup made control/servercert.pem, moatd's, mode 0400",
         (st.st_uid, oct(st.st_mode)))
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        code, _ = s.starttls(context=ctx)
        refused = s.sendmail("sender@example.org", [RCPT + "@localhost"],
                             b"Subject: tls\r\n\r\nunder TLS\r\n")
    t.ok(code == 220 and refused == {} and
         wait_for(lambda: delivered("tls"), 30),
         "STARTTLS as moatd, and the message is delivered",
         logtext()[-3000:])

    # -- mail out, when moat-remote is built
    if have_remote:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail(RCPT + "@localhost", ["someone@example.test"],
                       b"Subject: out\r\n\r\nto the peer\r\n")
        t.ok(wait_for(lambda: len(peer.messages) == 1 and
                      "end msg" in logtext().split("example.test")[-1],
                      40),
             "mail out: moat-rspawn -> moat-remote -> the peer on "
             "127.0.0.2", logtext()[-3000:])
    else:
        t.skip("mail out", "moat-remote is not built")

    # queue files of the deferred message
    qfiles = []
    for d in ("info", "local", "remote", "bounce", "mess"):
        for dirpath, _, files in os.walk(q(d)):
            for f in files:
                if os.path.join(dirpath, f) in planted:
                    continue
                st = os.lstat(os.path.join(dirpath, f))
                qfiles.append((d, f, st.st_uid, st.st_gid,
                               st.st_mode & 0o7777))
    wrong = [x for x in qfiles if
             (x[0] == "mess" and (x[2], x[3], x[4]) !=
              (moatq, moat_gid, 0o640)) or
             (x[0] != "mess" and (x[2], x[4]) != (moats, 0o600))]
    t.ok(qfiles and not wrong, "queued files: mess moatq:moat 0640; info, "
         "local, remote, bounce moats 0600", wrong or qfiles)

    # -- log rotation: rename, SIGHUP, a new file
    logf = os.path.join(prefix, "log", "moat.log")
    st = os.stat(logf)
    t.ok(st.st_uid == uid(ACC["moatl"]) and st.st_mode & 0o777 == 0o640,
         "the log file belongs to moatl, 0640")
    os.rename(logf, logf + ".1")
    procs["start"].send_signal(signal.SIGHUP)
    t.ok(wait_for(lambda: "SIGHUP passed on" in logtext(), 10) and
         "SIGHUP passed on" not in read(logf + ".1").decode(),
         "SIGHUP: the logger reopens the file (rotation)")

    # -- who ran as whom
    watch_stop.set()
    watcher.join(5)
    U = {r: uid(a) for r, a in ACC.items()}
    allowed = {
        "moat-start": {0, U["moatl"], U["moats"], U["moatq"], U["moatr"]},
        "moat-log": {U["moatl"]}, "moat-send": {U["moats"]},
        "moat-clean": {U["moatq"]}, "moat-rspawn": {U["moatr"]},
        "moat-remote": {U["moatr"]}, "moat-tcpd": {U["moatd"]},
        "moat-smtpd": {U["moatd"]}, "moat-tlsd": {U["moatd"]},
        "moat-lspawn": {0, ru},
        "moat-local": {ru},
    }
    main_pids = {p.pid for p in procs.values()}
    problems, as_root, got = [], set(), {}
    for pid, obs in seen.items():
        for comm, ppid, uids, groups, chain, top in obs:
            got.setdefault(comm, set()).add(uids)
            if 0 in uids:
                as_root.add(comm)
            if comm == "moat-queue":
                if uids[1:] != (U["moatq"],) * 3 or uids[0] not in (
                        U["moatd"], U["moats"], ru):
                    problems.append((pid, comm, uids))
            elif comm in allowed:
                if set(uids) - allowed[comm] or len(set(uids)) != 1:
                    problems.append((pid, comm, uids))
                if pid in main_pids and comm == "moat-start" and \
                        uids != (0, 0, 0, 0):
                    problems.append((pid, comm, uids))
                if comm == "moat-send" and set(groups) != {moat_gid}:
                    problems.append((pid, comm, "groups", groups))
                if comm in ("moat-smtpd", "moat-tlsd") and (
                        moat_gid in groups or 0 in groups):
                    problems.append((pid, comm, "groups", groups))
            elif "moat-local" not in chain or set(uids) != {ru}:
                problems.append((pid, comm, uids, chain))
    t.ok(not problems, "every process ran as privs.h says", problems[:20])
    t.ok(as_root <= {"moat-start", "moat-lspawn"},
         "nothing but moat-start and moat-lspawn ran as root", as_root)
    lspawn_main = [pid for pid, obs in seen.items() for o in obs
                   if o[0] == "moat-lspawn" and o[5] == procs["start"].pid
                   and o[1] == procs["start"].pid]
    t.ok(lspawn_main and all(o[2] == (0, 0, 0, 0) for p in lspawn_main
                             for o in seen[p] if o[0] == "moat-lspawn"),
         "moat-lspawn runs as root")
    t.ok((ru,) * 4 in got.get("moat-local", set()) and
         not any(0 in u for u in got.get("moat-local", set())),
         "moat-local ran as the recipient, never as uid 0",
         got.get("moat-local"))
    want = {"moat-log": "moatl", "moat-send": "moats",
            "moat-clean": "moatq", "moat-tcpd": "moatd",
            "moat-smtpd": "moatd"}
    if have_remote:
        want.update({"moat-rspawn": "moatr", "moat-remote": "moatr"})
    missing = [c for c, r in want.items()
               if (U[r],) * 4 not in got.get(c, set())]
    t.ok(not missing, "seen: moat-smtpd and moat-tcpd as moatd, moat-send "
         "as moats, moat-clean as moatq, moat-log as moatl%s" %
         (", moat-rspawn and moat-remote as moatr" if have_remote else ""),
         missing)
    t.ok(any(u[0] == U["moatd"] and u[1] == U["moatq"]
             for u in got.get("moat-queue", set())),
         "seen: moat-queue run by moatd with the effective uid moatq",
         got.get("moat-queue"))

    # -- a clean stop, a clean restart
    rc = stop("start", timeout=200)
    left = [pid for pid, (comm, *_rest) in snapshot().items()
            if comm in ("moat-send", "moat-lspawn", "moat-clean",
                        "moat-rspawn", "moat-log") and pid in seen]
    t.ok(rc == 0 and not left and "moat-start: stopped" in logtext(),
         "SIGTERM: moat-start stops the chain and exits 0", logtext()[-1500:])
    for p in planted:
        if os.path.islink(p):
            os.unlink(p)
    procs["start"] = subprocess.Popen(
        [bin_("moat-start"), "--log", "moat.log"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(base, "start.err"), "ab"))
    # B was delivered before the stop (its planted link removed)
    t.ok(wait_for(lambda: delivered("planted B") and
                  logtext().count("moat-send: started") == 1, 30),
         "restarted, moat-start runs the chain again, and message B, whose "
         "planted link moat-send removed, is delivered",
         logtext()[-1500:])
    t.ok(stop("start", timeout=200) == 0, "... and stops cleanly again")
except Exception as e:
    t.ok(False, "the test could run to its end",
         str(e) if isinstance(e, Abort) else traceback.format_exc())
finally:
    cleanup()
    gone = True
    for a in [RCPT, GROUP] + list(ACC.values()):
        try:
            pwd.getpwnam(a)
            gone = False
        except KeyError:
            pass
    t.ok(gone and not os.path.exists(base),
         "every account and directory the test made is gone")
t.done()
