#!/usr/bin/env python3
"""moat-rspawn: the job protocol over pipes, with a fake moat-remote that
records its arguments, environment, message and run time, and reports as
the recipients' and sender's names say.  Run as the unprivileged account
when we are root.  Checks: argv (domain, sender, recipients), the message
on fd 0, a clean environment; result mapping (recipient K takes the
message's result, Z and D their own); empty texts; long and hostile texts
cut and made printable; jobs answered out of order; jobs in pieces; the
per-domain limit (control/concurrencydomain: a slow domain never has more
than the limit running, another domain's job passes it; the limit is per
domain without regard to case; SIGHUP raises it); down hosts (T fields)
passed on in MOAT_DOWN_HOSTS and forgotten after control/downhostperiod;
a crashing, failing, garbling or flooding moat-remote -> Z for all; no
moat-remote at all; missing message; recipients without or with mixed
domains; malformed jobs -> exit 111; too many waiting jobs; end of input
and SIGTERM finish the running deliveries and exit 0; root is refused."""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import moattest  # noqa: E402
from moattest import Tap, make_root, remove_root, give_away  # noqa: E402

BIN = os.environ.get("MOAT_BIN") or os.path.join(HERE, "..", "..", "bin")
moattest.BIN = BIN
SPLIT = 23
ROOT_UID = os.geteuid() == 0
CRASHED = "moat-remote crashed or was killed (#4.3.0)"

t = Tap()

FAKE = r'''#!/usr/bin/python3
# fake moat-remote for rspawn.t: records, then reports as the names say
import json, os, signal, sys, time
start = time.time()
argv = sys.argv[1:]
with open("/proc/self/environ", "rb") as f:
    env = dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if e)
msg = sys.stdin.buffer.read()
dom, sender, rcpts = argv[0], argv[1], argv[2:]
locs = [r.rsplit("@", 1)[0].lower() for r in rcpts]
if dom.lower().startswith("slow") or "sleep" in locs:
    time.sleep(1.0)
rec = {"argv": argv, "env": env, "msg": msg.decode("latin-1"),
       "start": start, "end": time.time(), "pid": os.getpid(),
       "uid": os.getuid()}
d = os.path.join(env["MOAT_ROOT"], "rec")
with open(os.path.join(d, "%d.tmp" % os.getpid()), "w") as f:
    json.dump(rec, f)
os.rename(os.path.join(d, "%d.tmp" % os.getpid()),
          os.path.join(d, "%d.json" % os.getpid()))
out = sys.stdout.buffer
if "crash" in locs:
    os.kill(os.getpid(), signal.SIGKILL)
fields = []
for l in locs:
    if l.startswith("temp"):
        fields.append(b"Z451 4.2.0 try later for " + l.encode())
    elif l.startswith("perm"):
        fields.append(b"D550 5.1.1 no such user " + l.encode())
    elif l.startswith("empty"):
        fields.append(b"D")
    else:
        fields.append(b"K250 ok")
s = sender.rsplit("@", 1)[0].lower()
if s == "msgz":
    fields.append(b"Z421 4.3.0 message deferred")
elif s == "msgd":
    fields.append(b"D554 5.6.0 message refused")
elif s == "msgempty":
    fields.append(b"K")
elif s == "noisy":
    fields.append(b"K250 \r\nline\x1b[31m\xff" + b"x" * 5000)
else:
    fields.append(b"K250 2.0.0 message accepted")
if "timeout" in locs:
    fields += [b"T127.0.0.9", b"T::0001", b"T1.2.3.4,5.6.7.8", b"Tnonsense"]
if "timeout2" in locs:
    fields += [b"T127.0.0.10"]
if "garbage" in locs:
    fields = [b"Xwhat"] + fields
if "short" in locs:
    fields = fields[:len(locs)]
if "huge" in locs:
    fields.insert(0, b"K" + b"h" * (2 * 1024 * 1024))
data = b"".join(f + b"\0" for f in fields)
if "unterminated" in locs:
    data = data[:-1]
out.write(data)
out.flush()
sys.exit(111 if "exit111" in locs else 0)
'''


