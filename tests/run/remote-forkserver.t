#!/usr/bin/env python3
"""remote-forkserver.t: the real moat-rspawn with the real moat-remote as
its fork server, delivering to SMTP peers on loopback addresses reached
through control/smtproutes (no DNS, except for the down-hosts case, which
uses dnsmasq and is skipped without it).

Peers: python3-aiosmtpd (tests/lib/smtppeer.py, under /usr/bin/python3) for
ordinary deliveries, and a small SMTP server in this file that holds its
answer to the final dot until told, so that a delivery can be caught in
progress.  Run as the unprivileged account when we are root.

Checked: jobs are delivered (exact bytes, envelope, K) by one fork server;
a delivery in progress is a child of the server, not of moat-rspawn, with
the message on fd 0 and no descriptor of the server's; MOAT_DOWN_HOSTS
reaches the child (a host that timed out is tried after the others); the
server killed with a delivery in progress: the delivery is adopted and
reported K, later jobs are delivered, and a new server starts; a server
that does not answer (stopped): the job is deferred "the fork server went
away" and the next is delivered; SIGHUP: a new server for the next job;
the 101st job gets a new server; at end of input moat-rspawn exits 0 and
leaves no moat-remote and no server behind.
"""
import atexit
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "..", "lib")
sys.path.insert(0, LIB)
import moattest  # noqa: E402
from moattest import (Tap, make_root, remove_root, give_away,  # noqa: E402
                      wait_for, pids_of, full_listener)
import dnstest  # noqa: E402
from peers import Peer  # noqa: E402

BIN = os.environ.get("MOAT_BIN") or os.path.join(HERE, "..", "..", "bin")
moattest.BIN = BIN
DEBPY = "/usr/bin/python3"
SPLIT = 23
WENT_AWAY = "moat-rspawn: the fork server went away (#4.3.0)"

t = Tap()

for p in ("moat-rspawn", "moat-remote"):
    if not os.path.exists(os.path.join(BIN, p)):
        print("1..0 # SKIP %s is not built" % p)
        sys.exit(0)
try:
    if subprocess.run([DEBPY, "-c", "import aiosmtpd"], capture_output=True,
                      timeout=30).returncode:
        raise OSError
except (OSError, subprocess.TimeoutExpired):
    print("1..0 # SKIP no aiosmtpd for /usr/bin/python3 (python3-aiosmtpd)")
    sys.exit(0)

TMP = tempfile.mkdtemp(prefix="moat-remote-fs-t-")
give_away(TMP)
STOP = []  # things to stop at the end, whatever happens


def cleanup():
    while STOP:
        try:
            STOP.pop().stop()
        except Exception as e:  # noqa: BLE001
            t.diag("stop: %r" % e)
    subprocess.run(["rm", "-rf", TMP])


# an exception, or SIGTERM/SIGHUP (a harness that gives up), still stops
# the peers and moat-rspawn
atexit.register(cleanup)
for sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, lambda *a: sys.exit(1))


# ---- peers ----

def AioPeer(host, port, **cfg):
    """tests/lib/smtppeer.py as its own process"""
    return Peer("smtp", host, port, cfg, TMP, STOP)


