#!/usr/bin/env python3
"""The operator tools of the `moat` front end: `moat queue` (text and
--json, parsed by Python's json module) and `moat stat` against messages in
every state (held in todo/ by `moat run --hold`, preprocessed with a
deferred recipient, bounced, and a hand-made queue with remote recipients,
a waiting bounce and hostile bytes); `moat queue remove` and `retry` with
moat-send running (it retires the removed message and tries nothing more),
not running, and holding the lock without preprocessing; `moat ctl` and the
source of each value; `moat check` catching each broken setup it claims to
catch, each in its own copy of a good run directory; `moat log ID` on a
captured log and on a synthetic one."""
import fcntl
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, prog, queued, wait_for, adduser,
                      give_away, write_control, envelope, SPLIT)

t = Tap()
base = tempfile.mkdtemp(prefix="moat-tools-")
os.chmod(base, 0o755)
runs = []


# ------------------------------------------------------------- helpers

def moat(*args, root=None, stdin=None, env=None, cwd=None, timeout=60):
    """run bin/moat; (exit code, stdout, stderr) as text"""
    argv = [prog("moat")] + list(args)
    if root:
        argv += ["--root", root]
    r = subprocess.run(argv, input=stdin, capture_output=True, env=env,
                       cwd=cwd, timeout=timeout)
    return (r.returncode, r.stdout.decode("utf-8", "replace"),
            r.stderr.decode("utf-8", "replace"))


def moat_json(*args, root=None):
    code, out, err = moat(*args, root=root)
    try:
        return code, json.loads(out)
    except ValueError as e:
        return code, {"error": str(e), "out": out, "err": err}


def new_root(name):
    """a run directory as `moat adduser` makes it: alice, later (whose
    deliveries always defer) and postmaster"""
    root = os.path.join(base, name)
    adduser(root, "alice", "later")
    p = os.path.join(root, "mail", "later", ".qmail")
    with open(p, "w") as f:
        f.write("|echo 'mailbox busy, try later' >&2; exit 111\n")
    give_away(p)
    write_control(root, "rcptcheck", "0")  # unknown users bounce
    return root


def start(root, *args):
    run = MoatRun(root=root, args=args)
    runs.append(run)
    return run


def send(run, rcpts, subject="test"):
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.sendmail("alice@localhost", rcpts,
                   ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())


def qpath(root, d, mid):
    return os.path.join(root, "queue", d, str(mid % SPLIT), str(mid))


def by_id(doc, mid):
    for m in doc.get("messages", []):
        if m["id"] == mid:
            return m
    return None


def rcpt(msg, addr):
    for r in (msg or {}).get("recipients", []):
        if r["address"] == addr:
            return r
    return None


def starts(run, mid):
    return len(re.findall(r"starting delivery \d+: msg %d " % mid,
                          run.logtext()))


def results(run):
    return len(re.findall(r"moat-send: delivery \d+: ", run.logtext()))


def all_starts(run):
    return len(re.findall(r"moat-send: starting delivery ", run.logtext()))


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


