#!/usr/bin/env python3
"""The trigger fifo (moat-queue(5)): moat-queue writes one byte per
committed message naming its todo/ subdirectory (id % 23 + 1), so that
moat-send looks only there.  Any other byte makes it scan all of todo/,
and so does a fifo that was full (a writer then lost its byte).  Either
way a message is taken up at once, not at the 10-minute safety-net
rescan."""
import contextlib
import errno
import os
import re
import signal
import smtplib
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, make_root, remove_root, queued,  # noqa
                      maildir_files, wait_for, adduser, prog, as_user_argv,
                      pids_of, SPLIT)

t = Tap()
MSG = b"From: a@example.org\nSubject: trigger\n\nbody\n"
ENV = b"Fa@example.org\0Talice@localhost\0\0"


def fifo_path(root):
    return os.path.join(root, "queue", "lock", "trigger")


def inject(root, idfd=True):
    """moat-queue with MOAT_IDFD; returns (exit code, id)"""
    tmp = tempfile.mkdtemp()
    try:
        with open(os.path.join(tmp, "m"), "wb") as f:
            f.write(MSG)
        with open(os.path.join(tmp, "e"), "wb") as f:
            f.write(ENV)
        r, w = os.pipe()
        with open(os.path.join(tmp, "m"), "rb") as m, \
                open(os.path.join(tmp, "e"), "rb") as e:
            p = subprocess.run(as_user_argv([prog("moat-queue")]), stdin=m,
                               stdout=e, close_fds=False, timeout=30,
                               env=dict(os.environ, MOAT_ROOT=root,
                                        MOAT_IDFD="3"),
                               preexec_fn=(lambda: os.dup2(w, 3)))
        os.close(w)
        text = os.read(r, 100).decode()
        os.close(r)
        return p.returncode, int(text.strip() or -1)
    finally:
        shutil.rmtree(tmp)


def read_all(fd):
    out = b""
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not b:
            return out
        out += b


# --- moat-queue's byte names the subdirectory
root = make_root()
fd = os.open(fifo_path(root), os.O_RDWR | os.O_NONBLOCK)
bytes_ok, seen, n = True, set(), 0
for i in range(40):
    code, mid = inject(root)
    got = read_all(fd)
    n += 1
    if code != 0 or got != bytes([mid % SPLIT + 1]):
        bytes_ok = False
        t.diag("message %d: exit %d, id %d, trigger %r" % (i, code, mid, got))
        break
    seen.add(mid % SPLIT)
t.ok(bytes_ok, "each of %d messages wrote one byte: its id %% %d + 1" %
     (n, SPLIT))
t.ok(len(seen) > 1, "the messages fell in %d different subdirectories" %
     len(seen))
os.close(fd)
remove_root(root)


def stopped_scheduler(run):
    """moat-send, stopped once it holds the fifo open and has scanned"""
    if not wait_for(lambda: "moat-send: started" in run.logtext(), 10):
        raise RuntimeError("moat-send did not start:\n" + run.logtext())
    pids = pids_of("moat-send", run.proc.pid)
    if len(pids) != 1:
        raise RuntimeError("moat-send not found: %r" % pids)
    os.kill(pids[0], signal.SIGSTOP)
    return pids[0]


def smtp_one(run, i):
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("a@example.org", ["alice@localhost"],
                   b"Subject: trigger %d\r\n\r\nbody\r\n" % i)


def queued_ids(run):
    return [int(x) for x in re.findall(r"moat-smtpd: queued (\d+)",
                                       run.logtext())]


@contextlib.contextmanager
def moat_run():
    """`moat run` with the mailbox alice; stopped (which must succeed)
    and removed afterwards"""
    root = make_root()
    adduser(root, "alice")
    run = MoatRun(root=root)
    try:
        yield root, run
    finally:
        status = run.stop()
        t.ok(status == 0, "moat run stops cleanly")
        remove_root(root)


# --- a byte that names no subdirectory (as qmail's tools write) means all
with moat_run() as (root, run):
    pid = stopped_scheduler(run)
    smtp_one(run, 1)
    ids = queued_ids(run)
    # the scheduler is stopped: take its byte away, as if it were lost
    fd = os.open(fifo_path(root), os.O_RDWR | os.O_NONBLOCK)
    stolen = read_all(fd)
    t.ok(len(ids) == 1 and stolen == bytes([ids[0] % SPLIT + 1]),
         "the trigger held the message's byte", "%r %r" % (ids, stolen))
    os.kill(pid, signal.SIGCONT)
    t.ok(not wait_for(lambda: maildir_files(root, "alice"), 2),
         "without its byte the message waits (the safety net is 10 "
         "minutes away)")
    os.write(fd, b"\0")
    t.ok(wait_for(lambda: len(maildir_files(root, "alice")) == 1 and
                  not queued(root), 20),
         "a 0 byte makes moat-send find it at once")
    os.close(fd)

# --- a full fifo: a writer's byte is lost, so moat-send scans all of todo/
with moat_run() as (root, run):
    pid = stopped_scheduler(run)
    fd = os.open(fifo_path(root), os.O_WRONLY | os.O_NONBLOCK)
    filled = 0
    hint0 = bytes([1]) * 4096  # all for todo/0
    while filled < 4 << 20:
        try:
            filled += os.write(fd, hint0)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                raise
            # the last page may take less than 4096 bytes
            try:
                filled += os.write(fd, bytes([1]))
                continue
            except BlockingIOError:
                break
    os.close(fd)
    t.ok(filled >= 4096, "the fifo is full (%d bytes for todo/0)" % filled)
    # messages until one lands outside todo/0: its byte cannot be written
    for i in range(10):
        smtp_one(run, i)
        if any(x % SPLIT != 0 for x in queued_ids(run)):
            break
    ids = queued_ids(run)
    t.ok(any(x % SPLIT != 0 for x in ids),
         "a message outside todo/0 was accepted", ids)
    os.kill(pid, signal.SIGCONT)
    t.ok(wait_for(lambda: len(maildir_files(root, "alice")) == len(ids) and
                  not queued(root), 20),
         "all %d were delivered at once: a full fifo means scan all" %
         len(ids),
         "%d of %d" % (len(maildir_files(root, "alice")), len(ids)))

# --- a message that could not be preprocessed is tried again at the next
# trigger, whatever subdirectory that one names
with moat_run() as (root, run):
    info = [os.path.join(root, "queue", "info", str(i))
            for i in range(SPLIT)]
    modes = [os.stat(d).st_mode & 0o7777 for d in info]
    try:
        for d in info:
            os.chmod(d, 0o500)
        smtp_one(run, 1)
        failed = wait_for(lambda: "will retry" in run.logtext(), 10)
        t.ok(failed, "with info/ unwritable, preprocessing fails",
             run.logtext()[-500:])
        for d, m in zip(info, modes):
            os.chmod(d, m)
        ids = queued_ids(run)
        other = bytes([(ids[0] + 1) % SPLIT + 1]) if ids else b"\1"
        fd = os.open(fifo_path(root), os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, other)
        os.close(fd)
        t.ok(wait_for(lambda: len(maildir_files(root, "alice")) == 1 and
                      not queued(root), 20),
             "a trigger for another subdirectory retries it, and it is "
             "delivered")
    finally:
        for d, m in zip(info, modes):
            os.chmod(d, m)
t.done()
