"""dnstest: a real DNS server (Debian's dnsmasq) on loopback for tests.

    dns = Dnsmasq(mx=[("a.test", "mx1.a.test", 10)],
                  hosts=[("mx1.a.test", "127.0.0.2")],
                  nullmx=["null.test"])
    write_control(root, "nameservers", dns.server)   # "127.0.0.1:PORT"
    ...
    dns.stop()

dnsmasq runs in the foreground on 127.0.0.1 and a free port (UDP and
TCP), reads no /etc/hosts, no resolv.conf and no configuration file, and
answers only from the records given here:
    mx      (domain, host, preference)        --mx-host
    hosts   (name, address), IPv4 or IPv6     --host-record, one per address
    nullmx  domain: "MX 0 ." (RFC 7505)       --dns-rr, type 15, data 000000
    cname   (alias, target)                   --cname
    txt     name: a TXT record only (a name that exists, no MX, no
            address)                          --txt-record
    rr      (name, type number, hex data)     --dns-rr
    local   domains served only from these records: any other name under
            them is NXDOMAIN (--local); default ("test",).  Names outside
            them are REFUSED (no upstream server), a temporary failure.
It is stopped by its pid.  As root (CI) it would drop to "nobody"; in
--no-daemon mode it keeps the caller's uid, which is what a test wants.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def available():
    return os.path.exists(DNSMASQ)


def _free_port():
    """a port free for both UDP and TCP on 127.0.0.1"""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            t.close()
            u.close()
        return port
    raise RuntimeError("no free port for dnsmasq")


def _answers(port, timeout=10.0):
    """wait until dnsmasq answers a query on UDP"""
    q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x05probe\x04test\x00\x00\x01\x00\x01")
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", port))
            if s.recv(512)[:2] == b"\x12\x34":
                return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


class Dnsmasq:
    def __init__(self, mx=(), hosts=(), nullmx=(), cname=(), txt=(), rr=(),
                 local=("test",)):
        self.port = _free_port()
        self.server = "127.0.0.1:%d" % self.port
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll", "--pid-file=",
                "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--log-facility=-", "--local-ttl=0"]
        for d in local:
            args.append("--local=/%s/" % d)
        for domain, host, pref in mx:
            args.append("--mx-host=%s,%s,%d" % (domain, host, pref))
        for name, ip in hosts:
            args.append("--host-record=%s,%s" % (name, ip))
        for name in nullmx:
            args.append("--dns-rr=%s,15,000000" % name)
        for alias, target in cname:
            args.append("--cname=%s,%s" % (alias, target))
        for name in txt:
            args.append("--txt-record=%s,moat test" % name)
        for name, typ, data in rr:
            args.append("--dns-rr=%s,%d,%s" % (name, typ, data))
        self.logfile = tempfile.NamedTemporaryFile(prefix="moat-dnsmasq-",
                                                   suffix=".log",
                                                   delete=False)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.logfile,
                                     stderr=subprocess.STDOUT)
        if not _answers(self.port):
            self.stop()
            raise RuntimeError("dnsmasq did not start:\n" + self.log())

    def log(self):
        with open(self.logfile.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logfile.close()
        try:
            os.unlink(self.logfile.name)
        except OSError:
            pass
