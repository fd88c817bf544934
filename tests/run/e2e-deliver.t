#!/usr/bin/env python3
"""End to end: smtplib -> `moat run` -> Maildir, read back byte for byte;
many recipients; unknown users refused at RCPT; bounces as RFC 3464 reports
(parsed by Python's email package); queuelifetime with SIGALRM retries;
double bounces; .qmail program deliveries and extensions."""
import email
import email.policy
import os
import signal
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, make_root, remove_root, prog, queued,
                      write_control, maildir_files, read, wait_for, adduser,
                      pids_of, give_away)

t = Tap()
root = make_root()
adduser(root, "alice", "bob", *["u%d" % i for i in range(40)], "later",
        "prog")
# a user whose deliveries always defer, and one with a program delivery
for box, dot in (("later", "|exit 111\n"),
                 ("prog", "|env > \"$HOME/env.out\"; cat > \"$HOME/msg.out\"\n"
                          "./Maildir/\n")):
    p = os.path.join(root, "mail", box, ".qmail")
    with open(p, "w") as f:
        f.write(dot)
    give_away(p)
run = MoatRun(root=root)


def strip_added(msg, n_received=2):
    """the message after Return-Path, Delivered-To and Received lines"""
    lines = msg.split(b"\n")
    i = 0
    while i < len(lines) and (lines[i].startswith(b"Return-Path:") or
                              lines[i].startswith(b"Delivered-To:")):
        i += 1
    k = 0
    while i < len(lines) and lines[i].startswith(b"Received:") and \
            k < n_received:
        i += 1
        k += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[:i]), b"\n".join(lines[i:])


def msgs(box):
    return [read(f) for f in maildir_files(root, box)]


