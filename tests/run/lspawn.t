#!/usr/bin/env python3
"""moat-lspawn: the job protocol over pipes, with a fake moat-local that
records its arguments, uid, groups, environment and message.  Single-user
mode (as the unprivileged account when we are root): K/Z/D results, the
user table's exact and wildcard entries, unknown users, the alias
directory, several jobs at once answered out of order, jobs in pieces,
defaultdelivery, end of input and SIGTERM, malformed jobs.  As root
(system mode): a temporary account created with useradd receives as its
own uid, uid 0 is refused, the alias account takes the rest.  With the
real moat-local built, one real Maildir delivery."""
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import moattest  # noqa: E402
from moattest import Tap, make_root, remove_root, give_away  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("MOAT_BIN") or os.path.join(HERE, "..", "..", "bin")
moattest.BIN = BIN
SPLIT = 23
ROOT_UID = os.geteuid() == 0

t = Tap()

FAKE = r"""#!/bin/sh
# fake moat-local for lspawn.t: records, then exits as the local part says
rec="$MOAT_ROOT/rec/$$"
# moat-lspawn ends the options with "--" so a user name is never one
if [ "$1" != "--" ]; then echo "no -- before the arguments"; exit 3; fi
shift
{
  echo "ruid=$(id -ru)"
  echo "euid=$(id -u)"
  echo "rgid=$(id -rg)"
  echo "egid=$(id -g)"
  echo "groups=$(id -G)"
  echo "argc=$#"
  for a in "$@"; do echo "arg=$a"; done
  env | sort | sed 's/^/env=/'
} > "$rec.tmp"
cat > "$rec.msg"
mv "$rec.tmp" "$rec.rec"
case "$3" in
  perm*) echo "fake: permanent trouble for $3"; exit 100 ;;
  temp*) echo "fake: temporary trouble"; exit 111 ;;
  crash*) kill -SEGV $$ ;;
  weird*) echo "weird"; exit 3 ;;
  slow*) sleep 1; echo "slow done"; exit 0 ;;
  noisy*)
    i=0
    while [ $i -lt 100 ]; do
      echo "0123456789012345678901234567890123456789012345678"
      i=$((i + 1))
    done
    exit 0 ;;
  stderr*) echo "complaint on stderr" >&2; exit 100 ;;
  bgchild*) (sleep 15 >/dev/null 2>&1 &) ; echo "left a child"; exit 0 ;;
  *) echo "fake delivered $3"; exit 0 ;;
esac
"""


def make_bin(fake=True):
    """a private bin dir: moat-lspawn, moat-newu and a moat-local"""
    d = tempfile.mkdtemp(prefix="moat-lspawn-bin-")
    os.chmod(d, 0o755)
    for p in ("moat-lspawn", "moat-newu"):
        shutil.copy2(os.path.join(BIN, p), os.path.join(d, p))
    if fake:
        with open(os.path.join(d, "moat-local"), "w") as f:
            f.write(FAKE)
        os.chmod(os.path.join(d, "moat-local"), 0o755)
    else:
        shutil.copy2(os.path.join(BIN, "moat-local"),
                     os.path.join(d, "moat-local"))
    return d


def job(n, mid, sender, rcpts):
    b = b"J%d\0M%d\0F%s\0" % (n, mid, sender.encode())
    for r in rcpts:
        b += b"T" + r.encode() + b"\0"
    return b + b"\0"


def put_message(root, mid, body):
    p = os.path.join(root, "queue", "mess", str(mid % SPLIT), str(mid))
    with open(p, "wb") as f:
        f.write(body)
    give_away(p)


def records(data):
    """complete result records in data: ([(n, [(status, text)])], rest)"""
    out = []
    while True:
        fields = []
        pos = 0
        complete = False
        while True:
            nul = data.find(b"\0", pos)
            if nul < 0:
                break
            f = data[pos:nul]
            pos = nul + 1
            if not f:
                complete = True
                break
            fields.append(f)
        if not complete:
            return out, data
        data = data[pos:]
        n = int(fields[0][1:]) if fields and fields[0][:1] == b"J" else None
        res = [(f[1:2].decode(), f[2:].decode("ascii", "replace"))
               for f in fields[1:] if f[:1] == b"R"]
        out.append((n, res))


