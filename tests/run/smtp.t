#!/usr/bin/env python3
"""smtp.t: table-driven SMTP dialogue tests for moat-smtpd (TAP).

Runs every tests/smtp/*.smtp script against the real $MOAT_BIN/moat-smtpd,
each in a fresh MOAT_ROOT (control files + an empty queue), talking to it
through pipes on its fds 0 and 1, with a timeout on every read and write.
One TAP line per script; a failure shows the failing step, the transcript
tail and moat-smtpd's stderr as '# ' diagnostics.  The script format is
described in tests/smtp/README.md.

    MOAT_BIN=$PWD/bin prove --exec '' tests/run/smtp.t
    tests/run/smtp.t -v tests/smtp/happy-path.smtp     # one script, verbose
    tests/run/smtp.t -v -k happy-path                  # ... and keep its root

When run as root (CI), the temporary root is chowned to nobody:nogroup and
moat-smtpd is started through setpriv, since it refuses to run as root.
Environment: MOAT_BIN (programs), MOAT_SMTP_JOBS (scripts run in parallel,
default 4), MOAT_SMTP_TIMEOUT (default per-read timeout, seconds, 10).
"""
import concurrent.futures
import errno
import os
import pwd
import grp
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(REPO, "tests", "smtp")
BIN = os.environ.get("MOAT_BIN") or os.path.join(REPO, "bin")
SPLIT = 23
SPLIT_DIRS = [("mess", 0o750), ("intd", 0o700), ("todo", 0o750),
              ("info", 0o700), ("local", 0o700), ("remote", 0o700),
              ("bounce", 0o700)]
DEFAULT_TIMEOUT = float(os.environ.get("MOAT_SMTP_TIMEOUT") or 10)
EXIT_GRACE = 10.0       # seconds moat-smtpd gets to exit at the end
MAX_STEPS_OUTPUT = 40   # transcript lines shown on failure
PASS_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ", "LANG",
            "LC_ALL")
IS_ROOT = os.geteuid() == 0


class Fail(Exception):
    """a step failed; the message says how"""


# ---------------------------------------------------------------- parsing

ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\",
           '"': b'"', "s": b" "}


def unescape(s):
    """script text to bytes: \\r \\n \\t \\0 \\s (space) \\\\ \\" \\xHH"""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= len(s):
            raise ValueError("backslash at end of text")
        e = s[i + 1]
        if e in ESCAPES:
            out += ESCAPES[e]
            i += 2
        elif e == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", s[i + 2:i + 4]):
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError("unknown escape \\%s" % e)
    return bytes(out)


def tokens(s):
    """split s into words and "quoted strings" (the latter unescaped)"""
    out = []
    i = 0
    while i < len(s):
        if s[i] == " ":
            i += 1
            continue
        if s[i] == '"':
            j = i + 1
            while j < len(s) and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            if j >= len(s):
                raise ValueError("unterminated quoted string")
            out.append(unescape(s[i + 1:j]))
            i = j + 1
        else:
            j = s.find(" ", i)
            j = len(s) if j == -1 else j
            out.append(s[i:j].encode("utf-8"))
            i = j
    return out


