#!/usr/bin/env python3
"""moat-inject: the header corpus in tests/inject (see its README.md), each
case run with `moat-inject -n` and compared to the exact expected output,
LF cases again with CRLF line ends; then limits, streaming of a large body,
real queueing through moat-queue, the queue's exit codes, and root
injecting into a queue that belongs to the unprivileged account."""
import os
import re
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, prog, make_root, write_control, remove_root,
                      queued, message, envelope, strip_received, give_away,
                      as_user_argv, unprivileged, SPLIT)

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "inject")
ROOT = os.geteuid() == 0

t = Tap()
CONTROL = {
    "me": "mail.example.org",
    "defaulthost": "example.org",
    "defaultdomain": "example.org",
    "plusdomain": "plus.example.org",
    "idhost": "id.example.org",
    "locals": "example.org\nlocalhost",
}
root = make_root(CONTROL)

DATE = (r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
        r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
        r"\d\d:\d\d:\d\d [+-]\d{4}")
MSGID = r"\d+\.\d+\.[0-9a-f]{16}@id\.example\.org"


def base_env(extra=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "USER": "alice", "MOAT_ROOT": root, "TZ": "UTC"}
    env.update(extra or {})
    return env


def inject(args, data, extra_env=None, argv0=None):
    p = subprocess.run([argv0 or prog("moat-inject")] + list(args),
                       input=data, capture_output=True,
                       env=base_env(extra_env), timeout=60)
    return p.returncode, p.stdout, p.stderr


def pattern(expected):
    """the expected output as a regex: @DATE@ and @MSGID@ match shapes"""
    parts = re.split(rb"(@DATE@|@MSGID@)", expected)
    rx = b""
    for p in parts:
        if p == b"@DATE@":
            rx += DATE.encode()
        elif p == b"@MSGID@":
            rx += MSGID.encode()
        else:
            rx += re.escape(p)
    return re.compile(rx + rb"\Z", re.S)


def readf(path):
    with open(path, "rb") as f:
        return f.read()


def lines_of(path):
    if not os.path.exists(path):
        return None
    data = readf(path).decode("utf-8")
    items = data.split("\n")
    if items and items[-1] == "":
        items.pop()
    return items


def diff(got, want):
    return "got:\n%s\nexpected:\n%s" % (
        got.decode("utf-8", "replace"), want.decode("utf-8", "replace"))


# --- the corpus ---
cases = sorted(f[:-3] for f in os.listdir(CORPUS) if f.endswith(".in"))
t.ok(len(cases) >= 30, "corpus has %d cases" % len(cases))
for name in cases:
    base = os.path.join(CORPUS, name)
    data = readf(base + ".in")
    args = lines_of(base + ".args") or []
    env = dict(l.split("=", 1) for l in (lines_of(base + ".env") or []))
    variants = [("", data)]
    if b"\r" not in data:
        variants.append((" (CRLF)", data.replace(b"\n", b"\r\n")))
    if os.path.exists(base + ".err"):
        code, text = lines_of(base + ".err")[:2]
        for tag, d in variants:
            rc, out, err = inject(["-n"] + args, d, env)
            t.ok(rc == int(code) and text.encode() in err and out == b"",
                 "%s%s: exit %s, says %r" % (name, tag, code, text),
                 "exit %d, stderr %r, stdout %r" % (rc, err, out[:200]))
        continue
    want = readf(base + ".out")
    rx = pattern(want)
    for tag, d in variants:
        rc, out, err = inject(["-n"] + args, d, env)
        t.ok(rc == 0 and rx.match(out) is not None, name + tag,
             "exit %d, stderr %r\n%s" % (rc, err, diff(out, want)))

# the generated Message-IDs differ from one run to the next
ids = set()
for _ in range(3):
    rc, out, err = inject(["-n"], b"To: a@example.net\n\nx\n")
    m = re.search(rb"Message-ID: <([^>]*)>", out)
    ids.add(m.group(1) if m else None)
t.ok(len(ids) == 3 and None not in ids, "Message-IDs are unique", ids)

# --- limits ---
long_field = b"To: a@example.net\nX-Long: " + b"x" * (70 * 1024) + b"\n\nbody\n"
rc, out, err = inject(["-n"], long_field)
t.ok(rc == 100 and b"longer than 64 KiB" in err,
     "a header field over 64 KiB is refused", err)

# envelope addresses: RFC 5321's path limit (254 bytes), not 64 for the
# local part: list managers give VERP senders longer than that with -f
verp = "list-bounces+" + "v" * 90 + "=example.net@lists.example.org"
rc, out, err = inject(["-n", "-f", verp, "a@example.net"],
                      b"Subject: verp\n\nx\n")
t.ok(rc == 0, "a %d-byte VERP sender (local part %d bytes) is taken" %
     (len(verp), verp.index("@")), err)
rc, out, err = inject(["-n", "x" * 250 + "@example.net"], b"\nx\n")
t.ok(rc == 100 and b"longer than 254 bytes" in err,
     "a 262-byte recipient is refused", err)
rc, out, err = inject(["-n", "y" * 200 + "@example.net"], b"\nx\n")
t.ok(rc == 0, "a 212-byte recipient is taken", err)

folded = b"To: a@example.net\nX-Folded: x\n" + \
    b"".join(b" %d\n" % i for i in range(20000)) + b"\nbody\n"
rc, out, err = inject(["-n"], folded)
t.ok(rc == 100 and b"longer than 64 KiB" in err,
     "a folded field over 64 KiB is refused", err)

many = b"To: a@example.net\n" + b"".join(
    b"X-%d: %s\n" % (i, b"y" * 200) for i in range(6000)) + b"\nbody\n"
