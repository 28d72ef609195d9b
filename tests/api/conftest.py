"""A real receiver for the API tests: uvicorn on a free loopback port in a background
thread, a real store (SQLite file in a temp folder) in the Resources handed to create_app
(tests.support.resources.make_resources, the system clock), real HTTP with httpx.

One server per module (start-up is well under a second); every test creates its own
clients and launches, so tests do not see each other's rows.
"""

from __future__ import annotations

from devtools.stack import free_port  # noqa: E402

import base64
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from launch.app import SystemClock
from launch.app.resources import Resources
from launch.store.models import Decision, InboxEvent, Nonce, Step
from launch.wechat.crypto import PushCrypto
from launch.wechat.events import to_json, to_xml

TOKEN = "weapp-test-token"
COMPONENT_APPID = "wx0000000000c0ffee"
API_KEY = "test-api-key-" + "x" * 20
AES_KEY = base64.b64encode(b"k" * 32).decode().rstrip("=")  # 43 characters


@dataclass
class Receiver:
    url: str
    crypto: PushCrypto
    app: object
    client: httpx.Client
    server: uvicorn.Server

    @property
    def res(self) -> Resources:
        """The resources the receiver runs on: its store, settings, catalogue and clock."""
        return self.app.state.receiver.res

    # --- pushes -------------------------------------------------------------------

    def nonce(self) -> str:
        return f"{secrets.randbelow(10**9)}{uuid.uuid4().int % 10**6}"

    def push(
        self,
        message: bytes | str | dict,
        *,
        path: str = "/wechat/auth",
        aes: bool = True,
        fmt: str = "xml",
        nonce: str | None = None,
        timestamp: int | None = None,
        crypto: PushCrypto | None = None,
        envelope_id: str | None = None,
        id_element: str = "ToUserName",
        tamper: dict | None = None,
    ) -> httpx.Response:
        """Send one push signed (and, with aes, encrypted) as WeChat would."""
        if isinstance(message, dict):
            message = (to_xml(message) if fmt == "xml" else to_json(message)).decode()
        if isinstance(message, bytes):
            message = message.decode()
        crypto = crypto or self.crypto
        nonce = nonce or self.nonce()
        timestamp = str(timestamp if timestamp is not None else int(time.time()))
        if aes:
            env = crypto.envelope(message, envelope_id, id_element=id_element, fmt=fmt, nonce=nonce, timestamp=timestamp)
            params = {
                "signature": crypto.signature(timestamp, nonce),
                "timestamp": timestamp,
                "nonce": nonce,
                "encrypt_type": "aes",
                "msg_signature": env.msg_signature,
            }
            body = env.body
        else:
            params = {"signature": crypto.signature(timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
            body = message.encode()
        params.update(tamper or {})
        return self.client.post(self.url + path, params=params, content=body)


_RES: list[Resources] = []  # the module's receiver resources, for the helpers below


def current() -> Resources:
    """The resources of the receiver the running test module started."""
    return _RES[-1]


def counts() -> dict[str, int]:
    """Rows of the tables a push or a decision may change."""
    store = current().store
    with store.session() as s:
        return {
            "inbox": s.scalar(select(func.count()).select_from(InboxEvent)),
            "decisions": s.scalar(select(func.count()).select_from(Decision)),
            "steps": s.scalar(select(func.count()).select_from(Step)),
            "nonces": s.scalar(select(func.count()).select_from(Nonce)),
        }


def wait_applied(event_key: str | None = None, timeout: float = 15.0):
    """Wait until the inbox row (or every row) has been applied by the background applier."""
    store = current().store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if event_key is not None:
            row = store.find_event(event_key)
            if row is not None and row.applied_at is not None:
                return row
        elif not store.unapplied_events(limit=1):
            return None
        time.sleep(0.05)
    raise AssertionError(f"inbox not applied after {timeout}s ({event_key})")


def _serve(app) -> tuple[uvicorn.Server, threading.Thread, str]:
    """uvicorn on a free loopback port in a daemon thread; returns once it accepts."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("receiver did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def plain_receiver(receiver):
    """A second receiver on the same store for a test platform that sends plaintext
    (WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT=true). No applier of its own: the first
    receiver's periodic applier applies what it lands."""
    from launch.receiver.app import create_app

    res = receiver.res
    settings = res.settings.model_copy(update={"wechat_allow_plaintext": True})
    # the same store, seen through settings that allow plaintext
    plain = Resources(settings=settings, clock=res.clock, _store=res.store)
    app = create_app(plain, applier=False)
    server, thread, url = _serve(app)
    client = httpx.Client(timeout=30)
    try:
        yield Receiver(url, receiver.crypto, app, client, server)
    finally:
        client.close()
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    from launch.receiver.app import create_app
    from tests.support.resources import make_resources

    base = tmp_path_factory.mktemp("receiver")
    mp = pytest.MonkeyPatch()
    mp.delenv("WEAPP_LAUNCH_LINK_SECRET", raising=False)
    res = make_resources(
        base / "home",
        clock=SystemClock(),  # real pushes carry real timestamps; links expire in real time
        database_url=f"sqlite:///{base / 'store.db'}",
        wechat_token=TOKEN,
        wechat_encoding_aes_key=AES_KEY,
        wechat_component_appid=COMPONENT_APPID,
        api_key=API_KEY,
        max_body_bytes=16 * 1024,
        timestamp_window_seconds=300,
    )
    _RES.append(res)
    app = create_app(res, applier_interval=1.0)
    server, thread, url = _serve(app)
    client = httpx.Client(timeout=30)
    try:
        yield Receiver(url, PushCrypto(TOKEN, AES_KEY, COMPONENT_APPID), app, client, server)
    finally:
        client.close()
        server.should_exit = True
        thread.join(15)
        _RES.remove(res)
        res.close()
        mp.undo()


# --- launches built straight through the store ------------------------------------------


def hexid(n: int) -> str:
    return secrets.token_hex(n)[:n]


@dataclass
class Made:
    launch_id: str
    client_id: str
    appid: str
    original_id: str
    credit_code: str | None = None


@pytest.fixture
def make_launch(receiver):
    """A client and a running launch with its app ids; optionally a waiting step."""

    def make(path: str = "standalone", *, credit_code: str | None = None, with_ids: bool = True, steps=()) -> Made:
        store = receiver.res.store
        code = f"t-{uuid.uuid4().hex[:10]}"
        identifiers = {"credit_code": [credit_code]} if credit_code else {}
        client_id = store.add_client(code, "测试公司", "测试小程序", "广东", "enterprise", path, {"t": 1}, identifiers)
        launch = store.create_launch(client_id)
        appid, original_id = "wx" + hexid(16), "gh_" + hexid(12)
        if with_ids:
            store.set_app_ids(launch.id, appid, original_id)
        now = receiver.res.now()
        for step, attempt, status in steps:
            store.open_step(launch.id, step, attempt, started_at=now - timedelta(minutes=5),
                            due_at=now + timedelta(days=1), status="waiting")
            if status != "waiting":
                store.finish_step(launch.id, step, attempt, status=status, outcome=status, at=now)
        return Made(launch.id, client_id, appid, original_id, credit_code)

    return make