def parse(path):
    """(setup, steps): setup is a dict, steps a list of (lineno, op, args)"""
    setup = {"control": {}, "env": {}, "unenv": [], "exec": {},
             "timeout": None,
             "todo": None, "description": None}
    steps = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if line.startswith("#"):
            if setup["description"] is None:
                setup["description"] = line.lstrip("#").strip()
            continue
        op, _, rest = line.partition(" ")
        try:
            if op == "!control":
                name, _, value = rest.partition(" ")
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                    raise ValueError("bad control file name")
                v = unescape(value)
                setup["control"][name] = v + b"\n" if v else b""
            elif op == "!env":
                name, _, value = rest.partition(" ")
                setup["env"][name] = unescape(value)
            elif op == "!exec":
                name, _, text = rest.partition(" ")
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                    raise ValueError("bad file name")
                setup["exec"][name] = unescape(text)
            elif op == "!unenv":
                setup["unenv"].append(rest.strip())
            elif op == "!timeout":
                setup["timeout"] = float(rest)
            elif op == "!todo":
                setup["todo"] = rest.strip() or "known bug"
            elif op == ">":
                steps.append((no, "send", unescape(rest) + b"\r\n"))
            elif op == ">>":
                steps.append((no, "send", unescape(rest)))
            elif op == ">*":
                count, _, text = rest.partition(" ")
                n = int(count)
                if not 0 < n <= 16_000_000:
                    raise ValueError("repeat count out of range")
                if "{i}" in text:
                    data = b"".join(unescape(text.replace("{i}", str(k)))
                                    for k in range(1, n + 1))
                else:
                    data = unescape(text) * n
                if len(data) > 64 * 1024 * 1024:
                    raise ValueError("more than 64 MB to send")
                steps.append((no, "send", data))
            elif op == "<":
                steps.append((no, "reply", (1, rest)))
            elif op == "<*":
                count, _, prefix = rest.partition(" ")
                n = int(count)
                if not 0 < n <= 100_000:
                    raise ValueError("repeat count out of range")
                steps.append((no, "reply", (n, prefix)))
            elif op == "~":
                steps.append((no, "match", (re.compile(rest), True)))
            elif op == "~!":
                steps.append((no, "match", (re.compile(rest), False)))
            elif op == "@":
                words = rest.split()
                if words[:1] == ["sleep"] and len(words) == 2:
                    t = float(words[1])
                    if not 0 <= t <= 10:
                        raise ValueError("sleep out of range")
                    steps.append((no, "sleep", t))
                elif words == ["disconnect"]:
                    steps.append((no, "disconnect", None))
                else:
                    raise ValueError("unknown action")
            elif op == "=":
                steps.append((no, "assert", parse_assert(rest)))
            else:
                raise ValueError("unknown step %r" % op)
        except (ValueError, re.error) as e:
            raise Fail("%s:%d: %s: %s" % (os.path.basename(path), no, e,
                                          line))
    return setup, steps


def parse_assert(rest):
    words = rest.split(" ")
    what = words[0]
    if what in ("closed", "no-leftovers"):
        if len(words) != 1:
            raise ValueError("%s takes no argument" % what)
        return (what,)
    if what == "exit":
        return ("exit", int(words[1]))
    if what == "queued":
        m = re.fullmatch(r"queued (<=|>=)?\s*(\d+)", rest)
        if not m:
            raise ValueError("usage: = queued [<=|>=] N")
        return ("queued", m.group(1) or "==", int(m.group(2)))
    if what in ("no-sender", "no-recipient", "log-contains", "log-lacks"):
        t = tokens(rest[len(what):])
        if len(t) != 1:
            raise ValueError("usage: = %s \"TEXT\"" % what)
        return (what, t[0])
    if what == "file":
        m = re.fullmatch(r"file ([A-Za-z0-9_.-]+) (contains|lacks|equals) "
                         r"(.*)", rest)
        t = tokens(m.group(3)) if m else []
        if len(t) != 1:
            raise ValueError("usage: = file NAME contains|lacks|equals "
                             "\"TEXT\"")
        return ("file", m.group(1), m.group(2), t[0])
    if what == "message":
        m = re.fullmatch(r"message (\d+) (contains|lacks|equals|matches) (.*)",
                         rest)
        if not m:
            raise ValueError("usage: = message K contains|lacks|equals|"
                             "matches ...")
        k, kind, arg = int(m.group(1)), m.group(2), m.group(3)
        if kind == "matches":
            return ("message", k, kind, re.compile(arg.encode("latin-1")))
        t = tokens(arg)
        if len(t) != 1:
            raise ValueError("expected one \"quoted string\"")
        return ("message", k, kind, t[0])
    if what == "envelope":
        m = re.fullmatch(r"envelope (\d+) (sender|recipients|rcptcount|"
                         r"layout)\s*(.*)", rest)
        if not m:
            raise ValueError("usage: = envelope K sender|recipients|"
                             "rcptcount|layout ...")
        k, kind, arg = int(m.group(1)), m.group(2), m.group(3)
        if kind == "rcptcount":
            return ("envelope", k, kind, int(arg))
        if kind == "layout":
            return ("envelope", k, kind, None)
        t = tokens(arg)
        if kind == "sender" and len(t) != 1:
            raise ValueError("usage: = envelope K sender \"ADDR\"")
        return ("envelope", k, kind, t)
    raise ValueError("unknown assertion %r" % what)


