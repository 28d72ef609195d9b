"""The WeChat stand-in for tests: a real server (uvicorn on a free loopback port, in a thread),
stopped at teardown, and a small client over its WeChat API and its control API.

    from tests.support.standin import standin, standin_receiver  # noqa: F401 (fixtures)

    def test_x(standin):
        app = standin.authorized()              # an authorised mini-program and its token
        standin.call("/wxa/commit", app.token, {...})
        standin.advance()                       # finish the review now
        assert standin.calls("/wxa/submit_audit") == 1

`standin` is configured by the test's `standin_config` (a dict of StandinConfig fields, e.g.
`@pytest.mark.parametrize("standin_config", [{"privacy_scan_seconds": 60}], indirect=True)`);
no tickets are pushed by the clock unless `ticket_every` says so. `standin_receiver` is a
receiver (create_app(res, applier=False)) with the stand-in's push secrets, and a stand-in
whose pushes go to it.
"""

from __future__ import annotations

from devtools.stack import free_port  # noqa: E402

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devtools.wechat_standin import RunningStandin, StandinConfig, start_in_thread

TOKEN = "standin-push-token"
AES_KEY = base64.b64encode(b"s" * 32).decode().rstrip("=")  # 43 characters
COMPONENT_APPID = "wx00000000005a0d1e"
SECRET = "standin-component-secret"


@dataclass
class Authorized:
    appid: str
    original_id: str
    token: str  # authorizer_access_token
    refresh_token: str


class StandinClient:
    """httpx over a running stand-in: WeChat calls by path, control calls by name."""

    def __init__(self, running: RunningStandin):
        self.running = running
        self.url = running.url
        self.standin = running.standin  # the in-process object (world, pusher, call log)
        self.http = httpx.Client(base_url=running.url, timeout=30)

    # --- WeChat API -----------------------------------------------------------------

    def call(self, path: str, token: str | None = None, body: Any = None, *, method: str | None = None,
             params: dict | None = None, content: bytes | None = None, token_param: str = "access_token",
             **kw) -> dict | httpx.Response:
        """One WeChat call; JSON answers come back as dicts, anything else as the response."""
        q = dict(params or {})
        if token is not None:
            q[token_param] = token
        method = method or ("POST" if body is not None or content is not None else "GET")
        r = self.http.request(method, path, params=q, json=body if content is None else None, content=content, **kw)
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r

    def ticket(self) -> str:
        return self.control("ticket")["ticket"]

    def component_token(self) -> str:
        cfg = self.standin.config
        answer = self.call("/cgi-bin/component/api_component_token", body={
            "component_appid": cfg.component_appid, "component_appsecret": cfg.component_appsecret,
            "component_verify_ticket": self.ticket()})
        assert answer["errcode"] == 0, answer
        return answer["component_access_token"]

    def authorized(self, appid: str | None = None) -> Authorized:
        """Authorise a mini-program the way WeChat does (pre-auth code, the admin's consent,
        api_query_auth) and return its authorizer token."""
        cfg = self.standin.config
        ct = self.component_token()
        pre = self.call("/cgi-bin/component/api_create_preauthcode", ct, {"component_appid": cfg.component_appid})
        consent = self.control("authorize", appid=appid, pre_auth_code=pre["pre_auth_code"])
        info = self.call("/cgi-bin/component/api_query_auth", ct, {
            "component_appid": cfg.component_appid, "authorization_code": consent["auth_code"]})["authorization_info"]
        return Authorized(info["authorizer_appid"], consent["original_id"], info["authorizer_access_token"],
                          info["authorizer_refresh_token"])

    def refresh(self, app: Authorized) -> Authorized:
        """A fresh authorizer token from the refresh token (a new ticket and component token first)."""
        cfg = self.standin.config
        answer = self.call("/cgi-bin/component/api_authorizer_token", self.component_token(), {
            "component_appid": cfg.component_appid, "authorizer_appid": app.appid,
            "authorizer_refresh_token": app.refresh_token})
        assert answer["errcode"] == 0, answer
        return Authorized(app.appid, app.original_id, answer["authorizer_access_token"], app.refresh_token)

    # --- control API ----------------------------------------------------------------

    def control(self, name: str, **body) -> dict:
        r = self.http.post(f"/_standin/{name}", json={k: v for k, v in body.items() if v is not None})
        assert r.status_code == 200, r.text
        return r.json()

    def advance(self, **body) -> dict:
        return self.control("advance", **body)

    def calls(self, path: str | None = None, appid: str | None = None) -> int:
        q = {k: v for k, v in (("path", path), ("appid", appid)) if v}
        return len(self.http.get("/_standin/calls", params=q).json()["calls"])

    def pushes(self, kind: str | None = None) -> list[dict]:
        return self.http.get("/_standin/pushes", params={"kind": kind} if kind else {}).json()["pushes"]

    def state(self, appid: str) -> dict:
        return self.http.get(f"/_standin/authorizers/{appid}").json()

    def close(self) -> None:
        self.http.close()
        self.running.stop()


def start_standin(**config: Any) -> StandinClient:
    """A stand-in on a free port; close() stops it. No clock tickets unless ticket_every is given."""
    base = {"component_appid": COMPONENT_APPID, "component_appsecret": SECRET, "token": TOKEN,
            "encoding_aes_key": AES_KEY, "ticket_every": None, "push_retry_delay": 0.05}
    return StandinClient(start_in_thread(StandinConfig(**{**base, **config})))


@pytest.fixture
def standin_config(request) -> dict:
    return dict(getattr(request, "param", {}) or {})


@pytest.fixture
def standin(standin_config):
    client = start_standin(**standin_config)
    try:
        yield client
    finally:
        client.close()


@dataclass
class ReceiverStandin:
    standin: StandinClient
    res: Any  # the receiver's Resources (its store holds the inbox)
    url: str

    def inbox(self) -> list[Any]:
        from sqlalchemy import select

        from launch.store.models import InboxEvent

        with self.res.store.session() as s:
            return list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))


@pytest.fixture
def standin_receiver(tmp_path, standin_config):
    """A running receiver (no applier) with the stand-in's secrets, and a stand-in pushing to it."""
    import uvicorn

    from launch.app import SystemClock
    from launch.receiver.app import create_app
    from tests.support.resources import make_resources

    res = make_resources(tmp_path / "home", clock=SystemClock(), database_url=f"sqlite:///{tmp_path / 'store.db'}",
                         wechat_token=TOKEN, wechat_encoding_aes_key=AES_KEY, wechat_component_appid=COMPONENT_APPID,
                         timestamp_window_seconds=300)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(res, applier=False), host="127.0.0.1", port=port,
                                           access_log=False, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="standin-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("receiver did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    client = start_standin(receiver_url=url, **standin_config)
    try:
        yield ReceiverStandin(client, res, url)
    finally:
        client.close()
        server.should_exit = True
        thread.join(15)
        res.close()
