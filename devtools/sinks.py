"""Local stand-ins for the agency's mail server and SMS gateway, for the demo.

A real SMTP server (aiosmtpd) that appends each mail to mail.log, and a real HTTP
endpoint that appends each JSON post (what Apprise's json:// sends to a phone
gateway) to phone.log. Apprise talks to them exactly as it would to the real ones.
"""

from __future__ import annotations

import json
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devtools.stack import free_port


class MailSink:
    def __init__(self, log: Path):
        from aiosmtpd.controller import Controller

        self.log = log
        self.count = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = message_from_bytes(envelope.content, policy=policy.default)
                body = msg.get_body(preferencelist=("plain", "html"))
                text = body.get_content() if body is not None else ""
                with sink.log.open("a", encoding="utf-8") as fh:
                    fh.write(f"--- To: {', '.join(envelope.rcpt_tos)}\nSubject: {msg['subject']}\n{text}\n")
                sink.count += 1
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "MailSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class PhoneSink:
    def __init__(self, log: Path):
        self.log = log
        self.count = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                with sink.log.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(payload, ensure_ascii=False) + "\n")
                sink.count += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):  # keep the demo's console clean
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "PhoneSink":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


def write_notifiers(path: Path, mail: MailSink, phone: PhoneSink) -> Path:
    path.write_text(
        "# Written by the demo: alerts go to a local mail sink and a local phone-gateway log.\n"
        "channels:\n"
        "  - name: ops-mail\n"
        f"    url: mailto://127.0.0.1:{mail.port}/?from=weapp-launch@example.com&to=ops@example.com"
        "&mode=insecure&format=text\n"
        "    tags: [ops, manager, client, design, dev]\n"
        "  - name: ops-phone\n"
        f"    url: json://127.0.0.1:{phone.port}/sms\n"
        "    tags: [ops, manager]\n"
        "fallback_tag: ops\n",
        encoding="utf-8",
    )
    return path