def make_bin(fake=True):
    """a private bin dir: moat-rspawn and (maybe) a fake moat-remote"""
    d = tempfile.mkdtemp(prefix="moat-rspawn-bin-")
    os.chmod(d, 0o755)
    shutil.copy2(os.path.join(BIN, "moat-rspawn"),
                 os.path.join(d, "moat-rspawn"))
    if fake:
        with open(os.path.join(d, "moat-remote"), "w") as f:
            f.write(FAKE)
        os.chmod(os.path.join(d, "moat-remote"), 0o755)
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
    pos = 0
    while True:  # by offset: a copy of the rest per record is quadratic
        end = data.find(b"\0\0", pos)
        if end < 0:
            return out, data[pos:]
        fields = data[pos:end].split(b"\0")
        pos = end + 2
        n = int(fields[0][1:]) if fields and fields[0][:1] == b"J" else None
        res = [(f[1:2].decode(), f[2:].decode("ascii", "replace"))
               for f in fields[1:] if f[:1] == b"R"]
        out.append((n, res))


class Spawner:
    def __init__(self, bindir, root):
        argv = moattest.as_user_argv([os.path.join(bindir, "moat-rspawn")])
        env = {"PATH": "/usr/bin:/bin", "MOAT_ROOT": root,
               "SECRET_NOT_PASSED": "x"}
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.buf = b""
        self.order = []
        self.when = {}

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def results(self, count, timeout=20):
        """count result records, as {n: [(status, text)]}"""
        got = {}
        deadline = time.time() + timeout
        while True:
            recs, self.buf = records(self.buf)
            for n, res in recs:
                got[n] = res
                self.order.append(n)
                self.when[n] = time.time()
            if len(got) >= count or time.time() >= deadline:
                break
            r, _, _ = select.select([self.p.stdout], [], [],
                                    max(0, deadline - time.time()))
            if not r:
                break
            chunk = os.read(self.p.stdout.fileno(), 1 << 20)
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


def recs(root):
    out = []
    d = os.path.join(root, "rec")
    for name in sorted(os.listdir(d)):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                out.append(json.load(f))
    return out


def rec_for(root, rcpt):
    for r in recs(root):
        if rcpt in r["argv"][2:]:
            return r
    return None


def clear_recs(root):
    d = os.path.join(root, "rec")
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))


def new_root(control=None):
    root = make_root(control)
    os.makedirs(os.path.join(root, "rec"))
    give_away(root)
    os.chmod(os.path.join(root, "rec"), 0o1777)
    return root