class Spawner:
    def __init__(self, bindir, root, as_user):
        argv = [os.path.join(bindir, "moat-lspawn")]
        if as_user:
            argv = moattest.as_user_argv(argv)
        env = {"PATH": "/usr/bin:/bin", "MOAT_ROOT": root}
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.buf = b""
        self.order = []

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def results(self, count, timeout=20):
        """count result records, as {n: [(status, text)]}"""
        got = {}
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            recs, self.buf = records(self.buf)
            for n, res in recs:
                got[n] = res
                self.order.append(n)
            if len(got) >= count:
                break
            r, _, _ = select.select([self.p.stdout], [], [],
                                    max(0, deadline - time.time()))
            if not r:
                break
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                recs, self.buf = records(self.buf)
                for n, res in recs:
                    got[n] = res
                    self.order.append(n)
                break
            self.buf += chunk
        return got

    def close(self, timeout=20):
        """EOF on fd 0; the exit status and stderr"""
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        err = self.p.stderr.read().decode("utf-8", "replace")
        self.p.stdout.close()
        self.p.stderr.close()
        return rc, err


def read_recs(root):
    """the fake moat-local's records: [{'args': [...], 'uid': ..}]"""
    out = []
    d = os.path.join(root, "rec")
    for name in sorted(os.listdir(d)):
        if not name.endswith(".rec"):
            continue
        rec = {"args": [], "env": {}}
        with open(os.path.join(d, name)) as f:
            for line in f.read().split("\n"):
                k, _, v = line.partition("=")
                if k == "arg":
                    rec["args"].append(v)
                elif k == "env":
                    ek, _, ev = v.partition("=")
                    rec["env"][ek] = ev
                elif k:
                    rec[k] = v
        with open(os.path.join(d, name[:-4] + ".msg"), "rb") as f:
            rec["msg"] = f.read()
        out.append(rec)
    return out


def rec_for(root, local):
    for r in read_recs(root):
        if len(r["args"]) > 2 and r["args"][2] == local:
            return r
    return None


def clear_recs(root):
    d = os.path.join(root, "rec")
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))


def newu(bindir, root, assign, as_user):
    with open(os.path.join(root, "users", "assign"), "w") as f:
        f.write(assign)
    if as_user:
        give_away(os.path.join(root, "users", "assign"))
    argv = [os.path.join(bindir, "moat-newu"), "--root", root]
    if as_user:
        argv = moattest.as_user_argv(argv)
    p = subprocess.run(argv, capture_output=True, timeout=30)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def new_root():
    root = make_root()
    os.makedirs(os.path.join(root, "rec"))
    os.chmod(os.path.join(root, "rec"), 0o1777)
    os.makedirs(os.path.join(root, "home"))
    give_away(root)
    os.chmod(os.path.join(root, "rec"), 0o1777)
    return root


BODY = b"From: a@example.org\nSubject: lspawn test\n\nbody line\n"

# ---------------------------------------------------------------- single-user
bindir = make_bin()
root = new_root()
if ROOT_UID:
    uid, gid = moattest.unprivileged()
else:
    uid, gid = os.getuid(), os.getgid()
me = pwd.getpwuid(uid).pw_name
home = os.path.join(root, "home")
assign = "".join([
    "=ok:%s:%d:%d:%s:::\n" % (me, uid, gid, home),
    "+okx-:%s:%d:%d:%s:-:pre-:\n" % (me, uid, gid, home),
    "+okx-long-:%s:%d:%d:%s:-::\n" % (me, uid, gid, home),
] + ["=%s:%s:%d:%d:%s:::\n" % (w, me, uid, gid, home)
     for w in ("perm", "temp", "crash", "weird", "slow", "slow2", "noisy",
               "stderr", "bgchild", "split", "first", "second", "third")] + [
    "=other:someone:%d:%d:/nonexistent:::\n" % (uid + 1, gid),
    "=rootuser:root:0:0:/root:::\n",
    ".\n",
])
rc, err = newu(bindir, root, assign, True)
t.ok(rc == 0, "moat-newu compiles the test table", err)
for mid in range(100, 140):
    put_message(root, mid, BODY + b"message %d\n" % mid)

