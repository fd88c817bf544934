#!/usr/bin/env python3
"""End to end through the whole chain: `moat run` relays for a listed
client, groups the recipients of one domain in one transaction, finds the
peer by MX through a real DNS server (dnsmasq), sends the exact bytes, turns
per-recipient refusals into one RFC 3464 bounce and deferrals into retries,
and a DNS failure into a deferral that succeeds after SIGALRM once DNS
answers."""
import email
import email.policy
import os
import signal
import smtplib
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "..", "lib")
sys.path.insert(0, LIB)
from moattest import (Tap, MoatRun, make_root, remove_root, write_control,  # noqa
                      adduser, maildir_files, read, wait_for, pids_of,
                      free_port, prog)
import dnstest  # noqa: E402
from peers import Peer  # noqa: E402

DEBPY = "/usr/bin/python3"
t = Tap()
if not dnstest.available() or subprocess.run(
        [DEBPY, "-c", "import aiosmtpd"], capture_output=True).returncode:
    print("1..0 # SKIP dnsmasq or python3-aiosmtpd missing")
    sys.exit(0)

TMP = tempfile.mkdtemp(prefix="moat-e2e-remote-")


def peer_at(host, port, **cfg):
    return Peer("smtp", host, port, dict(cfg, pipelining=True), TMP)


port = free_port("127.0.0.2")
peer = peer_at("127.0.0.2", port, rcpt={
    "bad@group.test": "550 5.1.1 no such user here",
    "later@group.test": "451 4.3.0 try again later"})
dns = dnstest.Dnsmasq(mx=[("group.test", "mx1.group.test", 10)],
                      hosts=[("mx1.group.test", "127.0.0.2")])
dns2 = None
root = make_root({"relayclients": "127.0.0.1", "nameservers": dns.server,
                  "smtproutes": "::%d" % port, "timeoutdns": "3",
                  "timeoutconnect": "5", "timeoutremote": "20"})
adduser(root, "alice")
run = MoatRun(root=root)
try:
    body = (b"From: alice@localhost\r\nSubject: out\r\n\r\n"
            b".leading dot\r\n8-bit \xc3\xa9\r\n" + b"z" * 900 + b"\r\nend\r\n")
    rcpts = ["good1@group.test", "good2@group.test", "bad@group.test",
             "later@group.test"]
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        t.ok(s.sendmail("alice@localhost", rcpts, body,
                        ["BODY=8BITMIME"]) == {},
             "a relay client may send to another domain")
    recs = wait_for(lambda: peer.records(), 30)
    t.ok(len(recs) == 1, "the peer found by MX got one transaction",
         run.logtext()[-2000:])
    if recs:
        r = recs[0]
        t.ok(sorted(r["rcpt_tos"]) == ["good1@group.test",
                                       "good2@group.test"],
             "the accepted recipients of the domain came in it together",
             r["rcpt_tos"])
        t.ok(r["mail_from"] == "alice@localhost", "the envelope sender")
        content = r["content"].encode("latin-1")
        t.ok(content.endswith(body) and b"\r\nReceived: " not in
             content[content.index(b"From: alice"):],
             "the exact bytes arrived (CRLF, the dot line, 8-bit)",
             repr(content[-200:]))
        t.ok(all(l.endswith(b"\r") or l == b"" for l in content.split(b"\n")),
             "every line ends with CRLF")
    bounce = wait_for(lambda: [m for m in map(read, maildir_files(root,
                                                                   "alice"))
                               if b"multipart/report" in m], 30)
    t.ok(bounce, "the refused recipient is bounced to the sender")
    if bounce:
        m = email.message_from_bytes(bounce[0], policy=email.policy.default)
        parts = list(m.iter_parts())
        blocks = parts[1].get_payload() if len(parts) > 1 else []
        fr = [str(b.get("Final-Recipient", "")) for b in blocks[1:]]
        t.ok(fr == ["rfc822; bad@group.test"],
             "only bad@group.test is in the report", fr)
        diag = str(blocks[1].get("Diagnostic-Code", "")) if len(blocks) > 1 \
            else ""
        t.ok("550" in diag and "no such user here" in diag and
             str(blocks[1].get("Status")) == "5.1.1",
             "with the remote server's words and status", diag)
    lst = subprocess.run([prog("moat"), "queue", "--root", root],
                         capture_output=True, text=True, timeout=30)
    t.ok("later@group.test" in lst.stdout and "pending" in lst.stdout,
         "the deferred recipient waits in the queue", lst.stdout)

    # a DNS failure defers; when DNS answers, SIGALRM delivers
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("alice@localhost", ["x@late.example"],
                   b"Subject: late\r\n\r\nlate body\r\n")
    t.ok(wait_for(lambda: "deferral: DNS lookup for late.example" in
                  run.logtext(), 30),
         "a DNS failure is a deferral", run.logtext()[-1500:])
    dns2 = dnstest.Dnsmasq(mx=[("late.example", "mx1.group.test", 10)],
                           hosts=[("mx1.group.test", "127.0.0.2")],
                           local=("test", "example"))
    write_control(root, "nameservers", dns2.server)
    for p in pids_of("moat-send", run.proc.pid):
        os.kill(p, signal.SIGALRM)
    got = wait_for(lambda: [r for r in peer.records()
                            if r["rcpt_tos"] == ["x@late.example"]], 30)
    t.ok(got, "after SIGALRM the message goes out", run.logtext()[-1500:])
finally:
    status = run.stop()
    peer.stop()
    dns.stop()
    if dns2:
        dns2.stop()
t.ok(status == 0, "moat run stops cleanly")
remove_root(root)
t.done()
