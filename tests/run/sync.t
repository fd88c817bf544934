#!/usr/bin/env python3
"""When moat-send commits a preprocessed message (moat-queue(5), STATES).

moat-send writes info/ and local/ or remote/ without flushing them and
starts delivering at once; todo/ stays the commit mark until it has
flushed them.  Mail delivered at its first attempt is retired without
that flush; anything that has to wait is committed (todo/ and intd/
removed, info/ kept): a deferred recipient, a delivery still running
after one to two seconds, a message still waiting for a slot when moat-send stops.
One whose files cannot be flushed is never committed from them.
A crash before the commit delivers the message again, never loses it."""
import contextlib
import os
import signal
import smtplib
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, make_root, remove_root, queued,  # noqa
                      maildir_files, read, wait_for, adduser, give_away,
                      pids_of, free_port, QUEUE_DIRS, SPLIT)

t = Tap()


def qfile(root, d, mid):
    return os.path.join(root, "queue", d, str(mid % SPLIT), str(mid))


def has(root, d, mid):
    return os.path.exists(qfile(root, d, mid))


def marked_done(root, d, mid, rcpt):
    """rcpt's record in d/N/mid (local or remote) says done (D)"""
    try:
        with open(qfile(root, d, mid), "rb") as f:
            return b"\0D%s\0" % rcpt.encode() in b"\0" + f.read()
    except OSError:
        return False


def leftovers(root):
    """every file left in the queue's message directories"""
    out = []
    for d in QUEUE_DIRS + ["error"]:
        base = os.path.join(root, "queue", d)
        if not os.path.isdir(base):
            continue
        for i in range(SPLIT):
            out += ["%s/%d/%s" % (d, i, n)
                    for n in os.listdir(os.path.join(base, str(i)))]
    return out


def send(run, rcpts, subject):
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("sender@example.org", rcpts,
                   b"Subject: %s\r\n\r\nbody of %s\r\n" %
                   (subject.encode(), subject.encode()))


def send_id(run, rcpts, subject):
    """send one message; its queue id, from the 250 after DATA"""
    s = smtplib.SMTP(run.host, run.port, timeout=30)
    try:
        s.mail("sender@example.org")
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                raise RuntimeError("RCPT %s: %d %s" % (r, code, text))
        code, text = s.data(b"Subject: %s\r\n\r\nbody of %s\r\n" %
                            (subject.encode(), subject.encode()))
    finally:
        s.quit()
    words = text.decode().split()
    return int([w for w in words if w.isdigit()][-1])


def slow_box(root, name, seconds):
    p = os.path.join(root, "mail", name, ".qmail")
    with open(p, "w") as f:
        f.write("|sleep %s\n./Maildir/\n" % seconds)
    give_away(p)


def subjects(root, box):
    out = []
    for f in maildir_files(root, box):
        for line in read(f).split(b"\n"):
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode())
    return sorted(out)


def start(control=None, slow=None):
    """a fresh run directory with alice (slow: her deliveries first
    sleep that long), and moat run on it"""
    root = make_root(control)
    adduser(root, "alice")
    if slow:
        slow_box(root, "alice", slow)
    return root, MoatRun(root=root)


@contextlib.contextmanager
def scenario(control=None, slow=None, stop_timeout=10):
    """start(); at the end moat run must stop cleanly, and the run
    directory goes"""
    root, run = start(control, slow)
    try:
        yield root, run
    finally:
        t.ok(run.stop(stop_timeout) == 0, "moat run stops cleanly")
        remove_root(root)


def preprocessed(root, run, rcpts, subject, desc):
    """send one message and see its info/ file appear; its id"""
    mid = send_id(run, rcpts, subject)
    t.ok(wait_for(lambda: has(root, "info", mid), 5), desc)
    return mid


