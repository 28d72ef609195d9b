"""Who may call what, as FastAPI dependencies (a route declares them; none repeats the checks).

WeChat pushes and URL verifications
    `push_crypto` (503 until configured) -> `checked_appid` (the app id in the path) ->
    `fresh_query` (timestamp inside the window, nonce well formed); a verification then
    needs `signed` (the `signature` over timestamp and nonce, constant time). A push checks
    its signatures while opening the envelope (launch.receiver.routes.push).
Staff
    `staff_or_link`: `Authorization: Bearer <api key>` or `X-Weapp-Token: <signed link>`
    (never a token in a POST's URL), and the link's attempt still open (410 if not);
    `link_page`: the same for the page a link opens (its `?token=` allowed), refusals as an
    HTML page; `staff_key_page`: the API key alone (GET /report), refusals as an HTML page.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from launch.app.links import MALFORMED as MALFORMED_TOKEN
from launch.app.links import LinkClaims, LinkError, check_live, verify_token
from launch.receiver.errors import TOKEN_IN_QUERY, PageRefused, Refused, from_push
from launch.receiver.state import ReceiverState, get_state
from launch.wechat.crypto import PushCrypto, check_timestamp
from launch.wechat.errors import PushRejected

APPID_PATH = re.compile(r"^wx[0-9a-f]{16}$")
LAUNCH_ID_PATH = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
NONCE = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")


# ---------------------------------------------------------------- WeChat


@dataclass(frozen=True)
class PushQuery:
    timestamp: str
    nonce: str


async def push_crypto(state: ReceiverState = Depends(get_state)) -> PushCrypto:
    if state.crypto is None:
        raise Refused(503, "not-configured", "未配置微信推送 / the WeChat push is not configured "
                      "(WEAPP_LAUNCH_WECHAT_TOKEN, _ENCODING_AES_KEY, _COMPONENT_APPID)")
    return state.crypto


def check_path_appid(path_appid: str | None) -> None:
    if path_appid is not None and not APPID_PATH.match(path_appid):
        raise Refused(404, "unknown-app", "路径中的 AppID 无效 / the app id in the path is not valid")


async def checked_appid(appid: str) -> str:
    """The mini-program app id of a `/wechat/{appid}/events` path, well formed."""
    check_path_appid(appid)
    return appid


async def fresh_query(request: Request, state: ReceiverState = Depends(get_state)) -> PushQuery:
    """Timestamp (plain decimal, inside the window) and nonce (well formed) of a WeChat call."""
    q = request.query_params
    timestamp, nonce = q.get("timestamp"), q.get("nonce")
    try:
        check_timestamp(timestamp, window_seconds=state.settings.timestamp_window_seconds)
    except PushRejected as exc:
        raise from_push(exc) from None
    if not nonce or not NONCE.match(nonce):
        raise Refused(400, "bad-nonce", "nonce 缺失或格式错误 / nonce missing or malformed")
    return PushQuery(str(timestamp).strip(), nonce)


async def signed(request: Request, crypto: PushCrypto = Depends(push_crypto),
           query: PushQuery = Depends(fresh_query)) -> PushQuery:
    """The `signature` of a URL verification over its timestamp and nonce (constant time)."""
    try:
        crypto.verify_signature(request.query_params.get("signature"), query.timestamp, query.nonce)
    except PushRejected as exc:
        raise from_push(exc) from None
    return query


def signature_key(signature: str | None) -> str:
    """A signature as remembered against replays."""
    return (signature or "").strip().lower()[:64]


# ---------------------------------------------------------------- staff


@dataclass(frozen=True)
class Credentials:
    channel: str  # "api" (the API key) or "link" (a signed link)
    claims: LinkClaims | None


def _bearer_key(state: ReceiverState, given: str) -> None:
    if state.api_key is None or not hmac.compare_digest(state.api_key, given.strip().encode("utf-8", "replace")):
        raise Refused(401, "bad-api-key", "API 密钥无效 / API key not valid")


def authenticate(state: ReceiverState, request: Request, launch_id: str, gate: str, *, page: bool = False
                 ) -> Credentials:
    """Valid credentials or Refused(401). Credentials travel in headers — `Authorization:
    Bearer <api key>` or `X-Weapp-Token: <link token>`; the `?token=` of a link is taken only
    by the GET page the link opens (`page=True`), and a POST that carries one in its URL is
    refused. Whether the link's attempt is still open is `link_live`'s to say (it reads the store)."""
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
        _bearer_key(state, given)
        return Credentials("api", None)
    header_tokens = request.headers.getlist("x-weapp-token")
    if len(header_tokens) > 1 or len(query_tokens) > 1:
        raise Refused(401, MALFORMED_TOKEN, "链接令牌重复 / more than one link token")
    token = header_tokens[0] if header_tokens else (query_tokens[0] if query_tokens else None)
    if not token:
        raise Refused(401, "missing-credentials",
                      "缺少凭据：API 密钥或签名链接 / credentials missing: an API key or a signed link token")
    try:
        claims = verify_token(token, launch_id, gate, state.res.now(), state.link_keys())
    except LinkError as exc:
        raise Refused(401, exc.reason, exc.message) from None
    return Credentials("link", claims)


def authenticate_staff(state: ReceiverState, request: Request) -> None:
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
    _bearer_key(state, given)


async def link_live(state: ReceiverState, claims: LinkClaims | None) -> None:
    """Refuse (410) a link whose attempt has been decided or is no longer the current one."""
    if claims is None:
        return
    try:
        await run_in_threadpool(check_live, state.res.store, claims.launch_id, claims.gate, claims.attempt)
    except LinkError as exc:
        raise Refused(410, exc.reason, exc.message) from None


def check_gate_path(state: ReceiverState, launch_id: str, gate: str) -> None:
    if not LAUNCH_ID_PATH.match(launch_id):
        raise Refused(404, "unknown-launch", "没有这个上线任务 / no such launch")
    if gate not in state.res.catalogue.gates:
        raise Refused(404, "unknown-gate", "未知的关卡 / unknown gate")


async def staff_or_link(request: Request, launch_id: str, gate: str,
                        state: ReceiverState = Depends(get_state)) -> Credentials:
    """FastAPI dependency of POST /gates/{launch_id}/{gate}: credentials (headers only), then
    the link's attempt still open, then a launch id and gate that can exist."""
    credentials = authenticate(state, request, launch_id, gate)
    await link_live(state, credentials.claims)
    check_gate_path(state, launch_id, gate)
    return credentials


async def link_page(request: Request, launch_id: str, gate: str,
                    state: ReceiverState = Depends(get_state)) -> Credentials:
    """FastAPI dependency of the page a link opens: as `staff_or_link`, the link's `?token=`
    allowed, refusals answered as an HTML page."""
    try:
        credentials = authenticate(state, request, launch_id, gate, page=True)
        await link_live(state, credentials.claims)
        check_gate_path(state, launch_id, gate)
    except Refused as exc:
        raise PageRefused(exc) from None
    return credentials


async def staff_key_page(request: Request, state: ReceiverState = Depends(get_state)) -> None:
    """FastAPI dependency of staff pages about every launch: the API key only; refusals as an
    HTML page with `WWW-Authenticate: Bearer`."""
    try:
        authenticate_staff(state, request)
    except Refused as exc:
        raise PageRefused(exc, "无法打开 / Cannot open", www_authenticate=True) from None
