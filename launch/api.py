"""The callback receiver: WeChat's message push and authenticated staff callbacks (FastAPI).

Routes
    GET  /wechat/auth, GET /wechat/{appid}/events     URL verification: echo `echostr`
    POST /wechat/auth                                 authorisation-event URL (InfoType events)
    POST /wechat/{appid}/events                       message-event URL (Event; app id in the path)
    POST /gates/{launch_id}/{gate}                    a staff/system decision (JSON = the gate's form)
    GET  /gates/{launch_id}/{gate}?token=…            the small HTML form a staff link opens
    GET  /report                                      the portfolio page (API key only; launch/app/report.py)
    GET  /healthz

A WeChat push goes: body capped (Content-Length and the bytes actually read) -> timestamp
(plain decimal, inside the window) -> encrypted only (no msg_signature: refused, unless
WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT names a test platform) -> signature (constant time)
-> decrypt (msg_signature first; every later failure gets one generic answer) -> parse
(defusedxml, no entities) -> an app id the message names must be the one in the path ->
ONE transaction: the nonce AND the msg_signature are remembered (either seen before
refuses the push) and the redacted event is written to the inbox -> `success`. A URL
verification burns its nonce and signature too. Remembering the nonce in the same transaction as the inbox write
means a refused or failed push leaves nothing behind, not even a burnt nonce that would
make WeChat's retry look like a replay. Applying the event (recording decisions, resuming
the parked run — a Prefect call) happens after the response, in a background applier
thread started with the app, kicked after each accepted push and draining
`launch.app.inbox.apply_pending` at start-up and periodically.

Refusals are 4xx with {"error": reason_code, "message": "中文 / English"} and change nothing.
Nothing logs a query string, a token, a signature or a body: uvicorn's access log is off and
the receiver logs its own line (method, path, status, reason code, milliseconds).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import html
import json
import logging
import queue
import re
import secrets
import threading
from concurrent.futures import Future
import time
import typing
from contextlib import asynccontextmanager
from typing import Any, Optional

import typer
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from launch import runtime
from launch.app.links import MALFORMED as MALFORMED_TOKEN
from launch.app.links import LinkClaims, LinkError, check_live, verify_token
from launch.wechat.crypto import PushCrypto, check_timestamp
from launch.wechat.errors import (
    BAD_APPID,
    BAD_SIGNATURE,
    MALFORMED_JSON,
    STALE_TIMESTAMP,
    TOO_LARGE,
    UNDECRYPTABLE,
    PushRejected,
)
from launch.wechat.events import AuditDelay, AuditFail, AuditSuccess, open_push, parse_event

__all__ = ["Applier", "api_command", "create_app", "serve_api"]

log = logging.getLogger("weapp_launch.api")

APPID_PATH = re.compile(r"^wx[0-9a-f]{16}$")
LAUNCH_ID_PATH = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
NONCE = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")
CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() takes "²" and "１"
ECHOSTR_MAX = 512
NONCE_SCOPE = "wechat"
APPLIER_INTERVAL_SECONDS = 30.0
NONCE_PURGE_EVERY_SECONDS = 600.0

# Staff-route refusals of ours (the link module's codes come from launch.app.links).
TOKEN_IN_QUERY = "token-in-query"
UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"

_STATUS_BY_REASON = {
    TOO_LARGE: 413,
    BAD_SIGNATURE: 401,
    STALE_TIMESTAMP: 401,
    BAD_APPID: 403,
    UNDECRYPTABLE: 400,
}

# Refusals of the push routes that are ours, not the protocol module's.
PLAINTEXT_REFUSED = "plaintext-refused"
APPID_MISMATCH = "appid-mismatch"
REPLAYED = "replayed-nonce"


class Refused(Exception):
    """A refusal answered as {"error": code, "message": "中文 / English"} with a 4xx status."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _refusal(request: Request, status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    request.scope["weapp_reason"] = code
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def _from_push(exc: PushRejected) -> Refused:
    return Refused(_STATUS_BY_REASON.get(exc.reason_code, 400), exc.reason_code, exc.message)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused above `limit` bytes by its Content-Length and by what actually arrives."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not CONTENT_LENGTH.fullmatch(declared):
            raise Refused(400, "bad-content-length", "Content-Length 无效 / Content-Length is not a number")
        if int(declared) > limit:
            raise Refused(413, TOO_LARGE, f"消息体过大 / body larger than {limit} bytes")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise Refused(413, TOO_LARGE, f"消息体过大 / body larger than {limit} bytes")
    return bytes(buf)


