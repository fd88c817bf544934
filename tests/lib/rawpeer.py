"""rawpeer: a raw-socket SMTP peer that says exactly what its script says,
for hostile-server tests and for recording the exact bytes a client sends.

    python3 rawpeer.py CONFIG.json

CONFIG is a JSON object:
    host, port  where to listen
    log         every byte received on connection N goes to LOG.N
    ready       file written once the socket listens
    script      steps run on each connection, in order:
                ["send", TEXT]          TEXT as latin-1 bytes
                ["sendn", TEXT, N]      TEXT repeated N times
                ["line"]                read one line (through LF)
                ["data"]                read through CRLF.CRLF
                ["sleep", SECONDS]
                ["close"]               hang up now
                after the last step: read until the client hangs up
                (at most 30 s), then close
Standard library only, so any python3 runs it.
"""
import json
import os
import socket
import sys
import threading
import time


def serve(conn, n, cfg):
    got = bytearray()
    conn.settimeout(30)
    log = "%s.%d" % (cfg["log"], n)

    def save():
        # whole or not at all: a reader never sees a truncated file
        with open(log + ".tmp", "wb") as f:
            f.write(bytes(got))
        os.rename(log + ".tmp", log)

    def read_until(marker, back=0):
        # back: bytes before the current line that may begin the marker
        # (the CRLF ending DATA's line begins "CRLF . CRLF" too)
        s = max(start[0] - back, 0)
        while marker not in got[s:]:
            b = conn.recv(65536)
            if not b:
                raise EOFError
            got.extend(b)
            save()
        start[0] = got.index(marker, s) + len(marker)

    start = [0]
    try:
        for step in cfg["script"]:
            op = step[0]
            if op == "send":
                conn.sendall(step[1].encode("latin-1"))
            elif op == "sendn":
                conn.sendall(step[1].encode("latin-1") * step[2])
            elif op == "line":
                read_until(b"\n")
            elif op == "data":
                read_until(b"\r\n.\r\n", 2)
            elif op == "sleep":
                time.sleep(step[1])
            elif op == "close":
                break
        else:
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                got.extend(b)
                save()
    except (OSError, EOFError):
        pass
    save()
    try:
        conn.close()
    except OSError:
        pass


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    fam = socket.AF_INET6 if ":" in cfg["host"] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((cfg["host"], cfg["port"]))
    s.listen(16)
    with open(cfg["ready"], "w") as f:
        f.write("ready\n")
    n = 0
    while True:
        conn, _ = s.accept()
        n += 1
        threading.Thread(target=serve, args=(conn, n, cfg),
                         daemon=True).start()


if __name__ == "__main__":
    main()
