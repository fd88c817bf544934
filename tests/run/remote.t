#!/usr/bin/env python3
"""remote.t: moat-remote, run directly, against a real DNS server and
remote peers that nobody here wrote.

DNS is Debian's dnsmasq on 127.0.0.1 and a free port (tests/lib/dnstest.py),
named in control/nameservers.  The peers are Python's aiosmtpd (Debian's
python3-aiosmtpd, tests/lib/smtppeer.py, run by /usr/bin/python3 as
separate processes), scripted to accept, defer or refuse, and a raw-socket
server (tests/lib/rawpeer.py) that records the exact bytes moat-remote
sends and plays a hostile server.  Peers listen on 127.0.0.2, 127.0.0.3
... (each loopback address a separate host) on a free port, which the
tests reach through control/smtproutes: "::PORT" is "MX routing, port
PORT" for every domain.  One test uses port 25 itself, when run as root.

Checked: the results on fd 1 (one field per recipient, the message
field, T fields; printable, bounded texts; exit 0), MX order and
fail-over, equal preferences, implicit MX, CNAME, null MX, NXDOMAIN, no
address, DNS failure, answers over 512 bytes, smtproutes, self-MX,
MOAT_DOWN_HOSTS, connect timeouts, per-recipient outcomes with and without
PIPELINING, MAIL and DATA refusals, a connection lost or stalled after the
dot, SIZE, 8BITMIME, the exact bytes on the wire, and hostile replies.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import moattest  # noqa: E402
from moattest import (Tap, make_root, remove_root, write_control,  # noqa
                      full_listener)
import dnstest  # noqa: E402
from peers import Peer  # noqa: E402

if not os.environ.get("MOAT_BIN"):
    moattest.BIN = os.path.join(HERE, "..", "..", "bin")
REMOTE = moattest.prog("moat-remote")
DEBPY = "/usr/bin/python3"
LIB = os.path.join(HERE, "..", "lib")
TEXT_MAX = 800

t = Tap()


def can_aiosmtpd():
    try:
        return subprocess.run([DEBPY, "-c", "import aiosmtpd"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


if not os.path.exists(REMOTE):
    print("1..0 # SKIP moat-remote is not built")
    sys.exit(0)
if not dnstest.available():
    print("1..0 # SKIP no dnsmasq (Debian dnsmasq-base)")
    sys.exit(0)
if not can_aiosmtpd():
    print("1..0 # SKIP no aiosmtpd for /usr/bin/python3 (python3-aiosmtpd)")
    sys.exit(0)

TMP = tempfile.mkdtemp(prefix="moat-remote-t-")
moattest.give_away(TMP)
PROCS = []
SERIAL = [0]


# ---- peers ----

def smtp_peer(host, port, **cfg):
    return Peer("smtp", host, port, cfg, TMP, PROCS)


def raw_peer(host, port, script):
    return Peer("raw", host, port, {"script": script}, TMP, PROCS)


def stop_all():
    for p in PROCS:
        p.stop()
    del PROCS[:]


def port_for(*hosts):
    """a port free on every one of hosts"""
    for _ in range(50):
        port = moattest.free_port(hosts[0])
        ok = True
        for h in hosts[1:]:
            s = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET)
            try:
                s.bind((h, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no common free port")


# ---- DNS ----

BIG_MX = [("bigmx.test", "a-rather-long-mail-exchanger-name-%02d.bigmx.test"
           % i, 10 + i) for i in range(40)]
BIG_MX_HOSTS = [(h, "127.0.0.2" if p == 10 else "127.0.0.4")
                for _, h, p in BIG_MX]
BIG_A = [("biga.test", "127.0.1.%d" % i) for i in range(10, 70)]

DNS = dnstest.Dnsmasq(
    mx=[("order.test", "mx1.order.test", 10),
        ("order.test", "mx2.order.test", 20),
        ("failover.test", "dead.failover.test", 10),
        ("failover.test", "live.failover.test", 20),
        ("equal.test", "e1.equal.test", 10),
        ("equal.test", "e2.equal.test", 10),
        ("selfname.test", "me.selfname.test", 10),
        ("selfbetter.test", "other.selfbetter.test", 5),
        ("selfbetter.test", "me.selfname.test", 10),
        ("selfbetter.test", "worse.selfbetter.test", 20),
        ("selfaddr.test", "lo.selfaddr.test", 10),
        ("mxnoaddr.test", "ghost.mxnoaddr.test", 10),
        ("dual.test", "mx.dual.test", 10),
        ("port25.test", "mx.port25.test", 10)] + BIG_MX,
    hosts=[("mx1.order.test", "127.0.0.2"),
           ("mx2.order.test", "127.0.0.3"),
           ("dead.failover.test", "127.0.0.4"),
           ("live.failover.test", "127.0.0.3"),
           ("e1.equal.test", "127.0.0.2"),
           ("e2.equal.test", "127.0.0.3"),
           ("implicit.test", "127.0.0.2"),
           ("null.test", "127.0.0.2"),
           ("target.test", "127.0.0.3"),
           ("me.selfname.test", "127.0.0.2"),
           ("other.selfbetter.test", "127.0.0.3"),
           ("worse.selfbetter.test", "127.0.0.4"),
           ("lo.selfaddr.test", "127.0.0.1"),
           ("relayhost.test", "127.0.0.3"),
           ("mx.dual.test", "127.0.0.3"),
           ("mx.dual.test", "::1"),
           ("mx.port25.test", "127.0.0.6")] + BIG_MX_HOSTS + BIG_A +
    [("biga.test", "127.0.0.2")],
    nullmx=["null.test"],
    cname=[("alias.test", "target.test")],
    txt=["noaddr.test"])


def root_with(**ctl):
    c = {"me": "moat.test", "locals": "moat.test", "nameservers": DNS.server,
         "timeoutconnect": "5", "timeoutremote": "20"}
    c.update(ctl)
    return make_root(c)


# ---- running moat-remote ----

MSG = b"From: a@moat.test\nTo: b@x.test\nSubject: test\n\nHello.\n"


class Result:
    pass


def remote(root, domain, rcpts, sender="sender@moat.test", msg=MSG,
           env=None, timeout=120):
    mf = tempfile.NamedTemporaryFile(dir=TMP, delete=False)
    mf.write(msg)
    mf.close()
    e = {"PATH": "/usr/bin:/bin", "MOAT_ROOT": root}
    e.update(env or {})
    argv = moattest.as_user_argv([REMOTE, domain, sender] + list(rcpts))
    start = time.time()
    with open(mf.name, "rb") as f:
        p = subprocess.run(argv, stdin=f, capture_output=True, env=e,
                           timeout=timeout)
    os.unlink(mf.name)
    r = Result()
    r.secs = time.time() - start
    r.rc = p.returncode
    r.out = p.stdout
    r.err = p.stderr.decode("utf-8", "replace")
    parts = p.stdout.split(b"\0")
    r.terminated = parts[-1] == b""
    fields = [x.decode("latin-1") for x in parts[:-1]]
    n = len(rcpts)
    r.rcpt = [(x[:1], x[1:]) for x in fields[:n]]
    r.msg = (fields[n][:1], fields[n][1:]) if len(fields) > n else ("", "")
    r.extra = fields[n + 1:]
    r.timedout = [x[1:] for x in r.extra if x[:1] == "T"]
    return r


def sane(r, n):
    """exit 0, n recipient fields, a message field, T fields, clean texts"""
    why = []
    if r.rc != 0:
        why.append("exit status %d" % r.rc)
    if not r.terminated:
        why.append("output not NUL-terminated")
    if len(r.rcpt) != n:
        why.append("%d recipient fields" % len(r.rcpt))
    for st, text in r.rcpt + [r.msg]:
        if st not in ("K", "Z", "D"):
            why.append("bad status %r" % st)
        if len(text) > TEXT_MAX or not text:
            why.append("text length %d" % len(text))
        if any(ord(c) < 32 or ord(c) > 126 for c in text):
            why.append("unprintable text %r" % text)
    for x in r.extra:
        if x[:1] != "T":
            why.append("unexpected field %r" % x)
    if why:
        return "\n".join(why) + "\nstdout: %r\nstderr: %s" % (r.out, r.err)
    return None


def check(r, n, want_rcpt, want_msg, desc, text=None):
    """statuses (a string, one letter per recipient) and the message's"""
    bad = sane(r, n)
    got = "".join(s for s, _ in r.rcpt)
    if not bad and (got != want_rcpt or r.msg[0] != want_msg):
        bad = "got %s/%s, want %s/%s\n%r" % (got, r.msg[0], want_rcpt,
                                             want_msg, r.rcpt + [r.msg])
    if not bad and text and text not in r.msg[1]:
        bad = "message text lacks %r: %r" % (text, r.msg[1])
    return t.ok(bad is None, desc, bad)


