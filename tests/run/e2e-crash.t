#!/usr/bin/env python3
"""Crash safety of delivery: while a few hundred messages flow from SMTP to
Maildirs, moat-send and moat-local are killed with SIGKILL at random
moments (moat run restarts its delivery chain); in the end every accepted
message has been delivered at least once and no Maildir holds a partial
message."""
import os
import random
import signal
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, make_root, remove_root, queued, give_away,
                      maildir_files, read, wait_for, adduser, pids_of)

N = 300
t = Tap()
root = make_root()
adduser(root, "alice", "bob")
# alice's deliveries take a moment, so there is a moat-local to kill
p = os.path.join(root, "mail", "alice", ".qmail")
with open(p, "w") as f:
    f.write("|sleep 0.1\n./Maildir/\n")
give_away(p)
run = MoatRun(root=root)
rng = random.Random(int(os.environ.get("MOAT_SEED", "0")) or None)
accepted = {}
lock = threading.Lock()


def body(i):
    return (b"Subject: crash %d\r\n\r\n" % i +
            b"".join(b"line %d of message %d\r\n" % (k, i) for k in range(60))
            + b"END-%d\r\n" % i)


def sender(ids):
    for i in ids:
        box = "alice" if i % 2 else "bob"
        for attempt in range(5):
            try:
                with smtplib.SMTP(run.host, run.port, timeout=30) as s:
                    s.sendmail("sender@example.org", ["%s@localhost" % box],
                               body(i))
                with lock:
                    accepted[i] = box
                time.sleep(0.02)  # spread the load over the kills
                break
            except (smtplib.SMTPException, OSError):
                time.sleep(0.2)


kills = {"moat-send": 0, "moat-local": 0}
try:
    threads = [threading.Thread(target=sender, args=(range(k, N, 4),))
               for k in range(4)]
    for th in threads:
        th.start()
    # kill for at least 5 s, and as long as messages are still coming in
    start = time.time()
    while (time.time() < start + 5 or
           any(th.is_alive() for th in threads)) and time.time() < start + 120:
        time.sleep(rng.uniform(0.01, 0.05))
        # moat-send at most 3 times (moat run gives up on a chain that
        # dies 5 times a minute); moat-local whenever one is caught
        if kills["moat-send"] < 3 and rng.random() < 0.05:
            name = "moat-send"
        else:
            name = "moat-local"
        pids = pids_of(name, run.proc.pid)
        if pids and (name == "moat-send" or kills["moat-local"] < 20):
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills[name] += 1
            except ProcessLookupError:
                pass
    for th in threads:
        th.join(60)
    t.ok(len(accepted) == N, "all %d messages were accepted" % N,
         "%d accepted" % len(accepted))
    t.ok(kills["moat-send"] >= 1 and kills["moat-local"] >= 1, "moat-send was killed %d times, "
         "moat-local %d times" % (kills["moat-send"], kills["moat-local"]))

    def drained():
        for p in pids_of("moat-send", run.proc.pid):
            try:
                os.kill(p, signal.SIGALRM)  # retry deferred ones now
            except ProcessLookupError:
                pass
        return not queued(root)
    t.ok(wait_for(drained, 120, 0.5), "the queue drains",
         "%d left" % len(queued(root)))

    seen = {}
    partial = []
    for box in ("alice", "bob"):
        for f in maildir_files(root, box):
            data = read(f)
            subj = [l for l in data.split(b"\n") if l.startswith(b"Subject: crash ")]
            if not subj:
                partial.append(f)
                continue
            i = int(subj[0].split()[-1])
            want = body(i).replace(b"\r\n", b"\n")
            if not data.endswith(want):
                partial.append(f)
                continue
            seen.setdefault(i, []).append(box)
    missing = [i for i, box in accepted.items() if box not in seen.get(i, [])]
    dups = sum(len(v) - 1 for v in seen.values())
    t.ok(not missing, "every accepted message was delivered at least once",
         "missing: %s" % missing[:20])
    t.ok(not partial, "no Maildir holds a partial message", partial[:5])
    t.diag("duplicates after crashes: %d (allowed: delivery is "
           "at-least-once)" % dups)
finally:
    status = run.stop()
t.ok(status == 0, "moat run stops cleanly", run.logtext()[-1500:])
remove_root(root)
t.done()
