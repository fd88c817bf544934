#!/usr/bin/env python3
"""dsn: the delivery status notifications of src/lib/dsn.c, as a mail
reader sees them.  `$MOAT_UNIT/dsn --emit FILE ...` (the unit test binary)
builds one for the original message in FILE; Python's email package parses
it: a multipart/report of report-type delivery-status, a text/plain part, a
message/delivery-status part whose recipient blocks carry Final-Recipient,
Action, Status and Diagnostic-Code, and the original (message/rfc822) or
its header section (text/rfc822-headers).  A hostile diagnostic must not
add a header anywhere."""
import email
import email.policy
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.environ.get("MOAT_UNIT") or os.path.join(HERE, "..", "..",
                                                     "build", "tests")
PROG = os.path.join(UNIT, "dsn")

n = 0
failed = 0


def ok(cond, desc, diag=None):
    global n, failed
    n += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, desc))
    if not cond:
        failed += 1
        if diag is not None:
            for line in str(diag).splitlines():
                print("# " + line)
    sys.stdout.flush()
    return cond


ORIG = (b"Received: from client.example.org by mx.example.com\n"
        b"From: Alice <alice@example.org>\n"
        b"To: bob@example.net\n"
        b"Subject: lunch on Friday\n"
        b"Message-ID: <lunch-1@example.org>\n"
        b"\n"
        b"Shall we have lunch on Friday?\n"
        b"\n"
        b"-- \nAlice\n")


