"""smtppeer: a scripted remote SMTP server for moat-remote's tests.

Run with Debian's interpreter (/usr/bin/python3, where python3-aiosmtpd
imports), as its own process:

    /usr/bin/python3 smtppeer.py CONFIG.json

CONFIG is a JSON object:
    host, port      where to listen
    log             file that gets one JSON line per finished transaction:
                    {"peer" (the client's address), "ehlo", "mail_from",
                     "mail_options", "rcpt_tos",
                     "rcpt_options", "content" (latin-1 text of the
                     unstuffed data, line ends as received)}
    ready           file written once the server listens
    pipelining      true: EHLO offers PIPELINING too
    size            the SIZE limit to offer (0: aiosmtpd's default)
    mail            a reply to every MAIL FROM instead of 250
    rcpt            {address: reply} for RCPT TO (others get 250)
    ehlo            a reply to EHLO instead of the usual one
    data            the reply after the final dot, or "drop" (close the
                    connection without a reply) or "stall" (say nothing
                    for a minute)
    tls             a PEM file with certificate and key: EHLO offers
                    STARTTLS; each log line says "tls": the TLS version
                    of its session, or null
    tls_broken      true: STARTTLS gets 220, then bytes that are no TLS
                    and a hang-up
aiosmtpd itself speaks the protocol; this file only decides the replies.
"""
import asyncio
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, cfg):
        self.cfg = cfg

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        session.moat_ehlo = hostname
        if self.cfg.get("ehlo"):
            return [self.cfg["ehlo"]]
        if self.cfg.get("pipelining"):
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        if self.cfg.get("mail"):
            return self.cfg["mail"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.cfg.get("rcpt", {}).get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rec = {
            "peer": session.peer[0],
            "ehlo": getattr(session, "moat_ehlo", session.host_name),
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "content": envelope.original_content.decode("latin-1"),
            "tls": (server.transport.get_extra_info("ssl_object").version()
                    if server.transport.get_extra_info("ssl_object")
                    else None),
        }
        with open(self.cfg["log"], "a") as f:
            f.write(json.dumps(rec) + "\n")
        data = self.cfg.get("data", "250 2.0.0 OK queued")
        if data == "drop":
            server.transport.abort()
            return "250 2.0.0 never seen"
        if data == "stall":
            await asyncio.sleep(60)
        return data


class Ctl(Controller):
    def __init__(self, handler, cfg):
        self.cfg = cfg
        super().__init__(handler, hostname=cfg["host"], port=cfg["port"],
                         ready_timeout=10)

    def factory(self):
        kw = {}
        if self.cfg.get("size"):
            kw["data_size_limit"] = self.cfg["size"]
        if self.cfg.get("tls"):
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cfg["tls"])
            kw["tls_context"] = ctx
        cls = BrokenTLS if self.cfg.get("tls_broken") else SMTP
        return cls(self.handler, hostname="peer.test", **kw)


class BrokenTLS(SMTP):
    async def smtp_STARTTLS(self, arg):
        await self.push("220 Ready to start TLS")
        self.transport.write(b"this is not a TLS record\r\n" * 4)
        self.transport.close()


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    ctl = Ctl(Handler(cfg), cfg)
    ctl.start()
    with open(cfg["ready"], "w") as f:
        f.write("ready\n")
    try:
        while True:
            asyncio.run(asyncio.sleep(3600))
    except KeyboardInterrupt:
        pass
    finally:
        ctl.stop()


if __name__ == "__main__":
    main()
