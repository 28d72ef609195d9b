"""Real local endpoints for delivery tests: an aiosmtpd SMTP server and an HTTP server.

Nothing here patches Apprise: messages really travel over sockets on 127.0.0.1.
"""

from __future__ import annotations

import email
import json
import socket
import threading
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "alerts"
SMTP_PASSWORD = "s3cret-Pa55-word"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpInbox:
    """aiosmtpd handler that keeps every received message."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        with self._lock:
            self.envelopes.append(envelope)
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            envs = list(self.envelopes)
        return [email.message_from_bytes(e.original_content or e.content, policy=policy.default) for e in envs]

    def text_of(self, msg: EmailMessage) -> str:
        part = msg.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


class SmtpServer:
    def __init__(self, *, with_auth: bool = False) -> None:
        self.inbox = SmtpInbox()
        self.port = free_port()
        kwargs = {}
        if with_auth:
            kwargs = {"authenticator": self._auth, "auth_require_tls": False, "auth_required": True}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)

    @staticmethod
    def _auth(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    user = SMTP_USER
    password = SMTP_PASSWORD

    def url(self, to: str = "ops@example.com", *, user: str | None = None, password: str | None = None) -> str:
        cred = f"{user}:{password}@" if user else ""
        # Plain SMTP: scheme mailto:// (not mailtos://) and mode=insecure (no STARTTLS);
        # format=text so the mail is text/plain as rendered.
        return f"mailto://{cred}127.0.0.1:{self.port}/?from=weapp-launch@example.com&to={to}&mode=insecure&format=text"


@pytest.fixture(name="free_port")
def free_port_fixture():
    """A function giving a free TCP port on 127.0.0.1 (nothing listens there)."""
    return free_port


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


@pytest.fixture
def smtp_auth_server():
    server = SmtpServer(with_auth=True)
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


class HttpEndpoint:
    """A tiny JSON-receiving HTTP server standing in for an SMS gateway; can be stopped
    and started again on the same port, or made to answer an error status."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict]] = []
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def url(self, path: str = "/sms") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server hook name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status = endpoint.status
                if status == 200:
                    with endpoint._lock:
                        endpoint.received.append((self.path, json.loads(raw.decode("utf-8"))))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"gateway unavailable")

            def log_message(self, *args):  # keep test output quiet
                pass

        return Handler

    def start(self) -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    @property
    def messages(self) -> list[dict]:
        with self._lock:
            return [payload for _, payload in self.received]


@pytest.fixture
def http_endpoint():
    ep = HttpEndpoint()
    ep.start()
    try:
        yield ep
    finally:
        ep.stop()