# ---- the tests ----

def test_basic():
    port = port_for("127.0.0.2", "127.0.0.3")
    p1 = smtp_peer("127.0.0.2", port)
    p2 = smtp_peer("127.0.0.3", port)
    root = root_with(smtproutes="::%d" % port)
    r = remote(root, "order.test", ["u@order.test"])
    check(r, 1, "K", "K", "MX order: accepted",
          "Remote host mx1.order.test [127.0.0.2] said: 250 2.0.0 OK queued"
          " (in reply to end of DATA)")
    recs = p1.records()
    t.ok(len(recs) == 1 and not p2.records(), "the best MX got it",
         (recs, p2.records()))
    if recs:
        rec = recs[0]
        t.ok(rec["mail_from"] == "sender@moat.test" and
             rec["rcpt_tos"] == ["u@order.test"], "envelope", rec)
        t.ok(rec["ehlo"] == "moat.test", "EHLO with helohost (= me)", rec)
        want = MSG.replace(b"\n", b"\r\n").decode("latin-1")
        t.ok(rec["content"] == want, "content with CRLF", rec["content"])
        t.ok("SIZE=%d" % len(want) in rec["mail_options"],
             "SIZE declared, CRLF counted", rec["mail_options"])
        t.ok(not any(o.startswith("BODY") for o in rec["mail_options"]),
             "no BODY= for a 7-bit message", rec["mail_options"])
    write_control(root, "helohost", "helo.moat.test")
    r = remote(root, "implicit.test", ["a@implicit.test", "b@implicit.test"],
               sender="")
    check(r, 2, "KK", "K", "implicit MX, two recipients, null sender")
    recs = p1.records()
    t.ok(len(recs) == 2 and recs[1]["mail_from"] in ("", "<>") and
         recs[1]["rcpt_tos"] == ["a@implicit.test", "b@implicit.test"] and
         recs[1]["ehlo"] == "helo.moat.test",
         "one transaction, MAIL FROM:<>, helohost", recs[-1:])
    r = remote(root, "alias.test", ["c@alias.test"])
    check(r, 1, "K", "K", "CNAME followed")
    t.ok(len(p2.records()) == 1, "the CNAME's target got it")
    stop_all()
    remove_root(root)


