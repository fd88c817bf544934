#!/usr/bin/env python3
"""Message ids are inode numbers, reused as soon as a message is gone.
With fast deliveries an id comes back within milliseconds; moat-send must
never take up a finished message again, nor let the removal of an old one
touch a new one with the same id.  1000 messages, no crash: each must be
taken up once and delivered exactly once."""
import os
import re
import shutil
import smtplib
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, make_root, remove_root, queued,  # noqa
                      maildir_files, wait_for, adduser)

N, THREADS = 1000, 10
t = Tap()
root = make_root()
adduser(root, "alice")
run = MoatRun(root=root)
errors = []


def send(k):
    """odd threads keep one session, even ones connect for each message
    (as smtp-source does): ids come back both ways"""
    try:
        s = None
        for i in range(k, N, THREADS):
            if s is None or k % 2 == 0:
                if s is not None:
                    s.quit()
                s = smtplib.SMTP(run.host, run.port, timeout=60)
            s.sendmail("a@example.org", ["alice@localhost"],
                       b"Subject: reuse %d\r\n\r\nbody %d\r\n" % (i, i))
        s.quit()
    except Exception as e:  # reported below
        errors.append(repr(e))


try:
    ths = [threading.Thread(target=send, args=(k,)) for k in range(THREADS)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(300)
    t.ok(not errors, "all %d messages were accepted" % N, errors[:3])
    # well before moat-send's 10-minute safety-net rescan: a new message
    # that reused a retiring one's id must not wait for it
    t.ok(wait_for(lambda: len(maildir_files(root, "alice")) >= N and
                  not queued(root), 120), "the queue drains")
    log = run.logtext()
    news = re.findall(r"new msg (\d+)", log)
    t.ok(len(news) == N, "each message was taken up once (%d)" % len(news))
    ids = re.findall(r"moat-smtpd: queued (\d+)", log)
    t.ok(len(set(ids)) < len(ids), "ids were reused (%d distinct of %d)" %
         (len(set(ids)), len(ids)))
    subjects = []
    for f in maildir_files(root, "alice"):
        with open(f, "rb") as fh:
            m = re.search(rb"\nSubject: reuse (\d+)\n", fh.read())
            subjects.append(int(m.group(1)) if m else -1)
    t.ok(sorted(subjects) == list(range(N)),
         "each was delivered exactly once",
         "%d files, missing %s" % (len(subjects),
                                   sorted(set(range(N)) - set(subjects))[:10]))
finally:
    status = run.stop()
t.ok(status == 0, "moat run stops cleanly")
remove_root(root)

# the same at smtp-source's pace (Debian's postfix package): a connection
# per message, ten at a time, as fast as they go.  Here a new message
# regularly gets the id of one that moat-clean is still retiring.
M = 2000
if not shutil.which("smtp-source"):
    t.skip("smtp-source pace", "smtp-source is not installed")
else:
    root = make_root()
    adduser(root, "alice")
    run = MoatRun(root=root)
    try:
        r = subprocess.run(["smtp-source", "-s", "10", "-m", str(M),
                            "-l", "512", "-f", "a@example.org",
                            "-t", "alice@localhost",
                            "%s:%d" % (run.host, run.port)],
                           capture_output=True, timeout=300)
        t.ok(r.returncode == 0, "smtp-source sent %d messages" % M,
             r.stderr)
        # moat-send's safety-net rescan is 10 minutes away: a message
        # left in todo/ would still be there
        t.ok(wait_for(lambda: len(maildir_files(root, "alice")) >= M and
                      not queued(root), 120),
             "the queue drains (%d delivered)" %
             len(maildir_files(root, "alice")))
        log = run.logtext()
        t.ok(len(re.findall(r"new msg (\d+)", log)) == M and
             len(maildir_files(root, "alice")) == M,
             "each message was taken up and delivered once")
    finally:
        status = run.stop()
    t.ok(status == 0, "moat run stops cleanly")
    remove_root(root)
remove_root(root)
t.done()
