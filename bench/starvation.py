#!/usr/bin/env python3
"""bench/starvation.py [N]: does a burst of new mail starve delivery?

1. A message M0 to a user whose delivery defers is queued and deferred
   once (it waits for its retry, already preprocessed).
2. With delivery stopped (`moat run --hold`), N new messages (default
   10,000) are queued through SMTP: they sit in queue/todo, not yet
   preprocessed.
3. `moat run` starts with delivery; M0's user now accepts mail and
   moat-send is told to retry at once (SIGALRM).  Printed: how long until
   M0 is delivered, and how long until all N are delivered.

qmail-1.03 preprocesses every todo entry before it starts any delivery
(the "silly qmail syndrome"); moat-send preprocesses at most a batch of
todo entries between two rounds of dispatching, so M0 goes out at once.
"""
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from moattest import (MoatRun, make_root, remove_root, adduser, give_away,
                      maildir_files, pids_of, wait_for, queued)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
root = make_root()
adduser(root, "alice", "later")
dot = os.path.join(root, "mail", "later", ".qmail")


def setdot(text):
    with open(dot, "w") as f:
        f.write(text)
    give_away(dot)


setdot("|exit 111\n")
run = MoatRun(root=root)
with smtplib.SMTP(run.host, run.port) as s:
    s.sendmail("a@example.org", ["later@localhost"], b"Subject: M0\r\n\r\nx\r\n")
wait_for(lambda: "deferral" in run.logtext(), 30)
run.stop()
setdot("./Maildir/\n")

run = MoatRun(root=root, args=("--hold",))
t0 = time.time()


def inject(k):
    with smtplib.SMTP(run.host, run.port) as s:
        for i in range(k):
            s.sendmail("a@example.org", ["alice@localhost"],
                       b"Subject: burst\r\n\r\n" + b"y" * 4000 + b"\r\n")


threads = [threading.Thread(target=inject, args=(N // 10,)) for _ in range(10)]
for th in threads:
    th.start()
for th in threads:
    th.join()
print("queued %d messages in %.1f s (delivery held)" % (N, time.time() - t0))
run.stop()

run = MoatRun(root=root)
start = time.time()
sends = wait_for(lambda: pids_of("moat-send", run.proc.pid), 10)
os.kill(sends[0], signal.SIGALRM)
wait_for(lambda: maildir_files(root, "later"), 600, 0.01)
t_m0 = time.time() - start
wait_for(lambda: len(maildir_files(root, "alice")) >= N, 1200, 0.2)
t_all = time.time() - start
print("earlier message M0 delivered %.2f s after start" % t_m0)
print("all %d new messages delivered %.1f s after start (%.0f msg/s)" %
      (N, t_all, N / t_all))
run.stop()
remove_root(root)
