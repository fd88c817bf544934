#!/usr/bin/env python3
"""moat-tcpd end to end: a stand-in program prints the environment it was
given back to the client, so each check is what a real client sees.
IPv4 and IPv6, RELAYCLIENT only from control/relayclients (an inherited one
is dropped), the per-IP and total limits (421 4.7.0), SIGHUP reload,
socket activation (LISTEN_FDS), -h, SIGTERM stopping the children, usage
and bind errors.  Run as root, moat-tcpd is run with -u nobody and the
stand-in must not be root."""
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import moattest  # noqa: E402
from moattest import (Tap, prog, free_port, write_control,  # noqa: E402
                      popen_logged, logtext)

T = 5.0  # seconds any single wait may take

STANDIN = r"""#!/bin/sh
echo "PID=$$"
echo "UID=$(id -u)"
echo "PROTO=$PROTO"
echo "TCPLOCALIP=$TCPLOCALIP"
echo "TCPLOCALPORT=$TCPLOCALPORT"
echo "TCPREMOTEIP=$TCPREMOTEIP"
echo "TCPREMOTEPORT=$TCPREMOTEPORT"
if [ "${RELAYCLIENT+set}" = set ]; then echo "RELAYCLIENT=$RELAYCLIENT"; fi
if [ "${TCPREMOTEHOST+set}" = set ]; then echo "TCPREMOTEHOST=$TCPREMOTEHOST"; fi
if [ "${LISTEN_FDS+set}" = set ]; then echo "LISTEN_FDS=$LISTEN_FDS"; fi
echo END
read line
"""


class Timeout(Exception):
    pass


def on_alarm(sig, frame):
    raise Timeout("the whole test took too long")


t = Tap()
procs = []      # moat-tcpd processes we started
kid_pids = []   # stand-in pids reported back to us
root = tempfile.mkdtemp(prefix="moat-tcpd-test-")
os.chmod(root, 0o755)
os.makedirs(os.path.join(root, "control"))
script = os.path.join(root, "standin")
with open(script, "w") as f:
    f.write(STANDIN)
os.chmod(script, 0o755)
is_root = os.geteuid() == 0
user_args = ["-u", "nobody"] if is_root else []
nobody_uid = pwd.getpwnam("nobody").pw_uid if is_root else None


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def start(args, env_extra=None, log="tcpd.log", argv=None, pass_fds=()):
    env = dict(os.environ, MOAT_ROOT=root)
    env.update(env_extra or {})
    p = popen_logged(argv or [prog("moat-tcpd")] + args, env,
                     os.path.join(root, log), pass_fds)
    procs.append(p)
    return p


def wait_log(p, text, count=1):
    return moattest.wait_log(p, text, count, T)


