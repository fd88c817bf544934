#!/usr/bin/env python3
"""STARTTLS (RFC 3207) and AUTH (RFC 4954) end to end: `moat run` makes its own certificate,
offers STARTTLS, and clients nobody here wrote (openssl s_client, Python's
ssl and smtplib, swaks) send mail through it; the messages reach the
Maildir byte for byte.  Plaintext sent after STARTTLS is never taken as
said under TLS, a failed handshake leaves the server serving, and EHLO under
TLS no longer offers STARTTLS.  AUTH PLAIN and LOGIN, only under TLS,
check control/smtpusers' crypt(3) hashes (made by openssl passwd) and let
the client relay."""
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
                      strip_received, remove_root, prog)

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


def raw_starttls(helo):
    """a raw connection through EHLO and STARTTLS: (socket, its reader,
    the reply to STARTTLS), the socket still in the clear"""
    sk = socket.create_connection((run.host, run.port), timeout=20)
    f = sk.makefile("rb")
    replies(f)
    sk.sendall(b"EHLO " + helo + b"\r\nSTARTTLS\r\n")
    replies(f)
    return sk, f, replies(f)[0]


def raw_tls(helo):
    """... and under TLS: (TLS socket, its reader)"""
    sk, _, _ = raw_starttls(helo)
    tls = client_ctx().wrap_socket(sk, server_hostname="localhost")
    return tls, tls.makefile("rb")


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
        sk, f, code = raw_starttls(b"x.example")
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


    # ---- AUTH: accounts hashed by openssl passwd (SHA-512 and SHA-256)
    def hashed(flag, pw):
        return subprocess.run(["openssl", "passwd", flag, pw],
                              capture_output=True, check=True,
                              timeout=30).stdout.decode().strip()
    with open(os.path.join(root, "control", "smtpusers"), "w") as f:
        f.write("# SMTP AUTH accounts\n")
        f.write("alice:%s\n" % hashed("-6", "s3cret pass"))
        f.write("bob@example.org:%s\n" % hashed("-5", "hunter2"))
        f.write("carol:plaintext\n")
    os.chmod(os.path.join(root, "control", "smtpusers"), 0o644)
    chk = subprocess.run([prog("moat"), "check", "--root", root],
                         capture_output=True, timeout=30).stdout.decode()
    t.ok("control/smtpusers (password hashes) can be read by everyone" in chk
         and "control/smtpusers: carol has no crypt(3) hash" in chk,
         "moat check reports a world-readable smtpusers and its "
         "plaintext line", chk)
    p = subprocess.run([prog("moat"), "smtpuser", "--root", root, "dave"],
                       input=b"dave's pass phrase\n", capture_output=True,
                       timeout=30)
    users = read(os.path.join(root, "control", "smtpusers")).decode()
    t.ok(p.returncode == 0 and "\ndave:$" in users and
         "phrase" not in users and users.startswith("# SMTP AUTH"),
         "moat smtpuser adds a hashed entry and keeps the other lines",
         (p.stderr, users))

    with smtplib.SMTP(run.host, run.port, timeout=20) as s:
        code, feats = s.ehlo("client.example")
        t.ok(b"AUTH" not in feats, "EHLO in the clear does not offer AUTH",
             feats)
        code, text = s.docmd("AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz")
        t.ok(code == 538 and text.startswith(b"5.7.11"),
             "AUTH in the clear gets 538 5.7.11", (code, text))
        s.starttls(context=client_ctx())
        code, feats = s.ehlo("client.example")
        t.ok(b"AUTH PLAIN LOGIN" in feats, "EHLO under TLS offers AUTH "
             "PLAIN LOGIN", feats)
        s.mail("a@example.org")
        code, _ = s.rcpt("someone@elsewhere.example")
        t.ok(code == 550, "before AUTH, relaying is denied", code)
        code, text = s.docmd("AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz")
        t.ok(code == 503, "AUTH during a transaction gets 503", (code, text))
        s.rset()
        code, text = s.docmd("AUTH CRAM-MD5")
        t.ok(code == 504, "an unknown mechanism gets 504", (code, text))
        code, text = s.docmd("AUTH PLAIN not!base64")
        t.ok(code == 501 and text.startswith(b"5.5.2"),
             "a response that is not base64 gets 501 5.5.2", (code, text))
        code, _ = s.docmd("AUTH LOGIN")
        code, text = s.docmd("*")
        t.ok(code == 501 and text.startswith(b"5.7.0"),
             "a cancelled exchange gets 501 5.7.0", (code, text))
        try:
            s.login("alice", "wrong")
            t.ok(False, "a wrong password is refused")
        except smtplib.SMTPAuthenticationError as e:
            t.ok(e.smtp_code == 535, "a wrong password gets 535 5.7.8",
                 e.smtp_error)
        code, text = s.login("alice", "s3cret pass")
        t.ok(code == 235, "smtplib login (PLAIN) succeeds: 235", text)
        code, text = s.docmd("AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz")
        t.ok(code == 503, "a second AUTH gets 503", (code, text))
        code, _ = s.mail("a@example.org", ["AUTH=<>"])
        t.ok(code == 250, "MAIL FROM with AUTH=<> is accepted", code)
        code, _ = s.rcpt("someone@elsewhere.example")
        t.ok(code == 250, "after AUTH the client may relay", code)
        s.rset()
        s.sendmail("a@example.org", ["postmaster@localhost"],
                   b"Subject: authenticated\r\n\r\nby alice\r\n")
    if t.ok(delivered(root, 5), "the authenticated message is delivered"):
        got = [read(p) for p in maildir_files(root, "postmaster")]
        mine = [g for g in got if b"by alice" in g]
        t.ok(mine and b"with ESMTPSA;" in mine[0],
             "its Received line says ESMTPSA (RFC 3848)",
             repr(mine[0][:400]) if mine else got)
    t.ok("AUTH PLAIN as alice from 127.0.0.1" in run.logtext() and
         "AUTH PLAIN failed for alice" in run.logtext(),
         "successes and failures are logged with the user name")

    def login(user, pw, mech, initial=True):
        with smtplib.SMTP(run.host, run.port, timeout=20) as s:
            s.starttls(context=client_ctx())
            s.ehlo("client.example")
            s.user, s.password = user, pw
            try:
                return s.auth(mech, getattr(s, "auth_" + mech.lower()),
                              initial_response_ok=initial)[0]
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code
    t.ok(login("bob@example.org", "hunter2", "LOGIN", False) == 235,
         "LOGIN, user name asked for: 235")
    t.ok(login("bob@example.org", "hunter2", "LOGIN", True) == 235,
         "LOGIN with the user name as initial response: 235")
    t.ok(login("bob@example.org", "hunter2", "PLAIN", False) == 235,
         "PLAIN after an empty 334 challenge: 235")
    t.ok(login("bob@example.org", "hunter3", "LOGIN") == 535,
         "LOGIN with a wrong password: 535")
    t.ok(login("nobody", "hunter2", "PLAIN") == 535,
         "an unknown user: 535")
    t.ok(login("carol", "plaintext", "PLAIN") == 535,
         "an entry that is not a crypt hash never matches")
    t.ok("entry for carol is not a crypt(3) hash" in run.logtext(),
         "and that entry is logged as refused")
    t.ok(login("alice", "", "PLAIN") == 535, "an empty password: 535")
    t.ok(login("dave", "dave's pass phrase", "PLAIN") == 235,
         "the password moat smtpuser set works (its crypt(3) default)")
    subprocess.run([prog("moat"), "smtpuser", "--root", root, "--delete",
                    "dave"], capture_output=True, timeout=30, check=True)
    t.ok(login("dave", "dave's pass phrase", "PLAIN") == 535,
         "moat smtpuser --delete removes it; the next connection knows")
    t.ok(login("alice:x", "s3cret pass", "PLAIN") == 535,
         "a user name with a colon matches nobody")

    # PLAIN acting as someone else (authzid differs): refused
    with smtplib.SMTP(run.host, run.port, timeout=20) as s:
        s.starttls(context=client_ctx())
        s.ehlo("x.example")
        import base64
        code, _ = s.docmd("AUTH PLAIN " + base64.b64encode(
            b"bob@example.org\0alice\0s3cret pass").decode())
        t.ok(code == 535, "PLAIN with another authorization identity: 535",
             code)
        code, _ = s.docmd("AUTH PLAIN " + base64.b64encode(
            b"alice\0alice\0s3cret pass").decode())
        t.ok(code == 235, "PLAIN with the same authorization identity: 235",
             code)

    # three failures end the connection
    tls, tf = raw_tls(b"x")
    tls.sendall(b"EHLO x\r\n")
    replies(tf)
    codes = []
    for i in range(3):
        tls.sendall(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")
        codes.append(replies(tf)[0])
    t.ok(codes == [535, 535, 421], "the third failed AUTH gets 421 and the "
         "connection ends", codes)
    t.ok(replies(tf)[0] is None, "nothing follows the 421")
    tls.close()

    # swaks, another client nobody here wrote
    for mech in ("PLAIN", "LOGIN"):
        p = subprocess.run(["swaks", "--server", run.host, "--port",
                            str(run.port), "--tls", "--auth", mech,
                            "--auth-user", "bob@example.org",
                            "--auth-password", "hunter2",
                            "--from", "bob@example.org",
                            "--to", "someone@elsewhere.example",
                            "--body", "relayed by swaks"],
                           capture_output=True, timeout=60)
        out = p.stdout.decode("latin-1")
        t.ok(p.returncode == 0 and "235 2.7.0" in out and
             "queued as" in out,
             "swaks --tls --auth %s relays a message" % mech, out[-1500:])

    # a client that ends TCP without a TLS close_notify, right after its
    # message: the message is queued all the same (SMTP's dot ends it)
    tls, tf = raw_tls(b"abrupt.example")
    tls.sendall(b"EHLO abrupt.example\r\nMAIL FROM:<e@example.org>\r\n"
                b"RCPT TO:<postmaster@localhost>\r\nDATA\r\n")
    codes = [replies(tf)[0] for _ in range(4)]
    tls.sendall(b"Subject: abrupt\r\n\r\nno close_notify\r\n.\r\n")
    codes.append(replies(tf)[0])
    tls.shutdown(socket.SHUT_RDWR)  # TCP only: no TLS close_notify
    tls.close()
    t.ok(codes == [250, 250, 250, 354, 250],
         "a message under TLS, then a TCP close without close_notify", codes)
    n_before = len(maildir_files(root, "postmaster"))
    t.ok(wait_for(lambda: any(b"no close_notify" in read(p) for p in
                              maildir_files(root, "postmaster")), 30),
         "that message is delivered", n_before)

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

    # a key under a passphrase: never a prompt, STARTTLS refused with 454
    keyed = os.path.join(root, "keyed")
    os.mkdir(keyed)
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-subj",
                        "/CN=localhost", "-days", "2", "-passout",
                        "pass:secret", "-keyout",
                        os.path.join(keyed, "key.pem"), "-out",
                        os.path.join(keyed, "cert.pem")],
                       capture_output=True, timeout=60)
    with open(cert, "wb") as f:
        f.write(read(os.path.join(keyed, "key.pem")) +
                read(os.path.join(keyed, "cert.pem")))
    with smtplib.SMTP(run.host, run.port, timeout=20) as s:
        s.ehlo("client.example")
        code, text = s.docmd("STARTTLS")
        t.ok(p.returncode == 0 and code == 454,
             "a passphrase-protected key: STARTTLS gets 454 at once",
             (p.stderr, code, text))
        code, _ = s.noop()
        t.ok(code == 250, "and the session goes on in the clear")
finally:
    run.stop()
    remove_root(root)

# a submission listener (MOAT_SUBMISSION, as init/moat-submission.service
# sets it): MAIL needs AUTH first
os.environ["MOAT_SUBMISSION"] = "1"
try:
    sub = MoatRun()
finally:
    del os.environ["MOAT_SUBMISSION"]
try:
    subprocess.run([prog("moat"), "smtpuser", "--root", sub.root, "erin"],
                   input=b"erin's secret\n", capture_output=True, timeout=30,
                   check=True)
    with smtplib.SMTP(sub.host, sub.port, timeout=20) as s:
        s.starttls(context=client_ctx())
        s.ehlo("client.example")
        code, text = s.mail("erin@example.org")
        t.ok(code == 530, "submission: MAIL before AUTH gets 530",
             (code, text))
        s.login("erin", "erin's secret")
        refused = s.sendmail("erin@example.org", ["postmaster@localhost"],
                             b"Subject: submitted\r\n\r\nby erin\r\n")
        t.ok(refused == {}, "submission: after AUTH the message is taken")
    t.ok(delivered(sub.root, 1), "and delivered")
finally:
    sub.stop()
    remove_root(sub.root)
t.done()