def test_failover():
    port = port_for("127.0.0.3", "127.0.0.4")
    p = smtp_peer("127.0.0.3", port)
    root = root_with(smtproutes="::%d" % port)
    r = remote(root, "failover.test", ["u@failover.test"])
    check(r, 1, "K", "K", "best MX refuses connections: the next takes it")
    t.ok(len(p.records()) == 1, "delivered to the second MX")
    stop_all()
    # a 421 greeting and a 4xx EHLO move on too
    for script, what in (
            ([["send", "421 4.3.2 busy, go away\r\n"], ["line"],
              ["send", "221 bye\r\n"]], "421 greeting"),
            ([["send", "220 dead ESMTP\r\n"], ["line"],
              ["send", "451 4.3.0 not now\r\n"], ["line"],
              ["send", "221 bye\r\n"]], "4xx to EHLO")):
        raw = raw_peer("127.0.0.4", port, script)
        p = smtp_peer("127.0.0.3", port)
        r = remote(root, "failover.test", ["u@failover.test"])
        check(r, 1, "K", "K", what + ": the next MX takes it")
        t.ok(len(p.records()) == 1 and raw.conn(1) is not None,
             what + ": both hosts were tried")
        stop_all()
    # every host gives 4xx: deferred, with the last reason
    raw = raw_peer("127.0.0.4", port,
                   [["send", "421 4.3.2 busy\r\n"], ["line"]])
    r = remote(root, "failover.test", ["u@failover.test"])
    check(r, 1, "Z", "Z", "no MX takes it: deferred (#4.4.1)", "#4.4.1")
    stop_all()
    # a 5xx greeting is permanent for all
    raw = raw_peer("127.0.0.4", port,
                   [["send", "554 5.7.1 no mail from you\r\n"], ["line"],
                    ["send", "221 bye\r\n"]])
    p = smtp_peer("127.0.0.3", port)
    r = remote(root, "failover.test", ["u@failover.test", "v@failover.test"])
    check(r, 2, "DD", "D", "5xx greeting: failed for all",
          "said: 554 5.7.1 no mail from you (in reply to the greeting)")
    t.ok(not p.records(), "and the next MX was not tried")
    stop_all()
    # EHLO refused: HELO
    raw = raw_peer("127.0.0.4", port,
                   [["send", "220 old ESMTP\r\n"], ["line"],
                    ["send", "500 5.5.1 what is EHLO\r\n"], ["line"],
                    ["send", "250 hello\r\n"], ["line"],
                    ["send", "250 ok\r\n"], ["line"], ["send", "250 ok\r\n"],
                    ["line"], ["send", "354 go\r\n"], ["data"],
                    ["send", "250 done\r\n"], ["line"],
                    ["send", "221 bye\r\n"]])
    r = remote(root, "failover.test", ["u@failover.test"])
    check(r, 1, "K", "K", "EHLO refused: HELO works")
    sent = raw.conn(1) or b""
    t.ok(sent.startswith(b"EHLO moat.test\r\nHELO moat.test\r\nMAIL FROM:"),
         "EHLO then HELO", sent[:80])
    stop_all()
    remove_root(root)


def test_equal():
    port = port_for("127.0.0.2", "127.0.0.3")
    p1 = smtp_peer("127.0.0.2", port)
    p2 = smtp_peer("127.0.0.3", port)
    root = root_with(smtproutes="::%d" % port)
    bad = None
    for i in range(16):
        r = remote(root, "equal.test", ["u%d@equal.test" % i])
        bad = bad or sane(r, 1)
    n1, n2 = len(p1.records()), len(p2.records())
    t.ok(not bad and n1 + n2 == 16 and n1 and n2,
         "equal preferences in random order (%d/%d)" % (n1, n2), bad)
    stop_all()
    remove_root(root)