class HeldPeer:
    """an SMTP server (a thread here) that answers the final dot only once
    the gate is open; it counts the messages whose data has come in"""

    def __init__(self, host, port):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()
        self.recs = []
        self.stopped = False
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()
        STOP.append(self)

    def accept(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        c.settimeout(30)
        f = c.makefile("rb")
        rec = {"rcpt_tos": []}
        try:
            c.sendall(b"220 held.test ESMTP\r\n")
            while True:
                line = f.readline(1000)
                if not line:
                    break
                cmd = line[:4].upper()
                if cmd in (b"EHLO", b"HELO"):
                    c.sendall(b"250 held.test\r\n")
                elif cmd == b"MAIL":
                    rec["mail_from"] = line[10:].strip()[1:-1].decode()
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif cmd == b"RCPT":
                    rec["rcpt_tos"].append(
                        line[8:].strip()[1:-1].decode())
                    c.sendall(b"250 2.1.5 ok\r\n")
                elif cmd == b"DATA":
                    c.sendall(b"354 go ahead\r\n")
                    data = b""
                    while True:
                        d = f.readline(100000)
                        if not d or d == b".\r\n":
                            break
                        data += d[1:] if d[:1] == b"." else d
                    rec["content"] = data
                    with self.lock:
                        self.recs.append(rec)
                    rec = {"rcpt_tos": []}
                    self.gate.wait(30)
                    c.sendall(b"250 2.0.0 held and taken\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def count(self):
        with self.lock:
            return len(self.recs)

    def by_sender(self, sender):
        with self.lock:
            return [r for r in self.recs if r.get("mail_from") == sender]

    def stop(self):
        self.stopped = True
        self.gate.set()
        self.lsock.close()


def port_for(*hosts):
    """a port free on every one of hosts"""
    for _ in range(50):
        port = moattest.free_port(hosts[0])
        ok = True
        for h in hosts[1:]:
            s = socket.socket()
            try:
                s.bind((h, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no common free port")


# ---- processes ----

def proc_status(pid):
    """{field: value} from /proc/PID/status, or {} when it is gone"""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(l.rstrip("\n").split(":\t", 1) for l in f
                        if ":\t" in l)
    except OSError:
        return {}


def ppid(pid):
    return int(proc_status(pid).get("PPid", "-1"))


def starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return int(st[st.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def running(pid, start):
    """pid is still the process that had starttime start, and not a
    zombie"""
    st = proc_status(pid)
    return bool(st) and starttime(pid) == start and \
        not st.get("State", "").startswith(("Z", "X"))


SEEN = {}  # pid -> starttime of every moat-remote seen


def remotes(ancestor):
    """moat-remote processes under ancestor (the server and its children)"""
    out = pids_of("moat-remote", ancestor)
    for p in out:
        s = starttime(p)
        if s is not None:
            SEEN.setdefault(p, s)
    return out


# ---- moat-rspawn ----

def job(n, mid, sender, rcpts):
    b = b"J%d\0M%d\0F%s\0" % (n, mid, sender.encode())
    for r in rcpts:
        b += b"T" + r.encode() + b"\0"
    return b + b"\0"


def mess_path(root, mid):
    return os.path.join(root, "queue", "mess", str(mid % SPLIT), str(mid))


def put_message(root, mid, body):
    p = mess_path(root, mid)
    with open(p, "wb") as f:
        f.write(body)
    give_away(p)


class Spawner:
    """moat-rspawn on pipes, its log in a file"""

    def __init__(self, root, tag):
        self.logpath = os.path.join(TMP, tag + ".log")
        self.logf = open(self.logpath, "wb")
        argv = moattest.as_user_argv([os.path.join(BIN, "moat-rspawn")])
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.logf,
                                  env={"PATH": "/usr/bin:/bin",
                                       "MOAT_ROOT": root})
        self.pid = self.p.pid  # setpriv execs moat-rspawn
        self.buf = b""
        self.got = {}
        self.rc = None
        STOP.append(self)

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def _read(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            return False
        chunk = os.read(self.p.stdout.fileno(), 1 << 20)
        if not chunk:
            return False
        self.buf += chunk
        while True:
            end = self.buf.find(b"\0\0")
            if end < 0:
                return True
            fields = self.buf[:end].split(b"\0")
            self.buf = self.buf[end + 2:]
            n = int(fields[0][1:]) if fields[0][:1] == b"J" else None
            self.got[n] = [(f[1:2].decode(), f[2:].decode("ascii",
                                                          "replace"))
                           for f in fields[1:] if f[:1] == b"R"]

    def wait(self, ns, timeout=30):
        """the results of jobs ns, {n: [(status, text)]} (those that came)"""
        deadline = time.time() + timeout
        while any(n not in self.got for n in ns):
            left = deadline - time.time()
            if left <= 0 or not self._read(left):
                break
        return {n: self.got[n] for n in ns if n in self.got}

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def servers(self):
        """pids of the fork servers started, in order"""
        return [int(m) for m in re.findall(r"fork server pid (\d+)$",
                                           self.log(), re.M)]

    def ended(self):
        """{server pid: wait status} of the servers that ended"""
        return {int(a): int(b) for a, b in re.findall(
            r"fork server pid (\d+) ended, status (-?\d+)$", self.log(),
            re.M)}

    def current(self):
        """the running server's pid, if the log names one"""
        s = self.servers()
        return s[-1] if s and s[-1] not in self.ended() else None

    def close(self, timeout=30):
        """end of input; the exit status"""
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.time() + timeout
        while self.p.poll() is None and time.time() < deadline:
            self._read(max(0.0, min(0.5, deadline - time.time())))
        try:
            self.rc = self.p.wait(max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.rc = self.p.wait()
        self._read(0)
        self.p.stdout.close()
        return self.rc

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.logf.close()


def delivered(res, ns):
    return all(res.get(n) and all(s == "K" for s, _ in res[n]) for n in ns)


def wire(body):
    """what the peer gets for a stored message: CRLF line ends"""
    return body.replace(b"\n", b"\r\n")


# ---- set-up ----

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]
PORT = port_for(*HOSTS)
aio = AioPeer("127.0.0.2", PORT, pipelining=True)
held = HeldPeer("127.0.0.3", PORT)
dns = dnstest.Dnsmasq(mx=[("down.test", "mx1.down.test", 10),
                          ("down.test", "mx2.down.test", 20)],
                      hosts=[("mx1.down.test", "127.0.0.5"),
                             ("mx2.down.test", "127.0.0.6")]) \
    if dnstest.available() else None
if dns:
    STOP.append(dns)
routes = ["fs.test:[127.0.0.2]:%d" % PORT,
          "held.test:[127.0.0.3]:%d" % PORT,
          "refused.test:[127.0.0.4]:%d" % PORT,
          "to.test:[127.0.0.5]:%d" % PORT,
          "down.test::%d" % PORT]
ctl = {"smtproutes": "\n".join(routes), "timeoutconnect": "1",
       "timeoutremote": "20", "timeoutdns": "5",
       "concurrencydomain": "20"}
if dns:
    ctl["nameservers"] = dns.server
root = make_root(ctl)

BODIES = {}
for mid in range(1000, 1400):
    b = (b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n"
         b"From: a@localhost\nSubject: fork server %d\n\n"
         b"line one\n.leading dot\n8-bit \xc3\xa9\n" % mid +
         b"z" * (mid % 300) + b"\nend\n")
    BODIES[mid] = b
    put_message(root, mid, b)

sp = Spawner(root, "rspawn1")
try:
    # -------------------------------------------------- delivered by one server
    sp.send(job(1, 1001, "s1@localhost", ["a@fs.test"]) +
            job(2, 1002, "s2@localhost", ["b@fs.test", "c@FS.test"]) +
            job(3, 1003, "", ["d@fs.test"]) +
            job(4, 1004, "s4@localhost", ["e@fs.test"]) +
            job(5, 1005, "s5@localhost", ["f@fs.test"]))
    res = sp.wait([1, 2, 3, 4, 5])
    t.ok(delivered(res, [1, 2, 3, 4, 5]) and len(res[2]) == 2,
         "five jobs: every recipient K", (res, sp.log()))
    recs = wait_for(lambda: len(aio.records()) >= 5 and aio.records(), 10)
    env = sorted((r["mail_from"], tuple(r["rcpt_tos"])) for r in recs or [])
    t.ok(env == [("<>", ("d@fs.test",)), ("s1@localhost", ("a@fs.test",)),
                 ("s2@localhost", ("b@fs.test", "c@FS.test")),
                 ("s4@localhost", ("e@fs.test",)),
                 ("s5@localhost", ("f@fs.test",))],
         "the peer got each envelope once (sender, recipients)", env)
    want = {"s1@localhost": 1001, "s2@localhost": 1002, "<>": 1003,
            "s4@localhost": 1004, "s5@localhost": 1005}
    bad = [r["mail_from"] for r in recs or []
           if r["mail_from"] not in want or r["content"].encode("latin-1")
           != wire(BODIES[want[r["mail_from"]]])]
    t.ok(recs and not bad, "the exact bytes of each message arrived", bad)
    srv = sp.servers()
    t.ok(len(srv) == 1, "one fork server for five jobs", sp.log())
    s1 = srv[0] if srv else None
    t.ok(s1 and ppid(s1) == sp.pid and
         "not a fork server" not in sp.log() and
         "meanwhile" not in sp.log(),
         "it is moat-rspawn's child, and nothing fell back to fork and exec",
         (s1, s1 and ppid(s1), sp.pid, sp.log()))

    # -------------------------------------------------- MOAT_DOWN_HOSTS
    if dns:
        # 127.0.0.5: a listener whose queue is full, so connects time out
        lsock, fill = full_listener("127.0.0.5", PORT)
        sp.send(job(6, 1006, "s6@localhost", ["u@to.test"]))
        res = sp.wait([6])
        t.ok(res.get(6) and res[6][0][0] == "Z" and
             "timed out" in res[6][0][1],
             "a host that times out: Z (moat-rspawn learns it is down)", res)
        for c in fill:
            c.close()
        lsock.close()
        # now both MX hosts of down.test answer; the better one was down
        mx1 = AioPeer("127.0.0.5", PORT)
        mx2 = AioPeer("127.0.0.6", PORT)
        sp.send(job(7, 1007, "s7@localhost", ["u@down.test"]))
        res = sp.wait([7])
        t.ok(delivered(res, [7]), "the next job to a domain with it: K", res)
        got = wait_for(lambda: mx2.by_sender("s7@localhost"), 10)
        t.ok(got and not mx1.by_sender("s7@localhost"),
             "MOAT_DOWN_HOSTS reached the server's child: the down best MX "
             "was passed over", (mx1.records(), mx2.records()))
        t.ok(sp.servers() == [s1] and "meanwhile" not in sp.log(),
             "both by the same fork server", sp.log())
        mx1.stop()
        mx2.stop()
    else:
        for _ in range(4):
            t.skip("MOAT_DOWN_HOSTS", "no dnsmasq")

    # -------------------------------------------------- a delivery in progress
    held.gate.clear()
    sp.send(job(8, 1008, "s8@localhost", ["u@held.test"]))
    t.ok(wait_for(lambda: held.by_sender("s8@localhost"), 20),
         "a held delivery reached the final dot", sp.log())
    kids = [p for p in remotes(sp.pid) if p != s1]
    t.ok(len(kids) == 1 and ppid(kids[0]) == s1,
         "the delivering moat-remote is the fork server's child, not "
         "moat-rspawn's", (kids, [ppid(k) for k in kids], s1, sp.pid))
    kid = kids[0] if kids else None
    try:
        fd0 = os.readlink("/proc/%d/fd/0" % kid)
        fds = [os.readlink("/proc/%d/fd/%s" % (kid, f))
               for f in os.listdir("/proc/%d/fd" % kid)]
    except (OSError, TypeError):
        fd0, fds = None, []
    t.ok(fd0 == mess_path(root, 1008), "its fd 0 is the message file", fd0)
    t.ok(len([f for f in fds if f.startswith("socket:")]) == 1 and
         len([f for f in fds if f.startswith("pipe:")]) == 1,
         "it holds one socket (the SMTP connection) and one pipe (the "
         "report): nothing of the server's", fds)
    held.gate.set()
    res = sp.wait([8])
    t.ok(delivered(res, [8]) and "held and taken" in res[8][0][1],
         "released: K with the peer's words", res)

    # -------------------------------------------------- the server killed
    held.gate.clear()
    sp.send(job(9, 1009, "s9@localhost", ["u@held.test"]))
    wait_for(lambda: held.by_sender("s9@localhost"), 20)
    kids = [p for p in remotes(sp.pid) if p != s1]
    t.ok(len(kids) == 1 and ppid(kids[0]) == s1,
         "another delivery in progress under the server",
         (kids, [ppid(k) for k in kids], s1))
    os.kill(s1, signal.SIGKILL)
    t.ok(wait_for(lambda: sp.ended().get(s1) == signal.SIGKILL, 10),
         "kill -9 the server: moat-rspawn says it ended, status 9", sp.log())
    t.ok("fork server: it has gone" in sp.log(),
         "and that it has gone", sp.log())
    t.ok(kids and wait_for(lambda: ppid(kids[0]) == sp.pid, 10),
         "the delivery goes on, adopted by moat-rspawn (subreaper)",
         kids and proc_status(kids[0]))
    held.gate.set()
    res = sp.wait([9])
    t.ok(delivered(res, [9]) and "held and taken" in res[9][0][1],
         "its result is still reported: K", res)
    t.ok(held.by_sender("s9@localhost") and
         held.by_sender("s9@localhost")[0]["content"] == wire(BODIES[1009]),
         "with the whole message sent", held.by_sender("s9@localhost"))
    # later jobs: forked and run meanwhile, then a new server (at most one
    # start a second)
    n, ok, news = 10, True, []
    deadline = time.time() + 15
    while n < 20 and time.time() < deadline:
        sp.send(job(n, 1000 + n, "s%d@localhost" % n, ["u@fs.test"]))
        res = sp.wait([n])
        ok = ok and delivered(res, [n]) and \
            wait_for(lambda: aio.by_sender("s%d@localhost" % n), 10)
        n += 1
        news = [s for s in sp.servers() if s != s1]
        if news:
            break
        time.sleep(0.4)
    t.ok(ok and n > 10, "later jobs are delivered (%d)" % (n - 10), sp.log())
    t.ok(len(news) == 1 and ppid(news[0]) == sp.pid,
         "a new fork server is started", sp.log())
    s2 = news[0] if news else None
    sp.send(job(n, 1000 + n, "s%d@localhost" % n, ["u@fs.test"]))
    res = sp.wait([n])
    t.ok(delivered(res, [n]) and sp.servers() == [s1, s2] and
         wait_for(lambda: aio.by_sender("s%d@localhost" % n), 10),
         "and the next job is delivered through it", (res, sp.log()))

    # -------------------------------------------------- no answer: deferred
    if s2:
        os.kill(s2, signal.SIGSTOP)
    sp.send(job(30, 1030, "s30@localhost", ["u@fs.test"]))
    res = sp.wait([30])
    t.ok(res.get(30) == [("Z", WENT_AWAY)],
         "a stopped server that never answers: the job is deferred, "
         "\"the fork server went away\"", (res, sp.log()))
    t.ok("fork server: no answer in time" in sp.log() and
         wait_for(lambda: sp.ended().get(s2) == signal.SIGKILL, 10),
         "moat-rspawn said so and killed it", sp.log())
    time.sleep(0.5)
    t.ok(not aio.by_sender("s30@localhost"),
         "the deferred job was not delivered")
    sp.send(job(31, 1031, "s31@localhost", ["u@fs.test"]))
    res = sp.wait([31])
    t.ok(delivered(res, [31]) and
         wait_for(lambda: aio.by_sender("s31@localhost"), 10),
         "the next job is delivered", res)

    # -------------------------------------------------- SIGHUP
    # have a server again (the restart waits a second after the last)
    n = 32
    deadline = time.time() + 15
    while sp.current() in (None, s2) and n < 45 and time.time() < deadline:
        sp.send(job(n, 1000 + n, "s%d@localhost" % n, ["u@fs.test"]))
        sp.wait([n])
        n += 1
        if sp.current() in (None, s2):
            time.sleep(0.4)
    s3 = sp.current()
    t.ok(s3 not in (None, s1, s2), "a third server is running", sp.log())
    os.kill(sp.pid, signal.SIGHUP)
    t.ok(wait_for(lambda: sp.ended().get(s3) == 0, 10),
         "SIGHUP: the server is told to go, and exits 0", sp.log())
    sp.send(job(50, 1050, "s50@localhost", ["u@fs.test"]))
    res = sp.wait([50])
    s4 = sp.current()
    t.ok(delivered(res, [50]) and s4 not in (None, s1, s2, s3) and
         sp.servers()[-1] == s4 and
         wait_for(lambda: aio.by_sender("s50@localhost"), 10),
         "the next job is delivered by a new server", (res, sp.log()))

    # -------------------------------------------------- end of input
    seen_servers = sp.servers()
    remotes(sp.pid)
    rc = sp.close()
    t.ok(rc == 0, "end of input: moat-rspawn exits 0", (rc, sp.log()))
    left = wait_for(lambda: not [p for p, s in SEEN.items()
                                 if running(p, s)], 10)
    t.ok(left and s4 in SEEN, "no moat-remote is left, the server "
         "included", [(p, proc_status(p).get("State"))
                      for p, s in SEEN.items() if running(p, s)])
    t.ok(len(seen_servers) == 4, "four servers in all", sp.log())
finally:
    sp.stop()

# ------------------------------------------------------ 100 jobs per server
sp = Spawner(root, "rspawn2")
try:
    allz = True
    for base in (0, 50):
        sp.send(b"".join(job(100 + i, 1100 + i, "r%d@localhost" % i,
                             ["u@refused.test"])
                         for i in range(base, base + 50)))
        res = sp.wait(range(100 + base, 150 + base), 60)
        allz = allz and len(res) == 50 and \
            all(r and r[0][0] == "Z" for r in res.values())
    t.ok(allz, "100 jobs to a refusing host: 100 results, each Z", sp.log())
    srv = sp.servers()
    t.ok(len(srv) == 1 and "meanwhile" not in sp.log(),
         "all 100 through one fork server", sp.log())
    # (its end is awaited first: moat-rspawn logs it only while no newer
    # server has started)
    t.ok(srv and wait_for(lambda: sp.ended().get(srv[0]) == 0, 10),
         "after its 100th job it is told to go, and exits 0", sp.log())
    sp.send(job(200, 1200, "r100@localhost", ["u@refused.test"]))
    res = sp.wait([200])
    srv2 = sp.servers()
    t.ok(res.get(200) and res[200][0][0] == "Z" and len(srv2) == 2 and
         srv2[0] == (srv and srv[0]),
         "the 101st job gets a new one", (res, sp.log()))
    sp.send(b"".join(job(300 + i, 1300 + i, "q%d@localhost" % i,
                         ["u@refused.test"]) for i in range(20)))
    res = sp.wait(range(300, 320))
    t.ok(len(res) == 20 and sp.servers() == srv2,
         "20 more through the second", sp.log())
    remotes(sp.pid)
    rc = sp.close()
    t.ok(rc == 0 and wait_for(lambda: not [p for p, s in SEEN.items()
                                           if running(p, s)], 10),
         "end of input: exit 0, nothing left", (rc, sp.log()))
finally:
    sp.stop()
    cleanup()
    remove_root(root)
t.done()