try:
    # ------------------------------------------ held: not yet preprocessed
    root = new_root("live")
    run = start(root, "--hold")
    send(run, ["later@localhost", "nosuch@localhost"], "first")
    send(run, ["alice@localhost"], "second")
    t.ok(wait_for(lambda: len(queued(root)) == 2, 20),
         "--hold: two messages wait in todo/", queued(root))
    # ids are inode numbers: tell the two apart by their recipients
    id1, id2 = sorted(queued(root),
                      key=lambda i: "alice@localhost" in envelope(root, i)[1])
    code, out, err = moat("queue", root=root)
    t.ok(code == 0 and out.count("(not yet preprocessed)") == 2 and
         "  to     <later@localhost> pending" in out and
         "  to     <nosuch@localhost> pending" in out and
         "from <alice@localhost>" in out and out.endswith("2 messages\n"),
         "moat queue: both not yet preprocessed, recipients pending", out + err)
    code, doc = moat_json("queue", "--json", root=root)
    m1 = by_id(doc, id1)
    t.ok(code == 0 and doc.get("count") == 2 and m1 and
         m1["preprocessed"] is False and m1["sender"] == "alice@localhost" and
         [(r["address"], r["channel"], r["state"], r["last_error"])
          for r in m1["recipients"]] ==
         [("later@localhost", None, "pending", None),
          ("nosuch@localhost", None, "pending", None)],
         "moat queue --json: preprocessed false, channel null, pending", doc)
    code, doc = moat_json("stat", "--json", root=root)
    t.ok(code == 0 and doc.get("messages") == 2 and
         doc.get("not_preprocessed") == 2 and
         doc.get("not_preprocessed_recipients") == 3 and
         doc.get("local_pending") == 0 and
         doc.get("oldest_id") in (id1, id2),
         "moat stat --json counts the held messages", doc)
    code, out, _ = moat("stat", root=root)
    t.ok(code == 0 and re.search(r"^messages +2$", out, re.M) and
         re.search(r"^not yet preprocessed +2 \(3 recipients\)$", out, re.M),
         "moat stat: the same in text", out)
    t.ok(not os.path.exists(os.path.join(root, "queue", "info", "pid")),
         "no moat-send, no queue/info/pid")

    # remove while no moat-send runs: the files go at once
    code, out, err = moat("queue", "remove", str(id2), root=root)
    t.ok(code == 0 and out == "%d: removed\n" % id2,
         "queue remove of a held message: removed", (code, out, err))
    t.ok(not any(os.path.exists(qpath(root, d, id2))
                 for d in ("todo", "intd", "mess", "info")) and
         queued(root) == [id1],
         "... its todo, intd and mess files are gone; the other stays")
    code, out, err = moat("queue", "remove", "12345", root=root)
    t.ok(code == 100 and "12345: no such message" in err,
         "queue remove of an unknown id: exit 100", (code, out, err))
    code, out, err = moat("queue", "remove", "12x", root=root)
    t.ok(code == 100 and "bad message id" in err,
         "queue remove of a malformed id: exit 100", (code, out, err))
    code, out, err = moat("queue", str(id1), root=root)
    t.ok(code == 0 and out.startswith("%d " % id1) and
         out.endswith("1 message\n"), "moat queue ID shows that one", out)
    code, out, err = moat("queue", "999", root=root)
    t.ok(code == 100 and "999: no such message" in err,
         "moat queue ID of an unknown id: exit 100")
    run.stop()
    hold_log = run.logtext()  # the next run's log replaces it

    # -------------------------------- moat-send waits for the queue lock
    lockfd = os.open(os.path.join(root, "queue", "info"), os.O_RDONLY)
    fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    run = start(root)
    time.sleep(1)
    os.close(lockfd)  # let go: moat-send waited for it
    pidfile = os.path.join(root, "queue", "info", "pid")
    t.ok(wait_for(lambda: os.path.exists(pidfile), 15) and
         "another moat-send" not in run.logtext(),
         "moat-send waits for a lock held for a moment, then writes "
         "queue/info/pid", run.logtext()[-1500:])
    pid = int(open(pidfile).read()) if os.path.exists(pidfile) else 0
    t.ok(pid and comm(pid) == "moat-send", "... naming moat-send",
         (pid, comm(pid)))

    # -------------------------------------- preprocessed: deferred, bounced
    t.ok(wait_for(lambda: "bounce msg %d " % id1 in run.logtext() and
                  queued(root) == [id1], 30),
         "the held message is preprocessed; nosuch bounces, later defers",
         run.logtext()[-2000:])
    t.ok(wait_for(lambda: results(run) == all_starts(run), 20),
         "... every delivery started so far has its result")
    code, out, err = moat("queue", root=root)
    t.ok(code == 0 and re.search(
        r"^  local  <later@localhost> pending, next try in \d+[sm]; last error "
        r"\d+s ago: mailbox busy, try later", out, re.M) and
        re.search(r"^  local  <nosuch@localhost> bounced \d+s ago: .*no "
                  r"mailbox", out, re.M) and "(not yet preprocessed)" not in out,
        "moat queue: pending with the next try and last error; bounced "
        "with its error", out + err)
    code, doc = moat_json("queue", "--json", root=root)
    m1 = by_id(doc, id1)
    later, nosuch = rcpt(m1, "later@localhost"), rcpt(m1, "nosuch@localhost")
    now = time.time()
    t.ok(m1 and m1["preprocessed"] is True and later and
         later["channel"] == "local" and later["state"] == "pending" and
         later["last_error"]["kind"] == "deferral" and
         "mailbox busy, try later" in later["last_error"]["text"] and
         abs(later["last_error"]["time"] - now) < 60 and
         later["next_try"] > now - 5,
         "--json: later is pending, with a deferral and the next try", m1)
    t.ok(nosuch and nosuch["state"] == "bounced" and
         nosuch["last_error"]["kind"] == "failure" and
         nosuch["next_try"] is None,
         "--json: nosuch is bounced, with the failure", nosuch)
    t.ok(os.path.exists(qpath(root, "error", id1)),
         "moat-send keeps the last errors in queue/error")
    code, doc = moat_json("stat", "--json", root=root)
    t.ok(doc.get("messages") == 1 and doc.get("local_pending") == 1 and
         doc.get("remote_pending") == 0 and doc.get("deferred") == 1 and
         doc.get("not_preprocessed") == 0,
         "moat stat --json: one local recipient pending after an error", doc)

    # retry: SIGALRM makes moat-send try again long before the schedule
    before = starts(run, id1)
    code, out, err = moat("queue", "retry", root=root)
    t.ok(code == 0 and "moat-send is retrying" in out,
         "queue retry signals moat-send", (code, out, err))
    t.ok(wait_for(lambda: starts(run, id1) > before, 20),
         "... which tries the deferred recipient again at once",
         run.logtext()[-1000:])
    t.ok(wait_for(lambda: results(run) == all_starts(run), 20),
         "... and gets its result")
    lp = qpath(root, "local", id1)
    os.utime(lp, (time.time() + 3600, time.time() + 3600))
    before_retry = starts(run, id1)
    code, out, err = moat("queue", "retry", str(id1), root=root)
    # (moat-send's attempt may already have set the next one)
    t.ok(code == 0 and "%d: due now" % id1 in out and
         os.stat(lp).st_mtime < time.time() + 1800,
         "queue retry ID moves the next retry (the channel file's mtime)",
         (code, out, err))
    # the attempt has started (not merely: nothing is running yet) and
    # ended, so none can start after the remove below
    t.ok(wait_for(lambda: starts(run, id1) > before_retry and
                  results(run) == all_starts(run), 20),
         "... the attempt it started ends")
    code, out, err = moat("queue", "retry", "999", root=root)
    t.ok(code == 100 and "999: no such message" in err,
         "queue retry of an unknown id: exit 100")

    # remove while moat-send runs: flipped, retired, never tried again
    log_before = run.logtext()
    before = starts(run, id1)
    code, out, err = moat("queue", "remove", str(id1), root=root)
    t.ok(code == 0 and "%d: removed: 1 pending recipient dropped" % id1
         in out, "queue remove while moat-send runs", (code, out, err))
    t.ok(wait_for(lambda: "end msg %d\n" % id1 in run.logtext() and
                  not queued(root), 20),
         "... moat-send retires the message on its next attempt",
         run.logtext()[-1500:])
    time.sleep(0.5)
    t.ok(starts(run, id1) == before,
         "... without trying the removed recipient again",
         run.logtext()[len(log_before):])
    t.ok(not any(os.path.exists(qpath(root, d, id1))
                 for d in ("mess", "info", "local", "error", "bounce")),
         "... and every file of it is gone, its last errors too")
    live_log = hold_log + run.logtext()
    run.stop()
    t.ok(not os.path.exists(pidfile),
         "a clean stop removes queue/info/pid")

    # ---------------- a "moat-send" that holds the lock but does nothing
    run = start(root, "--hold")
    send(run, ["alice@localhost"], "third")
    t.ok(wait_for(lambda: len(queued(root)) == 1, 20), "a third message held")
    id3 = queued(root)[0]
    lockfd = os.open(os.path.join(root, "queue", "info"), os.O_RDONLY)
    fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        code, out, err = moat("queue", "retry", root=root)
        t.ok(code == 111 and "does not name it" in err,
             "retry: the lock is held but there is no pid file: exit 111",
             (code, out, err))
        with open(pidfile, "w") as f:
            f.write("%d\n" % os.getpid())  # SIGALRM would end this test
        code, out, err = moat("queue", "retry", root=root)
        t.ok(code == 111 and "does not name it" in err,
             "retry: a pid that is not moat-send's is not signalled",
             (code, out, err))
        os.unlink(pidfile)
        t0 = time.time()
        code, out, err = moat("queue", "remove", str(id3), root=root)
        t.ok(code == 111 and "not preprocessed it yet; try again" in err and
             time.time() - t0 >= 9 and os.path.exists(qpath(root, "todo", id3)),
             "remove: a todo message no moat-send takes over is waited "
             "for (10 s), then left alone: exit 111", (code, out, err))
    finally:
        os.close(lockfd)
    run.stop()

    # -------------------------------------------------------------- log
    logf = os.path.join(base, "live.log")
    with open(logf, "w") as f:
        f.write(live_log)
    code, out, err = moat("log", str(id1), "--file", logf)
    lines = out.splitlines()
    mine = [l for l in lines if "starting delivery" in l]
    res = [l for l in lines if re.search(r"moat-send: delivery \d+: ", l)]
    t.ok(code == 0 and
         any("moat-smtpd: queued %d " % id1 in l for l in lines) and
         any("moat-send: new msg %d " % id1 in l for l in lines) and
         any("moat-send: bounce msg %d " % id1 in l for l in lines) and
         any("moat-send: end msg %d" % id1 == l[-len("moat-send: end msg %d" % id1):]
             for l in lines) and
         any("deferral: mailbox busy" in l for l in res) and
         any("failure:" in l for l in res),
         "moat log ID: arrival, preprocessing, results, bounce, end", out)
    t.ok(mine and all(": msg %d to " % id1 in l for l in mine) and
         len(res) == len(mine) and
         not any(re.search(r"msg (\d+)", l).group(1) != str(id1)
                 for l in lines if re.search(r"msg (\d+)", l)),
         "... only its own deliveries, though the bounce's reused the "
         "numbers", out)
    code2, out2, _ = moat("log", str(id1), stdin=live_log.encode())
    t.ok(code2 == 0 and out2 == out, "moat log ID reads stdin too")

    synthetic = "\n".join([
        "@4000000065 moat-send: new msg 5 size 1 from <a> qp 1 uid 1 local 2 remote 2",
        "@4000000065 moat-send: starting delivery 0: msg 5 to local a@x",
        "@4000000065 moat-send: starting delivery 1: msg 5 to remote b@y",
        "@4000000065 moat-send: starting delivery 1: msg 5 to remote c@y",
        "@4000000065 moat-send: starting delivery 2: msg 55 to local z@x",
        "@4000000065 moat-send: delivery 0: success: A",
        "@4000000065 moat-rspawn: moat-remote (job 1) exited 0",
        "@4000000065 moat-lspawn: moat-local (job 2) exited 0",
        "@4000000065 moat-send: delivery 1: deferral: B",
        "@4000000065 moat-send: delivery 2: success: OTHER",
        "@4000000065 moat-send: delivery 1: failure: C",
        "@4000000065 moat-send: starting delivery 0: msg 55 to local y@x",
        "@4000000065 moat-send: delivery 0: success: OTHER",
        "@4000000065 moat-send: msg 55: OTHER",
        "@4000000065 moat-send: msg 5: unable to read todo; will retry",
        "@4000000065 moat-send: starting delivery 3: msg 5 to local a@x",
        "moat-send: started: 1 messages in the queue",
        "moat-send: delivery 3: success: OTHER after a restart",
        "moat-send: bounce msg 5 to <a>: 1 recipient",
        "moat-send: end msg 50",
        "moat-send: end msg 5",
    ]) + "\n"
    want = [l for l in synthetic.splitlines()
            if "OTHER" not in l and "msg 55" not in l and
            "msg 50" not in l and "job 2" not in l and "started:" not in l]
    code, out, err = moat("log", "5", stdin=synthetic.encode())
    t.ok(code == 0 and out.splitlines() == want,
         "moat log ID: slots tied to the message until their results, "
         "prefixes, a restart", out)
    code, out, err = moat("log")
    t.ok(code == 0 and "starting delivery N: msg ID" in out and
         "end msg ID" in out, "moat log alone documents the log lines")
    code, out, err = moat("log", "x5")
    t.ok(code == 100, "moat log with a bad id: exit 100")

    # ---------------------------------------------- a hand-made queue
    root = new_root("handmade")
    now = int(time.time())

    def put(d, mid, data, mtime=None):
        p = qpath(root, d, mid)
        with open(p, "wb") as f:
            f.write(data)
        if mtime:
            os.utime(p, (mtime, mtime))

    def lasterr(pairs):
        return b"".join(b"T" + r + b"\0" + k + str(w).encode() + b" " + x +
                        b"\0" for r, k, w, x in pairs)

    hostile = b'od"d\x01\xffname@example.org'
    put("mess", 1001, b"Subject: todo\n\nx\n")
    put("intd", 1001, b"u0\0p1\0F" + hostile + b"\0Tx@remote.example\0\0")
    put("todo", 1001, b"u0\0p1\0F" + hostile + b"\0Tx@remote.example\0\0")
    put("mess", 1002, b"Subject: busy\n\n" + b"y" * 100 + b"\n")
    put("info", 1002, b"F" + hostile + b"\0B%d\0" % (now - 7200))
    put("local", 1002, b"Tl1@localhost\0Dl2@localhost\0", now + 600)
    put("remote", 1002, b"Tr1@remote.example\0Dr2@remote.example\0"
        b"Dr3@remote.example\0", now - 10)
    put("bounce", 1002, b"Tr2@remote.example\0S5.1.1\0Dno such user\0")
    put("error", 1002, lasterr([
        (b"r1@remote.example", b"Z", now - 300, b"old"),
        (b"r1@remote.example", b"Z", now - 60,
         b'451 greylisted "wait"\n\x7f\xe6\x97\xa5'),
        (b"r3@remote.example", b"D", now - 30, b"550 rejected")]) +
        b"Tr1@remote.example\0Z99 torn")
    put("mess", 1003, b"not committed\n")  # no todo, no info
    code, doc = moat_json("queue", "--json", root=root)
    m = by_id(doc, 1002)
    t.ok(code == 0 and doc.get("count") == 2 and not by_id(doc, 1003) and
         m and m["sender"] == 'od"d\x01\u00ffname@example.org' and
         m["arrival"] == now - 7200 and m["size"] == 116 and
         m["bounce_waiting"] is True,
         "--json: hostile bytes in the sender escaped and decoded; an "
         "uncommitted message is not listed", doc)
    states = [(r["address"], r["channel"], r["state"], r["next_try"])
              for r in (m or {}).get("recipients", [])]
    t.ok(states == [("l1@localhost", "local", "pending", now + 600),
                    ("l2@localhost", "local", "done", None),
                    ("r1@remote.example", "remote", "pending", now - 10),
                    ("r2@remote.example", "remote", "bounced", None),
                    ("r3@remote.example", "remote", "bounced", None)],
         "--json: channels, states and next tries", states)
    r1, r2, r3 = (rcpt(m, "r%d@remote.example" % i) for i in (1, 2, 3))
    t.ok(r1 and r1["last_error"] == {
        "kind": "deferral", "time": now - 60,
        "text": '451 greylisted "wait"\n\x7f\u65e5'},
        "--json: the newest error of r1, every byte intact", r1)
    t.ok(r2 and r2["last_error"] == {"kind": "failure", "time": None,
                                     "text": "no such user"} and
         r3 and r3["last_error"] == {"kind": "failure", "time": now - 30,
                                     "text": "550 rejected"},
         "--json: bounced from bounce/ and from queue/error", (r2, r3))
    code, out, err = moat("queue", root=root)
    t.ok(code == 0 and "\x01" not in out and "\x7f" not in out and
         '<od"d\\x01\\xffname@example.org>' in out and
         "(bounce waiting)" in out and
         re.search(r"^  remote <r1@remote.example> pending, next try now; "
                   r"last error \d+s ago: 451 greylisted \"wait\"\\x0a\\x7f",
                   out, re.M) and
         "  remote <r2@remote.example> bounced: no such user" in out and
         "  to     <x@remote.example> pending" in out,
         "moat queue: control bytes shown as \\xHH, states and errors", out)
    code, doc = moat_json("stat", "--json", root=root)
    t.ok(doc == {"messages": 2, "not_preprocessed": 1,
                 "not_preprocessed_recipients": 1, "local_pending": 1,
                 "remote_pending": 1, "deferred": 1, "bounces_waiting": 1,
                 "oldest_age": doc.get("oldest_age"), "oldest_id": 1002} and
         7190 <= doc["oldest_age"] <= 7300,
         "moat stat --json on the hand-made queue", doc)
    code, out, err = moat("queue", "retry", "1002", "1001", root=root)
    t.ok(code == 0 and "1002: due now" in out and
         "1001: not yet preprocessed" in out and
         "moat-send is not running" in out and
         abs(os.stat(qpath(root, "local", 1002)).st_mtime - now) < 30,
         "queue retry without moat-send: next retries set to now",
         (code, out, err))
    code, out, err = moat("queue", "remove", "1002", "1001", root=root)
    t.ok(code == 0 and not any(
        os.path.exists(qpath(root, d, i)) for i in (1001, 1002)
        for d in ("mess", "intd", "todo", "info", "local", "remote",
                  "bounce", "error")) and
        os.path.exists(qpath(root, "mess", 1003)),
        "queue remove without moat-send removes every file of both",
        (code, out, err))

    # --------------------------------------------------------------- ctl
    root = new_root("ctl")
    write_control(root, "concurrencyremote", "7")
    write_control(root, "locals", "localhost\nexample.org")
    os.unlink(os.path.join(root, "control", "rcpthosts"))
    code, doc = moat_json("ctl", "--json", root=root)
    c = {x["name"]: x for x in doc.get("controls", [])}
    t.ok(code == 0 and c.get("me", {}).get("source") == "file" and
         c["me"]["value"] == "localhost" and
         c["concurrencyremote"]["value"] == 7 and
         c["concurrencyremote"]["source"] == "file" and
         c["concurrencyremote"]["default"] == "20" and
         c["concurrencylocal"]["value"] == 10 and
         c["concurrencylocal"]["source"] == "default",
         "ctl --json: values from files and defaults",
         {k: c.get(k) for k in ("me", "concurrencyremote",
                                "concurrencylocal")})
    t.ok(c.get("rcpthosts", {}).get("source") == "derived" and
         c["rcpthosts"]["derived_from"] == "locals" and
         c["rcpthosts"]["value"] == ["localhost", "example.org"] and
         c["rcpthosts"]["origin"] == "from locals (file)" and
         c["defaultdomain"]["origin"] == "from me (file)" and
         c["virtualdomains"]["source"] == "unset" and
         c["virtualdomains"]["value"] == [] and
         c["morercpthosts"]["value"] is False,
         "ctl --json: derived values name their source",
         {k: c.get(k) for k in ("rcpthosts", "defaultdomain",
                                "virtualdomains", "morercpthosts")})
    t.ok(set(c) >= {"me", "locals", "rcpthosts", "databytes",
                    "queuelifetime", "bouncefrom", "relayclients"} and
         all(x["doc"] for x in c.values()),
         "ctl --json lists the table, each with its documentation")
    code, out, err = moat("ctl", root=root)
    t.ok(code == 0 and
         re.search(r"^concurrencyremote += 7  \[file; default: 20\]$", out,
                   re.M) and
         re.search(r"^concurrencylocal += 10  \[default\]$", out, re.M) and
         re.search(r"^rcpthosts += localhost, example.org  \[from locals "
                   r"\(file\); default: same as locals\]$", out, re.M),
         "ctl: one line each: value, source, default", out)
    os.unlink(os.path.join(root, "control", "me"))
    write_control(root, "databytes", "lots")
    code, doc = moat_json("ctl", "--json", "me", "defaultdomain",
                          "databytes", root=root)
    c = {x["name"]: x for x in doc.get("controls", [])}
    t.ok(list(c) == ["me", "defaultdomain", "databytes"] and
         c["me"]["source"] == "hostname" and
         c["me"]["value"] == socket.gethostname() and
         c["defaultdomain"]["origin"] == "from me (host name)" and
         c["databytes"]["source"] == "error" and
         c["databytes"]["value"] is None and
         c["databytes"]["error"] == "not a number",
         "ctl NAME...: only those; the host name; a bad number", c)
    code, out, err = moat("ctl", "databytes", root=root)
    t.ok(code == 0 and '(invalid: "lots")' in out, "... in text too", out)
    code, out, err = moat("ctl", "nosuchcontrol", root=root)
    t.ok(code == 100, "ctl of an unknown name: exit 100")
    env = dict(os.environ, MOAT_ROOT=root)
    code, out, err = moat("ctl", "concurrencyremote", env=env)
    t.ok(code == 0 and "= 7" in out, "the root from MOAT_ROOT", out + err)
    cwd = os.path.join(base, "cwd")
    os.makedirs(cwd)
    os.symlink(root, os.path.join(cwd, "moat-data"))
    env = {k: v for k, v in os.environ.items() if k != "MOAT_ROOT"}
    code, out, err = moat("ctl", "concurrencyremote", env=env, cwd=cwd)
    t.ok(code == 0 and "= 7" in out, "the root ./moat-data when it exists",
         out + err)

    # ------------------------------------------------------------- check
    good = new_root("good")
    code, out, err = moat("check", root=good)
    t.ok(code == 0 and "error:" not in out,
         "check: a fresh run directory has no errors", out + err)

    def errors(out):
        return [l for l in out.splitlines() if l.startswith("error: ")]

    def ctl(name, value):
        return lambda r: write_control(r, name, value)

    def rm(rel):
        def f(r):
            p = os.path.join(r, rel)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        return f

    def chmod(rel, mode, split=False):
        def f(r):
            p = os.path.join(r, rel)
            for d in ([os.path.join(p, str(i)) for i in range(SPLIT)]
                      if split else [p]):
                os.chmod(d, mode)
        return f

    def trigger_file(r):
        p = os.path.join(r, "queue", "lock", "trigger")
        os.unlink(p)
        open(p, "w").close()

    def cdb_older(r):
        a = os.stat(os.path.join(r, "users", "assign")).st_mtime
        os.utime(os.path.join(r, "users", "cdb"), (a - 10, a - 10))

    def bad_assign(r):
        p = os.path.join(r, "users", "assign")
        with open(p) as f:
            text = f.read()
        with open(p, "w") as f:
            f.write(text.replace("\n.\n", "\n=broken:line\n.\n"))
        st = os.stat(p)
        os.utime(os.path.join(r, "users", "cdb"),
                 (st.st_mtime + 10, st.st_mtime + 10))

    def chown_root(r):
        os.chown(os.path.join(r, "queue", "todo"), 0, 0)

    cases = [
        ("me missing", rm("control/me"), "control/me is missing", 1),
        ("me empty", ctl("me", ""), "control/me is empty", 1),
        ("rcpthosts missing", rm("control/rcpthosts"),
         "control/rcpthosts is missing", 1),
        ("rcpthosts '.'", ctl("rcpthosts", "localhost\n."),
         'control/rcpthosts: "." is far too wide', 1),
        ("rcpthosts '.com'", ctl("rcpthosts", "localhost\n.com"),
         'control/rcpthosts: ".com" is far too wide', 1),
        ("rcpthosts wildcard", ctl("rcpthosts", "*.example.com"),
         '"*.example.com" is not a domain', 1),
        ("relayclients everyone (IPv4)", ctl("relayclients", "0.0.0.0/0"),
         "open relay", 1),
        ("relayclients everyone (IPv6)", ctl("relayclients", "::/0"),
         "open relay", 1),
        ("relayclients junk", ctl("relayclients", "localhost"),
         '"localhost" is not an address or prefix', 1),
        ("number that does not parse", ctl("concurrencyremote", "ten"),
         'control/concurrencyremote: "ten" is not a number', 1),
        ("another one", ctl("queuelifetime", "12x"),
         'control/queuelifetime: "12x" is not a number', 1),
        ("virtualdomains without ':'", ctl("virtualdomains", "example.net"),
         "control/virtualdomains: \"example.net\" has no ':'", 1),
        ("no queue", rm("queue"), "queue is missing", 1),
        ("a queue directory missing", rm("queue/bounce/5"),
         "queue/bounce/5: No such file or directory", 1),
        ("error/ missing (an old queue)", rm("queue/error"),
         "queue/error: No such file or directory", 1),
        ("a queue directory too open", chmod("queue/info", 0o755),
         "queue/info: mode 0755, want 0700", 1),
        ("split directories too open", chmod("queue/local", 0o755, True),
         "queue/local/0: mode 0755, want 0700 (and 22 more", 1),
        ("mess not readable by moat-send", chmod("queue/mess", 0o700),
         "queue/mess: mode 0700, want 0750", 1),
        ("no trigger", rm("queue/lock/trigger"), "trigger is missing", 1),
        ("trigger not a fifo", trigger_file, "trigger is not a fifo", 1),
        ("users/cdb older than users/assign", cdb_older,
         "users/cdb is older than users/assign", 1),
        ("users/cdb missing", rm("users/cdb"), "users/cdb is missing", 1),
        ("users/assign syntax", bad_assign, "users/assign line", 1),
    ]
    if os.geteuid() == 0:
        cases.append(("a queue directory owned by someone else", chown_root,
                      "queue/todo: owner uid 0, want", 1))
    for i, (what, breaker, want, n) in enumerate(cases):
        copy = os.path.join(base, "check%d" % i)
        subprocess.run(["cp", "-a", good, copy], check=True, timeout=60)
        breaker(copy)
        code, out, err = moat("check", root=copy)
        errs = errors(out)
        t.ok(code == 1 and len(errs) == n and any(want in l for l in errs),
             "check catches: %s" % what, out + err)
        shutil.rmtree(copy, ignore_errors=True)
    copy = os.path.join(base, "check-warn")
    subprocess.run(["cp", "-a", good, copy], check=True, timeout=60)
    write_control(copy, "rcpthost", "typo.example")
    code, out, err = moat("check", root=copy)
    t.ok(code == 0 and "warning: control/rcpthost is not a control file "
         "moat reads" in out and not errors(out),
         "check warns about a control file nothing reads (exit 0)", out)
    code, out, err = moat("check", root=os.path.join(base, "nonexistent"))
    t.ok(code == 1 and errors(out), "check of a missing root: exit 1", out)
finally:
    for r in runs:
        r.stop()
    shutil.rmtree(base, ignore_errors=True)
t.done()
