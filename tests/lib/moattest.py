"""moattest: helpers shared by moat's Python end-to-end tests.

A tiny TAP emitter, the location of the built programs ($MOAT_BIN), fresh
run directories, running a command as an unprivileged account when the
suite runs as root (CI does), free loopback ports, starting and stopping
`moat run`, and reading the queue back.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("MOAT_BIN") or os.path.join(REPO, "bin")
SPLIT = 23
QUEUE_DIRS = ["mess", "intd", "todo", "info", "local", "remote", "bounce"]


class Tap:
    """Plain TAP output; exit status 1 if anything failed."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        print(("ok %d - %s" if cond else "not ok %d - %s") % (self.n, desc))
        if not cond:
            self.failed += 1
            if diag:
                for line in str(diag).splitlines():
                    print("# " + line)
        sys.stdout.flush()
        return cond

    def skip(self, desc, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, why))

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line)

    def done(self):
        print("1..%d" % self.n)
        sys.exit(1 if self.failed else 0)


def prog(name):
    return os.path.join(BIN, name)


def unprivileged():
    """(uid, gid) of the account tests run the MTA as when we are root."""
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def as_user_argv(argv):
    """argv run as nobody when we are root, unchanged otherwise."""
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", "--reuid=nobody", "--regid=%d" % unprivileged()[1],
            "--clear-groups"] + list(argv)


def give_away(path):
    """chown a tree to the unprivileged account when we are root."""
    if os.geteuid() != 0:
        return
    uid, gid = unprivileged()
    for dirpath, dirnames, filenames in os.walk(path):
        os.lchown(dirpath, uid, gid)
        for f in dirnames + filenames:
            os.lchown(os.path.join(dirpath, f), uid, gid)


def make_root(control=None):
    """A fresh run directory with control files and an empty queue."""
    root = tempfile.mkdtemp(prefix="moat-test-")
    os.chmod(root, 0o755)
    os.makedirs(os.path.join(root, "control"))
    for d in ("users", "mail"):
        os.makedirs(os.path.join(root, d))
    q = os.path.join(root, "queue")
    os.makedirs(os.path.join(q, "pid"))
    os.makedirs(os.path.join(q, "lock"))
    os.mkfifo(os.path.join(q, "lock", "trigger"), 0o622)
    for d in QUEUE_DIRS + ["pid"]:
        for i in range(SPLIT):
            os.makedirs(os.path.join(q, d, str(i)))
    ctl = {"me": "localhost", "locals": "localhost"}
    ctl.update(control or {})
    for k, v in ctl.items():
        write_control(root, k, v)
    give_away(root)
    return root


def write_control(root, name, value):
    p = os.path.join(root, "control", name)
    with open(p, "w") as f:
        f.write(value if value.endswith("\n") or value == "" else value + "\n")
    give_away(p)


def remove_root(root):
    shutil.rmtree(root, ignore_errors=True)


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(host, port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class MoatRun:
    """`moat run` in a temporary directory on a free loopback port."""

    def __init__(self, root=None, host="127.0.0.1", port=None, args=()):
        self.root = root or make_root()
        self.host = host
        self.port = port or free_port(host)
        listen = ("[%s]:%d" if ":" in host else "%s:%d") % (host, self.port)
        self.log = open(os.path.join(self.root, "run.log"), "wb")
        argv = [prog("moat"), "run", "--root", self.root, "--listen",
                listen] + list(args)
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if not wait_port(host, self.port):
            self.stop()
            raise RuntimeError("moat run did not listen:\n" + self.logtext())

    def logtext(self):
        with open(os.path.join(self.root, "run.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def queued(root):
    """ids of committed messages (queue/todo and queue/info), sorted."""
    ids = []
    for d in ("todo", "info"):
        base = os.path.join(root, "queue", d)
        for i in range(SPLIT):
            for name in os.listdir(os.path.join(base, str(i))):
                ids.append(int(name))
    return sorted(set(ids))


def message(root, mid):
    with open(os.path.join(root, "queue", "mess", str(mid % SPLIT),
                           str(mid)), "rb") as f:
        return f.read()


def envelope(root, mid):
    """(sender, [recipients]) from queue/todo/N/id."""
    with open(os.path.join(root, "queue", "todo", str(mid % SPLIT),
                           str(mid)), "rb") as f:
        data = f.read()
    sender, rcpts = None, []
    for rec in data.split(b"\0"):
        if rec[:1] == b"F":
            sender = rec[1:].decode("utf-8", "replace")
        elif rec[:1] == b"T":
            rcpts.append(rec[1:].decode("utf-8", "replace"))
    return sender, rcpts


def strip_received(msg, n=None):
    """the message without its leading Received lines (and continuations)."""
    lines = msg.split(b"\n")
    i = 0
    removed = 0
    while i < len(lines) and lines[i].startswith(b"Received:") and \
            (n is None or removed < n):
        i += 1
        removed += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[i:])


def all_files(root, sub):
    out = []
    for dirpath, _, filenames in os.walk(os.path.join(root, "queue", sub)):
        out += [os.path.join(dirpath, f) for f in filenames]
    return out


def maildir_files(root, box, sub="new"):
    d = os.path.join(root, "mail", box, "Maildir", sub)
    try:
        return sorted(os.path.join(d, f) for f in os.listdir(d))
    except FileNotFoundError:
        return []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def wait_for(cond, timeout=30.0, step=0.05):
    """poll cond() until true or timeout; returns its last value"""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def adduser(root, *names):
    subprocess.run([prog("moat"), "adduser", "--root", root] + list(names),
                   check=True, capture_output=True, timeout=60)


def pids_of(name, ancestor):
    """pids of processes called name that descend from ancestor"""
    parent = {}
    names = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        parent[int(p)] = ppid
        names[int(p)] = comm
    out = []
    for p, comm in names.items():
        if comm != name[:15]:
            continue
        q = p
        while q in parent and q != ancestor and q > 1:
            q = parent[q]
        if q == ancestor:
            out.append(p)
    return out


def full_listener(host, port, fill=3):
    """a listener whose accept queue is full, so that connects to it time
    out: the listening socket and the connections that fill it (close
    them all when done)"""
    lsock = socket.socket()
    lsock.bind((host, port))
    lsock.listen(0)
    conns = []
    for _ in range(fill):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect((host, port))
        except BlockingIOError:
            pass
        conns.append(c)
    time.sleep(0.2)
    return lsock, conns


def popen_logged(argv, env, logpath, pass_fds=()):
    """a long-running program with stderr to logpath (p.logpath)"""
    with open(logpath, "wb") as logf:
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=logf,
                             pass_fds=pass_fds)
    p.logpath = logpath
    return p


def logtext(p):
    """what a popen_logged program has logged so far"""
    with open(p.logpath, "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_log(p, text, count=1, timeout=5.0):
    """until text stands count times in p's log; False after timeout"""
    return bool(wait_for(lambda: logtext(p).count(text) >= count, timeout,
                         0.02))
