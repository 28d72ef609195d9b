"""Real local endpoints for delivery tests: an aiosmtpd SMTP server and an HTTP server.

Nothing here patches Apprise: messages really travel over sockets on 127.0.0.1.

Both can go down (connections refused) and come back on the same port; the HTTP server can
answer an error status, or be slow (it keeps the message, then answers after the client's
read timeout). With ``dedupe`` on, each behaves as an idempotent receiver does: it keeps the
idempotency keys it has seen (the ``Idempotency-Key`` header; ``X-Idempotency-Key`` in
mail) and answers a repeat with success without delivering it again.
"""

from __future__ import annotations

import email
import json
import socket
import threading
import time
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
    """aiosmtpd handler that keeps every received message (a repeated idempotency key is
    accepted and dropped when ``dedupe`` is on)."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.keys_seen: set[str] = set()
        self.duplicates = 0
        self.dedupe = False
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        key = msg.get("X-Idempotency-Key")
        with self._lock:
            if self.dedupe and key and key in self.keys_seen:
                self.duplicates += 1
                return "250 OK (duplicate dropped)"
            if key:
                self.keys_seen.add(str(key))
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
        self._kwargs = {}
        if with_auth:
            self._kwargs = {"authenticator": self._auth, "auth_require_tls": False, "auth_required": True}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **self._kwargs)
        self.is_up = False

    def start(self) -> None:
        self.controller.start()
        self.is_up = True

    def stop(self) -> None:
        if self.is_up:
            self.controller.stop()
            self.is_up = False

    def go_down(self) -> None:
        """Connections are refused until :meth:`come_back` (same port, same inbox)."""
        self.stop()

    def come_back(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **self._kwargs)
        self.start()

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
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_auth_server():
    server = SmtpServer(with_auth=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class HttpEndpoint:
    """A tiny JSON-receiving HTTP server standing in for an SMS gateway; can be stopped
    and started again on the same port (:meth:`go_down` / :meth:`come_back`), made to answer
    an error status (``status``), or be slow: with ``slow_seconds`` it keeps a new message
    and answers only after that long (past the client's read timeout). With ``dedupe`` it
    is an idempotent gateway: a key it has seen gets 200 at once and is not delivered again.
    ``keys`` holds the idempotency key of each delivered message, ``duplicates`` counts the
    repeats it dropped, ``requests`` every POST."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict]] = []
        self.keys: list[str | None] = []
        self.status = 200
        self.slow_seconds = 0.0
        self.dedupe = False
        self.duplicates = 0
        self.requests = 0
        self._seen: set[str] = set()
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
                key = self.headers.get("Idempotency-Key")
                status = endpoint.status
                with endpoint._lock:
                    endpoint.requests += 1
                    repeat = endpoint.dedupe and key is not None and key in endpoint._seen
                    if repeat:
                        endpoint.duplicates += 1
                    elif status == 200:
                        endpoint.received.append((self.path, json.loads(raw.decode("utf-8"))))
                        endpoint.keys.append(key)
                        if key is not None:
                            endpoint._seen.add(key)
                if status == 200 and not repeat and endpoint.slow_seconds:
                    time.sleep(endpoint.slow_seconds)  # delivered, but the answer comes too late
                try:
                    self.send_response(200 if repeat else status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if (repeat or status == 200) else b"gateway unavailable")
                except OSError:  # the client gave up waiting
                    pass

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

    def go_down(self) -> None:
        """Connections are refused until :meth:`come_back`."""
        self.stop()

    def come_back(self) -> None:
        self.start()

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