sp = Spawner(bindir, root, True)
jobs = [
    (1, "ok@localhost"), (2, "OKX-Foo@Example.COM"), (3, "perm@localhost"),
    (4, "temp@localhost"), (5, "crash@localhost"), (6, "weird@localhost"),
    (7, "nosuch@localhost"), (8, "other@localhost"),
    (9, "rootuser@localhost"), (11, "noat"), (12, "@localhost"),
    (13, "noisy@localhost"), (14, "stderr@localhost"),
    (15, "okx-long-x@localhost"), (16, "OK@localhost"),
]
data = b"".join(job(n, 100 + n, "sender@example.org", [r]) for n, r in jobs)
data += job(10, 110, "s@example.org", ["ok@localhost", "perm@localhost"])
data += job(17, 999999, "s@example.org", ["ok@localhost"])  # no message
sp.send(data)
res = sp.results(len(jobs) + 2)
t.ok(len(res) == len(jobs) + 2, "one result per job (%d)" % (len(jobs) + 2),
     res)


def one(n):
    r = res.get(n)
    return r[0] if r and len(r) == 1 else (None, None)


st, txt = one(1)
t.ok(st == "K" and "fake delivered ok" in txt, "exit 0 -> K with its text",
     (st, txt))
r = rec_for(root, "ok")
t.ok(r is not None and r["args"] == [me, home, "ok", "", "", "localhost",
                                     "sender@example.org", "./Maildir/"],
     "exact entry: moat-local user home local dash ext domain sender "
     "defaultdelivery", r and r["args"])
t.ok(r is not None and r["argc"] == "8", "exactly 8 arguments",
     r and r["argc"])
t.ok(r is not None and r["euid"] == str(uid) and r["ruid"] == str(uid),
     "single-user mode: moat-local runs as the run account", r and r["euid"])
t.ok(r is not None and r["msg"] == BODY + b"message 101\n",
     "the message is on moat-local's fd 0", r and r["msg"][:100])
t.ok(r is not None and r["env"].get("PATH") == "/usr/bin:/bin" and
     r["env"].get("MOAT_ROOT") == root and
     not (set(r["env"]) - {"PATH", "MOAT_ROOT", "PWD", "SHLVL", "_",
                           "OLDPWD"}),
     "a clean environment: PATH and MOAT_ROOT", r and r["env"])
st, txt = one(2)
r = rec_for(root, "OKX-Foo")
t.ok(st == "K" and r is not None and
     r["args"][:6] == [me, home, "OKX-Foo", "-", "pre-Foo", "Example.COM"],
     "wildcard entry: case-insensitive match, ext = pre + the rest as given",
     (st, txt, r and r["args"]))
r = rec_for(root, "okx-long-x")
t.ok(r is not None and r["args"][3:5] == ["-", "x"],
     "the longest wildcard prefix wins", r and r["args"])
r = rec_for(root, "OK")
t.ok(one(16)[0] == "K" and r is not None and r["args"][2:5] == ["OK", "", ""],
     "exact entry matched without regard to case; local kept as given",
     r and r["args"])
st, txt = one(3)
t.ok(st == "D" and "permanent trouble for perm" in txt,
     "exit 100 -> D with its text", (st, txt))
st, txt = one(4)
t.ok(st == "Z" and "temporary trouble" in txt, "exit 111 -> Z", (st, txt))
st, txt = one(5)
t.ok(st == "Z" and txt == "moat-local crashed or was killed (#4.3.0)",
     "killed by a signal -> Z crashed", (st, txt))
st, txt = one(6)
t.ok(st == "Z" and txt == "moat-local crashed or was killed (#4.3.0)",
     "exit 3 -> Z crashed", (st, txt))
st, txt = one(7)
t.ok(st == "D" and txt == "Sorry, no mailbox here by that name. (#5.1.1)",
     "unknown local part -> D 5.1.1", (st, txt))
st, txt = one(8)
t.ok(st == "Z" and "uid %d" % (uid + 1) in txt and "single-user" in txt,
     "single-user mode: another uid in the table -> Z", (st, txt))
st, txt = one(9)
t.ok(st == "Z" and txt == "refusing to deliver as root (#4.3.0)",
     "uid 0 in the table -> Z refusing root", (st, txt))