# --- delivered at once: retired without a commit, nothing left ---------
with scenario() as (root, run):
    for i in range(20):
        send(run, ["alice@localhost"], "fast %d" % i)
    t.ok(wait_for(lambda: len(maildir_files(root, "alice")) >= 20 and
                  not leftovers(root), 30),
         "20 messages delivered at once: the queue is empty (no todo, "
         "intd, info, local or mess file left)", leftovers(root)[:10])
    t.ok(subjects(root, "alice") == sorted("fast %d" % i for i in range(20)),
         "... each delivered exactly once", subjects(root, "alice"))

# --- a delivery still running after 1-2 s: committed meanwhile --------
with scenario(slow=4) as (root, run):
    mid = preprocessed(root, run, ["alice@localhost"], "slow",
                       "the slow message is preprocessed")
    committed = wait_for(lambda: not has(root, "todo", mid) and
                         not has(root, "intd", mid), 3.5, 0.02)
    running = bool(pids_of("moat-local", run.proc.pid))
    t.ok(committed and running and has(root, "info", mid) and
         has(root, "local", mid) and has(root, "mess", mid),
         "while its delivery still runs, it is committed: todo and intd "
         "gone, info, local and mess kept",
         "committed %s, moat-local running %s, files %s" %
         (committed, running, leftovers(root)))
    t.ok(wait_for(lambda: subjects(root, "alice") == ["slow"] and
                  not leftovers(root), 15),
         "then it is delivered once and retired", leftovers(root))

# --- a flush that fails: never committed from those files --------------
with scenario(slow=3) as (root, run):
    mid = preprocessed(root, run, ["alice@localhost"], "unflushable",
                       "the message is preprocessed")
    os.chmod(qfile(root, "info", mid), 0)  # moat-send can no longer open it
    t.ok(wait_for(lambda: "stays in todo/" in run.logtext(), 5),
         "info/ cannot be flushed: moat-send says the message stays in todo/",
         run.logtext()[-800:])
    t.ok(has(root, "todo", mid) and has(root, "intd", mid),
         "... and todo and intd are kept", leftovers(root))
    t.ok(wait_for(lambda: subjects(root, "alice") == ["unflushable"] and
                  not leftovers(root), 15),
         "the running delivery finishes; the message is delivered once and "
         "retired, todo included", leftovers(root))

# --- a deferred recipient: committed at once ----------------------------
root, run = start({"smtproutes": "down.example:[127.0.0.1]:%d" % free_port(),
                   "timeoutconnect": "1", "relayclients": "127.0.0.0/8"})
try:
    mid = send_id(run, ["alice@localhost", "bob@down.example"], "deferred")
    t.ok(wait_for(lambda: "deferral" in run.logtext(), 15),
         "the remote recipient is deferred (connection refused)")
    t.ok(wait_for(lambda: not has(root, "todo", mid), 0.5, 0.02) and
         not has(root, "intd", mid) and has(root, "info", mid) and
         has(root, "remote", mid),
         "the deferred message is committed: todo and intd gone, info and "
         "remote kept", leftovers(root))
    t.ok(wait_for(lambda: subjects(root, "alice") == ["deferred"], 10),
         "the local recipient has it")
finally:
    t.ok(run.stop() == 0, "moat run stops cleanly")
# the next start takes it up where it was: no local delivery again
run = MoatRun(root=root)
try:
    t.ok(wait_for(lambda: "started: 1 messages" in run.logtext(), 10),
         "after a restart the message is still queued", run.logtext())
    time.sleep(1)
    t.ok(subjects(root, "alice") == ["deferred"] and queued(root) == [mid],
         "... and the local recipient, done, is not delivered again",
         subjects(root, "alice"))
finally:
    t.ok(run.stop() == 0, "moat run stops cleanly")
remove_root(root)

