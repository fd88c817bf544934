#!/usr/bin/env python3
"""moat-tcpd -F end to end, with the real moat-smtpd as the fork server:
mail goes through it, each connection is a fresh child of the one server
with its own environment (TCPREMOTEIP/PORT, RELAYCLIENT only from
control/relayclients, no MOAT_FORKSERVER), the per-IP limit holds and its
slots come back (FS_ENDED), a killed server's children are adopted by
moat-tcpd (subreaper) and still counted, the server is restarted at most
once a second and meanwhile the program is forked and run as without -F, a
stuck server is killed and its connection dropped, SIGTERM leaves no
process behind, and -h switches -F off.  Run as root, moat-tcpd is run with
-u nobody.

QMAILQUEUE is a script that writes the environment moat-smtpd gave it to
env/IP-PORT and runs moat-queue, so the environment of each connection's
process is read back as the program saw it."""
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import moattest  # noqa: E402
from moattest import (Tap, prog, free_port, make_root, remove_root, queued,
                      message, give_away, wait_for, popen_logged, logtext)

T = 5.0  # seconds any single wait may take

QQ = r"""#!/bin/sh
env > "$MOAT_ROOT/env/$TCPREMOTEIP-$TCPREMOTEPORT"
exec "%s" "$@"
"""


def on_alarm(sig, frame):
    raise TimeoutError("the whole test took too long")


t = Tap()
procs = []     # moat-tcpd processes we started
pids = set()   # every server and connection pid we saw, killed at the end
is_root = os.geteuid() == 0
user_args = ["-u", "nobody"] if is_root else []
root = make_root({"me": "fs.example", "rcpthosts": "localhost",
                  "relayclients": "127.0.0.3", "rcptcheck": "0"})
os.makedirs(os.path.join(root, "env"))
qq = os.path.join(root, "qq")
with open(qq, "w") as f:
    f.write(QQ % prog("moat-queue"))
os.chmod(qq, 0o755)
give_away(root)


def start(args, log):
    env = dict(os.environ, MOAT_ROOT=root, QMAILQUEUE=qq)
    env.pop("MOAT_FORKSERVER", None)
    p = popen_logged([prog("moat-tcpd")] + user_args + args, env,
                     os.path.join(root, log))
    procs.append(p)
    return p


def wait_log(p, text, count=1):
    return moattest.wait_log(p, text, count, T)


def servers(p):
    """pids of the "fork server pid N" lines, in order"""
    got = [int(x) for x in re.findall(r"^moat-tcpd: fork server pid (\d+)$",
                                      logtext(p), re.M)]
    pids.update(got)
    return got


def conn_pid(p, src, sport):
    """the pid moat-tcpd logged for the connection from src:sport"""
    pat = re.compile(r"^moat-tcpd: pid (\d+) from %s:%d to " %
                     (re.escape(src), sport), re.M)
    # the last such line: after 100 connections a source port comes back
    got = wait_for(lambda: pat.findall(logtext(p)), T, 0.02)
    if got:
        pids.add(int(got[-1]))
    return int(got[-1]) if got else None


def status(pid):
    """/proc/PID/status as a dict (Name, State, PPid...); {} if none"""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(x.split(":\t", 1) for x in f.read().splitlines()
                        if ":\t" in x)
    except (OSError, TypeError):
        return {}


def ppid(pid):
    v = status(pid).get("PPid")
    return int(v) if v else None


def alive(pid):
    return status(pid).get("State", "Z")[:1] != "Z"


def gone(plist):
    return wait_for(lambda: not any(alive(x) for x in plist), T)


def line(s):
    """one reply line (up to CRLF) or what came before EOF"""
    data = b""
    try:
        while not data.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                break
            data += c
    except OSError:
        pass
    return data


class Conn:
    """a raw connection from src: its greeting, and its pid from the log"""

    def __init__(self, p, src, port, timeout=T):
        self.s = socket.socket()
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect(("127.0.0.1", port))
        self.sport = self.s.getsockname()[1]
        self.greeting = line(self.s)
        self.pid = None
        if self.greeting.startswith(b"220 "):
            self.pid = conn_pid(p, src, self.sport)

    def cmd(self, c):
        try:
            self.s.sendall(c + b"\r\n")
        except OSError:
            return b""
        return line(self.s)

    def close(self):
        self.s.close()


def env_of(src, sport):
    """the environment moat-smtpd gave moat-queue for src:sport"""
    try:
        with open(os.path.join(root, "env", "%s-%d" % (src, sport))) as f:
            return dict(x.split("=", 1) for x in f.read().splitlines()
                        if "=" in x)
    except OSError:
        return {}


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(T + 3)
    except subprocess.TimeoutExpired:
        return None


signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(90)
try:
    port = free_port()
    a = start(["-F", "-i", "2", "127.0.0.1:%d" % port, "--",
               prog("moat-smtpd")], "a.log")
    t.ok(wait_log(a, "listening on 127.0.0.1:%d" % port),
         "moat-tcpd -F listens", logtext(a))

    # --- mail through the fork server --------------------------------------
    with smtplib.SMTP("127.0.0.1", port, timeout=T,
                      source_address=("127.0.0.2", 0)) as s:
        sport = s.sock.getsockname()[1]
        code, _ = s.ehlo("client.example")
        t.ok(code == 250, "a client through -F gets the greeting and EHLO")
        srv = servers(a)
        t.ok(len(srv) == 1, "the first connection started the fork server",
             logtext(a))
        k = conn_pid(a, "127.0.0.2", sport)
        t.ok(k is not None and srv and k != srv[0] and ppid(k) == srv[0],
             "the connection's pid (logged) is a child of the fork server, "
             "not the server", "pid %s ppid %s servers %s" % (k, ppid(k),
                                                               srv))
        t.ok(srv and ppid(srv[0]) == a.pid,
             "the fork server is a child of moat-tcpd",
             "server ppid %s, tcpd %d" % (ppid(srv[0]) if srv else None,
                                          a.pid))
        refused = s.sendmail("a@example.org", ["postmaster@localhost"],
                             b"Subject: through -F\r\n\r\nhello\r\n")
        t.ok(refused == {}, "MAIL, RCPT and DATA are accepted")
    ids = queued(root)
    msg = message(root, ids[0]) if len(ids) == 1 else b""
    t.ok(b"Received: from client.example (unknown [127.0.0.2])" in msg and
         b"\nSubject: through -F\n\nhello\n" in msg,
         "the message is queued, its Received line names 127.0.0.2", msg)
    e = env_of("127.0.0.2", sport)
    t.ok(e.get("PROTO") == "TCP" and e.get("TCPREMOTEIP") == "127.0.0.2" and
         e.get("TCPREMOTEPORT") == str(sport) and
         e.get("TCPLOCALIP") == "127.0.0.1" and
         e.get("TCPLOCALPORT") == str(port),
         "the child has PROTO, TCPREMOTEIP/PORT, TCPLOCALIP/PORT of its "
         "connection", e)
    t.ok(e and "RELAYCLIENT" not in e and "MOAT_FORKSERVER" not in e,
         "no RELAYCLIENT for an unlisted client; MOAT_FORKSERVER is not "
         "passed on", e)
    t.ok(wait_log(a, "end pid %s status 0" % k),
         "the end of the connection is logged with its status (FS_ENDED)",
         logtext(a))

    # --- RELAYCLIENT per connection ----------------------------------------
    def relay_try(src):
        with smtplib.SMTP("127.0.0.1", port, timeout=T,
                          source_address=(src, 0)) as s:
            sp = s.sock.getsockname()[1]
            s.ehlo("client.example")
            s.mail("a@example.org")
            code, _ = s.rcpt("x@remote.example")
            if code == 250:
                s.data(b"Subject: relay\r\n\r\nrelay\r\n")
            return code, sp

    c3, p3 = relay_try("127.0.0.3")
    c2, p2 = relay_try("127.0.0.2")
    e3, e2 = env_of("127.0.0.3", p3), env_of("127.0.0.2", p2)
    t.ok(c3 == 250 and e3.get("RELAYCLIENT") == "",
         "127.0.0.3 (in relayclients) may relay: RELAYCLIENT is set",
         "%s %s" % (c3, e3))
    t.ok(c2 // 100 == 5,
         "127.0.0.2, served by the same server just after, may not relay",
         c2)

    # --- two at once, the per-IP limit, the slots coming back --------------
    c1 = Conn(a, "127.0.0.1", port)
    c2 = Conn(a, "127.0.0.1", port)
    srv = servers(a)
    t.ok(c1.pid and c2.pid and c1.pid != c2.pid and
         ppid(c1.pid) == srv[-1] and ppid(c2.pid) == srv[-1],
         "two connections at once: two processes, both the server's "
         "children", "%s %s %s" % (c1.pid, c2.pid, srv))
    t.ok(c1.cmd(b"HELO a").startswith(b"250 ") and
         c2.cmd(b"HELO b").startswith(b"250 "),
         "both speak SMTP")
    c3 = Conn(a, "127.0.0.1", port)
    t.ok(c3.greeting.startswith(b"421 4.7.0 fs.example too many"),
         "-i 2: a third connection from 127.0.0.1 gets 421", c3.greeting)
    c3.close()
    t.ok(len(servers(a)) == 1,
         "one fork server served all of these connections", logtext(a))
    c2.close()
    t.ok(wait_log(a, "end pid %s status 0" % c2.pid),
         "closing one is logged as its end", logtext(a))
    c2 = Conn(a, "127.0.0.1", port)
    t.ok(c2.greeting.startswith(b"220 ") and c2.pid,
         "its slot comes back: a new connection from 127.0.0.1 is served",
         c2.greeting)

    # --- kill -9 the fork server -------------------------------------------
    s1 = servers(a)[-1]
    held = [c1, c2]
    os.kill(s1, signal.SIGKILL)
    t.ok(wait_log(a, "fork server pid %d ended, status 9" % s1) and
         wait_log(a, "fork server: it has gone; forking and running the "
                  "program meanwhile"),
         "the killed server's end is logged", logtext(a))
    t.ok(wait_for(lambda: all(ppid(c.pid) == a.pid for c in held), T),
         "its children live on as moat-tcpd's (subreaper)",
         [(c.pid, ppid(c.pid)) for c in held])
    t.ok(all(c.cmd(b"NOOP").startswith(b"250 ") for c in held),
         "and they still speak SMTP")
    c3 = Conn(a, "127.0.0.1", port)
    t.ok(c3.greeting.startswith(b"421 "),
         "they still count against the per-IP limit", c3.greeting)
    c3.close()

    # restarted at the next connection (at most once a second)
    began = time.time()
    extra = []
    new = []
    while time.time() - began < 3 and not new:  # a new address each time
        c = Conn(a, "127.0.1.%d" % (len(extra) + 1), port)
        extra.append(c)
        new = [x for x in servers(a) if x != s1]
        if not new:
            time.sleep(0.2)
    t.ok(len(new) == 1 and time.time() - began < 2.5,
         "a new fork server is started within a second or so",
         logtext(a))
    t.ok(all(c.greeting.startswith(b"220 ") for c in extra),
         "every connection meanwhile is served (%d)" % len(extra),
         [c.greeting for c in extra])
    s2 = new[0] if new else None
    t.ok(s2 and extra[-1].pid and ppid(extra[-1].pid) == s2,
         "the connection that restarted it is the new server's child",
         "%s %s" % (extra[-1].pid, s2))
    t.ok(all(ppid(c.pid) == a.pid for c in extra[:-1]),
         "those before it were forked and run by moat-tcpd",
         [(c.pid, ppid(c.pid)) for c in extra[:-1]])

    # killed again at once: no restart within the second, fork and exec
    if s2:
        began = time.time()
        os.kill(s2, signal.SIGKILL)
        wait_log(a, "fork server pid %d ended" % s2)
        wait_log(a, "fork server: it has gone", 2)
        c = Conn(a, "127.0.0.5", port)
        extra.append(c)
        quick = time.time() - began
        srv = servers(a)
        if srv[-1] == s2:
            t.ok(c.greeting.startswith(b"220 ") and ppid(c.pid) == a.pid,
                 "within the second after a start the server is not "
                 "restarted: moat-tcpd forks and runs the program",
                 "%s ppid %s, tcpd %d" % (c.greeting, ppid(c.pid), a.pid))
        else:
            t.skip("no restart within the second", "took %.2fs" % quick)
    else:
        t.skip("no restart within the second", "no second server")

    # a server that does not answer: killed, the connection dropped
    time.sleep(1.05)
    c = Conn(a, "127.0.0.6", port)
    extra.append(c)
    s3 = servers(a)[-1]
    t.ok(s3 not in (s1, s2) and c.greeting.startswith(b"220 ") and
         ppid(c.pid) == s3,
         "a second later the next connection starts a server again",
         logtext(a))
    os.kill(s3, signal.SIGSTOP)
    c = Conn(a, "127.0.0.6", port, timeout=3 * T)
    t.ok(c.greeting == b"", "a connection a stopped server never answers "
         "for is closed", c.greeting)
    t.ok(wait_log(a, "fork server: no answer in time") and
         wait_log(a, "dropped 127.0.0.6:%d: the fork server went away" %
                  c.sport) and
         wait_log(a, "fork server pid %d ended, status 9" % s3),
         "it is logged as dropped, and the server is killed", logtext(a))
    c.close()
    c = Conn(a, "127.0.0.6", port)
    extra.append(c)
    s4 = servers(a)[-1]
    t.ok(s4 != s3 and c.greeting.startswith(b"220 ") and ppid(c.pid) == s4,
         "and the next connection gets a new one", logtext(a))

    # the adopted children end: their slots come back
    for c in held:
        c.close()
    t.ok(all(wait_log(a, "end pid %d status 0" % c.pid) for c in held),
         "the adopted children's ends are logged with their status",
         logtext(a))
    held = [Conn(a, "127.0.0.1", port), Conn(a, "127.0.0.1", port)]
    c3 = Conn(a, "127.0.0.1", port)
    t.ok(all(c.greeting.startswith(b"220 ") for c in held) and
         c3.greeting.startswith(b"421 "),
         "their slots came back: two from 127.0.0.1 served, the third "
         "gets 421", [c.greeting for c in held] + [c3.greeting])
    c3.close()

    # --- SIGTERM -----------------------------------------------------------
    live = [c.pid for c in held + extra if alive(c.pid)] + [s4]
    t.ok(len(live) >= 5 and all(alive(x) for x in live),
         "before SIGTERM: the server and its children are running", live)
    rc = stop(a)
    t.ok(rc == 0, "SIGTERM: moat-tcpd -F exits 0", "rc %s" % rc)
    t.ok(gone(live), "SIGTERM: neither the server nor any child is left",
         [x for x in live if alive(x)])
    for c in held + extra:
        c.close()

    # --- a fresh server after 100 connections, and on SIGHUP ---------------
    port3 = free_port()
    d = start(["-F", "-i", "3", "127.0.0.1:%d" % port3, "--",
               prog("moat-smtpd")], "d.log")
    t.ok(wait_log(d, "listening on 127.0.0.1:%d" % port3), "-F -i 3 started")
    keep = Conn(d, "127.0.0.1", port3)  # stays open across the change
    first = servers(d)
    ok = 0
    for i in range(99):  # with keep, the first server's 100th
        c = Conn(d, "127.0.0.1", port3)
        if c.greeting.startswith(b"220 ") and \
                c.cmd(b"QUIT").startswith(b"221 "):
            ok += 1
        c.close()
        if c.pid:  # its slot free before the next (-i 3, keep holds one)
            wait_log(d, "end pid %d status" % c.pid)
    t.ok(ok == 99 and len(first) == 1, "100 connections, one after another, "
         "on one server", "%d %s" % (ok, first))
    c = Conn(d, "127.0.0.1", port3)
    now = servers(d)
    t.ok(len(now) == 2 and c.greeting.startswith(b"220 ") and
         ppid(c.pid) == now[1],
         "the 101st connection is served by a fresh server", now)
    t.ok(gone(first), "the old server is gone", first)
    t.ok(keep.cmd(b"NOOP").startswith(b"250 "),
         "a connection of the old server goes on")
    keep.close()
    c.close()
    t.ok(wait_log(d, "end pid %d status 0" % keep.pid),
         "its end is counted", logtext(d))
    if c.pid:  # the 101st's slot free too, before taking all three
        wait_log(d, "end pid %d status" % c.pid)
    both = [Conn(d, "127.0.0.1", port3) for i in range(3)]
    t.ok(all(x.greeting.startswith(b"220 ") for x in both),
         "no slot stays taken: three from 127.0.0.1 served (-i 3)",
         [x.greeting for x in both])
    for x in both:
        x.close()
    for x in both:  # their slots free again before the next step
        if x.pid:
            wait_log(d, "end pid %d status" % x.pid)
    d.send_signal(signal.SIGHUP)
    t.ok(wait_log(d, "reloaded:"), "SIGHUP reloads")
    c = Conn(d, "127.0.0.1", port3)
    now = servers(d)
    t.ok(len(now) == 3 and ppid(c.pid) == now[2] and gone(now[1:2]),
         "after SIGHUP the next connection gets a fresh server",
         "%s %s\n%s" % (now, c.pid, logtext(d)[-3000:]))
    c.close()
    rc = stop(d)
    t.ok(rc == 0 and gone(now), "SIGTERM stops it", "rc %s" % rc)

    # --- -h switches -F off -------------------------------------------------
    port2 = free_port()
    b = start(["-h", "-F", "127.0.0.1:%d" % port2, "--", prog("moat-smtpd")],
              "b.log")
    t.ok(wait_log(b, "listening on 127.0.0.1:%d" % port2) and
         "not using -F" in logtext(b),
         "-h with -F: moat-tcpd says it does not use -F", logtext(b))
    c = Conn(b, "127.0.0.1", port2)
    t.ok(c.greeting.startswith(b"220 ") and ppid(c.pid) == b.pid and
         not servers(b),
         "and serves the connection with a child of its own, no server",
         "%s %s %s" % (c.greeting, ppid(c.pid), logtext(b)))
    rc = stop(b)
    t.ok(rc == 0 and gone([c.pid]), "SIGTERM stops it and its child",
         "rc %s" % rc)
    c.close()
    bad = [x for p in procs for x in logtext(p).splitlines()
           if "Sanitizer" in x or "runtime error" in x]
    t.ok(not bad, "no sanitizer report in the logs", "\n".join(bad))
except TimeoutError as ex:
    t.ok(False, str(ex))
finally:
    signal.alarm(0)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for pid in pids:
        if alive(pid) and status(pid).get("Name") == "moat-smtpd":
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if t.failed:
        for p in procs:
            t.diag("log %s:\n%s" % (os.path.basename(p.logpath), logtext(p)))
    remove_root(root)
t.done()