t.ok(res.get(10) and len(res[10]) == 2 and
     all(s == "D" and "exactly one recipient" in x for s, x in res[10]),
     "two recipients in a job -> D for each", res.get(10))
st, txt = one(11)
t.ok(st == "D" and "protocol error" in txt, "recipient without @ -> D",
     (st, txt))
st, txt = one(12)
t.ok(st == "K" and "Trash" in txt, "empty local part: trash address, K",
     (st, txt))
st, txt = one(13)
t.ok(st == "K" and 900 <= len(txt) <= 1000 and "\n" not in txt,
     "a long report is cut to 1000 bytes, newlines made spaces", len(txt))
st, txt = one(14)
t.ok(st == "D" and "complaint on stderr" in txt,
     "moat-local's stderr goes into the result text", (st, txt))
st, txt = one(17)
t.ok(st == "Z" and "missing" in txt, "no message file -> Z", (st, txt))
t.ok(rec_for(root, "nosuch") is None and rec_for(root, "rootuser") is None
     and rec_for(root, "other") is None,
     "moat-local was not started for refused jobs")

# several at once, answered as they finish
clear_recs(root)
sp.send(job(20, 120, "s@x", ["slow@localhost"]) +
        job(21, 121, "s@x", ["first@localhost"]))
res = sp.results(2)
t.ok(res.get(20) and res[20][0][0] == "K" and res.get(21) and
     res[21][0][0] == "K", "two jobs in one write: both K", res)
t.ok(sp.order[-2:] == [21, 20],
     "the quick delivery is reported before the slow one", sp.order[-2:])

# a job arriving byte by byte, and a record split across writes
data = job(22, 122, "s@x", ["split@localhost"])
for i in range(len(data)):
    sp.send(data[i:i + 1])
    if i % 7 == 0:
        time.sleep(0.002)
res = sp.results(1)
t.ok(res.get(22) and res[22][0][0] == "K", "a job sent byte by byte", res)
data = job(23, 123, "s@x", ["second@localhost"]) + \
    job(24, 124, "s@x", ["third@localhost"])
sp.send(data[:15])
time.sleep(0.05)
sp.send(data[15:40])
time.sleep(0.05)
sp.send(data[40:])
res = sp.results(2)
t.ok(res.get(23) and res.get(24), "two jobs split across three writes", res)

# a moat-local that leaves a background process holding its output
start = time.time()
sp.send(job(25, 125, "s@x", ["bgchild@localhost"]))
res = sp.results(1)
t.ok(res.get(25) and res[25][0] == ("K", "left a child") and
     time.time() - start < 8,
     "reported when moat-local exits, not when its children do", res)

# end of input while a delivery runs: it is finished and reported
sp.send(job(26, 126, "s@x", ["slow2@localhost"]))
time.sleep(0.2)
sp.p.stdin.close()
res = sp.results(1)
rc, err = sp.close()
t.ok(res.get(26) and res[26][0][0] == "K",
     "EOF: the running delivery is still reported", res)
t.ok(rc == 0, "EOF: exit 0", (rc, err))

# SIGTERM: same clean finish
sp = Spawner(bindir, root, True)
sp.send(job(30, 130, "s@x", ["slow@localhost"]))
time.sleep(0.3)
sp.p.send_signal(signal.SIGTERM)
res = sp.results(1)
rc, err = sp.close()
t.ok(res.get(30) and res[30][0][0] == "K" and rc == 0,
     "SIGTERM: the running delivery is reported, exit 0", (res, rc, err))

# defaultdelivery, and the alias directory
with open(os.path.join(root, "control", "defaultdelivery"), "w") as f:
    f.write("./Mailbox\n")
give_away(os.path.join(root, "control", "defaultdelivery"))
os.makedirs(os.path.join(root, "alias"))
give_away(os.path.join(root, "alias"))
clear_recs(root)
sp = Spawner(bindir, root, True)
sp.send(job(31, 131, "s@x", ["ok@localhost"]) +
        job(32, 132, "s@x", ["Stranger.Name@localhost"]))
res = sp.results(2)
rc, err = sp.close()
r = rec_for(root, "ok")
t.ok(r is not None and r["args"][7] == "./Mailbox",
     "control/defaultdelivery is moat-local's last argument",
     r and r["args"])