# ------------------------------------------------------------------ queue

def make_root(base, control):
    root = os.path.join(base, "root")
    os.mkdir(root, 0o755)
    os.mkdir(os.path.join(root, "control"), 0o755)
    q = os.path.join(root, "queue")
    os.mkdir(q, 0o750)
    os.mkdir(os.path.join(q, "pid"), 0o700)
    for i in range(SPLIT):
        os.mkdir(os.path.join(q, "pid", str(i)), 0o700)
    os.mkdir(os.path.join(q, "lock"), 0o750)
    os.mkfifo(os.path.join(q, "lock", "trigger"), 0o622)
    for d, mode in SPLIT_DIRS:
        os.mkdir(os.path.join(q, d), mode)
        for i in range(SPLIT):
            os.mkdir(os.path.join(q, d, str(i)), mode)
    # rcptcheck 0: these scripts are about the protocol, not the user
    # table (rcpt-check-*.smtp turn it back on)
    ctl = {"me": b"localhost\n", "locals": b"localhost\n",
           "rcptcheck": b"0\n"}
    ctl.update(control)
    for name, value in ctl.items():
        with open(os.path.join(root, "control", name), "wb") as f:
            f.write(value)
    return root


def give_away(path):
    uid = pwd.getpwnam("nobody").pw_uid
    gid = grp.getgrnam("nogroup").gr_gid
    for dirpath, dirnames, filenames in os.walk(path):
        os.lchown(dirpath, uid, gid)
        for f in dirnames + filenames:
            os.lchown(os.path.join(dirpath, f), uid, gid)


def files_in(root, d):
    base = os.path.join(root, "queue", d)
    out = []
    for dirpath, _, filenames in os.walk(base):
        out += [os.path.relpath(os.path.join(dirpath, f), base)
                for f in filenames]
    return sorted(out)


def todo_ids(root):
    ids = []
    for rel in files_in(root, "todo"):
        ids.append(int(rel.split("/")[-1]))
    return sorted(ids)


def read_queue_file(root, d, mid):
    with open(os.path.join(root, "queue", d, str(mid % SPLIT), str(mid)),
              "rb") as f:
        return f.read()


def envelope_records(data):
    """records of a queue envelope; raises Fail if not NUL-terminated"""
    if not data.endswith(b"\0"):
        raise Fail("envelope does not end with a NUL: %r" % data[-40:])
    return data[:-1].split(b"\0")


def strip_moat_received(msg):
    """the message without the two leading Received fields moat adds"""
    lines = msg.split(b"\n")
    i = 0
    for _ in range(2):
        if i >= len(lines) or not lines[i].startswith(b"Received:"):
            raise Fail("message does not start with two Received fields: "
                       "%r" % msg[:300])
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[i:])


def check_queue(root):
    """invariants once moat-smtpd has exited; returns a list of problems"""
    bad = []
    pid = files_in(root, "pid")
    if pid:
        bad.append("files left in queue/pid: %s" % pid)
    mess = set(files_in(root, "mess"))
    intd = set(files_in(root, "intd"))
    todo = set(files_in(root, "todo"))
    for rel in sorted(todo):
        n, name = rel.split("/")
        if not name.isdigit() or int(name) % SPLIT != int(n):
            bad.append("todo/%s is in the wrong split directory" % rel)
        if rel not in mess:
            bad.append("todo/%s has no mess/%s" % (rel, rel))
    for rel in sorted(mess - todo):
        bad.append("mess/%s left over without todo/%s" % (rel, rel))
    for rel in sorted(intd - todo):
        bad.append("intd/%s left over without todo/%s" % (rel, rel))
    for mid in todo_ids(root):
        try:
            recs = envelope_records(read_queue_file(root, "todo", mid))
        except Fail as e:
            bad.append("todo id %d: %s" % (mid, e))
            continue
        tags = [r[:1] for r in recs]
        if tags.count(b"F") != 1 or b"T" not in tags or b"" in tags:
            bad.append("todo id %d: bad envelope records %r" % (mid, recs))
    return bad


# ---------------------------------------------------------------- session

def printable(b, limit=300):
    s = b[:limit].decode("latin-1")
    s = s.encode("unicode_escape").decode("ascii")
    return s + ("...(%d bytes)" % len(b) if len(b) > limit else "")


