"""The stand-in's HTTP face: WeChat's third-party-platform server API (paths, query parameters
and JSON as api.weixin.qq.com takes them) and a control API under /_standin/ for tests and
the demo.

Every WeChat call: token (query `access_token`, or `component_access_token` for component
calls, as the older docs name it) -> injected failures and rate limits -> the rule in
world.py -> HTTP 200 with {errcode, errmsg, …} (WeChat answers errors with 200 too). Every
call is logged (method, path, appid, errcode) for tests to count.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from devtools.wechat_standin import lookups
from devtools.wechat_standin.config import StandinClock, StandinConfig, StandinScript
from devtools.wechat_standin.errors import WeChatError, answer
from devtools.wechat_standin.pushes import Pusher
from devtools.wechat_standin.world import World
from launch.wechat.crypto import PushCrypto

COMPONENT, AUTHORIZER, NONE = "component", "authorizer", None


@dataclass
class FailRule:
    path: str  # an API path, or "*"
    errcode: int = -1
    count: int = 1
    appid: str | None = None


class Standin:
    """One stand-in: its config, clock, script, pusher, world, call log, injected failures,
    rate limits and the ticker thread that moves the clock's work along."""

    def __init__(self, config: StandinConfig | None = None, script: StandinScript | None = None,
                 clock: StandinClock | None = None):
        self.config = config or StandinConfig()
        self.clock = clock or StandinClock()
        self.script = script or StandinScript()
        crypto = PushCrypto(self.config.token, self.config.encoding_aes_key, self.config.component_appid)
        self.pusher = Pusher(crypto, self.config.receiver_url, attempts=self.config.push_attempts,
                             retry_delay=self.config.push_retry_delay, timeout=self.config.push_timeout)
        self.world = World(self.config, self.pusher, self.script, self.clock)
        self.calls: list[dict] = []
        self.fails: list[FailRule] = []
        self.limits: dict[str, tuple[int, float, int]] = {}  # path -> (calls, window seconds, errcode)
        self._seen: dict[tuple[str, str | None], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_loop, name="standin-ticker", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        self.pusher.close()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.config.tick_seconds):
            try:
                self.world.tick()
            except Exception:  # keep ticking
                import logging

                logging.getLogger("weapp_launch.standin").exception("stand-in tick failed")

    # --- calls -----------------------------------------------------------------------

    def gate(self, path: str, appid: str | None) -> None:
        """Injected failures first (-1 busy, or any errcode), then the per-call budget."""
        with self._lock:
            for rule in self.fails:
                if rule.count > 0 and rule.path in ("*", path) and rule.appid in (None, appid):
                    rule.count -= 1
                    self.fails = [r for r in self.fails if r.count > 0]
                    raise WeChatError(rule.errcode)
            limit = self.limits.get(path) or self.limits.get("*")
            if limit is not None:
                calls, window, errcode = limit
                seen = self._seen[(path, appid)]
                now = self.clock.now()
                while seen and now - seen[0] >= window:
                    seen.popleft()
                if len(seen) >= calls:
                    raise WeChatError(errcode)
                seen.append(now)

    def record(self, method: str, path: str, appid: str | None, errcode: int) -> None:
        with self._lock:
            self.calls.append({"seq": len(self.calls) + 1, "at": time.time(), "method": method, "path": path,
                               "appid": appid, "errcode": errcode})

    def calls_to(self, path: str | None = None, appid: str | None = None, ok: bool | None = None) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if path in (None, c["path"]) and appid in (None, c["appid"])
                    and (ok is None or (c["errcode"] == 0) == ok)]


def _png() -> bytes:
    """A 1x1 PNG: the trial QR code's stand-in (WeChat sends a JPEG; the client only checks it is
    not JSON)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = zlib.compress(b"\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 1, 0, 0, 0, 0)) + \
        chunk(b"IDAT", raw) + chunk(b"IEND", b"")


QR_PNG = _png()


async def _json(request: Request, *, required: bool = True) -> dict:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise WeChatError(44002)
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise WeChatError(47001) from None
    if not isinstance(body, dict):
        raise WeChatError(47001)
    return body


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], bytes | None]:
    """Form fields and the `media` file of a multipart/form-data body (stdlib email parser)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise WeChatError(40097)
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields: dict[str, str] = {}
    media: bytes | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "media":
            media = payload
        elif name:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, media


