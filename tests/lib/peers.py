"""Scripted remote SMTP peers for the delivery tests, each its own process
run by Debian's /usr/bin/python3 (where python3-aiosmtpd imports):
smtppeer.py (aiosmtpd, records each transaction as a JSON line) and
rawpeer.py (a scripted byte-level server).  A peer is ready when its
ready file appears; stop() ends it by pid."""
import json
import os
import signal
import subprocess
import time

DEBPY = "/usr/bin/python3"
LIB = os.path.dirname(os.path.abspath(__file__))
_serial = [0]


class Peer:
    """a process that listens on host:port; its files go under tmp, and it
    is appended to `started` (if given) so the caller can stop it"""

    def __init__(self, kind, host, port, cfg, tmp, started=None):
        self.host, self.port = host, port
        _serial[0] += 1
        tag = "%s-%s-%d-%d" % (kind, host, port, _serial[0])
        self.log = os.path.join(tmp, tag + ".log")
        ready = os.path.join(tmp, tag + ".ready")
        cfg = dict(cfg, host=host, port=port, log=self.log, ready=ready)
        conf = os.path.join(tmp, tag + ".json")
        with open(conf, "w") as f:
            json.dump(cfg, f)
        script = "smtppeer.py" if kind == "smtp" else "rawpeer.py"
        self.errlog = open(os.path.join(tmp, tag + ".err"), "wb")
        self.proc = subprocess.Popen([DEBPY, os.path.join(LIB, script),
                                      conf], stdin=subprocess.DEVNULL,
                                     stdout=self.errlog,
                                     stderr=subprocess.STDOUT)
        if started is not None:
            started.append(self)
        deadline = time.time() + 20
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("peer did not start: " + tag)
            time.sleep(0.05)

    def records(self):
        """aiosmtpd peer: the transactions it took"""
        try:
            with open(self.log) as f:
                return [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []

    def by_sender(self, sender):
        return [r for r in self.records() if r["mail_from"] == sender]

    def conn(self, n=1):
        """raw peer: the bytes received on connection n"""
        try:
            with open("%s.%d" % (self.log, n), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.errlog.close()