def emit(orig, *args):
    """the raw DSN for orig, or None (with a failed test line)"""
    with tempfile.NamedTemporaryFile(prefix="moat-dsn.") as f:
        f.write(orig)
        f.flush()
        p = subprocess.run([PROG, "--emit", f.name] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
    if p.returncode != 0:
        ok(False, "dsn --emit %s" % " ".join(args),
           p.stderr.decode("utf-8", "replace"))
        return None
    return p.stdout


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def all_headers(msg):
    """every (name, value) in msg, its parts and its delivery-status blocks"""
    out = []
    for part in msg.walk():
        out.extend(part.items())
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload():
                out.extend(block.items())
    return out


def long_lines(raw, skip=b""):
    """generated lines over 998 bytes (the included original aside)"""
    if skip:
        raw = raw.replace(skip, b"")
    return [l[:60] for l in raw.split(b"\n") if len(l) > 998]


def check_report(msg, what):
    """the outer structure; returns (text, status, third) parts or None"""
    if not ok(msg.get_content_type() == "multipart/report",
              "%s: multipart/report" % what, msg.get_content_type()):
        return None
    ok(msg.get_param("report-type") == "delivery-status",
       "%s: report-type=delivery-status" % what, msg.get_param("report-type"))
    ok(msg["Auto-Submitted"] == "auto-replied", "%s: Auto-Submitted" % what)
    ok(msg["MIME-Version"] == "1.0", "%s: MIME-Version" % what)
    ok(msg["Date"] is not None and msg["Date"].datetime is not None,
       "%s: a Date that parses" % what)
    ok(msg["From"] is not None and
       msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mx.example.com",
       "%s: From MAILER-DAEMON" % what, msg["From"])
    ok(msg["To"] is not None and
       msg["To"].addresses[0].addr_spec == "alice@example.org",
       "%s: To the sender" % what, msg["To"])
    ok(re.fullmatch(r"<\d+\.4711\.(bounce|delay)@mx\.example\.com>",
                    msg["Message-ID"] or "") is not None,
       "%s: Message-ID" % what, msg["Message-ID"])
    ok(not msg.defects, "%s: no defects" % what, msg.defects)
    parts = msg.get_payload()
    ok(isinstance(parts, list) and len(parts) == 3, "%s: three parts" % what,
       parts if not isinstance(parts, list) else len(parts))
    if not isinstance(parts, list) or len(parts) != 3:
        return None
    ok(parts[0].get_content_type() == "text/plain", "%s: text/plain" % what)
    ok(parts[1].get_content_type() == "message/delivery-status",
       "%s: message/delivery-status second" % what,
       parts[1].get_content_type())
    return parts


def blocks(part):
    """the delivery-status blocks: per message, then per recipient"""
    b = part.get_payload()
    return b if isinstance(b, list) else []


if not os.access(PROG, os.X_OK):
    print("1..1")
    print("not ok 1 - no %s (run make)" % PROG)
    sys.exit(0)

# a bounce and a delay warning together (the default recipients), whole
raw = emit(ORIG, "--envid", "ENV-77", "--retry-until", "2000000000")
if raw is not None:
    msg = parse(raw)
    parts = check_report(msg, "default")
    ok(msg["Subject"] == "Undelivered Mail Returned to Sender",
       "Subject for a bounce", msg["Subject"])
    if parts:
        text = parts[0].get_content()
        ok("bob@example.net" in text and "550 5.1.1" in text,
           "the text names the recipient and the reason", text)
        bl = blocks(parts[1])
        ok(len(bl) == 3, "three blocks: per message, two recipients",
           len(bl))
        if bl:
            ok(bl[0]["Reporting-MTA"] == "dns; mx.example.com",
               "Reporting-MTA", bl[0]["Reporting-MTA"])
            ok(bl[0]["Original-Envelope-Id"] == "ENV-77",
               "Original-Envelope-Id")
            ok(bl[0]["Arrival-Date"] is not None, "Arrival-Date")
        for i, b in enumerate(bl[1:], 1):
            for f in ("Final-Recipient", "Action", "Status",
                      "Diagnostic-Code", "Last-Attempt-Date"):
                ok(b[f] is not None, "recipient %d: %s" % (i, f))
            ok(re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", b["Status"] or "")
               is not None, "recipient %d: Status shape" % i, b["Status"])
        if len(bl) == 3:
            ok(bl[1]["Final-Recipient"] == "rfc822; bob@example.net" and
               bl[1]["Action"] == "failed" and bl[1]["Status"] == "5.1.1",
               "bob failed, 5.1.1", dict(bl[1].items()))
            ok(bl[1]["Diagnostic-Code"].startswith("smtp; 550 5.1.1"),
               "SMTP reply: Diagnostic-Code smtp", bl[1]["Diagnostic-Code"])
            ok(bl[1]["Remote-MTA"] == "dns; mx.example.net", "Remote-MTA")
            ok(bl[2]["Action"] == "delayed" and bl[2]["Status"] == "4.4.2",
               "carol delayed, 4.4.2", dict(bl[2].items()))
            ok(bl[2]["Diagnostic-Code"].startswith("x-moat; "),
               "other text: Diagnostic-Code x-moat", bl[2]["Diagnostic-Code"])
            ok(bl[2]["Will-Retry-Until"] is not None, "Will-Retry-Until")
        third = parts[2]
        ok(third.get_content_type() == "message/rfc822",
           "third part message/rfc822", third.get_content_type())
        inner = third.get_payload(0)
        ok(inner["Subject"] == "lunch on Friday" and
           inner["Message-ID"] == "<lunch-1@example.org>",
           "the original's header")
        ok(inner.get_payload() == ORIG.split(b"\n\n", 1)[1].decode(),
           "the original's body, exactly", repr(inner.get_payload()))
    ok(raw.count(ORIG) == 1, "the original byte for byte in the raw DSN")
    ok(not long_lines(raw), "no line over 998 bytes", long_lines(raw))
    ok(all(32 <= c < 127 or c in (9, 10) for c in raw),
       "printable ASCII throughout")

# only delayed: a delay warning
raw = emit(ORIG, "--rcpt", "dave@example.net", "d",
           "421 4.7.0 try again later", "mx2.example.net")
if raw is not None:
    msg = parse(raw)
    parts = check_report(msg, "delayed")
    ok(msg["Subject"] == "Delayed Mail (still being retried)",
       "Subject for a delay warning", msg["Subject"])
    if parts:
        bl = blocks(parts[1])
        ok(len(bl) == 2 and bl[1]["Action"] == "delayed" and
           bl[1]["Status"] == "4.7.0", "delayed, 4.7.0",
           [dict(b.items()) for b in bl])

# bigger than the cap: the header section only
big = ORIG + b"".join(b"line %d of a long body\n" % i for i in range(5000))
raw = emit(big, "--cap", "10000")
if raw is not None:
    msg = parse(raw)
    parts = check_report(msg, "over the cap")
    if parts:
        ok(parts[2].get_content_type() == "text/rfc822-headers",
           "over the cap: text/rfc822-headers", parts[2].get_content_type())
        h = parts[2].get_content()
        head = ORIG.split(b"\n\n", 1)[0].decode() + "\n"
        ok(h == head, "over the cap: exactly the header section", repr(h))
    ok(b"line 17 of a long body" not in raw, "over the cap: no body")
    ok(len(raw) < 10000, "over the cap: small", len(raw))

# headers only
raw = emit(ORIG, "--headers-only")
if raw is not None:
    parts = check_report(parse(raw), "headers only")
    if parts:
        ok(parts[2].get_content_type() == "text/rfc822-headers",
           "headers only: text/rfc822-headers")
        ok("Shall we" not in parts[2].get_content(), "headers only: no body")

# a hostile remote server
evil = "550 5.1.1 no\r\nX-Injected: yes\r\n\r\nX-Injected: again\n.\n"
raw = emit(ORIG, "--rcpt", "bob@example.net", "f", evil,
           "mx.example.net\r\nX-Injected: yes",
           "--rcpt", "carol@example.net\nX-Injected: yes", "f", "x" * 5000,
           "")
if raw is not None:
    msg = parse(raw)
    parts = check_report(msg, "hostile")
    names = [k.lower() for k, v in all_headers(msg)]
    ok("x-injected" not in names, "hostile: no X-Injected header anywhere",
       names)
    ok(not re.search(rb"(?m)^X-Injected", raw),
       "hostile: no line starts with X-Injected")
    if parts:
        bl = blocks(parts[1])
        ok(len(bl) == 3, "hostile: still two recipient blocks", len(bl))
        if len(bl) == 3:
            ok(bl[1]["Status"] == "5.1.1", "hostile: status kept")
            d = bl[1]["Diagnostic-Code"] or ""
            ok("\r" not in d and "\n" not in d and "X-Injected: yes" in d,
               "hostile: the text kept on one line", repr(d))
            ok(len(bl[2]["Diagnostic-Code"] or "") <= 998,
               "hostile: the long one cut")
    ok(not long_lines(raw, ORIG), "hostile: no line over 998 bytes")

# an 8-bit original
eight = ("Subject: caf\u00e9\nFrom: a@example.org\n\n\u00e9t\u00e9\n"
         ).encode("utf-8")
raw = emit(eight)
if raw is not None:
    msg = parse(raw)
    parts = check_report(msg, "8-bit")
    if parts:
        ok(parts[2]["Content-Transfer-Encoding"] == "8bit",
           "8-bit: the part is 8bit")
        ok(parts[2].get_payload(0)["Subject"] == "caf\u00e9",
           "8-bit: its header intact")

print("1..%d" % n)
sys.exit(1 if failed else 0)