def create_app(standin: Standin) -> FastAPI:
    world = standin.world
    app = FastAPI(title="WeChat stand-in", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.standin = standin

    @app.exception_handler(WeChatError)
    async def _wechat_error(request: Request, exc: WeChatError):  # pragma: no cover - handlers catch them
        return JSONResponse(exc.body())

    async def call(request: Request, kind: str | None, fn: Callable[[str | None], Any]) -> Response:
        path = request.url.path
        appid: str | None = None
        try:
            if kind is not None:
                q = request.query_params
                token = q.get("access_token") or (q.get("component_access_token") if kind == COMPONENT else None)
                appid = world.check_token(token, kind)
            standin.gate(path, appid)
            result = fn(appid)
            if hasattr(result, "__await__"):
                result = await result
            if isinstance(result, Response):
                standin.record(request.method, path, appid, 0)
                return result
            body = answer(0, **result)
        except WeChatError as exc:
            body = exc.body()
        standin.record(request.method, path, appid, body["errcode"])
        return JSONResponse(body)

    # ------------------------------------------------------------------ component

    @app.post("/cgi-bin/component/api_component_token")
    async def api_component_token(request: Request):
        async def fn(_):
            return world.component_token(await _json(request))
        return await call(request, NONE, fn)

    @app.post("/cgi-bin/component/api_start_push_ticket")
    async def api_start_push_ticket(request: Request):
        async def fn(_):
            return world.start_push_ticket(await _json(request))
        return await call(request, NONE, fn)

    def component_post(path: str, method: Callable[[dict], dict]):
        """A call of the platform itself (component_access_token): WeChat's body to ``method``."""
        @app.post(path, name=path)
        async def route(request: Request):
            async def fn(_):
                return method(await _json(request))
            return await call(request, COMPONENT, fn)

    component_post("/cgi-bin/component/api_create_preauthcode", world.create_preauthcode)
    component_post("/cgi-bin/component/api_query_auth", world.query_auth)
    component_post("/cgi-bin/component/api_authorizer_token", world.authorizer_token)
    component_post("/cgi-bin/component/api_get_authorizer_list", world.authorizer_list)
    component_post("/cgi-bin/component/api_get_authorizer_info", world.authorizer_info)

    # ------------------------------------------------------------------ code, review, release

    def authorizer_post(path: str, method: Callable[[str, dict], dict]):
        @app.post(path, name=path)
        async def route(request: Request):
            async def fn(appid):
                return method(appid, await _json(request))
            return await call(request, AUTHORIZER, fn)

    def authorizer_get(path: str, method: Callable[[str], dict]):
        @app.get(path, name=path)
        async def route(request: Request):
            return await call(request, AUTHORIZER, lambda appid: method(appid))

    authorizer_post("/wxa/commit", world.commit)
    authorizer_post("/wxa/submit_audit", world.submit_audit)
    authorizer_post("/wxa/get_auditstatus", world.get_auditstatus)
    authorizer_get("/wxa/get_latest_auditstatus", world.get_latest_auditstatus)
    authorizer_get("/wxa/undocodeaudit", world.undocodeaudit)
    authorizer_get("/wxa/revertcoderelease", world.revertcoderelease)
    authorizer_post("/wxa/grayrelease", world.grayrelease)

    @app.get("/wxa/get_qrcode")
    async def get_qrcode(request: Request):
        # doc get_qrcode?path= : the trial version's QR as an image; JSON only on error
        def fn(appid):
            world._authorizer(appid)
            return Response(QR_PNG, media_type="image/png")
        return await call(request, AUTHORIZER, fn)

    @app.post("/wxa/release")
    async def release(request: Request):
        # doc api_release: the body must be `{}` — an empty body answers 44002 "empty post data";
        # the stand-in is stricter and answers 44002 to any body other than an empty object
        async def fn(appid):
            body = await _json(request)
            if body != {}:
                raise WeChatError(44002)
            return world.release(appid)
        return await call(request, AUTHORIZER, fn)

    authorizer_post("/cgi-bin/account/getaccountbasicinfo", world.account_basic_info)
    authorizer_get("/cgi-bin/account/getaccountbasicinfo", world.account_basic_info)

    # ------------------------------------------------------------------ profile (小程序基本信息)

    authorizer_post("/cgi-bin/wxverify/checkwxverifynickname", world.check_nickname)
    authorizer_post("/wxa/setnickname", world.set_nickname)
    authorizer_post("/wxa/api_wxa_querynickname", world.query_nickname)
    authorizer_post("/cgi-bin/account/modifyheadimage", world.modify_head_image)
    authorizer_post("/cgi-bin/account/modifysignature", world.modify_signature)
    authorizer_get("/cgi-bin/wxopen/getallcategories", world.all_categories)
    authorizer_post("/cgi-bin/wxopen/addcategory", world.add_category)
    authorizer_get("/cgi-bin/wxopen/getcategory", world.get_category)

    @app.post("/cgi-bin/media/upload")
    async def media_upload(request: Request):
        # the temporary media API: ?type=image, multipart field `media`
        async def fn(appid):
            _fields, media = _multipart(request.headers.get("content-type", ""), await request.body())
            return world.upload_image(appid, request.query_params.get("type"), media)
        return await call(request, AUTHORIZER, fn)

    # ------------------------------------------------------------------ ICP filing

    authorizer_get("/wxa/icp/get_icp_entrance_info", world.icp_entrance_info)
    authorizer_get("/wxa/icp/get_online_icp_order", world.online_icp_order)
    authorizer_post("/wxa/icp/query_icp_verifytask", world.query_verifytask)
    authorizer_post("/wxa/icp/apply_icp_filing", world.apply_filing)
    authorizer_post("/wxa/icp/cancel_apply_icp_filing", world.cancel_filing)

    @app.post("/wxa/icp/create_icp_verifytask")
    async def create_icp_verifytask(request: Request):
        # the body is optional ({along_with_auth}); a community answer says to send the token only
        async def fn(appid):
            return world.create_verifytask(appid, await _json(request, required=False))
        return await call(request, AUTHORIZER, fn)

    @app.post("/wxa/icp/upload_icp_media")
    async def upload_icp_media(request: Request):
        async def fn(appid):
            fields, media = _multipart(request.headers.get("content-type", ""), await request.body())
            return world.upload_media(appid, fields, media)
        return await call(request, AUTHORIZER, fn)

    for name, items in (("query_icp_service_content_types", lookups.SERVICE_CONTENT_TYPES),
                        ("query_icp_nrlx_types", lookups.NRLX_TYPES),
                        ("query_icp_subject_types", lookups.SUBJECT_TYPES),
                        ("query_icp_certificate_types", lookups.CERTIFICATE_TYPES),
                        ("query_icp_district_code", lookups.DISTRICTS)):
        authorizer_get(f"/wxa/icp/{name}", lambda appid, items=items: {"items": items})

    # ------------------------------------------------------------------ registration

    @app.get("/cgi-bin/fastregisterauth")
    async def fastregisterauth(appid: str, component_appid: str, redirect_uri: str, copy_wx_verify: int = 1):
        # stands in for mp.weixin.qq.com/cgi-bin/fastregisterauth: the 公众号 admin confirms and
        # is sent back to redirect_uri with ?ticket=
        if component_appid != standin.config.component_appid:
            return JSONResponse(answer(40013))
        ticket = world.fastregisterauth(appid, bool(copy_wx_verify))
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}ticket={ticket}", status_code=302)

    authorizer_post("/cgi-bin/account/fastregister", world.fastregister)

    @app.post("/wxa/component/fastregisterenterpriseweapp")
    async def fastregisterenterpriseweapp(request: Request):
        async def fn(_):
            body = await _json(request)
            if request.query_params.get("action") in ("query", "search"):
                return world.query_register(body)
            return world.register_enterprise(body)
        return await call(request, COMPONENT, fn)

    @app.post("/cgi-bin/component/fastregisterweapp")
    async def fastregisterweapp(request: Request):
        async def fn(_):
            return world.legacy_fastregisterweapp(request.query_params.get("action", ""), await _json(request))
        return await call(request, COMPONENT, fn)

    # ------------------------------------------------------------------ control API

    async def body_of(request: Request) -> dict:
        raw = await request.body()
        return json.loads(raw) if raw.strip() else {}

    async def flushed(result: dict, wait: bool = True) -> dict:
        if wait:
            await run_in_threadpool(standin.pusher.flush)
        return result

    def control(fn):
        async def wrapped(request: Request):
            try:
                return JSONResponse(await fn(request))
            except WeChatError as exc:
                return JSONResponse(exc.body(), status_code=400)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return wrapped

    @app.get("/_standin/state")
    @control
    async def state(request: Request):
        return {"component_appid": standin.config.component_appid, "authorizers": sorted(world.authorizers),
                "tickets_pushed": len(world.tickets), "clock": world.now(), "script": standin.script.pending()}

    @app.get("/_standin/authorizers/{appid}")
    @control
    async def authorizer(request: Request):
        return world.snapshot(request.path_params["appid"])

    @app.post("/_standin/authorize")
    @control
    async def authorize(request: Request):
        b = await body_of(request)
        return await flushed(world.authorize(b.get("appid"), b.get("original_id"), b.get("pre_auth_code"),
                                             func_scopes=b.get("func_scopes")))

    @app.post("/_standin/unauthorize")
    @control
    async def unauthorize(request: Request):
        world.unauthorize((await body_of(request))["appid"])
        return await flushed({"ok": True})

    @app.post("/_standin/ticket")
    @control
    async def ticket(request: Request):
        return await flushed({"ticket": world.push_ticket()})

    @app.post("/_standin/advance")
    @control
    async def advance(request: Request):
        """{seconds?: move the clock, finish?: true (finish pending work now), appid?, kind?}"""
        b = await body_of(request)
        if b.get("seconds"):
            standin.clock.advance(float(b["seconds"]))
        moved = world.advance(b.get("appid"), b.get("kind")) if b.get("finish", True) else (world.tick() or 0)
        return await flushed({"moved": moved, "clock": world.now()})

    @app.post("/_standin/script")
    @control
    async def script(request: Request):
        """{appid (or "*"), kind: review|filing|face|register, result, after?, reason?, audit_data?}"""
        b = await body_of(request)
        outcome = standin.script.add(b.pop("appid", "*"), b.pop("kind"), b)
        return {"queued": vars(outcome)}

    @app.post("/_standin/drop")
    @control
    async def drop(request: Request):
        """{kind: an InfoType / Event or "*", appid?, count?: 1}"""
        b = await body_of(request)
        rule = standin.pusher.drop(b.get("kind", "*"), b.get("appid"), int(b.get("count", 1)))
        return {"drop": vars(rule)}

    @app.post("/_standin/fail")
    @control
    async def fail(request: Request):
        """{path: an API path or "*", errcode?: -1, count?: 1, appid?}"""
        b = await body_of(request)
        rule = FailRule(b.get("path", "*"), int(b.get("errcode", -1)), int(b.get("count", 1)), b.get("appid"))
        with standin._lock:
            standin.fails.append(rule)
        return {"fail": vars(rule)}

    @app.post("/_standin/rate_limit")
    @control
    async def rate_limit(request: Request):
        """{path (or "*"), calls, window?: 60, errcode?: 45009}; calls 0 or null removes it"""
        b = await body_of(request)
        with standin._lock:
            if not b.get("calls"):
                standin.limits.pop(b["path"], None)
            else:
                standin.limits[b["path"]] = (int(b["calls"]), float(b.get("window", 60)),
                                             int(b.get("errcode", 45009)))
        return {"limits": {k: list(v) for k, v in standin.limits.items()}}

    @app.post("/_standin/expire_tokens")
    @control
    async def expire_tokens(request: Request):
        b = await body_of(request)
        return {"expired": world.expire_tokens(b.get("appid"), b.get("kind"))}

    @app.post("/_standin/sms")
    @control
    async def sms(request: Request):
        b = await body_of(request)
        world.set_sms(b["appid"], int(b["status"]))
        return {"ok": True}

    @app.post("/_standin/verify")
    @control
    async def verify(request: Request):
        """WeChat's 认证 reviewer: {appid, result?: pass | fail}"""
        b = await body_of(request)
        world.set_verified(b["appid"], b.get("result", "pass") == "pass")
        return {"ok": True}

    @app.post("/_standin/nickname_audit")
    @control
    async def nickname_audit(request: Request):
        """WeChat's reviewer decides the pending name: {appid, result?: pass | fail, reason?}; the
        wxa_nickname_audit push follows."""
        b = await body_of(request)
        return await flushed(world.nickname_audit(b["appid"], b.get("result", "pass") == "pass", b.get("reason", "")))

    @app.post("/_standin/legal_person")
    @control
    async def legal_person(request: Request):
        """The legal person with WeChat's registration link: {taskid? (default: the latest pending),
        result?: ok (authorise) | fail (the check fails), reason?}; WeChat's push follows."""
        b = await body_of(request)
        return await flushed(world.legal_person(b.get("taskid"), b.get("result", "ok"), b.get("reason", "")))

    @app.post("/_standin/fastregisterauth")
    @control
    async def fastregister_ticket(request: Request):
        b = await body_of(request)
        return {"ticket": world.fastregisterauth(b["appid"], bool(b.get("copy_wx_verify", True)))}

    @app.get("/_standin/calls")
    @control
    async def calls(request: Request):
        q = request.query_params
        return {"calls": standin.calls_to(q.get("path"), q.get("appid"))}

    @app.get("/_standin/pushes")
    @control
    async def pushes(request: Request):
        kind = request.query_params.get("kind")
        return {"pushes": [p.summary() for p in list(standin.pusher.log) if kind in (None, p.kind)]}

    @app.post("/_standin/flush")
    @control
    async def flush(request: Request):
        return {"flushed": await run_in_threadpool(standin.pusher.flush)}

    return app