def test_dns_failures():
    root = root_with()
    r = remote(root, "null.test", ["u@null.test"])
    check(r, 1, "D", "D", "null MX: failed for good (5.1.10)", "#5.1.10")
    r = remote(root, "nowhere.test", ["u@nowhere.test", "v@nowhere.test"])
    check(r, 2, "DD", "D", "NXDOMAIN: failed for good (5.1.2)", "#5.1.2")
    t.ok(r.rcpt[0][1] == r.msg[1] == r.rcpt[1][1],
         "every recipient gets the same text", r.rcpt + [r.msg])
    r = remote(root, "noaddr.test", ["u@noaddr.test"])
    check(r, 1, "D", "D", "no MX and no address: 5.4.4", "#5.4.4")
    r = remote(root, "mxnoaddr.test", ["u@mxnoaddr.test"])
    check(r, 1, "D", "D", "MX host without address: 5.4.4", "#5.4.4")
    r = remote(root, "outside.example", ["u@outside.example"])
    check(r, 1, "Z", "Z", "server refuses the query: deferred (4.4.3)",
          "#4.4.3")
    # a server that never answers
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    write_control(root, "nameservers",
                  "127.0.0.1:%d" % silent.getsockname()[1])
    write_control(root, "timeoutdns", "2")
    r = remote(root, "order.test", ["u@order.test"])
    check(r, 1, "Z", "Z", "DNS server silent: deferred (4.4.3)", "#4.4.3")
    t.ok(r.secs < 10, "within timeoutdns (%.1f s)" % r.secs)
    silent.close()
    write_control(root, "nameservers", "this is no address")
    r = remote(root, "order.test", ["u@order.test"])
    check(r, 1, "Z", "Z", "bad control/nameservers: deferred", "#4.4.3")
    remove_root(root)


def test_big_answers():
    port = port_for("127.0.0.2")
    p = smtp_peer("127.0.0.2", port)
    root = root_with(smtproutes="::%d" % port)
    r = remote(root, "bigmx.test", ["u@bigmx.test"])
    check(r, 1, "K", "K", "40 MX records (answer over 512 bytes)")
    r = remote(root, "biga.test", ["u@biga.test"])
    check(r, 1, "K", "K", "61 A records (answer over 512 bytes)")
    t.ok(len(p.records()) == 2, "both delivered", p.records())
    stop_all()
    remove_root(root)


def test_routes():
    port = port_for("127.0.0.2", "127.0.0.3")
    p1 = smtp_peer("127.0.0.2", port)
    p2 = smtp_peer("127.0.0.3", port)
    routes = "\n".join([
        "exact.test:[127.0.0.2]:%d" % port,
        ".sub.test:relayhost.test:%d" % port,
        "order.test::%d" % port,
        "[127.0.0.3]::%d" % port,
        ":[127.0.0.3]:%d" % port])
    root = root_with(smtproutes=routes)
    cases = [("exact.test", p1, "exact domain, [ip]:port"),
             ("a.b.sub.test", p2, ".suffix, relay by name"),
             ("order.test", p1, "empty relay: MX, with the port"),
             ("[127.0.0.3]", p2, "address literal"),
             ("else.example", p2, "default route")]
    for dom, peer, desc in cases:
        before = len(peer.records())
        r = remote(root, dom, ["u@" + dom])
        ok = check(r, 1, "K", "K", "smtproutes: " + desc)
        if ok:
            t.ok(len(peer.records()) == before + 1, desc + ": right host")
    write_control(root, "smtproutes", ":norelay.test:%d" % port)
    r = remote(root, "x.example", ["u@x.example"])
    check(r, 1, "Z", "Z", "relay name not found: deferred", "#4.4.3")
    write_control(root, "smtproutes", ":[127.0.0.2]:99999")
    r = remote(root, "x.example", ["u@x.example"])
    check(r, 1, "Z", "Z", "bad smtproutes line: deferred", "#4.3.5")
    stop_all()
    remove_root(root)


def test_self():
    port = port_for("127.0.0.2", "127.0.0.3")
    p1 = smtp_peer("127.0.0.2", port)
    p2 = smtp_peer("127.0.0.3", port)
    root = root_with(smtproutes="::%d" % port,
                     locals="moat.test\nme.selfname.test")
    r = remote(root, "selfname.test", ["u@selfname.test"])
    check(r, 1, "D", "D", "self-MX by name (locals): 5.4.6", "#5.4.6")
    t.ok(not p1.records(), "nothing sent to ourselves")
    r = remote(root, "selfbetter.test", ["u@selfbetter.test"])
    check(r, 1, "K", "K", "self-MX: a better MX takes it")
    t.ok(len(p2.records()) == 1, "delivered to the better host")
    stop_all()
    root2 = root_with()  # port 25: addresses count
    r = remote(root2, "selfaddr.test", ["u@selfaddr.test"])
    check(r, 1, "D", "D", "self-MX by address (127.0.0.1): 5.4.6", "#5.4.6")
    remove_root(root)
    remove_root(root2)


