#!/usr/bin/env python3
"""End to end: `moat run` receives mail from clients nobody here wrote
(Python's smtplib, swaks) and the queued message is read back byte for
byte; `moat queue` shows it; run as root, nothing stays root; SIGTERM
stops everything it started."""
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, make_root, remove_root, prog, queued,
                      message, envelope, strip_received, write_control)

t = Tap()
# --hold: mail stays in the queue, where this test reads it back
run = MoatRun(args=("--hold",))
subprocess.run([prog("moat"), "adduser", "--root", run.root, "u1"],
               check=True, capture_output=True, timeout=30)
root = run.root
try:
    # smtplib, a message with dots, long lines, 8-bit text
    body = ("Subject: first\r\nFrom: a@example.org\r\n\r\n"
            ".a line starting with a dot\r\n..two dots\r\n.\r\n"
            + "x" * 5000 + "\r\n" + "caf\u00e9 \u00fcber\r\n")
    with smtplib.SMTP(run.host, run.port, timeout=20) as s:
        code, ehlo = s.ehlo("client.example")
        t.ok(code == 250, "smtplib EHLO gets 250")
        feats = ehlo.decode().upper()
        t.ok(all(k in feats for k in ("PIPELINING", "8BITMIME", "SIZE",
                                      "ENHANCEDSTATUSCODES")),
             "EHLO offers PIPELINING 8BITMIME SIZE ENHANCEDSTATUSCODES", feats)
        refused = s.sendmail("a@example.org", ["postmaster@localhost",
                                               "u1@localhost"],
                             body.encode("utf-8"), mail_options=["BODY=8BITMIME"])
        t.ok(refused == {}, "smtplib sendmail: every recipient accepted")
    ids = queued(root)
    t.ok(len(ids) == 1, "one message queued", ids)
    if ids:
        got = strip_received(message(root, ids[0]), 2)
        # smtplib stuffs the dots; moat-smtpd must unstuff them
        want = body.replace("\r\n", "\n").encode()
        t.ok(got == want, "the message reads back byte for byte (LF "
             "endings, dots unstuffed)", repr(got[:300]))
        first = message(root, ids[0]).split(b"\n")
        t.ok(first[1].startswith(b"Received: from client.example (") and
             b"[127.0.0.1])" in first[1] and
             first[2].startswith(b"\tby localhost (moat) with ESMTP; "),
             "moat-smtpd's Received line names HELO, IP, host, ESMTP",
             first[:3])
        t.ok(envelope(root, ids[0]) == ("a@example.org",
                                        ["postmaster@localhost",
                                         "u1@localhost"]),
             "the envelope holds sender and both recipients",
             envelope(root, ids[0]))
        lst = subprocess.run([prog("moat"), "queue", "--root", root],
                             capture_output=True, text=True, timeout=20)
        t.ok(lst.returncode == 0 and str(ids[0]) in lst.stdout and
             "<a@example.org>" in lst.stdout and
             "<postmaster@localhost>" in lst.stdout,
             "moat queue lists id, sender and recipients", lst.stdout)

    # swaks
    if shutil.which("swaks"):
        sw = subprocess.run(["swaks", "--server", "%s:%d" % (run.host,
                                                              run.port),
                             "--from", "swaks@example.org", "--to",
                             "postmaster@localhost", "--header",
                             "Subject: from swaks", "--body",
                             "hello from swaks"],
                            capture_output=True, text=True, timeout=60)
        t.ok(sw.returncode == 0 and "queued as" in sw.stdout,
             "swaks: message accepted", sw.stdout[-800:])
        new = [i for i in queued(root) if i not in ids]
        t.ok(len(new) == 1 and b"\nSubject: from swaks\n" in
             message(root, new[0]) and b"\nhello from swaks\n" in
             message(root, new[0]), "swaks' message is in the queue")
        ids = queued(root)
    else:
        t.skip("swaks", "swaks not installed")
        t.skip("swaks queue", "swaks not installed")

    # relay refused by default, even from loopback
    with smtplib.SMTP(run.host, run.port, timeout=20) as s:
        try:
            s.sendmail("a@example.org", ["someone@example.com"], b"x\r\n")
            t.ok(False, "relaying to another domain is refused")
        except smtplib.SMTPRecipientsRefused as e:
            code = list(e.recipients.values())[0][0]
            t.ok(code == 550, "relaying to another domain is refused (550)")
    t.ok(queued(root) == ids, "nothing queued by the refused relay attempt")

    # a 2 MB message, then one over databytes
    big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 2000
    with smtplib.SMTP(run.host, run.port, timeout=60) as s:
        t.ok(s.sendmail("a@example.org", ["postmaster@localhost"], big) == {},
             "a 2 MB message is accepted")
    new = [i for i in queued(root) if i not in ids]
    t.ok(len(new) == 1 and strip_received(message(root, new[0]), 2) ==
         big.replace(b"\r\n", b"\n"), "the 2 MB message reads back whole")
    ids = queued(root)
    write_control(root, "databytes", "100000")
    with smtplib.SMTP(run.host, run.port, timeout=60) as s:
        s.ehlo()
        t.ok(s.has_extn("size") and s.esmtp_features["size"] == "100000",
             "EHLO advertises the new SIZE limit")
        s.esmtp_features.pop("size")  # send anyway, without SIZE=
        try:
            s.sendmail("a@example.org", ["postmaster@localhost"], big)
            t.ok(False, "a message over databytes is refused")
        except smtplib.SMTPDataError as e:
            t.ok(e.smtp_code == 552, "a message over databytes gets 552",
                 e)
    t.ok(queued(root) == ids, "nothing queued for the refused message")

    # processes: as root, nothing that listens or parses runs as root
    if os.geteuid() == 0:
        c = socket.create_connection((run.host, run.port), timeout=10)
        c.recv(100)
        time.sleep(0.2)
        uids = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().split(b"\0")
                with open("/proc/%s/status" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            uids[int(pid)] = (cmd, st)
        mine = []

        def children(pid):
            out = []
            for p, (cmd, st) in uids.items():
                for line in st.splitlines():
                    if line.startswith("PPid:") and int(line.split()[1]) == pid:
                        out.append(p)
            return out
        todo = [run.proc.pid]
        while todo:
            p = todo.pop()
            mine.append(p)
            todo += children(p)
        names = []
        rootproc = []
        for p in mine:
            if p not in uids:
                continue
            cmd, st = uids[p]
            real = [int(x) for x in
                    [l for l in st.splitlines() if l.startswith("Uid:")][0]
                    .split()[1:]]
            names.append(os.path.basename(cmd[0]).decode())
            if 0 in real:
                rootproc.append(os.path.basename(cmd[0]).decode())
        c.close()
        t.ok("moat-smtpd" in names and "moat-tcpd" in names,
             "moat run started moat-tcpd and a moat-smtpd", names)
        t.ok(not rootproc, "no process of moat run has uid 0", rootproc)
    else:
        t.skip("process owners", "not root")
        t.skip("process owners", "not root")
finally:
    status = run.stop()
t.ok(status == 0, "SIGTERM stops moat run cleanly (exit 0)", run.logtext())
time.sleep(0.3)
left = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if root.encode() in f.read():
                    left.append(pid)
        except OSError:
            pass
t.ok(not left, "nothing it started is still running", left)

# IPv6
try:
    socket.socket(socket.AF_INET6).bind(("::1", 0))
    have6 = True
except OSError:
    have6 = False
if have6:
    run6 = MoatRun(host="::1", args=("--hold",))
    try:
        with smtplib.SMTP("::1", run6.port, timeout=20) as s:
            t.ok(s.sendmail("a@example.org", ["postmaster@localhost"],
                            b"Subject: v6\r\n\r\nover IPv6\r\n") == {},
                 "a message over IPv6 is accepted")
        ids6 = queued(run6.root)
        t.ok(len(ids6) == 1 and b"[::1])" in message(run6.root, ids6[0]),
             "its Received line names [::1]")
    finally:
        run6.stop()
        remove_root(run6.root)
else:
    t.skip("IPv6", "no ::1")
    t.skip("IPv6", "no ::1")
remove_root(root)
t.done()