r = rec_for(root, "Stranger.Name")
t.ok(res.get(32) and res[32][0][0] == "K" and r is not None and
     r["args"][:5] == ["alias", os.path.join(root, "alias"), "Stranger.Name",
                       "-", "Stranger.Name"],
     "ROOT/alias takes unknown names: dash '-', ext = the local part",
     (res.get(32), r and r["args"]))
os.unlink(os.path.join(root, "control", "defaultdelivery"))

# malformed jobs end moat-lspawn with an error, not a crash
for desc, bad in [
        ("a job number that is not a number", b"Jx\0M1\0Fs\0Ta@b\0\0"),
        ("a job without recipients", b"J1\0M1\0Fs\0\0"),
        ("a field of the wrong kind", b"J1\0M1\0Xs\0Ta@b\0\0"),
        ("an endless field", b"J1\0M1\0F" + b"x" * 10000),
        ("end of input inside a job", b"J1\0M101\0Fs\0Tok@loc")]:
    sp = Spawner(bindir, root, True)
    try:
        sp.send(bad)
    except BrokenPipeError:
        pass
    rc, err = sp.close()
    t.ok(rc == 111, "%s: exit 111" % desc, (rc, err))

# a malformed job after a good one: the good one still finishes
sp = Spawner(bindir, root, True)
sp.send(job(40, 120, "s@x", ["slow@localhost"]) + b"Jbad\0\0")
res = sp.results(1)
rc, err = sp.close()
t.ok(res.get(40) and res[40][0][0] == "K" and rc == 111,
     "a protocol error waits for running deliveries, reports them, exits "
     "111", (res, rc, err))
remove_root(root)

# ---------------------------------------------------------------- system mode


def useradd(name, home):
    p = subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/false",
                        "-U", name], capture_output=True, timeout=60)
    if p.returncode != 0:
        return None
    pw = pwd.getpwnam(name)
    os.makedirs(home, exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o755)
    return pw


def userdel(name):
    subprocess.run(["userdel", name], capture_output=True, timeout=60)
    subprocess.run(["groupdel", name], capture_output=True, timeout=60)


if not ROOT_UID or not shutil.which("useradd"):
    t.skip("system mode", "needs root and useradd")