def _clean_strings(value: Any) -> None:
    """Refuse NUL and unpaired surrogates anywhere in parsed JSON (the store cannot hold them)."""
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            todo.extend(node.keys())
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise Refused(400, "bad-characters", "值含 NUL 字符 / a value contains a NUL character")
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise Refused(400, "bad-characters", "值含无效 Unicode / a value contains invalid Unicode") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# ---------------------------------------------------------------- inbox writer (group commit)


class InboxWriter:
    """One thread writes every accepted push: what queued up while the previous transaction
    ran goes into the next one (group commit). Requests wait on a Future for their commit.

    One writer instead of a transaction per request thread: SQLite has one write lock, and
    threads contending for it back off in sleeps of up to 100 ms; batching also pays one
    commit for many pushes. If a batch fails, its pushes are retried one by one so one bad
    push cannot fail the others."""

    def __init__(self, nonce_ttl: float, max_batch: int = 128):
        self.nonce_ttl = nonce_ttl
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._last_submit = 0.0

    def submit(self, landing) -> Future:
        future: Future = Future()
        with self._lock:
            self._pending += 1
            self._last_submit = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="weapp-inbox-writer", daemon=True)
                self._thread.start()
        self._queue.put((landing, future))
        return future

    def busy(self) -> bool:
        return self._pending > 0

    def wait_idle(self, timeout: float, quiet: float = 0.01) -> None:
        """Block (up to `timeout`) until no push has been waiting for `quiet` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._pending == 0 and time.monotonic() - self._last_submit >= quiet:
                return
            time.sleep(0.002)

    def stop(self, timeout: float = 10.0) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        from launch.app.inbox import land_batch

        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                results = land_batch(
                    runtime.resources(), [landing for landing, _ in batch], nonce_scope=NONCE_SCOPE, nonce_ttl_seconds=self.nonce_ttl
                )
                for (_, future), result in zip(batch, results):
                    future.set_result(result)
            except Exception:  # noqa: BLE001 - isolate the push that fails
                for landing, future in batch:
                    try:
                        future.set_result(
                            land_batch(runtime.resources(), [landing], nonce_scope=NONCE_SCOPE, nonce_ttl_seconds=self.nonce_ttl)[0]
                        )
                    except Exception as exc:  # noqa: BLE001
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self._pending -= len(batch)
            if stop:
                return


# ---------------------------------------------------------------- background applier


class Applier:
    """A daemon thread draining the inbox: at start, when kicked, and every `interval` seconds."""

    def __init__(
        self, interval: float = APPLIER_INTERVAL_SECONDS, nonce_ttl: float = 900.0, writer: InboxWriter | None = None
    ):
        self.interval = interval
        self.nonce_ttl = nonce_ttl
        self.writer = writer
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        self.passes = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._wake.set()  # drain once at start-up: rows a crash left unapplied
            self._thread = threading.Thread(target=self._run, name="weapp-inbox-applier", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.drain()
                self._purge_nonces()
            except Exception as exc:  # noqa: BLE001 - never let the thread die
                log.warning("inbox applier pass failed: %s", type(exc).__name__)
            self.passes += 1

    def drain(self, batch: int = 100) -> int:
        from launch.app.inbox import apply_pending

        done = 0
        # pushes waiting to be written go first: their response waits on it, applying does not
        between = (lambda: self.writer.wait_idle(0.2)) if self.writer is not None else None
        while not self._stop.is_set():
            outcomes = apply_pending(runtime.resources(), limit=batch, between=between)
            applied = [o for o in outcomes if o.result is not None]
            done += len(applied)
            if len(outcomes) < batch or not applied:
                break
        return done

    def _purge_nonces(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < NONCE_PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        from datetime import timedelta

        runtime.store().purge_nonces(runtime.now() - timedelta(seconds=self.nonce_ttl))


# ---------------------------------------------------------------- the app


class _Receiver:
    def __init__(self, settings, applier: Applier | None, writer: InboxWriter | None = None):
        self.settings = settings
        self.applier = applier
        self.nonce_ttl = 2 * settings.timestamp_window_seconds + 60
        self.writer = writer or InboxWriter(self.nonce_ttl)
        try:
            self.crypto: PushCrypto | None = PushCrypto.from_settings(settings)
        except ValueError as exc:
            self.crypto = None
            log.warning("WeChat push not configured, /wechat routes answer 503: %s", exc)
        key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
        self.api_key = key.encode("utf-8") if key else None
        self._link_keys = None

    def link_keys(self):
        """The link secrets (launch.app.links.LinkKeys), read once: restart after a rotation."""
        if self._link_keys is None:
            self._link_keys = self.settings.link_keys()
        return self._link_keys

    # --- WeChat ---------------------------------------------------------------

    def need_crypto(self) -> PushCrypto:
        if self.crypto is None:
            raise Refused(503, "not-configured", "未配置微信推送 / the WeChat push is not configured "
                          "(WEAPP_LAUNCH_WECHAT_TOKEN, _ENCODING_AES_KEY, _COMPONENT_APPID)")
        return self.crypto

    def check_query(self, request: Request) -> tuple[str, str]:
        q = request.query_params
        timestamp, nonce = q.get("timestamp"), q.get("nonce")
        try:
            check_timestamp(timestamp, window_seconds=self.settings.timestamp_window_seconds)
        except PushRejected as exc:
            raise _from_push(exc) from None
        if not nonce or not NONCE.match(nonce):
            raise Refused(400, "bad-nonce", "nonce 缺失或格式错误 / nonce missing or malformed")
        return str(timestamp).strip(), nonce

    async def verify(self, request: Request, path_appid: str | None) -> PlainTextResponse:
        crypto = self.need_crypto()
        _check_path_appid(path_appid)
        timestamp, nonce = self.check_query(request)
        try:
            crypto.verify_signature(request.query_params.get("signature"), timestamp, nonce)
        except PushRejected as exc:
            raise _from_push(exc) from None
        echostr = request.query_params.get("echostr")
        if not echostr or len(echostr) > ECHOSTR_MAX or not echostr.isprintable():
            raise Refused(400, "bad-echostr", "echostr 缺失或格式错误 / echostr missing or malformed")
        # A verification's signature is as replayable as a push's: burn its nonce and signature too.
        from launch.app.inbox import SIGNATURE_SCOPE, take_nonces

        fresh = await run_in_threadpool(
            take_nonces, runtime.resources(), [(NONCE_SCOPE, nonce), (SIGNATURE_SCOPE, _signature_key(request.query_params.get("signature")))],
            self.nonce_ttl,
        )
        if not fresh:
            raise _replayed()
        return PlainTextResponse(echostr, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    async def push(self, request: Request, path_appid: str | None) -> PlainTextResponse:
        crypto = self.need_crypto()
        _check_path_appid(path_appid)
        body = await _read_body(request, self.settings.max_body_bytes)
        timestamp, nonce = self.check_query(request)
        q = request.query_params
        encrypt_type = q.get("encrypt_type")
        safe_mode = encrypt_type is not None or "msg_signature" in q
        if safe_mode and (encrypt_type or "aes") != "aes":
            raise Refused(400, PLAINTEXT_REFUSED, "encrypt_type 只能是 aes / encrypt_type must be 'aes'")
        if not safe_mode and not self.settings.wechat_allow_plaintext:
            # A plaintext push is signed by `signature` alone, which covers no body: one seen
            # anywhere (a verification GET, a log) could carry any event. WeChat's third-party
            # platform always encrypts.
            raise Refused(400, PLAINTEXT_REFUSED, "只接受加密推送：缺少 msg_signature / only encrypted pushes are "
                          "accepted: msg_signature and encrypt_type=aes are required")
        try:
            if safe_mode:
                if "signature" in q:  # WeChat sends it too; when present it must match
                    crypto.verify_signature(q.get("signature"), timestamp, nonce)
                opened = open_push(body, crypto, msg_signature=q.get("msg_signature"), timestamp=timestamp, nonce=nonce)
                event, envelope_id = opened.event, opened.envelope_id
                signed_by = q.get("msg_signature")
            else:  # a test platform, by WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT only
                crypto.verify_signature(q.get("signature"), timestamp, nonce)
                event, envelope_id = parse_event(body), None
                signed_by = q.get("signature")
        except PushRejected as exc:
            raise _from_push(exc) from None
        if (
            envelope_id
            and isinstance(event, (AuditSuccess, AuditFail, AuditDelay))
            and not hmac.compare_digest(envelope_id.encode(), event.to_user_name.encode())
        ):
            raise Refused(400, "envelope-mismatch",
                          "信封与消息的 ToUserName 不一致 / envelope and message ToUserName differ")
        named = _named_appid(event)
        if path_appid is not None and named and not hmac.compare_digest(named.encode(), path_appid.encode()):
            raise Refused(403, APPID_MISMATCH,
                          "路径中的 AppID 与消息所指的小程序不一致 / the app id in the path differs from the one the "
                          "message names")
        from launch.app.inbox import Landing

        # nonce and inbox row commit together (both or neither), batched with concurrent pushes
        landed = await asyncio.wrap_future(
            self.writer.submit(Landing(event, nonce, path_appid, signature=_signature_key(signed_by)))
        )
        if landed.replayed:
            raise _replayed()
        request.scope["weapp_reason"] = "accepted" if landed.created else "duplicate"
        if self.applier is not None and landed.created:
            self.applier.kick()
        return PlainTextResponse("success")

    # --- staff callbacks ---------------------------------------------------------

    def authenticate(self, request: Request, launch_id: str, gate: str, *, page: bool = False
                     ) -> tuple[str, LinkClaims | None]:
        """(channel, claims) of valid credentials: ("api", None) for the API key, ("link", claims)
        for a signed link; raises Refused(401). Credentials travel in headers —
        `Authorization: Bearer <api key>` or `X-Weapp-Token: <link token>`; the `?token=` of
        a link is taken only by the GET page the link opens (`page=True`), and a POST that
        carries one in its URL is refused. Whether the link's attempt is still open is
        `link_live`'s to say (it reads the store)."""
        query_tokens = request.query_params.getlist("token")
        if query_tokens and not page:
            raise Refused(401, TOKEN_IN_QUERY,
                          "POST 不接受网址中的链接令牌，请放在 X-Weapp-Token 头 / a POST does not take the link "
                          "token from its URL: send it in the X-Weapp-Token header")
        auth = request.headers.getlist("authorization")
        scheme, _, given = (auth[0] if len(auth) == 1 else "").partition(" ")
        if len(auth) > 1:
            raise Refused(401, "bad-credentials", "认证头重复 / more than one Authorization header")
        if scheme.lower() == "bearer":  # other schemes (a proxy's Basic auth) are not ours: look for a token
            if not given.strip():
                raise Refused(401, "bad-credentials", "认证头格式错误 / Authorization must be 'Bearer <api key>'")
            if self.api_key is None or not hmac.compare_digest(
                self.api_key, given.strip().encode("utf-8", "replace")
            ):
                raise Refused(401, "bad-api-key", "API 密钥无效 / API key not valid")
            return "api", None
        header_tokens = request.headers.getlist("x-weapp-token")
        if len(header_tokens) > 1 or len(query_tokens) > 1:
            raise Refused(401, MALFORMED_TOKEN, "链接令牌重复 / more than one link token")
        token = header_tokens[0] if header_tokens else (query_tokens[0] if query_tokens else None)
        if not token:
            raise Refused(401, "missing-credentials",
                          "缺少凭据：API 密钥或签名链接 / credentials missing: an API key or a signed link token")
        try:
            claims = verify_token(token, launch_id, gate, runtime.now(), self.link_keys())
        except LinkError as exc:
            raise Refused(401, exc.reason, exc.message) from None
        return "link", claims

    def authenticate_staff(self, request: Request) -> None:
        """The API key and nothing else (`Authorization: Bearer <api key>`), for staff pages
        that are about every launch (GET /report): a signed link is bound to one launch and
        gate, so it opens none of them; a token in the URL is refused like on a POST."""
        if request.query_params.getlist("token") or request.headers.getlist("x-weapp-token"):
            raise Refused(401, "bad-credentials", "此页面只接受 API 密钥，不接受链接令牌 / this page takes the API key, "
                          "not a link token")
        auth = request.headers.getlist("authorization")
        if len(auth) > 1:
            raise Refused(401, "bad-credentials", "认证头重复 / more than one Authorization header")
        scheme, _, given = (auth[0] if auth else "").partition(" ")
        if not auth:
            raise Refused(401, "missing-credentials", "缺少凭据：API 密钥 / credentials missing: the API key")
        if scheme.lower() != "bearer" or not given.strip():
            raise Refused(401, "bad-credentials", "认证头格式错误 / Authorization must be 'Bearer <api key>'")
        if self.api_key is None or not hmac.compare_digest(self.api_key, given.strip().encode("utf-8", "replace")):
            raise Refused(401, "bad-api-key", "API 密钥无效 / API key not valid")

    async def link_live(self, claims: LinkClaims | None) -> None:
        """Refuse (410) a link whose attempt has been decided or is no longer the current one."""
        if claims is None:
            return
        try:
            await run_in_threadpool(check_live, runtime.store(), claims.launch_id, claims.gate, claims.attempt)
        except LinkError as exc:
            raise Refused(410, exc.reason, exc.message) from None