def test_down_and_timeout():
    port = port_for("127.0.0.2", "127.0.0.3", "127.0.0.5")
    p1 = smtp_peer("127.0.0.2", port)
    p2 = smtp_peer("127.0.0.3", port)
    root = root_with(smtproutes="::%d" % port)
    r = remote(root, "order.test", ["u@order.test"],
               env={"MOAT_DOWN_HOSTS": "127.0.0.9,127.0.0.2"})
    check(r, 1, "K", "K", "MOAT_DOWN_HOSTS: the down best MX is skipped")
    t.ok(len(p2.records()) == 1 and not p1.records(), "the next MX got it")
    r = remote(root, "implicit.test", ["u@implicit.test"],
               env={"MOAT_DOWN_HOSTS": "127.0.0.2"})
    check(r, 1, "K", "K", "a down host is tried when nothing else is left")
    t.ok(len(p1.records()) == 1, "the down host got it")
    stop_all()
    # a listener whose queue is full: connects time out
    lsock, fill = full_listener("127.0.0.5", port)
    write_control(root, "smtproutes", ":[127.0.0.5]:%d" % port)
    write_control(root, "timeoutconnect", "1")
    r = remote(root, "x.example", ["u@x.example"])
    check(r, 1, "Z", "Z", "connect timeout: deferred", "timed out")
    t.ok(r.timedout == ["127.0.0.5"], "T field for the address", r.extra)
    for c in fill:
        c.close()
    lsock.close()
    remove_root(root)


def test_outcomes():
    port = port_for("127.0.0.2")
    rcpt = {"bad@x.test": "550 5.1.1 no such user",
            "later@x.test": "450 4.2.1 mailbox busy"}
    rcpts = ["ok@x.test", "bad@x.test", "later@x.test", "ok2@x.test"]
    for pipe in (True, False):
        name = "with" if pipe else "without"
        p = smtp_peer("127.0.0.2", port, pipelining=pipe, rcpt=rcpt)
        root = root_with(smtproutes=":[127.0.0.2]:%d" % port)
        r = remote(root, "x.test", rcpts)
        check(r, 4, "KDZK", "K", "per-recipient outcomes, %s PIPELINING"
              % name)
        t.ok(r.rcpt[1][1] == "Remote host [127.0.0.2] said: 550 5.1.1 no "
             "such user (in reply to RCPT TO)", "the refusal quoted",
             r.rcpt[1][1])
        recs = p.records()
        t.ok(len(recs) == 1 and recs[0]["rcpt_tos"] ==
             ["ok@x.test", "ok2@x.test"], "only the accepted got it", recs)
        stop_all()
        remove_root(root)
    root = root_with(smtproutes=":[127.0.0.2]:%d" % port)
    p = smtp_peer("127.0.0.2", port, pipelining=True, rcpt=rcpt)
    r = remote(root, "x.test", ["bad@x.test", "later@x.test"])
    check(r, 2, "DZ", "D", "no recipient accepted (pipelined)")
    t.ok(not p.records(), "no message sent")
    stop_all()
    for pipe in (True, False):
        p = smtp_peer("127.0.0.2", port, pipelining=pipe,
                      mail="553 5.7.1 sender refused")
        r = remote(root, "x.test", ["a@x.test", "b@x.test"])
        check(r, 2, "DD", "D", "MAIL refused: all failed (pipelining %s)"
              % pipe, "553 5.7.1 sender refused (in reply to MAIL FROM)")
        stop_all()
    for reply, st in (("554 5.6.0 content refused", "D"),
                      ("451 4.3.0 try later", "Z")):
        p = smtp_peer("127.0.0.2", port, pipelining=True, data=reply)
        r = remote(root, "x.test", ["a@x.test", "b@x.test"])
        check(r, 2, "KK", st, "final reply %s" % reply[:3],
              reply + " (in reply to end of DATA)")
        stop_all()
    p = smtp_peer("127.0.0.2", port, data="drop")
    r = remote(root, "x.test", ["a@x.test"])
    check(r, 1, "K", "Z", "connection dropped after the dot: possible "
          "duplicate", "(possible duplicate)")
    stop_all()
    p = smtp_peer("127.0.0.2", port, data="stall")
    write_control(root, "timeoutremote", "2")
    r = remote(root, "x.test", ["a@x.test"])
    check(r, 1, "K", "Z", "no reply after the dot: possible duplicate",
          "(possible duplicate)")
    t.ok(r.secs < 15, "within timeoutremote (%.1f s)" % r.secs)
    stop_all()
    remove_root(root)


def test_size_and_8bit():
    port = port_for("127.0.0.2")
    root = root_with(smtproutes=":[127.0.0.2]:%d" % port)
    p = smtp_peer("127.0.0.2", port, size=100)
    big = MSG + b"x" * 200 + b"\n"
    r = remote(root, "x.test", ["a@x.test", "b@x.test"], msg=big)
    check(r, 2, "DD", "D", "over the server's SIZE: failed (5.3.4)",
          "#5.3.4")
    t.ok(not p.records(), "nothing sent")
    stop_all()
    p = smtp_peer("127.0.0.2", port)
    eight = b"Subject: caf\xc3\xa9\n\nna\xefve \xff\n"
    r = remote(root, "x.test", ["a@x.test"], msg=eight)
    check(r, 1, "K", "K", "8-bit message")
    recs = p.records()
    t.ok(recs and "BODY=8BITMIME" in recs[0]["mail_options"],
         "BODY=8BITMIME declared", recs)
    t.ok(recs and recs[0]["content"].encode("latin-1") ==
         eight.replace(b"\n", b"\r\n"), "8-bit bytes intact", recs)
    stop_all()
    remove_root(root)