try:
    body = ("From: sender@example.org\r\nSubject: delivery\r\n\r\n"
            ".dot-led line\r\n..two\r\n" + "L" * 6000 + "\r\n"
            "8-bit: caf\u00e9 \u00fcber \u65e5\u672c\r\n" "end\r\n")
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        t.ok(s.sendmail("sender@example.org", ["alice@localhost"],
                        body.encode("utf-8"), ["BODY=8BITMIME"]) == {},
             "a message to alice is accepted")
    got = wait_for(lambda: msgs("alice"))
    t.ok(len(got) == 1, "it appears in alice's Maildir/new",
         run.logtext()[-2000:])
    if got:
        head, rest = strip_added(got[0])
        t.ok(rest == body.replace("\r\n", "\n").encode("utf-8"),
             "the delivered message is byte for byte what was sent",
             repr(rest[:200]))
        t.ok(head.startswith(b"Return-Path: <sender@example.org>\n"
                             b"Delivered-To: alice@localhost\n"),
             "Return-Path and Delivered-To come first", head[:200])
    t.ok(wait_for(lambda: not queued(root), 10), "the queue is empty again",
         run.logtext()[-1500:])

    # many recipients
    many = ["u%d@localhost" % i for i in range(40)] + ["bob@localhost"]
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        t.ok(s.sendmail("sender@example.org", many,
                        b"Subject: many\r\n\r\nto forty-one\r\n") == {},
             "a message to 41 recipients is accepted")
    ok = wait_for(lambda: all(len(msgs("u%d" % i)) == 1 for i in range(40))
                  and len(msgs("bob")) == 1, 60)
    t.ok(ok, "each of the 41 Maildirs has its copy")
    t.ok(all(b"Delivered-To: u%d@localhost\n" % i in msgs("u%d" % i)[0]
             for i in range(40) if msgs("u%d" % i)),
         "each copy has its own Delivered-To line")

    # unknown users are refused at RCPT time
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.ehlo()
        s.mail("sender@example.org")
        code, text = s.rcpt("nosuchuser@localhost")
        t.ok(code == 550 and b"5.1.1" in text,
             "an unknown local user gets 550 5.1.1 at RCPT", (code, text))
        code, _ = s.rcpt("bob@localhost")
        t.ok(code == 250, "a known one in the same transaction gets 250")
        s.rset()

    # virtualdomains at RCPT, as moat-send will route: an address without
    # a domain is looked up whole with envnoathost added
    write_control(root, "rcpthosts", "localhost\nvirt.example")
    write_control(root, "envnoathost", "virt.example")
    write_control(root, "virtualdomains",
                  "keep@virt.example:\nvirt.example:nosuch")
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.ehlo()
        s.mail("sender@example.org")
        code, text = s.rcpt("x@virt.example")
        t.ok(code == 550 and b"5.1.1" in text, "a virtual domain's user "
             "whose prepended name nobody takes gets 550 5.1.1", (code, text))
        code, text = s.rcpt("keep")
        t.ok(code == 250, "an address without a domain whose whole-address "
             "line (with envnoathost) is an exception is not refused",
             (code, text))
        code, text = s.rcpt("other")
        t.ok(code == 550, "... another one falls to the domain's line and is "
             "refused", (code, text))
        s.rset()
    for name in ("rcpthosts", "envnoathost", "virtualdomains"):
        os.unlink(os.path.join(root, "control", name))

    # a program delivery sees its environment
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("sender@example.org", ["prog@localhost"],
                   b"Subject: to a program\r\n\r\nprogram body\r\n")
    envf = os.path.join(root, "mail", "prog", "env.out")
    t.ok(wait_for(lambda: os.path.exists(envf) and msgs("prog"), 20),
         "the .qmail program ran and the Maildir line delivered too")
    if os.path.exists(envf):
        env = dict(l.split("=", 1) for l in read(envf).decode().splitlines()
                   if "=" in l)
        t.ok(env.get("SENDER") == "sender@example.org" and
             env.get("RECIPIENT") == "prog@localhost" and
             env.get("LOCAL") == "prog" and env.get("HOST") == "localhost",
             "SENDER, RECIPIENT, LOCAL, HOST reach the program",
             {k: env.get(k) for k in ("SENDER", "RECIPIENT", "LOCAL",
                                      "HOST")})
        msgout = read(os.path.join(root, "mail", "prog", "msg.out"))
        t.ok(msgout.endswith(b"\nprogram body\n"),
             "the program read the message on stdin")

    # a bounce, parsed as an RFC 3464 report
    write_control(root, "rcptcheck", "0")
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("alice@localhost", ["nosuchuser@localhost"],
                   b"Subject: will bounce\r\nMessage-ID: <b1@x>\r\n\r\n"
                   b"bounce me\r\n")
    got = wait_for(lambda: len(msgs("alice")) == 2 and msgs("alice"), 30)
    t.ok(got, "alice receives a bounce", run.logtext()[-2000:])
    if got:
        bounce = [m for m in got if b"multipart/report" in m]
        t.ok(len(bounce) == 1, "the bounce is a multipart/report")
        if bounce:
            head, _ = strip_added(bounce[0], 1)
            t.ok(b"Return-Path: <>\n" in head,
                 "the bounce has the null envelope sender", head)
            m = email.message_from_bytes(bounce[0],
                                         policy=email.policy.default)
            t.ok(m.get_content_type() == "multipart/report" and
                 m.get_param("report-type") == "delivery-status",
                 "Content-Type multipart/report; "
                 "report-type=delivery-status")
            parts = list(m.iter_parts())
            t.ok(len(parts) == 3 and parts[1].get_content_type() ==
                 "message/delivery-status",
                 "three parts, the second message/delivery-status",
                 [p.get_content_type() for p in parts])
            if len(parts) == 3:
                blocks = parts[1].get_payload()
                rb = blocks[1] if len(blocks) > 1 else {}
                t.ok(str(rb.get("Final-Recipient", "")).endswith(
                    "nosuchuser@localhost") and
                    str(rb.get("Action", "")) == "failed" and
                    str(rb.get("Status", "")).startswith("5.") and
                    rb.get("Diagnostic-Code") is not None,
                    "Final-Recipient, Action: failed, Status 5.x.x, "
                    "Diagnostic-Code", dict(rb) if rb else blocks)
                t.ok(b"bounce me" in parts[2].as_bytes(),
                     "the original message is included")

    # queuelifetime: a deferred message bounces once it is too old
    write_control(root, "queuelifetime", "2")
    sends = pids_of("moat-send", run.proc.pid)
    os.kill(sends[0], signal.SIGHUP)
    before = len(msgs("alice"))
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("alice@localhost", ["later@localhost"],
                   b"Subject: deferred\r\n\r\nnot now\r\n")
    time.sleep(3)
    os.kill(sends[0], signal.SIGALRM)  # retry now: too old, so it bounces
    got = wait_for(lambda: len(msgs("alice")) > before, 20)
    t.ok(got, "after queuelifetime, a SIGALRM retry ends in a bounce",
         run.logtext()[-2000:])
    if got:
        new = [m for m in msgs("alice") if b"not now" in m and
               b"multipart/report" in m]
        t.ok(len(new) == 1 and b"too long" in new[0],
             "the bounce says the message was in the queue too long")
    write_control(root, "queuelifetime", "604800")
    os.kill(sends[0], signal.SIGHUP)

    # double bounce: a bounce that cannot be delivered goes to postmaster
    pm_before = len(msgs("postmaster"))
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("", ["nosuchuser@localhost"],
                   b"Subject: from the null sender\r\n\r\nx\r\n")
    got = wait_for(lambda: len(msgs("postmaster")) > pm_before, 30)
    t.ok(got, "a failed message from <> is reported to postmaster",
         run.logtext()[-2000:])
    t.ok(wait_for(lambda: not queued(root), 20),
         "the queue drains completely", queued(root))
finally:
    status = run.stop()
t.ok(status == 0, "moat run stops cleanly", run.logtext()[-1500:])
remove_root(root)
t.done()
