#!/usr/bin/env python3
"""moat-queue: the qmail-queue protocol, its exit codes, limits, and crash
safety (SIGKILL at every system call of an injection, via strace's fault
injection; write failures such as a full disk, likewise)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, make_root, remove_root, prog, queued, message,
                      envelope, strip_received, all_files, as_user_argv,
                      give_away)

t = Tap()
BODY = b"From: a@example.org\nSubject: crash test\n\n" + \
    b"".join(b"line %d of the body\n" % i for i in range(300))


def inject(root, body, env_bytes, wrap=(), extra_env=None):
    """run moat-queue with body on fd 0 and env_bytes on fd 1"""
    tmp = tempfile.mkdtemp()
    try:
        mf = os.path.join(tmp, "m")
        ef = os.path.join(tmp, "e")
        with open(mf, "wb") as f:
            f.write(body)
        with open(ef, "wb") as f:
            f.write(env_bytes)
        env = dict(os.environ, MOAT_ROOT=root)
        env.update(extra_env or {})
        if wrap:  # LeakSanitizer cannot run under ptrace
            env["ASAN_OPTIONS"] = "detect_leaks=0"
        with open(mf, "rb") as m, open(ef, "rb") as e:
            p = subprocess.run(list(wrap) + as_user_argv([prog("moat-queue")]),
                               stdin=m, stdout=e, stderr=subprocess.PIPE,
                               env=env, timeout=60)
        return p.returncode, p.stderr.decode("utf-8", "replace")
    finally:
        shutil.rmtree(tmp)


def leftovers(root):
    return sum(len(all_files(root, d)) for d in ("pid", "mess", "intd",
                                                   "todo"))


ENV = b"Fsender@example.org\0Trcpt1@localhost\0Trcpt2@example.net\0\0"

# --- the protocol
root = make_root()
code, err = inject(root, BODY, ENV)
t.ok(code == 0, "a well-formed injection exits 0", err)
ids = queued(root)
t.ok(len(ids) == 1, "exactly one message in todo/")
if ids:
    m = message(root, ids[0])
    t.ok(m.startswith(b"Received: (moat "), "a Received line comes first",
         m[:200])
    t.ok(strip_received(m) == BODY, "the message is stored byte for byte")
    s, r = envelope(root, ids[0])
    t.ok(s == "sender@example.org" and
         r == ["rcpt1@localhost", "rcpt2@example.net"],
         "the envelope keeps sender and recipients", (s, r))
    t.ok(ids[0] % 23 == int(os.path.basename(os.path.dirname(
        all_files(root, "todo")[0]))), "the split subdirectory is id % 23")
t.ok(not all_files(root, "pid"), "pid/ is empty after success")
remove_root(root)

# moat-clean's "P": pid files older than 36 hours go, in pid/N/ and in an
# unsplit pid/ alike; younger ones and other queue files stay
root = make_root()
q = os.path.join(root, "queue")
old = time.time() - 37 * 3600
paths = {"old_split": os.path.join(q, "pid", "5", "123.1.0"),
         "old_flat": os.path.join(q, "pid", "124.1.0"),
         "young": os.path.join(q, "pid", "7", "125.1.0"),
         "mess": os.path.join(q, "mess", "5", "28")}
for k, p in paths.items():
    with open(p, "w") as f:
        f.write("x")
    if k != "young":
        os.utime(p, (old, old))
give_away(root)
c = subprocess.run(as_user_argv([prog("moat-clean")]), input=b"P\0",
                   capture_output=True, env=dict(os.environ, MOAT_ROOT=root),
                   timeout=30)
t.ok(c.stdout == b"K\0" and not os.path.exists(paths["old_split"]) and
     not os.path.exists(paths["old_flat"]) and
     os.path.exists(paths["young"]) and os.path.exists(paths["mess"]),
     "moat-clean reaps stale pid files in pid/N/ and pid/, nothing else",
     (c.stdout, c.stderr, {k: os.path.exists(p) for k, p in paths.items()}))
remove_root(root)

# a queue made before pid/ was split (no pid/N/) still takes mail
root = make_root()
for i in range(23):
    os.rmdir(os.path.join(root, "queue", "pid", str(i)))
code, err = inject(root, BODY, ENV)
t.ok(code == 0 and len(queued(root)) == 1 and not all_files(root, "pid"),
     "a queue with an unsplit pid/ takes a message", err)
remove_root(root)

root = make_root()
code, _ = inject(root, b"", b"F\0\0")
t.ok(code == 0 and len(queued(root)) == 1,
     "null sender, no recipients, empty message: queued")
remove_root(root)

# --- errors leave nothing behind
cases = [
    ("EOF before the final NUL", ENV[:-1], 54),
    ("EOF in the middle of a record", b"Fsender@x\0Trcp", 54),
    ("empty envelope", b"", 54),
    ("bad first tag", b"Xsender@x\0Tr@x\0\0", 91),
    ("bad recipient tag", b"Fs@x\0Qr@x\0\0", 91),
    ("address too long", b"Fs@x\0T" + b"a" * 2000 + b"@x\0\0", 11),
    ("sender too long", b"F" + b"a" * 5000 + b"\0\0", 11),
]
for desc, env_bytes, want in cases:
    root = make_root()
    code, err = inject(root, BODY, env_bytes)
    t.ok(code == want, "%s: exit %d" % (desc, want), "got %d: %s" %
         (code, err))
    t.ok(leftovers(root) == 0, "%s: nothing left in the queue" % desc,
         all_files(root, ""))
    remove_root(root)

root = make_root()
many = b"Fs@x\0" + b"".join(b"Tr%d@x\0" % i for i in range(100001)) + b"\0"
code, err = inject(root, b"x\n", many)
t.ok(code == 91 and leftovers(root) == 0,
     "more than 100000 recipients: exit 91, nothing left", "%d %s" %
     (code, err))
remove_root(root)

root = make_root()
ok_many = b"Fs@x\0" + b"".join(b"Tr%d@x\0" % i for i in range(5000)) + b"\0"
code, err = inject(root, b"x\n", ok_many)
ids = queued(root)
t.ok(code == 0 and len(ids) == 1 and len(envelope(root, ids[0])[1]) == 5000,
     "5000 recipients are queued", err)
remove_root(root)

root = make_root()
shutil.rmtree(os.path.join(root, "queue", "pid"))
code, err = inject(root, BODY, ENV)
t.ok(code == 63, "missing queue/pid: exit 63", "%d %s" % (code, err))
remove_root(root)

root = make_root()
code, err = inject(root, BODY, ENV, extra_env={"MOAT_ROOT": root + "/nope"})
t.ok(code == 61, "missing root: exit 61", "%d %s" % (code, err))
remove_root(root)

# --- MOAT_IDFD reports the id
root = make_root()
r, w = os.pipe()
tmp = tempfile.mkdtemp()
with open(os.path.join(tmp, "m"), "wb") as f:
    f.write(BODY)
with open(os.path.join(tmp, "e"), "wb") as f:
    f.write(ENV)
with open(os.path.join(tmp, "m"), "rb") as m, \
        open(os.path.join(tmp, "e"), "rb") as e:
    p = subprocess.run(as_user_argv([prog("moat-queue")]), stdin=m, stdout=e,
                       env=dict(os.environ, MOAT_ROOT=root, MOAT_IDFD="3"),
                       close_fds=False, timeout=30,
                       preexec_fn=(lambda: os.dup2(w, 3)))
os.close(w)
idtext = os.read(r, 100).decode()
os.close(r)
shutil.rmtree(tmp)
t.ok(p.returncode == 0 and queued(root) == [int(idtext.strip() or 0)],
     "MOAT_IDFD receives the queue id", idtext)
remove_root(root)

# --- crash safety: SIGKILL at the N-th system call, for every N
if not shutil.which("strace"):
    t.skip("crash injection", "strace is not installed")
else:
    root = make_root()
    points = 0
    bad = []
    completed = False
    for n in range(1, 3000):
        code, err = inject(root, BODY, ENV, wrap=(
            "strace", "-f", "-qq", "-o", "/dev/null",
            "-e", "inject=all:signal=SIGKILL:when=%d" % n))
        if code == 0:
            completed = True  # fewer than n system calls: all covered
            break
        points += 1
        # every committed message must be whole
        for mid in queued(root):
            m = message(root, mid)
            s, rc = envelope(root, mid)
            if strip_received(m) != BODY or s != "sender@example.org" or \
                    rc != ["rcpt1@localhost", "rcpt2@example.net"]:
                bad.append((n, mid))
        if len(queued(root)) > 1:
            bad.append((n, "more than one message"))
        # start each point from an empty committed queue
        for f in all_files(root, "todo"):
            os.unlink(f)
    t.ok(completed and points > 20,
         "killed at each of %d system calls of an injection" % points)
    t.ok(not bad, "after every kill the queue holds the whole message or "
         "nothing committed", bad[:5])
    remove_root(root)

    # a full disk, a failing fsync, a failing link: failure, nothing queued
    for desc, spec, want in [
            ("disk full on write", "inject=write:error=ENOSPC:when=2+", 53),
            ("fsync fails", "inject=fsync:error=EIO", 53),
            ("link into todo fails", "inject=link:error=EIO:when=2", 66),
            ("link into mess fails", "inject=link:error=EIO:when=1", 64),
    ]:
        root = make_root()
        code, err = inject(root, BODY, ENV, wrap=(
            "strace", "-f", "-qq", "-o", "/dev/null", "-e", spec))
        t.ok(code == want and not queued(root) and leftovers(root) == 0,
             "%s: exit %d, nothing left" % (desc, want),
             "exit %d; files %s; %s" % (code, all_files(root, ""), err))
        remove_root(root)

t.done()