def _signature_key(signature: str | None) -> str:
    return (signature or "").strip().lower()[:64]


def _replayed() -> Refused:
    return Refused(409, REPLAYED, "nonce 或签名已使用过 / nonce or signature already seen: replay refused")


def _named_appid(event) -> str | None:
    """The mini-program app id a push names in its own body (None for audit events, which name
    the original id; the applier checks those against the path once the launch is found)."""
    for attr in ("appid", "verify_appid", "authorizer_appid"):
        value = getattr(event, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _check_path_appid(path_appid: str | None) -> None:
    if path_appid is not None and not APPID_PATH.match(path_appid):
        raise Refused(404, "unknown-app", "路径中的 AppID 无效 / the app id in the path is not valid")


def _require_json(request: Request) -> None:
    """A staff POST is `application/json` (UTF-8 if a charset is named); anything else is 415.
    A cross-site HTML form can only send form or text bodies, so this also keeps them out."""
    value = request.headers.get("content-type") or ""
    media, _, params = value.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, val = param.strip().partition("=")
        if name.strip().lower() == "charset":
            charset = val.strip().strip('"').lower()
    if media.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise Refused(415, UNSUPPORTED_MEDIA_TYPE,
                      "请求体必须是 application/json / the body must be sent as application/json")


def _check_gate_path(launch_id: str, gate: str) -> None:
    if not LAUNCH_ID_PATH.match(launch_id):
        raise Refused(404, "unknown-launch", "没有这个上线任务 / no such launch")
    if gate not in runtime.catalogue().gates:
        raise Refused(404, "unknown-gate", "未知的关卡 / unknown gate")


class _LogMiddleware:
    """One safe log line per request: method, path (never the query), status, reason, ms."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - answer 500 ourselves: no traceback with SQL parameters in logs
            log.error("internal error on %s: %s", scope.get("path", "")[:120], type(exc).__name__)
            if not status.get("started"):
                status["code"] = 500
                body = json.dumps({"error": "internal",
                                   "message": "服务器内部错误，请稍后重试 / internal error, try again later"},
                                  ensure_ascii=False).encode("utf-8")
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
        finally:
            if log.isEnabledFor(logging.INFO):
                path = scope.get("path", "")
                if path.startswith("/gates/") or path.startswith("/wechat/"):
                    path = path[:120]
                log.info(
                    "%s %s %s %s %.1fms",
                    scope.get("method"),
                    path.encode("unicode_escape").decode("ascii"),
                    status["code"],
                    scope.get("weapp_reason", "-"),
                    (time.perf_counter() - start) * 1000,
                )


def create_app(settings=None, *, applier: bool = True, applier_interval: float = APPLIER_INTERVAL_SECONDS) -> FastAPI:
    """The receiver. `settings` defaults to the process settings; the store is always
    `launch.runtime.store()` (the one launch.app.decisions writes through). With `applier`, a
    background thread applies inbox rows after each push, at start-up and periodically."""
    settings = settings or runtime.settings()
    nonce_ttl = 2 * settings.timestamp_window_seconds + 60
    writer = InboxWriter(nonce_ttl)
    the_applier = Applier(applier_interval, nonce_ttl=nonce_ttl, writer=writer) if applier else None
    receiver = _Receiver(settings, the_applier, writer)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(runtime.store)  # open (and migrate) the store before serving
        if the_applier is not None:
            the_applier.start()
        try:
            yield
        finally:
            if the_applier is not None:
                await run_in_threadpool(the_applier.stop)
            await run_in_threadpool(writer.stop)

    app = FastAPI(
        title="weapp-launch receiver",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.receiver = receiver
    app.state.applier = the_applier
    app.state.writer = writer
    app.add_middleware(_LogMiddleware)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        return _refusal(request, exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        codes = {404: ("not-found", "没有这个地址 / no such route"),
                 405: ("method-not-allowed", "不支持的请求方法 / method not allowed")}
        code, message = codes.get(exc.status_code, ("http-error", "请求无效 / invalid request"))
        return _refusal(request, exc.status_code, code, message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _refusal(request, 400, "bad-request", "请求无效 / invalid request")

    # --- WeChat -------------------------------------------------------------------

    @app.get("/wechat/auth")
    async def wechat_auth_verify(request: Request):
        return await receiver.verify(request, None)

    @app.get("/wechat/{appid}/events")
    async def wechat_events_verify(appid: str, request: Request):
        return await receiver.verify(request, appid)

    @app.post("/wechat/auth")
    async def wechat_auth_push(request: Request):
        return await receiver.push(request, None)

    @app.post("/wechat/{appid}/events")
    async def wechat_events_push(appid: str, request: Request):
        return await receiver.push(request, appid)

    # --- staff --------------------------------------------------------------------

    @app.post("/gates/{launch_id}/{gate}")
    async def gate_decision(launch_id: str, gate: str, request: Request):
        # credentials (headers only) -> the link's attempt still open -> path -> JSON only -> body
        channel, claims = receiver.authenticate(request, launch_id, gate)
        await receiver.link_live(claims)
        _check_gate_path(launch_id, gate)
        _require_json(request)
        body = await _read_body(request, settings.max_body_bytes)
        try:
            data = json.loads(body, parse_constant=_reject_constant)
        except RecursionError:
            raise Refused(400, MALFORMED_JSON, "JSON 嵌套过深 / JSON nested too deep") from None
        except (ValueError, TypeError):
            raise Refused(400, MALFORMED_JSON, "请求体不是有效的 JSON / body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Refused(422, "invalid-form", "表单必须是 JSON 对象 / the form must be a JSON object",
                          problems=[{"field": "form", "rule": "object-required",
                                     "message": "表单必须是 JSON 对象 / the form must be a JSON object"}])
        _clean_strings(data)
        from launch.app.decisions import DecisionRefused, submit_decision

        try:
            # a link decides the attempt it was issued for, never whichever is current now
            result = await run_in_threadpool(
                functools.partial(submit_decision, runtime.resources(), launch_id, gate, data, channel,
                                  attempt=claims.attempt if claims is not None else None)
            )
        except DecisionRefused as exc:
            if any(p.rule == "unknown-launch" for p in exc.problems):
                raise Refused(404, "unknown-launch", "没有这个上线任务 / no such launch") from None
            if any(p.rule == "unknown-gate" for p in exc.problems):
                raise Refused(404, "unknown-gate", "未知的关卡 / unknown gate") from None
            raise Refused(
                422, "invalid-form", "表单未通过校验 / the form was refused",
                problems=[p.model_dump() for p in exc.problems],
            ) from None
        request.scope["weapp_reason"] = f"{channel}:{result.status}"
        return JSONResponse(
            {
                "status": result.status,
                "attempt": result.attempt,
                "resumed": result.resumed,
                "message": result.message,
                "launch_id": launch_id,
                "gate": gate,
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/gates/{launch_id}/{gate}")
    async def gate_page(launch_id: str, gate: str, request: Request):
        try:
            _, claims = receiver.authenticate(request, launch_id, gate, page=True)
            await receiver.link_live(claims)
            _check_gate_path(launch_id, gate)
            launch = await run_in_threadpool(runtime.store().get_launch, launch_id)
            if launch is None:
                raise Refused(404, "unknown-launch", "没有这个上线任务 / no such launch")
        except Refused as exc:
            request.scope["weapp_reason"] = exc.code
            return _page(_error_page(exc), exc.status)
        step = await run_in_threadpool(runtime.store().latest_step, launch_id, gate)
        return _page(_form_page(launch, gate, step), 200)

    @app.get("/report")
    async def portfolio_report(request: Request):
        # every open launch on one page (issue 13): staff only, by the API key
        try:
            receiver.authenticate_staff(request)
        except Refused as exc:
            request.scope["weapp_reason"] = exc.code
            response = _page(_error_page(exc, "无法打开 / Cannot open"), exc.status)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        nonce = secrets.token_urlsafe(16)
        page = await run_in_threadpool(_portfolio_page, nonce)
        request.scope["weapp_reason"] = "report"
        return _page(page, 200, nonce, images=True)

    @app.get("/healthz")
    async def healthz():
        try:
            health = await run_in_threadpool(runtime.store().health)
        except Exception as exc:  # noqa: BLE001
            return JSONResponse({"ok": False, "store": type(exc).__name__}, status_code=503)
        ok = bool(health.get("ok"))
        return JSONResponse(
            {"ok": ok, "store": {"backend": health.get("backend"), "ok": ok},
             "wechat_configured": receiver.crypto is not None},
            status_code=200 if ok else 503,
        )

    return app


# ---------------------------------------------------------------- the staff page

_CSS = """
body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}label{display:block;margin-top:1rem;font-weight:600}
.hint{font-weight:400;color:#666;font-size:.85rem}input,select,textarea{width:100%;padding:.4rem;font:inherit;box-sizing:border-box}
textarea{min-height:4rem}button{margin-top:1.2rem;padding:.5rem 1.5rem;font:inherit}
.todo{background:#f5f5f0;padding:.8rem;border-radius:4px}#result{margin-top:1rem;white-space:pre-wrap}
.ok{color:#176117}.bad{color:#a31515}
"""

_JS = """
(function(){
  var form=document.getElementById('gate-form'), out=document.getElementById('result');
  var token=new URLSearchParams(location.search).get('token')||'';
  form.addEventListener('submit',function(ev){
    ev.preventDefault();
    var data={};
    Array.prototype.forEach.call(form.elements,function(el){
      if(!el.name){return;}
      var v=el.value.trim();
      if(el.dataset.kind==='list'){var items=v.split('\\n').map(function(s){return s.trim();}).filter(Boolean);
        if(items.length){data[el.name]=items;} return;}
      if(v!==''){data[el.name]=v;}
    });
    out.className=''; out.textContent='提交中… / sending…';
    fetch(location.pathname,{method:'POST',headers:{'Content-Type':'application/json','X-Weapp-Token':token},
      body:JSON.stringify(data),credentials:'omit'})
    .then(function(r){return r.json().then(function(j){return [r.status,j];});})
    .then(function(res){var s=res[0],j=res[1];
      if(s===200){out.className='ok';out.textContent=(j.status==='recorded'?'已登记 / recorded':'已存在，未更改 / already decided')+'\\n'+(j.message||'');}
      else{out.className='bad';var lines=[j.message||j.error];(j.problems||[]).forEach(function(p){lines.push(p.field+': '+p.message);});
        out.textContent=lines.join('\\n');}})
    .catch(function(){out.className='bad';out.textContent='网络错误 / network error';});
  });
})();
"""


def _page(body: str, status: int, nonce: str | None = None, *, images: bool = False) -> HTMLResponse:
    """`images`: the page shows data: images (the portfolio chart) and runs no script."""
    nonce = nonce or secrets.token_urlsafe(16)
    doc = body.replace("{{NONCE}}", nonce)
    if images:
        csp = (f"default-src 'none'; img-src data:; style-src 'nonce-{nonce}'; form-action 'none'; "
               "base-uri 'none'; frame-ancestors 'none'")
    else:
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
               "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
    return HTMLResponse(
        doc,
        status_code=status,
        headers={
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _shell(title: str, inner: str, script: bool = False) -> str:
    js = f'<script nonce="{{{{NONCE}}}}">{_JS}</script>' if script else ""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style nonce=\"{{{{NONCE}}}}\">{_CSS}</style></head>"
        f"<body>{inner}{js}</body></html>"
    )


def _error_page(exc: Refused, title: str = "链接无效 / Link not valid") -> str:
    return _shell(title, f"<h1>无法打开 / Cannot open</h1><p>{html.escape(exc.message)}</p>")


def _portfolio_page(nonce: str) -> str:
    """The portfolio page from the runtime's store, catalogue and calendar (launch/app/report.py)."""
    from launch.app.report import build_portfolio, render_html

    portfolio = build_portfolio(runtime.store(), catalogue=runtime.catalogue(), calendar=runtime.calendar(),
                                now=runtime.now(), settings=runtime.settings())
    return render_html(portfolio, nonce=nonce)


def _field_kind(annotation) -> tuple[str, list[str]]:
    """("select", options) | ("list", []) | ("text", [])."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "select", [str(a) for a in typing.get_args(annotation)]
    if origin is list:
        return "list", []
    if args and len(args) == 1 and args[0] is not annotation:
        return _field_kind(args[0])
    return "text", []


def _max_length(field) -> int | None:
    for meta in field.metadata:
        value = getattr(meta, "max_length", None)
        if value is not None:
            return int(value)
    return None


def _form_page(launch, gate_id: str, step) -> str:
    gate = runtime.catalogue().gate(gate_id)
    form_cls = gate.form
    esc = html.escape
    fields_html = []
    for name, field in form_cls.model_fields.items():
        kind, options = _field_kind(field.annotation)
        title = field.title or name
        required = field.is_required()
        hint = f'<span class="hint">{esc(field.description)}</span>' if field.description else ""
        star = " *" if required else ""
        label = f'<label for="f-{esc(name)}">{esc(title)}{star} {hint}</label>'
        default = field.default if isinstance(field.default, str) else None
        if kind == "select":
            opts = [] if default else ['<option value="">— 请选择 / choose —</option>']
            for option in options:
                selected = " selected" if option == default else ""
                opts.append(f'<option value="{esc(option)}"{selected}>{esc(option)}</option>')
            control = f'<select id="f-{esc(name)}" name="{esc(name)}"{" required" if required else ""}>{"".join(opts)}</select>'
        elif kind == "list":
            control = (f'<textarea id="f-{esc(name)}" name="{esc(name)}" data-kind="list" '
                       f'placeholder="每行一个 / one per line"></textarea>')
        else:
            limit = _max_length(field)
            maxattr = f' maxlength="{limit}"' if limit else ""
            req = " required" if required else ""
            if limit and limit > 100:
                control = f'<textarea id="f-{esc(name)}" name="{esc(name)}"{maxattr}{req}></textarea>'
            else:
                value = f' value="{esc(default)}"' if default else ""
                control = f'<input type="text" id="f-{esc(name)}" name="{esc(name)}"{maxattr}{req}{value}>'
        fields_html.append(label + control)
    state = ""
    if step is not None:
        state = (f"<p>当前状态 / current: 第 {int(step.attempt)} 次 / attempt {int(step.attempt)} — "
                 f"{esc(step.status)}{' (' + esc(step.outcome) + ')' if step.outcome else ''}</p>")
    inner = (
        f"<h1>{esc(gate.name_zh)} / {esc(gate.name_en)}</h1>"
        f"<p>上线任务 / Launch: <code>{esc(launch.id)}</code></p>{state}"
        f'<div class="todo">{esc(gate.todo_zh)}</div>'
        f'<form id="gate-form" novalidate>{"".join(fields_html)}'
        '<button type="submit">提交 / Submit</button></form><div id="result" role="status"></div>'
    )
    return _shell(f"{gate.name_zh} / {gate.name_en}", inner, script=True)


# ---------------------------------------------------------------- running it


def _configure_logging() -> None:
    logger = logging.getLogger("weapp_launch")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def serve_api(settings=None, *, host: str | None = None, port: int | None = None) -> None:
    """Run the receiver with uvicorn on settings.api_host:api_port (access log off: it would
    print query strings, which carry signatures and link tokens)."""
    import uvicorn

    settings = settings or runtime.settings()
    _configure_logging()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        access_log=False,
        server_header=False,
        log_level="info",
    )


def api_command(
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default WEAPP_LAUNCH_API_HOST)"),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default WEAPP_LAUNCH_API_PORT)"),
) -> None:
    """Run the callback receiver (WeChat push, staff links) / 运行回调接收服务。"""
    # Called from Python rather than by Typer, the defaults are OptionInfo objects: ignore them.
    serve_api(
        runtime.settings(),
        host=host if isinstance(host, str) else None,
        port=port if isinstance(port, int) else None,
    )