rc, out, err = inject(["-n"], many)
t.ok(rc == 100 and b"larger than 1 MiB" in err,
     "a header over 1 MiB is refused", err)

too_many = b"To: a@example.net\n" + b"".join(
    b"X: %d\n" % i for i in range(10001)) + b"\nbody\n"
rc, out, err = inject(["-n"], too_many)
t.ok(rc == 100 and b"more than 10000 header fields" in err,
     "more than 10000 fields are refused", err)

rcpts = b"To: " + b", ".join(b"r%d@example.net" % i for i in range(3000)) + \
    b"\n\nbody\n"
rc, out, err = inject(["-n"], rcpts)
t.ok(rc == 0 and out.split(b"\n\n")[0].count(b"\nT") == 3000,
     "3000 recipients in one field",
     err)

# a long body line right after the header, and a large body, streamed
body = b"".join(b"line %d %s\r\n" % (i, b"z" * (i % 300))
                for i in range(60000))
big_line = b"q" * (3 * 1024 * 1024)
rc, out, err = inject(["-n", "a@example.net"], big_line + b"\r\n" + body)
t.ok(rc == 0 and out.endswith(b"\n\n" + big_line + b"\n" +
                              body.replace(b"\r\n", b"\n")),
     "a body without header starting with a 3 MiB line, %d bytes"
     % len(body), err)
rc, out, err = inject(["-n"], b"To: a@example.net\r\n\r\n" + body)
t.ok(rc == 0 and out.endswith(b"\n\n" + body.replace(b"\r\n", b"\n")),
     "a %d-byte CRLF body comes out with LF" % len(body), err)

# --- real queueing ---
msg = b"From: alice\nTo: bob@example.net, carol\nSubject: queued\n\nhello\n"
argv = as_user_argv([prog("moat-inject"), "-v"])
p = subprocess.run(argv, input=msg, capture_output=True, env=base_env(),
                   timeout=60)
ids = queued(root)
t.ok(p.returncode == 0 and len(ids) == 1, "queued through moat-queue",
     p.stderr)
if ids:
    sender, rs = envelope(root, ids[0])
    t.ok(sender == "alice@example.org" and
         rs == ["bob@example.net", "carol@example.org"],
         "the queued envelope", (sender, rs))
    stored = strip_received(message(root, ids[0]), 1)
    t.ok(re.match(rb"From: alice@example.org\nTo: bob@example.net, "
                  rb"carol@example.org\nSubject: queued\nDate: .*\n"
                  rb"Message-ID: <.*>\n\nhello\n\Z", stored),
         "the queued message", stored)
    t.ok(b"queued as %d" % ids[0] in p.stderr, "-v reports the queue id",
         p.stderr)
else:
    for d in ("envelope", "message", "-v"):
        t.ok(False, "queued " + d)

# --- the queue's exit codes ---
tmp = tempfile.mkdtemp(prefix="moat-inject-")
os.chmod(tmp, 0o755)


def fake_queue(code):
    path = os.path.join(tmp, "qq%d" % code)
    with open(path, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\ncat <&1 >/dev/null 2>&1\n"
                "exit %d\n" % code)
    os.chmod(path, 0o755)
    return path


for code, want in ((0, 0), (11, 100), (31, 100), (91, 100), (53, 111),
                   (81, 111)):
    rc, out, err = inject(["a@example.net"], b"Subject: x\n\nbody\n",
                          {"QMAILQUEUE": fake_queue(code)})
    t.ok(rc == want, "queue exit %d gives %d" % (code, want),
         "got %d: %r" % (rc, err))

rc, out, err = inject(["a@example.net"], b"Subject: x\n\nbody\n",
                      {"MOAT_ROOT": os.path.join(tmp, "nonexistent")})
t.ok(rc == 111, "a missing queue is a temporary failure (111)", err)

# the envelope and message a queue program receives
rec = os.path.join(tmp, "rec")
with open(os.path.join(tmp, "qqrec"), "w") as f:
    f.write("#!/bin/sh\ncat >%s.msg\ncat <&1 >%s.env\n" % (rec, rec))
os.chmod(os.path.join(tmp, "qqrec"), 0o755)
rc, out, err = inject(["-f", "s@example.net", "a@example.net", "b"],
                      b"Subject: x\n\nbody\n",
                      {"QMAILQUEUE": os.path.join(tmp, "qqrec")})
t.ok(rc == 0 and readf(rec + ".env") ==
     b"Fs@example.net\0Ta@example.net\0Tb@example.org\0\0",
     "the qmail-queue envelope on fd 1", err)
t.ok(readf(rec + ".msg").startswith(b"Subject: x\nFrom: alice@example.org\n"),
     "the message on fd 0")

# --- root and a queue that belongs to the run account ---
if ROOT:
    before = set(queued(root))
    p = subprocess.run([prog("moat-inject"), "bob@example.net"],
                       input=b"Subject: as root\n\nx\n", capture_output=True,
                       env=base_env(), timeout=60)
    new = sorted(set(queued(root)) - before)
    uid = unprivileged()[0]
    owners = set()
    for i in new:
        for d in ("mess", "todo"):
            owners.add(os.stat(os.path.join(root, "queue", d,
                                            str(i % SPLIT), str(i))).st_uid)
    t.ok(p.returncode == 0 and len(new) == 1 and owners == {uid},
         "root injecting into nobody's queue writes files nobody owns",
         "exit %d %r owners %r" % (p.returncode, p.stderr, owners))
    t.ok(b"invoked by uid %d" % uid in message(root, new[0]) if new else
         False, "moat-queue ran as the queue's owner")
else:
    t.skip("root injecting into nobody's queue", "not root")
    t.skip("moat-queue ran as the queue's owner", "not root")

remove_root(root)
subprocess.run(["rm", "-rf", tmp])
t.done()