def max_overlap(intervals):
    ev = sorted([(s, 1) for s, e in intervals] + [(e, -1) for s, e in
                                                  intervals],
                key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, d in ev:
        cur += d
        best = max(best, cur)
    return best


BODY = b"From: a@example.org\nSubject: rspawn test\n\nbody line\n"

bindir = make_bin()
root = new_root()
for mid in range(100, 200):
    put_message(root, mid, BODY + b"message %d\n" % mid)

# ---------------------------------------------------------------- results
sp = Spawner(bindir, root)
sp.send(job(1, 101, "sender@example.org",
            ["ok1@Example.ORG", "temp1@example.org", "perm1@example.org",
             "ok2@EXAMPLE.org"]) +
        job(2, 102, "msgz@example.org", ["ok@z.example", "perm@z.example"]) +
        job(3, 103, "msgd@example.org", ["ok@d.example", "temp@d.example"]) +
        job(4, 104, "", ["ok@null.example"]) +
        job(5, 105, "msgempty@example.org", ["ok@e.example",
                                              "empty@e.example"]) +
        job(6, 106, "noisy@example.org", ["ok@n.example"]))
res = sp.results(6)
t.ok(len(res) == 6, "one result per job", res)
t.ok(res.get(1) == [("K", "250 2.0.0 message accepted"),
                    ("Z", "451 4.2.0 try later for temp1"),
                    ("D", "550 5.1.1 no such user perm1"),
                    ("K", "250 2.0.0 message accepted")],
     "K + message K -> K with the message's text; Z and D keep their own",
     res.get(1))
t.ok(res.get(2) == [("Z", "421 4.3.0 message deferred"),
                    ("D", "550 5.1.1 no such user perm")],
     "K + message Z -> Z; a refused recipient keeps its D", res.get(2))
t.ok(res.get(3) == [("D", "554 5.6.0 message refused"),
                    ("Z", "451 4.2.0 try later for temp")],
     "K + message D -> D; a deferred recipient keeps its Z", res.get(3))
t.ok(res.get(5) and res[5][0] == ("K", "delivered") and
     res[5][1][0] == "D" and "no reason given" in res[5][1][1],
     "empty texts get a default sentence", res.get(5))
st, txt = res.get(6, [(None, "")])[0]
t.ok(st == "K" and len(txt) == 1000 and
     all(32 <= ord(c) < 127 for c in txt) and "\x1b" not in txt,
     "a long text with control bytes: cut to 1000 printable bytes",
     (st, len(txt), txt[:40]))

r = rec_for(root, "ok1@Example.ORG")
t.ok(r is not None and r["argv"] == ["Example.ORG", "sender@example.org",
                                     "ok1@Example.ORG", "temp1@example.org",
                                     "perm1@example.org", "ok2@EXAMPLE.org"],
     "argv: domain (as the first recipient gives it), sender, recipients "
     "in order", r and r["argv"])
t.ok(r is not None and r["msg"].encode("latin-1") ==
     BODY + b"message 101\n", "the message file is moat-remote's fd 0",
     r and r["msg"][:80])
t.ok(r is not None and set(r["env"]) == {"PATH", "MOAT_ROOT",
                                         "MOAT_DOWN_HOSTS"} and
     r["env"]["MOAT_ROOT"] == root and r["env"]["MOAT_DOWN_HOSTS"] == "" and
     r["env"]["PATH"] == "/usr/bin:/bin",
     "a clean environment: PATH, MOAT_ROOT, MOAT_DOWN_HOSTS (empty)",
     r and r["env"])
r = rec_for(root, "ok@null.example")
t.ok(r is not None and r["argv"] == ["null.example", "", "ok@null.example"]
     and res.get(4) == [("K", "250 2.0.0 message accepted")],
     "the null sender is an empty argument", (r and r["argv"], res.get(4)))
if ROOT_UID:
    t.ok(r is not None and r["uid"] == moattest.unprivileged()[0],
         "moat-remote runs as the unprivileged account", r and r["uid"])

# out of order, and jobs in pieces
clear_recs(root)
sp.send(job(10, 110, "s@x.org", ["a@slow1.example"]) +
        job(11, 111, "s@x.org", ["b@fast1.example"]))
res = sp.results(2)
t.ok(res.get(10) and res.get(11) and sp.order[-2:] == [11, 10],
     "a quick delivery is reported before a slow one", sp.order[-2:])
data = job(12, 112, "s@x.org", ["c@p.example"]) + \
    job(13, 113, "s@x.org", ["d@p.example", "e@p.example"])
for i in range(0, len(data), 3):
    sp.send(data[i:i + 3])
    time.sleep(0.002)
res = sp.results(2)
t.ok(res.get(12) and res.get(13) and len(res[13]) == 2,
     "two jobs sent three bytes at a time", res)

# refused without moat-remote
sp.send(job(14, 9999, "s@x.org", ["a@m.example", "b@m.example"]) +
        job(15, 115, "s@x.org", ["a@one.example", "b@two.example"]) +
        job(16, 116, "s@x.org", ["nodomain"]) +
        job(17, 117, "s@x.org", ["a@"]))
res = sp.results(4)
t.ok(res.get(14) and len(res[14]) == 2 and
     all(s == "Z" and "missing" in x for s, x in res[14]),
     "no message file -> Z for every recipient", res.get(14))
t.ok(res.get(15) and len(res[15]) == 2 and
     all(s == "Z" and "different domains" in x for s, x in res[15]),
     "recipients of two domains in one job -> Z for each", res.get(15))
t.ok(res.get(16) == res.get(17) == [
     ("Z", "moat-rspawn: protocol error: a remote recipient without a "
      "domain (#4.3.5)")], "a recipient without a domain -> Z",
     (res.get(16), res.get(17)))
t.ok(rec_for(root, "a@m.example") is None and
     rec_for(root, "a@one.example") is None and
     rec_for(root, "nodomain") is None,
     "moat-remote was not started for those")

# a moat-remote that fails in every way
clear_recs(root)
bad = ["crash", "exit111", "garbage", "short", "unterminated", "huge"]
for i, b in enumerate(bad):
    sp.send(job(20 + i, 120 + i, "s@x.org",
                ["ok@bad%d.example" % i, "%s@bad%d.example" % (b, i)]))
res = sp.results(len(bad))
for i, b in enumerate(bad):
    t.ok(res.get(20 + i) == [("Z", CRASHED)] * 2,
         "moat-remote %s -> Z crashed for every recipient" % b,
         res.get(20 + i))
sp.send(job(30, 130, "s@x.org", ["ok@after.example"]))
res = sp.results(1)
t.ok(res.get(30) == [("K", "250 2.0.0 message accepted")],
     "and the next delivery works", res.get(30))

# end of input while a delivery runs
sp.send(job(31, 131, "s@x.org", ["ok@slow2.example"]))
time.sleep(0.2)
sp.p.stdin.close()
res = sp.results(1)
rc, err = sp.close()
t.ok(res.get(31) == [("K", "250 2.0.0 message accepted")] and rc == 0,
     "EOF: the running delivery is reported, exit 0", (res, rc, err))

# ---------------------------------------------------------------- down hosts
clear_recs(root)
sp = Spawner(bindir, root)
sp.send(job(1, 140, "s@x.org", ["timeout@down.example"]))
res = sp.results(1)
t.ok(res.get(1) == [("K", "250 2.0.0 message accepted")],
     "T fields after the results do not change them", res.get(1))
sp.send(job(2, 141, "s@x.org", ["timeout2@later.example"]))
res = sp.results(1)
sp.send(job(3, 142, "s@x.org", ["ok@later2.example"]))
res = sp.results(1)
rc, err = sp.close()
r2 = rec_for(root, "timeout2@later.example")
r3 = rec_for(root, "ok@later2.example")
h2 = r2 and r2["env"]["MOAT_DOWN_HOSTS"].split(",")
h3 = r3 and r3["env"]["MOAT_DOWN_HOSTS"].split(",")
t.ok(h2 is not None and sorted(h2) == ["127.0.0.9", "::1"],
     "reported down hosts reach the next moat-remote, in canonical form",
     r2 and r2["env"])
t.ok(h3 is not None and h3[0] == "127.0.0.10" and
     sorted(h3) == ["127.0.0.10", "127.0.0.9", "::1"],
     "the most recent first; addresses that are not addresses are dropped",
     r3 and r3["env"])
t.ok("not an address" in err and "1.2.3.4,5.6.7.8" in err,
     "a bad T field is logged", err)
t.ok(rc == 0, "clean exit", (rc, err))

moattest.write_control(root, "downhostperiod", "1")
clear_recs(root)
sp = Spawner(bindir, root)
sp.send(job(1, 143, "s@x.org", ["timeout@down.example"]))
sp.results(1)
sp.send(job(2, 144, "s@x.org", ["ok@soon.example"]))
sp.results(1)
time.sleep(1.3)
sp.send(job(3, 145, "s@x.org", ["ok@late.example"]))
sp.results(1)
rc, err = sp.close()
r2 = rec_for(root, "ok@soon.example")
r3 = rec_for(root, "ok@late.example")
t.ok(r2 is not None and "127.0.0.9" in r2["env"]["MOAT_DOWN_HOSTS"] and
     r3 is not None and r3["env"]["MOAT_DOWN_HOSTS"] == "",
     "down hosts are forgotten after control/downhostperiod",
     (r2 and r2["env"], r3 and r3["env"]))
moattest.write_control(root, "downhostperiod", "0")
clear_recs(root)
sp = Spawner(bindir, root)
sp.send(job(1, 146, "s@x.org", ["timeout@down.example"]))
sp.results(1)
sp.send(job(2, 147, "s@x.org", ["ok@never.example"]))
sp.results(1)
sp.close()
r2 = rec_for(root, "ok@never.example")
t.ok(r2 is not None and r2["env"]["MOAT_DOWN_HOSTS"] == "",
     "downhostperiod 0: no down hosts", r2 and r2["env"])
os.unlink(os.path.join(root, "control", "downhostperiod"))

# ---------------------------------------------------------------- per domain
moattest.write_control(root, "concurrencydomain", "2")
clear_recs(root)
sp = Spawner(bindir, root)
names = ["slow.example", "SLOW.example", "slow.EXAMPLE", "Slow.Example",
         "slow.example"]
start = time.time()
sp.send(b"".join(job(40 + i, 150 + i, "s@x.org", ["r%d@%s" % (i, d)])
                 for i, d in enumerate(names)) +
        job(50, 160, "s@x.org", ["r@fast.example"]))
res = sp.results(6, timeout=30)
elapsed = time.time() - start
rs = [r for r in recs(root) if r["argv"][0].lower() == "slow.example"]
iv = [(r["start"], r["end"]) for r in rs]
t.ok(len(res) == 6 and all(v[0][0] == "K" for v in res.values()),
     "six jobs, six results", res)
t.ok(sp.order and sp.order[0] == 50,
     "the other domain's job is not held up behind the slow one",
     sp.order)
t.ok(len(iv) == 5 and max_overlap(iv) == 2,
     "never more than concurrencydomain (2) deliveries to one domain, in "
     "any case", (len(iv), max_overlap(iv)))
t.ok(elapsed >= 2.9, "five 1-second deliveries, two at a time: 3 rounds",
     elapsed)
firsts = [r["argv"][2].split("@")[0]
          for r in sorted(rs, key=lambda r: r["start"])]
t.ok(len(firsts) == 5 and set(firsts[:2]) == {"r0", "r1"} and
     set(firsts[2:4]) == {"r2", "r3"} and firsts[4] == "r4",
     "waiting jobs start in the order they came", firsts)

# SIGHUP raises the limit: the waiting jobs start at once
moattest.write_control(root, "concurrencydomain", "1")
clear_recs(root)
sp.close()
sp = Spawner(bindir, root)
start = time.time()
sp.send(b"".join(job(60 + i, 170 + i, "s@x.org", ["h%d@slow.example" % i])
                 for i in range(3)))
time.sleep(0.4)
moattest.write_control(root, "concurrencydomain", "5")
sp.p.send_signal(signal.SIGHUP)
res = sp.results(3, timeout=30)
elapsed = time.time() - start
iv = [(r["start"], r["end"]) for r in recs(root)]
t.ok(len(res) == 3 and elapsed < 2.7 and max_overlap(iv) >= 2,
     "SIGHUP re-reads concurrencydomain and starts waiting jobs",
     (len(res), elapsed, max_overlap(iv)))

# SIGTERM: running ones finish, waiting ones are answered at once
moattest.write_control(root, "concurrencydomain", "1")
sp.p.send_signal(signal.SIGHUP)
time.sleep(0.2)
sp.send(b"".join(job(70 + i, 180 + i, "s@x.org", ["t%d@slow.example" % i])
                 for i in range(3)))
time.sleep(0.3)
sp.p.send_signal(signal.SIGTERM)
res = sp.results(3)
rc, err = sp.close()
t.ok(res.get(70) == [("K", "250 2.0.0 message accepted")] and
     res.get(71) == res.get(72) ==
     [("Z", "moat-rspawn: stopping before this delivery started (#4.3.0)")]
     and rc == 0,
     "SIGTERM: the running delivery is reported, the waiting ones deferred,"
     " exit 0", (res, rc, err))
os.unlink(os.path.join(root, "control", "concurrencydomain"))

# ---------------------------------------------------------------- errors
for desc, bad in [
        ("a job number that is not a number", b"Jx\0M1\0Fs\0Ta@b\0\0"),
        ("a job without recipients", b"J1\0M1\0Fs\0\0"),
        ("a field of the wrong kind", b"J1\0M1\0Xs\0Ta@b\0\0"),
        ("an endless field", b"J1\0M1\0F" + b"x" * 10000),
        ("end of input inside a job", b"J1\0M101\0Fs\0Tok@loc")]:
    sp = Spawner(bindir, root)
    try:
        sp.send(bad)
    except BrokenPipeError:
        pass
    rc, err = sp.close()
    t.ok(rc == 111 and "protocol error" in err, "%s: exit 111" % desc,
         (rc, err))

sp = Spawner(bindir, root)
sp.send(job(1, 101, "s@x.org", ["ok@slow.example"]) + b"Jbad\0\0")
res = sp.results(1)
rc, err = sp.close()
t.ok(res.get(1) == [("K", "250 2.0.0 message accepted")] and rc == 111,
     "a protocol error waits for the running delivery, reports it, exits "
     "111", (res, rc, err))

# more than 100000 jobs waiting for one domain
moattest.write_control(root, "concurrencydomain", "1")
sp = Spawner(bindir, root)
many = 100002
data = b"".join(job(i, 101, "s@x.org", ["w@slow.example"])
                for i in range(many))


def writer():
    try:
        sp.send(data)
    except (BrokenPipeError, ValueError, OSError):
        pass


th = threading.Thread(target=writer, daemon=True)
th.start()
res = sp.results(many, timeout=60)
rc, err = sp.close()
th.join(10)
t.ok(len(res) == many and res.get(0) == [("K", "250 2.0.0 message "
                                                 "accepted")] and
     res.get(many - 1) == [("Z", "moat-rspawn: too many deliveries waiting "
                                 "(#4.3.0)")] and
     res.get(1, [("", "")])[0][0] == "Z" and rc == 111,
     "more than 100000 waiting jobs: a protocol error, every job answered",
     (len(res), res.get(0), res.get(many - 1), rc, err[-300:]))
os.unlink(os.path.join(root, "control", "concurrencydomain"))

# no moat-remote at all
nobin = make_bin(fake=False)
sp = Spawner(nobin, root)
sp.send(job(1, 101, "s@x.org", ["a@x.example", "b@x.example"]))
res = sp.results(1)
rc, err = sp.close()
t.ok(res.get(1) and len(res[1]) == 2 and
     all(s == "Z" and "unable to run moat-remote" in x for s, x in res[1]),
     "moat-remote missing: Z for every recipient, with the reason",
     res.get(1))
shutil.rmtree(nobin, ignore_errors=True)

# usage and root
p = subprocess.run(moattest.as_user_argv([os.path.join(bindir, "moat-rspawn"),
                                          "x"]),
                   capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                   env={"MOAT_ROOT": root})
t.ok(p.returncode == 100, "an argument: usage, exit 100", p.returncode)
if ROOT_UID:
    p = subprocess.run([os.path.join(bindir, "moat-rspawn")],
                       capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL, env={"MOAT_ROOT": root})
    t.ok(p.returncode == 111 and b"root" in p.stderr,
         "refuses to run as root", (p.returncode, p.stderr))
else:
    t.skip("refuses to run as root", "not root")

remove_root(root)
shutil.rmtree(bindir, ignore_errors=True)
t.done()