# --- stopping: what waits for a slot is committed first ----------------
root, run = start({"concurrencylocal": "1"}, slow=1.5)
try:
    first = send_id(run, ["alice@localhost"], "first")
    second = send_id(run, ["alice@localhost"], "second")
    t.ok(wait_for(lambda: has(root, "info", second), 5),
         "the second message is preprocessed")
    time.sleep(0.3)
    t.ok(has(root, "todo", second),
         "... and waits for the only local slot, uncommitted (todo kept)")
    run.proc.send_signal(signal.SIGTERM)
    run.proc.wait(20)
    t.ok(run.proc.returncode == 0, "moat run stops cleanly after the "
         "running delivery")
    t.ok(subjects(root, "alice") == ["first"] and
         not has(root, "todo", second) and has(root, "info", second),
         "the first was delivered; the second was committed before the "
         "stop (todo gone, info kept)",
         "%s %s" % (subjects(root, "alice"), leftovers(root)))
    run.log.close()
finally:
    if run.proc.poll() is None:
        run.stop()
run = MoatRun(root=root)
try:
    t.ok(wait_for(lambda: subjects(root, "alice") == ["first", "second"]
                  and not leftovers(root), 15),
         "after a restart the second is delivered, and each once",
         "%s %s" % (subjects(root, "alice"), leftovers(root)))
finally:
    t.ok(run.stop() == 0, "moat run stops cleanly")
remove_root(root)

# --- moat-send crashes after a delivery, before the commit ------------
# the machine did not crash, so its files are whole: the next moat-send
# goes on from them, and the done recipient is not delivered again
stall = socket.socket()
stall.bind(("127.0.0.1", 0))
stall.listen(8)
held = []


def hold():
    """a remote host that accepts and never greets"""
    while True:
        try:
            c, _ = stall.accept()
        except OSError:
            return
        held.append(c)


threading.Thread(target=hold, daemon=True).start()
root, run = start({"smtproutes": "stall.example:[127.0.0.1]:%d" %
                   stall.getsockname()[1], "timeoutremote": "4",
                   "relayclients": "127.0.0.0/8"})
try:
    mid = send_id(run, ["alice@localhost", "bob@stall.example"], "adopted")
    # delivered, and moat-send has recorded it (the kill must not fall in
    # between: that delivery would be made again, as it may)
    t.ok(wait_for(lambda: subjects(root, "alice") == ["adopted"] and
                  marked_done(root, "local", mid, "alice@localhost"), 5,
                  0.01),
         "the local recipient has it; the remote host does not answer")
    if not has(root, "todo", mid):
        t.skip("moat-send killed before the commit", "the machine was too "
               "slow: the message was committed before the kill")
    else:
        for p in pids_of("moat-send", run.proc.pid):
            os.kill(p, signal.SIGKILL)
        t.ok(wait_for(lambda: run.logtext().count("moat-send: started") >= 2
                      and not has(root, "todo", mid), 15) and
             has(root, "info", mid) and has(root, "remote", mid),
             "moat-send killed before the commit: the next one takes the "
             "message up from its files and commits it", leftovers(root))
        time.sleep(1)
        t.ok(subjects(root, "alice") == ["adopted"] and
             run.logtext().count("new msg %d " % mid) == 1,
             "... and does not deliver it to the local recipient again",
             "%s\n%s" % (subjects(root, "alice"), run.logtext()[-1500:]))
finally:
    t.ok(run.stop(20) == 0, "moat run stops cleanly")
    stall.close()
    for c in held:
        c.close()
remove_root(root)

# --- a crash before the commit: delivered again, not lost -------------
with scenario(slow=0.5) as (root, run):
    mid = preprocessed(root, run, ["alice@localhost"], "crash",
                       "the message is preprocessed")
    time.sleep(0.2)
    t.ok(has(root, "todo", mid), "... and in its first attempt, "
         "uncommitted (todo kept)")
    for p in pids_of("moat-send", run.proc.pid):
        os.kill(p, signal.SIGKILL)
    t.ok(wait_for(lambda: "crash" in subjects(root, "alice") and
                  not leftovers(root), 30),
         "moat-send killed before the commit: the message is delivered "
         "and the queue empties", "%s %s" % (subjects(root, "alice"),
                                             leftovers(root)))
    t.diag("deliveries of the crashed message: %d (at least once)" %
           subjects(root, "alice").count("crash"))
t.done()