else:
    root = new_root()
    uname = "mlsp%d" % (os.getpid() % 100000)
    made_alias = False
    homes = tempfile.mkdtemp(prefix="moat-lspawn-homes-")
    os.chmod(homes, 0o755)
    pw = useradd(uname, os.path.join(homes, uname))
    try:
        t.ok(pw is not None, "useradd %s" % uname)
        try:
            alias = pwd.getpwnam("alias")
        except KeyError:
            alias = useradd("alias", os.path.join(homes, "alias"))
            made_alias = alias is not None
        for mid in range(100, 120):
            put_message(root, mid, BODY)
        # table: uid 0 and an entry for the new account's uid
        rc, err = newu(bindir, root,
                       "=rootuser:root:0:0:/root:::\n"
                       "=mapped:%s:%d:%d:%s:::\n.\n" %
                       (uname, pw.pw_uid, pw.pw_gid, pw.pw_dir), False)
        t.ok(rc == 0, "moat-newu as root", err)
        sp = Spawner(bindir, root, False)
        sp.send(job(1, 101, "s@x", ["%s@localhost" % uname]) +
                job(2, 102, "s@x", ["%s-Some-Ext@localhost" % uname.upper()]) +
                job(3, 103, "s@x", ["rootuser@localhost"]) +
                job(4, 104, "s@x", ["mapped@localhost"]) +
                job(5, 105, "s@x", ["root@localhost"]) +
                job(6, 106, "s@x", ["nobody-like-name-%s@localhost" % uname]))
        res = sp.results(6)
        rc, err = sp.close()
        t.ok(rc == 0, "system mode: clean exit", (rc, err))
        r = rec_for(root, uname)
        t.ok(res.get(1) and res[1][0][0] == "K" and r is not None and
             r["args"][:5] == [uname, pw.pw_dir, uname, "", ""],
             "an account takes its name", (res.get(1), r and r["args"]))
        t.ok(r is not None and r["ruid"] == r["euid"] == str(pw.pw_uid) and
             r["rgid"] == r["egid"] == str(pw.pw_gid),
             "moat-local runs as the account's uid and gid",
             r and (r["ruid"], r["euid"], r["rgid"], r["egid"]))
        t.ok(r is not None and r["groups"] == str(pw.pw_gid),
             "no supplementary groups but the gid", r and r["groups"])
        r = rec_for(root, "%s-Some-Ext" % uname.upper())
        t.ok(res.get(2) and res[2][0][0] == "K" and r is not None and
             r["args"][:5] == [uname, pw.pw_dir, "%s-Some-Ext" % uname.upper(),
                               "-", "Some-Ext"],
             "NAME-ext: the account, any case, dash '-', ext after it",
             (res.get(2), r and r["args"]))
        t.ok(res.get(3) and res[3][0] == ("Z",
                                          "refusing to deliver as root "
                                          "(#4.3.0)"),
             "a table entry with uid 0 is refused", res.get(3))
        r = rec_for(root, "mapped")
        t.ok(res.get(4) and res[4][0][0] == "K" and r is not None and
             r["euid"] == str(pw.pw_uid),
             "a table entry runs as its uid", (res.get(4), r and r["euid"]))
        if alias is None:
            t.skip("alias account takes the rest", "no alias account")
            t.skip("root@ goes to alias", "no alias account")
        else:
            r = rec_for(root, "nobody-like-name-%s" % uname)
            t.ok(res.get(6) and res[6][0][0] == "K" and r is not None and
                 r["args"][:5] == ["alias", alias.pw_dir,
                                   "nobody-like-name-%s" % uname, "-",
                                   "nobody-like-name-%s" % uname] and
                 r["euid"] == str(alias.pw_uid),
                 "the alias account takes unknown names, as its uid",
                 (res.get(6), r and r["args"]))
            r = rec_for(root, "root")
            t.ok(res.get(5) and res[5][0][0] == "K" and r is not None and
                 r["args"][0] == "alias" and r["euid"] != "0",
                 "root@ is not the root account: alias takes it",
                 (res.get(5), r and r["args"]))
        # the system-mode table must belong to root
        os.chmod(os.path.join(root, "users", "cdb"), 0o666)
        sp = Spawner(bindir, root, False)
        sp.send(job(7, 107, "s@x", ["mapped@localhost"]))
        res = sp.results(1)
        sp.close()
        t.ok(res.get(7) and res[7][0][0] == "Z" and
             "owned by root" in res[7][0][1],
             "a world-writable users/cdb is not trusted", res.get(7))
    finally:
        if pw is not None:
            userdel(uname)
        if made_alias:
            userdel("alias")
        shutil.rmtree(homes, ignore_errors=True)
        remove_root(root)

shutil.rmtree(bindir, ignore_errors=True)

# ---------------------------------------------------------------- real agent
if not os.path.exists(os.path.join(BIN, "moat-local")):
    t.skip("a real Maildir delivery through moat-local",
           "bin/moat-local is not built")
else:
    rbin = make_bin(fake=False)
    root = new_root()
    mhome = os.path.join(root, "home", "real")
    for sub in ("", "Maildir", "Maildir/tmp", "Maildir/new", "Maildir/cur"):
        os.makedirs(os.path.join(mhome, sub), exist_ok=True)
    give_away(root)
    rc, err = newu(rbin, root, "=real:%s:%d:%d:%s:::\n.\n" %
                   (me, uid, gid, mhome), True)
    put_message(root, 150, BODY)
    sp = Spawner(rbin, root, True)
    sp.send(job(1, 150, "sender@example.org", ["real@localhost"]))
    res = sp.results(1)
    rc, err = sp.close()
    new = os.listdir(os.path.join(mhome, "Maildir", "new"))
    got = b""
    if new:
        with open(os.path.join(mhome, "Maildir", "new", new[0]), "rb") as f:
            got = f.read()
    t.ok(res.get(1) and res[1][0][0] == "K" and len(new) == 1 and
         got.endswith(BODY),
         "the real moat-local delivers into ./Maildir/",
         (res, new, got[:300], err))
    remove_root(root)
    shutil.rmtree(rbin, ignore_errors=True)

t.done()
