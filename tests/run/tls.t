#!/usr/bin/env python3
"""STARTTLS (RFC 3207) end to end: `moat run` makes its own certificate,
offers STARTTLS, and clients nobody here wrote (openssl s_client, Python's
ssl and smtplib, swaks) send mail through it; the messages reach the
Maildir byte for byte.  Plaintext sent after STARTTLS is never taken as
said under TLS, a failed handshake leaves the server serving, and EHLO under
TLS no longer offers STARTTLS."""
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from moattest import (Tap, MoatRun, read, maildir_files, wait_for,
                      strip_received, remove_root)

t = Tap()


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def replies(f):
    """one whole SMTP reply from a file object: (code, [lines])"""
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            return None, lines
        lines.append(ln.decode("latin-1").rstrip("\r\n"))
        if len(ln) < 4 or ln[3:4] != b"-":
            return int(ln[:3]), lines


def content(msg):
    """a delivered message without what moat added in front of it"""
    _, sep, rest = msg.partition(b"\nReceived: from ")
    return strip_received(b"Received: from " + rest) if sep else msg


def delivered(root, n):
    return wait_for(lambda: len(maildir_files(root, "postmaster")) >= n, 30)


run = MoatRun()
root = run.root
try:
    cert = os.path.join(root, "control", "servercert.pem")
    t.ok(os.path.exists(cert), "moat run made control/servercert.pem")
    st = os.stat(cert)
    t.ok(st.st_mode & 0o077 == 0, "the key file is private (mode 0600)",
         oct(st.st_mode))
    t.ok("self-signed certificate" in run.logtext(),
         "moat run says it made a certificate", run.logtext())

    # smtplib: EHLO offers STARTTLS; after it, EHLO does not
    body = ("Subject: over TLS\r\nFrom: a@example.org\r\n\r\n"
            ".a dot line\r\n" + "x" * 3000 + "\r\n" + "last\r\n")
    with smtplib.SMTP(run.host, run.port, timeout=20) as s:
        code, feats = s.ehlo("client.example")
        t.ok(code == 250 and b"STARTTLS" in feats,
             "EHLO in the clear offers STARTTLS", feats)
        code, text = s.starttls(context=client_ctx())
        t.ok(code == 220 and text.startswith(b"2.0.0"),
             "STARTTLS gets 220 2.0.0", (code, text))
        t.ok(s.sock.version() in ("TLSv1.2", "TLSv1.3"),
             "the session is TLS 1.2 or newer", s.sock.version())
        code, feats = s.ehlo("client.example")
        t.ok(code == 250 and b"STARTTLS" not in feats and
             b"PIPELINING" in feats,
             "EHLO under TLS offers the rest but not STARTTLS", feats)
        code, text = s.docmd("STARTTLS")
        t.ok(code == 554, "a second STARTTLS gets 554", (code, text))
        refused = s.sendmail("a@example.org", ["postmaster@localhost"],
                             body.encode())
        t.ok(refused == {}, "smtplib sends a message under TLS")
    if t.ok(delivered(root, 1), "it is delivered to the Maildir"):
        got = read(maildir_files(root, "postmaster")[0])
        t.ok(content(got) == body.replace("\r\n", "\n").encode(),
             "the Maildir copy reads back byte for byte", repr(got[:400]))
        t.ok(b"with ESMTPS;" in got and b"(using TLSv1." in got,
             "the Received line says ESMTPS and the TLS version "
             "(RFC 3848)", repr(got[:400]))

    # a large message, so the relay carries many TLS records both ways
    big = "Subject: big\r\n\r\n" + "".join(
        "%06d %s\r\n" % (i, "y" * 70) for i in range(40000))
    with smtplib.SMTP(run.host, run.port, timeout=30) as s:
        s.starttls(context=client_ctx())
        s.sendmail("a@example.org", ["postmaster@localhost"], big.encode())
    if t.ok(delivered(root, 2), "a 3 MB message under TLS is delivered"):
        got = [read(p) for p in maildir_files(root, "postmaster")]
        t.ok(any(content(g) == big.replace("\r\n", "\n").encode()
                 for g in got),
             "the 3 MB message reads back byte for byte")

    # openssl s_client -starttls smtp
    dialogue = (b"EHLO s-client.example\r\n"
                b"MAIL FROM:<b@example.org>\r\n"
                b"RCPT TO:<postmaster@localhost>\r\nDATA\r\n"
                b"Subject: via s_client\r\n\r\nopenssl was here\r\n.\r\n"
                b"QUIT\r\n")
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                        "-connect", "%s:%d" % (run.host, run.port),
                        "-quiet", "-ign_eof"], input=dialogue,
                       capture_output=True, timeout=30)
    out = p.stdout.decode("latin-1")
    t.ok("250 2.0.0 ok: queued as" in out and "221 2.0.0" in out,
         "openssl s_client -starttls smtp sends a message", out + p.stderr.decode("latin-1"))
    t.ok(delivered(root, 3), "and it is delivered")
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                        "-connect", "%s:%d" % (run.host, run.port),
                        "-tls1_1"], input=b"QUIT\r\n",
                       capture_output=True, timeout=30)
    t.ok(b"Cipher is (NONE)" in p.stdout or p.returncode != 0,
         "TLS 1.1 is refused", p.stdout[-500:])

    # swaks --tls
    p = subprocess.run(["swaks", "--server", run.host, "--port",
                        str(run.port), "--tls", "--from", "c@example.org",
                        "--to", "postmaster@localhost", "--helo",
                        "swaks.example", "--body", "swaks under TLS"],
                       capture_output=True, timeout=60)
    out = p.stdout.decode("latin-1")
    t.ok(p.returncode == 0 and "TLS started" in out,
         "swaks --tls sends a message", out[-1500:])
    t.ok(delivered(root, 4), "and it is delivered")

    # CVE-2011-0411: commands pipelined after STARTTLS are discarded
    sk = socket.create_connection((run.host, run.port), timeout=20)
    f = sk.makefile("rb")
    replies(f)
    sk.sendall(b"EHLO inject.example\r\n")
    replies(f)
    sk.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
    code, _ = replies(f)
    t.ok(code == 220, "STARTTLS with a command pipelined after it: 220",
         code)
    tls = client_ctx().wrap_socket(sk, server_hostname="localhost")
    tf = tls.makefile("rb")
    tls.sendall(b"RCPT TO:<postmaster@localhost>\r\n")
    code, lines = replies(tf)
    t.ok(code == 503, "the MAIL sent in the clear was thrown away: RCPT "
         "under TLS gets 503", lines)
    tls.sendall(b"EHLO inject.example\r\nQUIT\r\n")
    code, lines = replies(tf)
    t.ok(code == 250 and lines[0].startswith("250-"),
         "the session under TLS starts from EHLO", lines)
    replies(tf)
    tls.close()

    # a client that says STARTTLS and then sends garbage, or hangs up
    for what, data in (("garbage", b"this is no ClientHello\r\n" * 10),
                       ("a hang-up", b"")):
        sk = socket.create_connection((run.host, run.port), timeout=20)
        f = sk.makefile("rb")
        replies(f)
        sk.sendall(b"EHLO x.example\r\nSTARTTLS\r\n")
        replies(f)
        code, _ = replies(f)
        if data:
            sk.sendall(data)
        else:
            sk.shutdown(socket.SHUT_WR)
        sk.settimeout(20)
        try:
            rest = sk.recv(4096)
            while sk.recv(4096):
                pass
        except OSError:
            rest = b""
        sk.close()
        t.ok(code == 220 and b"250" not in rest,
             "after %s instead of a handshake the connection is closed "
             "with no SMTP reply" % what, rest)
    with smtplib.SMTP(run.host, run.port, timeout=20) as s:
        s.starttls(context=client_ctx())
        code, _ = s.noop()
        t.ok(code == 250, "the server still takes STARTTLS afterwards")

    # nothing is left running per connection
    def tlsd_count():
        n = 0
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and read("/proc/%s/comm" % pid).strip() \
                        == b"moat-tlsd":
                    env = read("/proc/%s/environ" % pid)
                    n += root.encode() in env
            except OSError:
                pass
        return n
    t.ok(wait_for(lambda: tlsd_count() == 0, 10) or tlsd_count() == 0,
         "every moat-tlsd has exited once its connection ended",
         tlsd_count())
    t.ok("moat-tlsd: handshake" in run.logtext(),
         "the failed handshakes are logged", run.logtext()[-2000:])
finally:
    run.stop()
    remove_root(root)
t.done()