def wire_script(pipelining=False):
    ehlo = "250-raw.test\r\n250-8BITMIME\r\n250 SIZE 100000\r\n"
    if pipelining:
        return [["send", "220 raw.test ESMTP\r\n"], ["line"],
                ["send", ehlo.replace("250 SIZE", "250-PIPELINING\r\n250 SIZE")],
                ["line"], ["line"], ["line"],
                ["send", "250 ok\r\n250 ok\r\n354 go\r\n"], ["data"],
                ["send", "250 queued\r\n"], ["line"],
                ["send", "221 bye\r\n"]]
    return [["send", "220 raw.test ESMTP\r\n"], ["line"], ["send", ehlo],
            ["line"], ["send", "250 ok\r\n"], ["line"],
            ["send", "250 ok\r\n"], ["line"], ["send", "354 go\r\n"],
            ["data"], ["send", "250 queued\r\n"], ["line"],
            ["send", "221 bye\r\n"]]


def no_bare(b):
    for i, c in enumerate(b):
        if c == 10 and (i == 0 or b[i - 1] != 13):
            return False
        if c == 13 and (i + 1 >= len(b) or b[i + 1] != 10):
            return False
    return True


def test_wire():
    port = port_for("127.0.0.2")
    root = root_with(smtproutes=":[127.0.0.2]:%d" % port)
    msg = (b"Subject: dots\n\n.leading dot\n..two dots\n.\nbare\rcr\r\n"
           b"crlf\r\n\r.\rafter cr\nlast line without newline")
    body = (b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\n"
            b"bare\r\ncr\r\ncrlf\r\n\r\n..\r\nafter cr\r\n"
            b"last line without newline\r\n.\r\n")
    size = len(body) - 3 - 4  # no final dot, no stuffed dots
    for pipe in (False, True):
        raw = raw_peer("127.0.0.2", port, wire_script(pipe))
        r = remote(root, "x.test", ["a@x.test"], msg=msg,
                   sender="s@moat.test")
        check(r, 1, "K", "K", "raw peer (pipelining %s) accepts" % pipe)
        want = (b"EHLO moat.test\r\nMAIL FROM:<s@moat.test> SIZE=%d\r\n"
                b"RCPT TO:<a@x.test>\r\nDATA\r\n" % size + body +
                b"QUIT\r\n")
        got = raw.conn(1)
        t.ok(got == want, "exact bytes on the wire (pipelining %s)" % pipe,
             "got  %r\nwant %r" % (got, want))
        t.ok(got is not None and no_bare(got), "no bare CR or LF")
        stop_all()
    raw = raw_peer("127.0.0.2", port, wire_script())
    r = remote(root, "x.test", ['odd "local" part@x.test'], msg=b"",
               sender="")
    check(r, 1, "K", "K", "empty message, quoted local part")
    got = raw.conn(1) or b""
    t.ok(b'RCPT TO:<"odd \\"local\\" part"@x.test>\r\n' in got and
         b"MAIL FROM:<> SIZE=0\r\n" in got and
         got.endswith(b"DATA\r\n.\r\nQUIT\r\n"), "quoted, and just a dot",
         got)
    stop_all()
    raw = raw_peer("127.0.0.2", port, wire_script())
    r = remote(root, "x.test", ["a@x.test", "evil@x.test\r\nRSET"])
    check(r, 2, "KD", "K", "a recipient with CRLF is never sent")
    got = raw.conn(1) or b""
    t.ok(b"RSET" not in got and b"evil" not in got, "nothing injected", got)
    stop_all()
    remove_root(root)


HOSTILE = [
    ("100 KB reply line",
     [["send", "220 "], ["sendn", "x", 100000], ["send", "\r\n"]],
     "Z", "malformed reply"),
    ("reply over 64 KB in many lines",
     [["sendn", "220-0123456789012345678901234567890123456789\r\n", 2000],
      ["send", "220 ok\r\n"]], "Z", "malformed reply"),
    ("wrong continuation code",
     [["send", "220 hi\r\n"], ["line"],
      ["send", "250-raw.test\r\n251 PIPELINING\r\n"]], "Z",
     "malformed reply"),
    ("lines sent ahead of time",
     [["send", "220 hi\r\n250-raw.test\r\n250 PIPELINING\r\n"
       "250 ok\r\n250 ok\r\n354 go\r\n"]], "Z", "out of turn"),
    ("extra lines after the EHLO reply",
     [["send", "220 hi\r\n"], ["line"],
      ["send", "250-raw.test\r\n250 PIPELINING\r\n250 2.1.0 ok\r\n"
       "250 2.1.5 ok\r\n354 go\r\n"], ["line"]], "Z", "out of turn"),
    ("bare LF splitting a reply",
     [["send", "220 hi\r\n"], ["line"], ["send", "250 raw.test\r\n"],
      ["line"], ["send", "250 ok\nX-Injected: yes\r\n"]], "Z",
     "out of turn"),
    ("garbage instead of a greeting",
     [["send", "HTTP/1.0 200 OK\r\n\r\n"]], "Z", "malformed reply"),
    ("silence, then hang-up",
     [["sleep", 0.5], ["close"]], "Z", "closed"),
]