class Session:
    def __init__(self, name, setup, verbose=False, keep=False):
        self.name = name
        self.setup = setup
        self.verbose = verbose
        self.keep = keep
        self.timeout = setup["timeout"] or DEFAULT_TIMEOUT
        self.transcript = []
        self.rbuf = b""
        self.eof = False
        self.write_broken = False
        self.write_closed = False
        self.last_reply = None
        self.replies = 0
        self.queued_ids = []     # from "queued as ID" replies, in order
        self.proc = None
        self.base = None
        self.root = None
        self.errpath = None
        self.me = (setup["control"].get("me") or b"localhost\n").strip()

    def log(self, who, data):
        lines = data.split(b"\n")
        if len(lines) > 1 and lines[-1] == b"":
            lines.pop()
        for line in lines:
            entry = "%s: %s" % (who, printable(line, 200))
            self.transcript.append(entry)
            if self.verbose:
                sys.stderr.write(entry + "\n")

    # -- process

    def start(self):
        tmpbase = "/tmp" if IS_ROOT else None
        self.base = tempfile.mkdtemp(prefix="moat-smtp-", dir=tmpbase)
        self.root = make_root(self.base, self.setup["control"])
        self.errpath = os.path.join(self.base, "stderr")
        for name, text in self.setup["exec"].items():
            path = os.path.join(self.root, name)
            with open(path, "wb") as f:
                f.write(text)
            os.chmod(path, 0o755)
        if IS_ROOT:
            give_away(self.base)
        env = {"PATH": "/usr/bin:/bin", "MOAT_ROOT": self.root,
               "TCPREMOTEIP": "127.0.0.1", "TCPLOCALIP": "127.0.0.1"}
        for k in PASS_ENV:
            if k in os.environ:
                env[k] = os.environ[k]
        for k in self.setup["unenv"]:
            env.pop(k, None)
        for k, v in self.setup["env"].items():
            v = v.replace(b"$MOAT_ROOT", self.root.encode())
            env[k] = v.decode("utf-8", "surrogateescape")
        argv = [os.path.join(BIN, "moat-smtpd")]
        if IS_ROOT:
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                    "--clear-groups"] + argv
        with open(self.errpath, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, env=env, cwd=self.root, start_new_session=True)
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)

    def stop(self):
        """wait for exit (bounded), kill if needed; returns problems"""
        bad = []
        if self.proc is None:
            return bad
        if not self.write_closed:
            self.close_write()
        try:
            self.proc.wait(EXIT_GRACE)
        except subprocess.TimeoutExpired:
            bad.append("moat-smtpd did not exit within %gs; killed"
                       % EXIT_GRACE)
            self.kill()
        self.proc.stdout.close()
        return bad

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def cleanup(self):
        self.kill()
        if self.base and not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def stderr_text(self):
        if not self.errpath:
            return ""
        try:
            with open(self.errpath, "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close_write(self):
        if not self.write_closed:
            self.write_closed = True
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    # -- I/O

    def _read_some(self):
        try:
            data = os.read(self.rfd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                data = b""
            else:
                raise
        if not data:
            self.eof = True
        self.rbuf += data

    def send(self, data):
        self.log("C", data if len(data) <= 4096 else
                 data[:200] + b"..." + data[-40:])
        if self.write_closed:
            raise Fail("send after disconnect")
        if self.write_broken:
            return
        view = memoryview(data)
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.wfd, selectors.EVENT_WRITE)
            if not self.eof:
                sel.register(self.rfd, selectors.EVENT_READ)
            while view:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail("write timed out after %gs with %d bytes "
                               "unsent" % (self.timeout, len(view)))
                for key, _ in sel.select(left):
                    if key.fd == self.rfd:
                        self._read_some()
                        if self.eof:
                            sel.unregister(self.rfd)
                        continue
                    try:
                        n = os.write(self.wfd, view[:65536])
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        self.write_broken = True
                        self.log("#", b"(write failed: server closed the "
                                 b"connection)")
                        return
                    view = view[n:]
                    if view:
                        deadline = time.monotonic() + self.timeout

    def _wait_readable(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail("timed out after %gs waiting for %s"
                       % (self.timeout, what))
        with selectors.DefaultSelector() as sel:
            sel.register(self.rfd, selectors.EVENT_READ)
            if sel.select(left):
                self._read_some()

    def read_line(self, deadline, what):
        while True:
            i = self.rbuf.find(b"\n")
            if i >= 0:
                line, self.rbuf = self.rbuf[:i + 1], self.rbuf[i + 1:]
                return line
            if self.eof:
                if self.rbuf:
                    raise Fail("connection closed in the middle of a line: "
                               "%r" % self.rbuf)
                raise Fail("connection closed while waiting for %s" % what)
            self._wait_readable(deadline, what)

    def read_reply(self, want):
        deadline = time.monotonic() + self.timeout
        lines = []
        code = None
        while True:
            line = self.read_line(deadline, "a reply (expected %s)" % want)
            self.log("S", line.rstrip(b"\r\n"))
            if not line.endswith(b"\r\n"):
                raise Fail("reply line not terminated by CRLF: %r" % line)
            text = line[:-2].decode("latin-1")
            m = re.fullmatch(r"(\d{3})([ -]?)(.*)", text, re.S)
            if not m or (m.group(2) == "" and m.group(3) != ""):
                raise Fail("malformed reply line %r" % text)
            if code is not None and m.group(1) != code:
                raise Fail("reply code changes inside a multi-line reply: "
                           "%r" % (lines + [text]))
            code = m.group(1)
            lines.append(text)
            if len(lines) > 1000:
                raise Fail("reply of over 1000 lines")
            if m.group(2) != "-":
                break
        self.replies += 1
        self.last_reply = lines
        self.check_enhanced(lines)
        m = re.search(r"queued as (\d+)", lines[-1])
        if code == "250" and m:
            self.queued_ids.append(int(m.group(1)))
        return lines

    def check_enhanced(self, lines):
        """RFC 2034: every line after the greeting and HELO/EHLO's 250
        carries a class.subject.detail code whose class is the reply's"""
        code = lines[0][:3]
        if self.replies == 1 and code == "220":
            return          # the greeting
        if code == "354":
            return
        first = lines[0][4:].encode("latin-1")
        if code == "250" and (first == self.me or
                              first.startswith(self.me + b" ")):
            return          # the reply to HELO/EHLO names this host
        for line in lines:
            m = re.match(r"\d{3}[ -](\d)\.(\d{1,3})\.(\d{1,3})( |$)", line)
            if not m:
                raise Fail("reply line without an enhanced status code: "
                           "%r" % line)
            if m.group(1) != code[0]:
                raise Fail("enhanced status class %s does not match reply "
                           "code %s: %r" % (m.group(1), code, line))

    def expect_closed(self):
        deadline = time.monotonic() + self.timeout
        while not self.eof:
            self._wait_readable(deadline, "the server to close the "
                                "connection")
        if self.rbuf:
            data, self.rbuf = self.rbuf, b""
            self.log("S", data)
            raise Fail("unexpected output before the connection closed: %r"
                       % data[:500])

    def wait_exit(self):
        try:
            return self.proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            raise Fail("moat-smtpd did not exit within %gs" % self.timeout)

    # -- steps

    def message_id(self, k):
        if k < 1 or k > len(self.queued_ids):
            raise Fail("message %d: only %d message(s) announced as "
                       "'queued as ID'" % (k, len(self.queued_ids)))
        return self.queued_ids[k - 1]

    def run_assert(self, a):
        what = a[0]
        if what == "closed":
            self.expect_closed()
        elif what == "exit":
            st = self.wait_exit()
            if st != a[1]:
                raise Fail("moat-smtpd exited with %s, expected %d"
                           % (st, a[1]))
        elif what == "no-leftovers":
            if self.proc.poll() is None:
                self.close_write()
                self.wait_exit()
            bad = check_queue(self.root)
            if bad:
                raise Fail("; ".join(bad))
        elif what == "queued":
            n = len(todo_ids(self.root))
            op, want = a[1], a[2]
            ok = {"==": n == want, "<=": n <= want, ">=": n >= want}[op]
            if not ok:
                raise Fail("%d message(s) in queue/todo, expected %s %d"
                           % (n, op, want))
        elif what in ("no-sender", "no-recipient"):
            tag = b"F" if what == "no-sender" else b"T"
            for mid in todo_ids(self.root):
                recs = envelope_records(read_queue_file(self.root, "todo",
                                                        mid))
                if tag + a[1] in recs:
                    raise Fail("message %d has %s <%s>" % (
                        mid, "sender" if tag == b"F" else "recipient",
                        a[1].decode("latin-1")))
        elif what in ("log-contains", "log-lacks"):
            text = self.stderr_text().encode("utf-8")
            if (a[1] in text) != (what == "log-contains"):
                raise Fail("stderr %s %r" % (
                    "lacks" if what == "log-contains" else "contains", a[1]))
        elif what == "file":
            name, kind, arg = a[1], a[2], a[3]
            try:
                with open(os.path.join(self.root, name), "rb") as f:
                    data = f.read()
            except OSError as e:
                raise Fail("cannot read %s: %s" % (name, e.strerror))
            if ((kind == "contains" and arg not in data) or
                    (kind == "lacks" and arg in data) or
                    (kind == "equals" and arg != data)):
                raise Fail("file %s is %r; expected it to %s %r"
                           % (name, data[:1500], kind.rstrip("s"), arg))
        elif what == "message":
            k, kind, arg = a[1], a[2], a[3]
            mid = self.message_id(k)
            msg = read_queue_file(self.root, "mess", mid)
            if kind == "contains" and arg not in msg:
                raise Fail("message %d lacks %r; it is %r"
                           % (k, arg, msg[:1500]))
            if kind == "lacks" and arg in msg:
                raise Fail("message %d contains %r; it is %r"
                           % (k, arg, msg[:1500]))
            if kind == "equals":
                body = strip_moat_received(msg)
                if body != arg:
                    raise Fail("message %d (after moat's Received fields) "
                               "is %r, expected %r" % (k, body[:1500], arg))
            if kind == "matches" and not arg.search(msg):
                raise Fail("message %d does not match /%s/; it is %r"
                           % (k, arg.pattern.decode("latin-1"), msg[:1500]))
        elif what == "envelope":
            k, kind, arg = a[1], a[2], a[3]
            mid = self.message_id(k)
            recs = envelope_records(read_queue_file(self.root, "todo", mid))
            senders = [r[1:] for r in recs if r[:1] == b"F"]
            rcpts = [r[1:] for r in recs if r[:1] == b"T"]
            if kind == "layout":
                tags = b"".join(r[:1] for r in recs)
                if (not re.fullmatch(rb"upFT+", tags) or
                        not recs[0][1:].isdigit() or
                        not recs[1][1:].isdigit()):
                    raise Fail("envelope records are %r, expected u<uid> "
                               "p<pid> F<sender> T<rcpt>..." % recs)
            elif kind == "sender" and senders != arg:
                raise Fail("envelope sender is %r, expected %r"
                           % (senders, arg))
            elif kind == "recipients" and rcpts != arg:
                raise Fail("envelope recipients are %r, expected %r"
                           % (rcpts, arg))
            elif kind == "rcptcount" and len(rcpts) != arg:
                raise Fail("%d envelope recipients, expected %d"
                           % (len(rcpts), arg))

    def run(self, steps):
        """run the steps; raises Fail with 'line N: ...'"""
        for no, op, arg in steps:
            try:
                if op == "send":
                    self.send(arg)
                elif op == "reply":
                    n, prefix = arg
                    for i in range(n):
                        lines = self.read_reply(prefix)
                        if not lines[-1].startswith(prefix):
                            raise Fail("got %r, expected a reply starting "
                                       "with %r%s" % (
                                           "\n".join(lines), prefix,
                                           " (%d of %d)" % (i + 1, n)
                                           if n > 1 else ""))
                elif op == "match":
                    rx, want = arg
                    if self.last_reply is None:
                        raise Fail("no reply read yet")
                    text = "\n".join(self.last_reply)
                    if bool(rx.search(text)) != want:
                        raise Fail("last reply %s /%s/: %r" % (
                            "does not match" if want else "matches",
                            rx.pattern, text))
                elif op == "sleep":
                    time.sleep(arg)
                elif op == "disconnect":
                    self.log("C", b"(disconnect)")
                    self.close_write()
                elif op == "assert":
                    self.run_assert(arg)
            except Fail as e:
                raise Fail("line %d: %s" % (no, e))
        # the end: nothing may be left unread, nothing may fail
        if self.write_broken and not any(
                op == "assert" and arg[0] == "closed" for _, op, arg in steps):
            raise Fail("a write hit a closed connection, but the script "
                       "does not expect '= closed'")
        self.close_write()
        deadline = time.monotonic() + self.timeout
        while not self.eof:
            try:
                self._wait_readable(deadline, "end of output after the "
                                    "script")
            except Fail:
                break
        if self.rbuf:
            self.log("S", self.rbuf)
            raise Fail("end of script: unread server output %r"
                       % self.rbuf[:500])


def run_script(path, verbose=False, keep=False):
    """returns (ok, todo_reason, diagnostics)"""
    name = os.path.basename(path)
    try:
        setup, steps = parse(path)
    except Fail as e:
        return False, None, [str(e)]
    except OSError as e:
        return False, None, ["cannot read %s: %s" % (path, e)]
    s = Session(name, setup, verbose, keep)
    diag = []
    ok = True
    try:
        s.start()
        s.run(steps)
    except Fail as e:
        ok = False
        diag.append("%s %s" % (name, e))
    except Exception as e:  # a runner bug: report it, do not hang
        ok = False
        diag.append("runner error: %s: %s" % (type(e).__name__, e))
    try:
        bad = s.stop()
        if ok and s.root:
            bad += check_queue(s.root)
        if s.proc and s.proc.returncode is not None and \
                s.proc.returncode < 0:
            bad.append("moat-smtpd died of signal %d" % -s.proc.returncode)
        if bad:
            ok = False
            diag += bad
    except Exception as e:
        ok = False
        diag.append("runner error at the end: %s: %s"
                    % (type(e).__name__, e))
    if not ok:
        diag.append("rerun: tests/run/smtp.t -v %s" % path)
        diag.append("transcript (last %d lines):" % MAX_STEPS_OUTPUT)
        diag += ["  " + t for t in s.transcript[-MAX_STEPS_OUTPUT:]]
        err = s.stderr_text().strip()
        if err:
            diag.append("moat-smtpd stderr:")
            diag += ["  " + ln for ln in err.splitlines()[-15:]]
    if keep:
        diag.append("root kept in %s" % s.base)
    s.cleanup()
    return ok, setup["todo"], diag


def main(argv):
    verbose = keep = False
    args = []
    for a in argv:
        if a == "-v":
            verbose = True
        elif a == "-k":
            keep = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(a)
    if args:
        paths = []
        for a in args:
            if os.path.exists(a):
                paths.append(a)
            else:
                p = os.path.join(SCRIPTS, a if a.endswith(".smtp")
                                 else a + ".smtp")
                paths.append(p)
    else:
        paths = sorted(os.path.join(SCRIPTS, f) for f in os.listdir(SCRIPTS)
                       if f.endswith(".smtp"))
    smtpd = os.path.join(BIN, "moat-smtpd")
    if not os.access(smtpd, os.X_OK) or \
            not os.access(os.path.join(BIN, "moat-queue"), os.X_OK):
        print("Bail out! no moat-smtpd/moat-queue in %s (run make)" % BIN)
        return 1
    if IS_ROOT and not shutil.which("setpriv"):
        print("Bail out! running as root needs setpriv (util-linux)")
        return 1
    print("1..%d" % len(paths))
    sys.stdout.flush()
    jobs = 1 if verbose else max(1, int(os.environ.get("MOAT_SMTP_JOBS")
                                        or 4))
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        futs = [ex.submit(run_script, p, verbose, keep) for p in paths]
        for n, (p, fut) in enumerate(zip(paths, futs), 1):
            ok, todo, diag = fut.result()
            desc = os.path.basename(p)[:-len(".smtp")] \
                if p.endswith(".smtp") else p
            line = "%s %d - %s" % ("ok" if ok else "not ok", n, desc)
            if todo:
                line += " # TODO " + todo
            elif not ok:
                failed += 1
            print(line)
            sys.stdout.flush()
            # failures on stderr, so that prove shows them without -v
            f = sys.stdout if ok or todo else sys.stderr
            for d in diag:
                for ln in d.splitlines():
                    f.write("# " + ln + "\n")
            f.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
