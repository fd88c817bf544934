#!/usr/bin/env python3
"""End to end, relayed: swaks submits to one `moat run` (127.0.0.1 is a
relay client through control/relayclients), which finds the destination by
MX (control/nameservers pointing at dnsmasq, relay.test MX mx.relay.test =
127.0.0.2) and delivers through moat-rspawn and moat-remote to a second
`moat run` listening on 127.0.0.2:25, whose locals include relay.test; the
message is read back from the Maildir byte for byte.  A client that is not
a relay client is refused.  Port 25 needs root: skipped otherwise."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import moattest  # noqa: E402
from moattest import (Tap, MoatRun, make_root, remove_root,  # noqa: E402
                      write_control, maildir_files, read, wait_for, adduser,
                      queued)

moattest.BIN = os.environ.get("MOAT_BIN") or os.path.join(HERE, "..", "..",
                                                           "bin")

t = Tap()
why = None
if os.geteuid() != 0:
    why = "needs root (a second moat run on 127.0.0.2:25)"
elif not os.path.exists(moattest.prog("moat-remote")) or \
        not os.path.exists(moattest.prog("moat-rspawn")):
    why = "moat-remote or moat-rspawn is not built"
elif not shutil.which("swaks"):
    why = "swaks not installed"
else:
    try:
        import dnstest
        if not dnstest.available():
            why = "dnsmasq not installed"
    except ImportError:
        why = "tests/lib/dnstest.py is missing"
if why:
    t.skip("a message relayed end to end", why)
    t.done()

# the message as the client has it; the Maildir gets it with LF line ends
BODY = ("From: Sender <sender@example.org>\n"
        "To: User <user@relay.test>\n"
        "Subject: relayed end to end\n"
        "Message-ID: <e2e-relay@example.org>\n"
        "\n"
        "first line\n"
        ".a line that starts with a dot\n"
        "..two dots\n"
        ".\n"
        "  indented, trailing space \n"
        "8-bit: caf\u00e9 \u00fcber\n" +
        "L" * 900 + "\n"
        "last line\n").encode("utf-8")


def descendants(pid):
    """every process below pid"""
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(p))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def stop(run):
    """stop a moat run and whatever it left behind (a delivery that hangs
    would otherwise outlive it)"""
    left = descendants(run.proc.pid)
    run.stop()
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def strip_added(msg):
    """(added header lines, the rest): Return-Path, Delivered-To and the
    four Received lines (moat-smtpd's and moat-queue's, in each moat) come
    first"""
    lines = msg.split(b"\n")
    i = 0
    while i < len(lines) and (lines[i].startswith(b"Return-Path:") or
                              lines[i].startswith(b"Delivered-To:")):
        i += 1
    k = 0
    while i < len(lines) and lines[i].startswith(b"Received:") and k < 4:
        i += 1
        k += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[:i]), b"\n".join(lines[i:])


dns = dnstest.Dnsmasq(mx=[("relay.test", "mx.relay.test", 10)],
                      hosts=[("mx.relay.test", "127.0.0.2")])
root_b = make_root({"me": "mx.relay.test",
                    "locals": "localhost\nrelay.test\n",
                    "rcpthosts": "localhost\nrelay.test\n"})
root_a = make_root({"me": "relay-a.example",
                    "relayclients": "127.0.0.1\n",
                    "nameservers": dns.server + "\n"})
adduser(root_b, "user")
run_a = run_b = None
tmp = tempfile.mkdtemp(prefix="moat-e2e-relay-")
try:
    run_b = MoatRun(root=root_b, host="127.0.0.2", port=25)
    run_a = MoatRun(root=root_a)
    datafile = os.path.join(tmp, "message")
    with open(datafile, "wb") as f:
        f.write(BODY[:-1])  # swaks ends the last line itself
    sw = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % run_a.port,
                         "--helo", "client.example.org",
                         "--from", "sender@example.org",
                         "--to", "user@relay.test", "--data", datafile],
                        capture_output=True, timeout=60,
                        stdin=subprocess.DEVNULL)
    out = sw.stdout.decode("utf-8", "replace")
    t.ok(sw.returncode == 0 and "queued as" in out,
         "swaks: the relay client's message is accepted", out[-1500:])

    files = wait_for(lambda: maildir_files(root_b, "user"), timeout=60)
    t.ok(len(files) == 1, "the message reaches the second moat's Maildir",
         "A:\n" + run_a.logtext()[-3000:] + "\nB:\n" +
         run_b.logtext()[-2000:])
    got = read(files[0]) if files else b""
    added, rest = strip_added(got)
    t.ok(rest == BODY, "byte for byte: CRLF, dot-stuffing and 8-bit undone "
         "exactly", got[:3000])
    t.ok(b"Return-Path: <sender@example.org>\n" in added + b"\n" and
         b"Delivered-To: user@relay.test\n" in added + b"\n",
         "Return-Path and Delivered-To on the receiving side", added)
    t.ok(added.count(b"Received:") == 4 and
         re.search(rb"Received: from relay-a\.example \(unknown \[127\.0\.0"
                   rb"\.1\]\)\n\t\(using TLSv1\.[23] with cipher [A-Z0-9_-]+"
                   rb"\)\n\tby mx\.relay\.test \(moat\) with ESMTPS;",
                   added) and
         b"Received: from client.example.org (unknown [127.0.0.1])\n"
         b"\tby relay-a.example (moat) with ESMTP;" in added,
         "the receiving moat's Received line names the relaying one (its "
         "helohost) and the TLS the two moats used (ESMTPS), below it the "
         "relaying moat's own", added)

    # moat A retires the message once B has it
    t.ok(wait_for(lambda: queued(root_a) == [], timeout=30),
         "the relaying moat's queue is empty afterwards", queued(root_a))
    log_a = run_a.logtext()
    t.ok("success" in log_a and "127.0.0.2" in log_a,
         "moat A logs the remote success with the server's address",
         log_a[-3000:])

    # a client that is not a relay client cannot relay
    sw = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % run_a.port,
                         "--local-interface", "127.0.0.3",
                         "--from", "sender@example.org",
                         "--to", "user@relay.test", "--body", "nope"],
                        capture_output=True, timeout=60,
                        stdin=subprocess.DEVNULL)
    out = sw.stdout.decode("utf-8", "replace")
    t.ok(sw.returncode != 0 and "<** 55" in out,
         "127.0.0.3, not in relayclients, is refused at RCPT", out[-1500:])
finally:
    for r in (run_a, run_b):
        if r is not None:
            stop(r)
    dns.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    remove_root(root_a)
    remove_root(root_b)
t.done()