def connect(port, src=None, dst="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(T)
    if src:
        s.bind((src, 0))
    s.connect((dst, port))
    return s


def read_all(s, until=b"END\n"):
    """bytes until `until` or EOF, bounded by the socket timeout"""
    data = b""
    try:
        while until not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def session(port, src=None, dst="127.0.0.1"):
    """connect, read the stand-in's report; returns (socket, env dict)"""
    s = connect(port, src, dst)
    data = read_all(s)
    env = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    if "PID" in env:
        kid_pids.append(int(env["PID"]))
    env["_raw"] = data
    env["_port"] = s.getsockname()[1]
    return s, env


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(T + 3)
    except subprocess.TimeoutExpired:
        return None


def run_quick(args, env_extra=None):
    env = dict(os.environ, MOAT_ROOT=root)
    env.update(env_extra or {})
    try:
        r = subprocess.run([prog("moat-tcpd")] + args, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=T)
        return r.returncode, r.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, str(e)


signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(120)
try:
    port = free_port()

    # --- usage errors and bind errors --------------------------------------
    bad = [
        ([], "no arguments"),
        (["127.0.0.1:%d" % port], "no --"),
        (["127.0.0.1:%d" % port, "--"], "no program"),
        (["-c", "0", "127.0.0.1:%d" % port, "--", "/bin/true"], "-c 0"),
        (["-i", "x", "127.0.0.1:%d" % port, "--", "/bin/true"], "-i x"),
        (["-c"], "-c without a value"),
        (["-x", "127.0.0.1:%d" % port, "--", "/bin/true"], "unknown option"),
        (["localhost:25", "--", "/bin/true"], "a host name"),
        (["127.0.0.1:99999", "--", "/bin/true"], "port out of range"),
        (["127.0.0.1", "--", "/bin/true"], "no port"),
        (["::1:25", "--", "/bin/true"], "IPv6 without brackets"),
        (["[::1]25", "--", "/bin/true"], "no colon after ]"),
        (["--", "/bin/true"], "nothing to listen on"),
    ]
    for args, what in bad:
        rc, err = run_quick(args)
        t.ok(rc == 100 and "usage:" in err, "usage error exits 100: " + what,
             "rc %s: %s" % (rc, err))
    rc, err = run_quick(["--", "/bin/true"],
                        {"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    t.ok(rc == 100 and "LISTEN_PID is not this process" in err,
         "LISTEN_FDS for another pid is ignored (then nothing to listen on)",
         "rc %s: %s" % (rc, err))

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    bport = busy.getsockname()[1]
    rc, err = run_quick(["127.0.0.1:%d" % bport, "--", "/bin/true"])
    busy.close()
    t.ok(rc == 111 and ("127.0.0.1:%d" % bport) in err and
         "Address already in use" in err,
         "a bind failure exits 111 naming the address and the reason",
         "rc %s: %s" % (rc, err))

    # --- instance A: IPv4 and IPv6, relayclients, per-IP limit ------------
    write_control(root, "me", "tcpd.example")
    write_control(root, "relayclients",
                  "# relay rules\n127.0.0.1\n::1/128\nnot-an-address\n")
    v6 = have_ipv6()
    port6 = free_port("::1") if v6 else None
    args = user_args + ["-i", "1", "127.0.0.1:%d" % port]
    if v6:
        args.append("[::1]:%d" % port6)
    a = start(args + ["--", script], {"RELAYCLIENT": "inherited"}, "a.log")
    t.ok(wait_log(a, "listening on 127.0.0.1:%d" % port),
         "moat-tcpd listens and logs it", logtext(a))

    s1, e = session(port)
    t.ok(e.get("PROTO") == "TCP" and e.get("TCPREMOTEIP") == "127.0.0.1" and
         e.get("TCPLOCALIP") == "127.0.0.1" and
         e.get("TCPLOCALPORT") == str(port) and
         e.get("TCPREMOTEPORT") == str(e["_port"]),
         "IPv4: PROTO, TCPLOCALIP/PORT, TCPREMOTEIP/PORT", e["_raw"])
    t.ok(e.get("RELAYCLIENT") == "",
         "127.0.0.1 is in relayclients: RELAYCLIENT is set and empty",
         e["_raw"])
    t.ok("TCPREMOTEHOST" not in e, "no -h: TCPREMOTEHOST unset", e["_raw"])
    if is_root:
        t.ok(e.get("UID") == str(nobody_uid),
             "started as root with -u nobody: the program runs as nobody",
             e["_raw"])
    t.ok(wait_log(a, "pid %s from 127.0.0.1:%d to 127.0.0.1:%d"
                  % (e.get("PID"), e["_port"], port)),
         "the connection's start is logged with pid and both ends",
         logtext(a))

    s2, e2 = session(port, src="127.0.0.2")
    t.ok(e2.get("TCPREMOTEIP") == "127.0.0.2" and "RELAYCLIENT" not in e2,
         "127.0.0.2 is not listed: no RELAYCLIENT (the inherited one is "
         "gone)", e2["_raw"])
    s3 = connect(port, src="127.0.0.2")
    got = read_all(s3, b"\r\n")
    rest = read_all(s3)
    t.ok(got.startswith(b"421 4.7.0 tcpd.example too many connections") and
         got.endswith(b"\r\n") and rest == b"",
         "a second connection from 127.0.0.2 (-i 1) gets 421 4.7.0 and is "
         "closed", got + rest)
    s3.close()
    t.ok(wait_log(a, "refused 127.0.0.2:"), "the refusal is logged",
         logtext(a))
    s4, e4 = session(port)
    t.ok(e4.get("TCPREMOTEIP") == "127.0.0.1" and "PID" in e4,
         "relay clients are exempt from the per-IP limit", e4["_raw"])
    t.ok("ignoring not-an-address" in logtext(a),
         "a bad relayclients line is logged", logtext(a))

    # ending a connection frees its slot and is logged
    pid2 = e2.get("PID")
    s2.close()
    t.ok(wait_log(a, "end pid %s status " % pid2),
         "the end of a connection is logged", logtext(a))
    s5, e5 = session(port, src="127.0.0.2")
    t.ok(e5.get("TCPREMOTEIP") == "127.0.0.2",
         "after it ended, 127.0.0.2 may connect again", e5["_raw"])
    s5.close()

    if v6:
        s6, e6 = session(port6, dst="::1")
        t.ok(e6.get("PROTO") == "TCP6" and e6.get("TCPREMOTEIP") == "::1" and
             e6.get("TCPLOCALIP") == "::1" and
             e6.get("TCPLOCALPORT") == str(port6) and
             e6.get("TCPREMOTEPORT") == str(e6["_port"]),
             "IPv6: PROTO=TCP6, addresses without brackets", e6["_raw"])
        t.ok(e6.get("RELAYCLIENT") == "", "::1/128 grants RELAYCLIENT to ::1",
             e6["_raw"])
        t.ok(wait_log(a, "from [::1]:%d to [::1]:%d" % (e6["_port"], port6)),
             "IPv6 ends are logged in brackets", logtext(a))
        s6.close()
    else:
        for d in ("IPv6 environment", "IPv6 RELAYCLIENT", "IPv6 log"):
            t.skip(d, "::1 is not available")

    # SIGHUP: new rules (127.0.0.1's two connections end first, as it is
    # about to lose its exemption from -i 1)
    for s, x in ((s1, e), (s4, e4)):
        s.close()
        wait_log(a, "end pid %s status " % x.get("PID"))
    write_control(root, "relayclients", "127.0.0.2\n")
    a.send_signal(signal.SIGHUP)
    t.ok(wait_log(a, "reloaded:"), "SIGHUP reloads", logtext(a))
    s7, e7 = session(port, src="127.0.0.2")
    s8, e8 = session(port)
    t.ok(e7.get("RELAYCLIENT") == "" and "RELAYCLIENT" not in e8,
         "after SIGHUP, 127.0.0.2 relays and 127.0.0.1 no longer does",
         e7["_raw"] + e8["_raw"])
    s9, e9 = session(port, src="127.0.0.2")
    t.ok(e9.get("RELAYCLIENT") == "",
         "after SIGHUP, 127.0.0.2 is exempt from the per-IP limit",
         e9["_raw"])

    # SIGTERM with children running
    held = [int(x["PID"]) for x in (e7, e8, e9) if "PID" in x]
    t.ok(len(held) == 3 and all(alive(p) for p in held),
         "three children are running", held)
    rc = stop(a)
    t.ok(rc == 0, "SIGTERM: moat-tcpd exits 0", "rc %s\n%s" % (rc,
                                                              logtext(a)))
    deadline = time.time() + T
    while time.time() < deadline and any(alive(p) for p in held):
        time.sleep(0.05)
    t.ok(not any(alive(p) for p in held), "SIGTERM: its children are gone",
         [p for p in held if alive(p)])
    try:
        connect(port).close()
        refused = False
    except OSError:
        refused = True
    t.ok(refused, "SIGTERM: the port is closed")
    for s in (s7, s8, s9):
        s.close()

    # --- instance B: socket activation, no ADDR, control-file limits, -h --
    write_control(root, "relayclients", "")
    write_control(root, "concurrencyincoming", "2")
    write_control(root, "concurrencyperip", "10")
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    lport = ls.getsockname()[1]
    fd = ls.fileno()
    move = "" if fd == 3 else "exec 3<&%d %d<&-; " % (fd, fd)
    b = start(None, log="b.log", pass_fds=(fd,), argv=[
        "/bin/sh", "-c", move + 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
        prog("moat-tcpd")] + user_args + ["-h", "--", script])
    ls.close()
    t.ok(wait_log(b, "listening on 127.0.0.1:%d" % lport),
         "a socket from LISTEN_FDS is served with no ADDR given", logtext(b))
    t1, f1 = session(lport)
    t.ok(f1.get("TCPLOCALPORT") == str(lport) and
         f1.get("PROTO") == "TCP" and "LISTEN_FDS" not in f1,
         "its connections get the environment; LISTEN_FDS is not passed on",
         f1["_raw"])
    t.ok("RELAYCLIENT" not in f1,
         "empty relayclients: not even loopback gets RELAYCLIENT", f1["_raw"])
    # -h: TCPREMOTEHOST only when 127.0.0.1's name resolves back to it
    want = None
    try:
        name = socket.getnameinfo(("127.0.0.1", 0), socket.NI_NAMEREQD)[0]
        addrs = {ai[4][0] for ai in socket.getaddrinfo(name, None)}
        if "127.0.0.1" in addrs or "::ffff:127.0.0.1" in addrs:
            want = name
    except OSError:
        pass
    t.ok(f1.get("TCPREMOTEHOST") == want,
         "-h: TCPREMOTEHOST is the confirmed name (%s)" % want, f1["_raw"])
    t2, f2 = session(lport, src="127.0.0.2")
    t3 = connect(lport, src="127.0.0.3")
    got = read_all(t3, b"\r\n")
    t.ok(got.startswith(b"421 4.7.0 tcpd.example too many connections"),
         "concurrencyincoming 2: a third connection gets 421", got)
    t3.close()
    held = [int(x["PID"]) for x in (f1, f2) if "PID" in x]
    rc = stop(b)
    deadline = time.time() + T
    while time.time() < deadline and any(alive(p) for p in held):
        time.sleep(0.05)
    t.ok(rc == 0 and len(held) == 2 and not any(alive(p) for p in held),
         "SIGTERM stops the socket-activated instance and its children",
         "rc %s\n%s" % (rc, logtext(b)))
    t1.close()
    t2.close()
except Timeout as ex:
    t.ok(False, str(ex))
finally:
    signal.alarm(0)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for pid in kid_pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if t.failed:
        for p in procs:
            t.diag("log %s:\n%s" % (os.path.basename(p.logpath), logtext(p)))
    shutil.rmtree(root, ignore_errors=True)
t.done()