def test_hostile():
    port = port_for("127.0.0.2")
    root = root_with(smtproutes=":[127.0.0.2]:%d" % port)
    for desc, script, st, text in HOSTILE:
        raw = raw_peer("127.0.0.2", port, script)
        r = remote(root, "x.test", ["a@x.test", "b@x.test"])
        check(r, 2, st * 2, st, "hostile: " + desc, text)
        got = raw.conn(1) or b""
        t.ok(b"Subject" not in got, desc + ": no message sent", got[-200:])
        stop_all()
    # control bytes in replies are cleaned, not copied
    raw = raw_peer("127.0.0.2", port, [
        ["send", "220 hi\x00\x1b[2J\r\n"], ["line"],
        ["send", "250-raw.test\r\n250 8BITMIME\r\n"], ["line"],
        ["send", "250 ok\r\n"], ["line"],
        ["send", "550 5.1.1 no\x00such\ruser\x1b]0;pwn\x07\xff\r\n"],
        ["line"], ["send", "250 ok\r\n"], ["line"],
        ["send", "354 go\r\n"], ["data"],
        ["send", "250 ok\tqueued " + "y" * 900 + "\r\n"], ["line"],
        ["send", "221 bye\r\n"]])
    r = remote(root, "x.test", ["bad@x.test", "good@x.test"])
    check(r, 2, "DK", "K", "replies with control bytes")
    t.ok(r.rcpt[0][1] == "Remote host [127.0.0.2] said: 550 5.1.1 "
         "no?such?user?]0;pwn?? (in reply to RCPT TO)",
         "control bytes became ?", r.rcpt[0][1])
    t.ok(len(r.msg[1]) <= TEXT_MAX and r.msg[1].endswith(
        "... (in reply to end of DATA)"), "a long reply is cut", r.msg[1])
    stop_all()
    # the connection lost in the middle of the transaction
    raw = raw_peer("127.0.0.2", port, [
        ["send", "220 hi\r\n"], ["line"], ["send", "250 raw.test\r\n"],
        ["line"], ["send", "250 ok\r\n"], ["line"], ["close"]])
    r = remote(root, "x.test", ["a@x.test"])
    check(r, 1, "Z", "Z", "connection lost after MAIL: deferred", "#4.4.2")
    t.ok("possible duplicate" not in r.msg[1], "not flagged as duplicate")
    stop_all()
    remove_root(root)


def test_port25():
    if os.geteuid() != 0:
        t.skip("MX delivery on port 25", "not root")
        return
    try:
        p = smtp_peer("127.0.0.6", 25)
    except RuntimeError:
        t.skip("MX delivery on port 25", "127.0.0.6:25 not available")
        return
    root = root_with()
    r = remote(root, "port25.test", ["u@port25.test"])
    check(r, 1, "K", "K", "MX delivery on port 25 without smtproutes")
    stop_all()
    remove_root(root)


def test_outgoingip():
    port = port_for("127.0.0.2")
    p = smtp_peer("127.0.0.2", port)
    root = root_with(smtproutes=":[127.0.0.2]:%d" % port,
                     outgoingip="127.0.0.7")
    r = remote(root, "x.test", ["u@x.test"])
    check(r, 1, "K", "K", "outgoingip")
    recs = p.records()
    t.ok(recs and recs[0]["peer"] == "127.0.0.7",
         "connection from control/outgoingip", recs)
    write_control(root, "outgoingip", "192.0.2.77")
    r = remote(root, "x.test", ["u@x.test"])
    check(r, 1, "Z", "Z", "outgoingip not ours: deferred", "#4.4.1")
    write_control(root, "outgoingip", "::1")
    r = remote(root, "x.test", ["u@x.test"])
    check(r, 1, "K", "K", "IPv6 outgoingip is not used for IPv4")
    stop_all()
    remove_root(root)


def test_ipv6():
    try:
        port = port_for("::1", "127.0.0.3")
        p6 = smtp_peer("::1", port)
    except (OSError, RuntimeError):
        t.skip("AAAA before A", "no IPv6 loopback")
        return
    p4 = smtp_peer("127.0.0.3", port)
    root = root_with(smtproutes="::%d" % port)
    r = remote(root, "dual.test", ["u@dual.test"])
    check(r, 1, "K", "K", "host with AAAA and A", "[::1]")
    t.ok(len(p6.records()) == 1 and not p4.records(), "IPv6 tried first")
    write_control(root, "smtproutes", "[IPv6:::1]::%d\n:[::1]:%d"
                  % (port, port))
    r = remote(root, "x.example", ["u@x.example"])
    check(r, 1, "K", "K", "smtproutes relay [::1] (no IPv6: tag)")
    r = remote(root, "[IPv6:::1]", ["u@[IPv6:::1]"])
    check(r, 1, "K", "K", "IPv6 literal domain, its own smtproutes line")
    t.ok(len(p6.records()) == 3, "both over IPv6")
    write_control(root, "smtproutes", "::%d" % port)
    p6.stop()
    r = remote(root, "dual.test", ["u@dual.test"])
    check(r, 1, "K", "K", "IPv6 refused: IPv4 takes it")
    t.ok(len(p4.records()) == 1, "delivered over IPv4")
    stop_all()
    remove_root(root)


def test_tls():
    """opportunistic STARTTLS: used when offered, certificates unchecked;
    a refused STARTTLS goes on in the clear, a failed handshake is tried
    again in the clear; tlsremote 0 never asks"""
    cert = os.path.join(TMP, "peer.pem")
    subprocess.run([moattest.prog("moat-tlsd"), "-g", cert, "peer.test"],
                   check=True, capture_output=True, timeout=30)
    port = port_for("127.0.0.2")
    root = root_with(smtproutes=":[127.0.0.2]:%d" % port)
    p = smtp_peer("127.0.0.2", port, tls=cert, pipelining=True)
    big = b"Subject: big\n\n" + b"".join(
        b"%06d %s\n" % (i, b"z" * 70) for i in range(20000))
    r = remote(root, "x.test", ["a@x.test"], msg=big)
    check(r, 1, "K", "K", "a server offering STARTTLS: delivered")
    recs = p.records()
    t.ok(len(recs) == 1 and recs[0]["tls"] in ("TLSv1.2", "TLSv1.3"),
         "the transaction ran under TLS", recs and recs[0]["tls"])
    t.ok(recs and recs[0]["content"] ==
         big.replace(b"\n", b"\r\n").decode("latin-1"),
         "a 1.5 MB message arrives byte for byte under TLS")
    t.ok(recs and recs[0]["ehlo"] == "moat.test" and
         any(o.startswith("SIZE=") for o in recs[0]["mail_options"]),
         "EHLO was said again under TLS, and its SIZE used", recs[:1])
    write_control(root, "tlsremote", "0")
    r = remote(root, "x.test", ["b@x.test"])
    check(r, 1, "K", "K", "tlsremote 0: delivered")
    t.ok(len(p.records()) == 2 and p.records()[1]["tls"] is None,
         "tlsremote 0: in the clear", p.records()[1:])
    write_control(root, "tlsremote", "1")
    stop_all()

    p = smtp_peer("127.0.0.2", port, tls=cert, tls_broken=True)
    r = remote(root, "x.test", ["c@x.test"])
    check(r, 1, "K", "K", "a broken TLS handshake: delivered all the same")
    t.ok(len(p.records()) == 1 and p.records()[0]["tls"] is None and
         p.records()[0]["rcpt_tos"] == ["c@x.test"],
         "... on a second connection, in the clear", p.records())
    stop_all()

    ehlo = "250-raw.test\r\n250-STARTTLS\r\n250 SIZE 100000\r\n"
    raw = raw_peer("127.0.0.2", port, [
        ["send", "220 raw.test ESMTP\r\n"], ["line"], ["send", ehlo],
        ["line"], ["send", "454 4.7.0 TLS not available now\r\n"],
        ["line"], ["send", "250 ok\r\n"], ["line"], ["send", "250 ok\r\n"],
        ["line"], ["send", "354 go\r\n"], ["data"],
        ["send", "250 queued\r\n"], ["line"], ["send", "221 bye\r\n"]])
    r = remote(root, "x.test", ["d@x.test"], sender="s@moat.test")
    check(r, 1, "K", "K", "STARTTLS answered 454: delivered in the clear")
    got = raw.conn(1) or b""
    t.ok(got.startswith(b"EHLO moat.test\r\nSTARTTLS\r\n"
                        b"MAIL FROM:<s@moat.test> SIZE="),
         "... on the same connection, without a second EHLO, with what "
         "the EHLO offered (SIZE)", got[:200])
    stop_all()
    remove_root(root)


def test_usage():
    root = root_with()
    p = subprocess.run([REMOTE, "x.test", "s@x"], capture_output=True,
                       env={"MOAT_ROOT": root}, stdin=subprocess.DEVNULL)
    t.ok(p.returncode == 100 and not p.stdout, "no recipient: usage, 100")
    os.chmod(os.path.join(root, "control"), 0)
    with open(os.devnull, "rb") as f:
        p = subprocess.run(moattest.as_user_argv([REMOTE, "x.test", "s@x",
                                                  "r@x.test"]),
                           capture_output=True, stdin=f,
                           env={"MOAT_ROOT": root})
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        t.skip("unreadable control files: 111", "root reads anything")
    else:
        t.ok(p.returncode == 111 and not p.stdout,
             "unreadable control files: 111, no results", p)
    os.chmod(os.path.join(root, "control"), 0o755)
    remove_root(root)


try:
    for test in (test_basic, test_failover, test_equal, test_dns_failures,
                 test_big_answers, test_routes, test_self,
                 test_down_and_timeout, test_outcomes, test_size_and_8bit,
                 test_wire, test_hostile, test_port25, test_outgoingip,
                 test_ipv6, test_tls,
                 test_usage):
        try:
            test()
        except Exception as e:  # one broken test must not hide the rest
            import traceback
            t.ok(False, "%s raised %s" % (test.__name__, e),
                 traceback.format_exc())
            stop_all()
finally:
    stop_all()
    DNS.stop()
    shutil.rmtree(TMP, ignore_errors=True)
t.done()
