"""A client connects its mini program to the third-party platform (issue 12).

GET /wechat/authorize?launch=…&state=…   the start page staff send the client's admin
    (`weapp-launch wechat authorize` prints it). WeChat opens its authorisation page
    (componentloginpage) only for a visitor coming from a page on the platform's 授权发起页域名,
    so the page shows it as a button; each visit makes a fresh pre-auth code. `state` is a
    signed link token (launch.app.links) naming the launch (or ``any``): nobody else makes
    pre-auth codes through this receiver.
GET /wechat/authorized[/{launch}/{state}]?auth_code=…&expires_in=…   WeChat's redirect after
    the admin consented (the signed state travels in the PATH: WeChat drops or mangles a
    redirect_uri's own query parameters when it appends auth_code): api_query_auth stores the authorizer's app id and refresh token
    (encrypted, launch/store/platform.py) and, when the signed state names a launch without
    a mini program yet, records the app id on it. The auth code is burnt (a replay is refused
    before WeChat is asked again) and never logged (the log line has no query string).

GET /wechat/fastregistered/{launch}/{state}?ticket=…   WeChat's redirect after the 公众号's admin
    confirmed the fast registration reusing the 公众号's qualifications (fastregisterauth; the
    link is the action of gate official-account-authorization, launch/app/fastregister_reuse.py).
    ``state`` is a link token signed for that gate attempt. The ticket is taken as a nonce BEFORE
    account/fastregister is called (off the event loop), so one ticket is never used twice; the
    result decides official-account-authorization and fast-registration (channel wechat-api) and
    the new mini program's authorization_code is exchanged with api_query_auth. The ticket is
    never logged.

Refusals are HTML pages (no stack trace), 4xx; without a configured platform: 409 naming the
missing settings.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from launch.app import fastregister_reuse as reuse
from launch.app.decisions import DecisionRefused
from launch.app.inbox import take_nonces
from launch.app.links import LinkError, make_token, verify_token
from launch.receiver.errors import PageRefused, Refused
from launch.receiver.limits import capped_body
from launch.receiver.pages import _environment, new_nonce, page_response
from launch.receiver.state import ReceiverState, get_state
from launch.wechat.platform.errors import WeChatApiError, WeChatTransportError
from launch.wechat.platform.tokens import NoVerifyTicket, TokenRefreshTimeout

log = logging.getLogger("weapp_launch.api")

router = APIRouter()

AUTHORIZE_PATH = "/wechat/authorize"
AUTHORIZED_PATH = "/wechat/authorized"
STATE_GATE = "wechat-authorize"  # the "gate" a start link's token is signed for
ANY_LAUNCH = "any"  # a start link for a client, not one launch
AUTH_CODE_SCOPE = "wechat-auth-code"
AUTH_CODE_TTL_SECONDS = 24 * 3600.0  # WeChat's auth codes live 10 minutes; remembered much longer
AUTH_CODE = re.compile(r"^[0-9A-Za-z@_.\-]{8,512}$")
BAD_AUTH_CODE_ERRCODES = {61010, 61009, 61011, 40013}  # expired / unknown code, invalid component

# Permission sets (WeChat's 小程序权限集 table, developers.weixin.qq.com/doc/oplatform/
# Third-party_Platforms/2.0/product/miniprogram_authority; 156: the ICP filing APIs, per WeChat's
# answers on createIcpVerifyTask / queryIcpVerifyTask).
PERMISSION_SETS: dict[int, tuple[str, str]] = {
    17: ("获取小程序码", "mini program codes"),
    18: ("小程序开发与数据分析", "development, code management and data analysis"),
    19: ("小程序客服管理", "customer service messages"),
    25: ("开放平台账号管理", "open platform account binding"),
    27: ("快速注册小程序", "fast registration of mini programs"),
    30: ("小程序基本信息管理", "basic information (name, avatar, categories)"),
    31: ("小程序认证名称检测", "verification name check"),
    156: ("小程序备案", "ICP filing"),
}
REQUIRED_SETS = (18, 156, 30)  # 30: the profile and the 认证 poll (getaccountbasicinfo)


def permission_rows(ids) -> list[tuple[int, str, str]]:
    return [(i, *PERMISSION_SETS.get(i, ("权限集", "permission set"))) for i in ids]


def missing_settings(settings) -> list[str]:
    """The WEAPP_LAUNCH_WECHAT_* settings a connected platform needs that are not set."""
    names = [("COMPONENT_APPID", settings.wechat_component_appid),
             ("COMPONENT_SECRET", settings.wechat_component_secret),
             ("TOKEN", settings.wechat_token),
             ("ENCODING_AES_KEY", settings.wechat_encoding_aes_key)]
    return [f"WEAPP_LAUNCH_WECHAT_{name}" for name, value in names if not value]


def signed_state(res, launch_id: str | None, now=None) -> tuple[str, str]:
    """(subject, token): the launch (or ``any``) an authorisation is for, signed with the link
    keys, valid `settings.link_ttl_hours`."""
    subject = launch_id or ANY_LAUNCH
    expires = (now or res.now()) + timedelta(hours=res.settings.link_ttl_hours)
    return subject, make_token(subject, STATE_GATE, 1, expires, res.settings.link_keys())


def start_link(res, subject: str, token: str) -> str:
    """`{public_url}/wechat/authorize?launch=…&state=…`: the start page of an authorisation
    (each visit makes a fresh pre-auth code)."""
    return f"{res.settings.public_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode({'launch': subject, 'state': token})}"


def redirect_uri(res, subject: str | None = None, state: str | None = None) -> str:
    """Where WeChat sends the admin back: `{public_url}/wechat/authorized[/{launch}/{state}]`."""
    base = f"{res.settings.public_url.rstrip('/')}{AUTHORIZED_PATH}"
    return f"{base}/{quote(subject, safe='')}/{quote(state, safe='')}" if subject and state else base


def _refuse(status: int, code: str, message: str, title: str = "无法完成授权 / Authorisation not completed"):
    return PageRefused(Refused(status, code, message), title)


def _platform(state: ReceiverState):
    platform = state.res.wechat
    if platform is None:
        missing = ", ".join(missing_settings(state.settings)) or "-"
        raise _refuse(409, "platform-not-configured",
                      f"未配置微信第三方平台，缺少设置：{missing} / the WeChat third-party platform is not configured; "
                      f"missing settings: {missing}")
    return platform


def _checked_state(state: ReceiverState, subject: str | None, token: str | None) -> tuple[str | None, str | None]:
    """(subject, token) of a signed start link, or (None, None) when the URL carries none."""
    if subject is None and token is None:
        return None, None
    try:
        verify_token(token, subject or "", STATE_GATE, state.res.now(), state.link_keys())
    except LinkError as exc:
        raise _refuse(400, exc.reason, exc.message, "链接无效 / Link not valid") from None
    return subject, token


def _wechat_refusal(exc: Exception) -> PageRefused:
    if isinstance(exc, NoVerifyTicket):
        return _refuse(503, "no-verify-ticket", str(exc))
    if isinstance(exc, TokenRefreshTimeout):
        return _refuse(503, "token-refresh-timeout", str(exc))
    if isinstance(exc, WeChatTransportError):
        return _refuse(502, "wechat-unreachable", f"{exc.zh} / {exc.en}")
    if isinstance(exc, WeChatApiError):
        return _refuse(502, "wechat-refused", f"微信拒绝了请求 / WeChat refused: {exc.zh} / {exc.en} "
                       f"(errcode {exc.errcode})")
    return _refuse(502, "wechat-failed", "微信接口调用失败 / the call to WeChat failed")


@router.get(AUTHORIZE_PATH)
async def authorize_start(request: Request, _: bytes = Depends(capped_body), state: ReceiverState = Depends(get_state)):
    q = request.query_params
    subject, token = _checked_state(state, q.get("launch"), q.get("state"))
    if subject is None:
        raise _refuse(400, "missing-state", "缺少签名参数，请向运营索取授权链接 / the signed start link is missing: ask "
                      "our team for the authorisation link", "链接无效 / Link not valid")
    platform = _platform(state)
    res = state.res
    launch = await run_in_threadpool(res.store.get_launch, subject) if subject != ANY_LAUNCH else None
    biz_appid = launch.appid if launch is not None else None
    try:
        pre = await run_in_threadpool(platform.auth.create_preauthcode)
    except (WeChatApiError, WeChatTransportError, NoVerifyTicket, TokenRefreshTimeout) as exc:
        raise _wechat_refusal(exc) from None
    back = redirect_uri(res, subject, token)
    pc = platform.auth.authorization_link(pre.pre_auth_code, back, biz_appid=biz_appid)
    mobile = platform.auth.authorization_link(pre.pre_auth_code, back, mobile=True, biz_appid=biz_appid)
    label = ""
    if launch is not None:
        client = await run_in_threadpool(res.store.get_client, launch.client_id)
        label = f"{client.mini_program_name if client else ''}（{launch.id}）"
    nonce = new_nonce()
    doc = _environment().get_template("wechat_authorize.html.j2").render(
        subject=label, biz_appid=biz_appid, pc_link=pc, mobile_link=mobile, minutes=max(1, pre.expires_in // 60),
        required=permission_rows(REQUIRED_SETS), nonce=nonce)
    request.scope["weapp_reason"] = "authorize-start"
    return page_response(doc, 200, nonce)


def _complete(res, platform, auth_code: str, subject: str | None) -> tuple[object, str | None, list[str]]:
    """query_auth (stores the authorizer, encrypted) and, for a launch without a mini program
    yet, records the app id on it. Returns (authorization, linked launch id, notes)."""
    info = platform.auth.query_auth(auth_code)
    notes: list[str] = []
    linked = None
    if subject and subject != ANY_LAUNCH:
        launch = res.store.get_launch(subject)
        if launch is None:
            notes.append("未找到上线任务，授权已保存但未关联 / the launch was not found: the authorisation is kept but "
                         "not linked to it")
        elif launch.appid and launch.appid != info.authorizer_appid:
            notes.append(f"授权的小程序与上线任务 {launch.id} 的小程序不同，未关联 / the authorised mini program is not "
                         f"the one of launch {launch.id}: not linked")
        else:
            if not launch.appid:
                res.store.set_app_ids(launch.id, info.authorizer_appid, at=res.now())
            linked = launch.id
    log.info("mini program %s authorised the platform (permission sets %s)", info.authorizer_appid,
             info.permission_sets())
    return info, linked, notes


@router.get(AUTHORIZED_PATH)
async def authorized(request: Request, _: bytes = Depends(capped_body), state: ReceiverState = Depends(get_state)):
    return await _authorized(request, state, None, None)


@router.get(AUTHORIZED_PATH + "/{launch}/{token}")
async def authorized_for(request: Request, launch: str, token: str, _: bytes = Depends(capped_body),
                         state: ReceiverState = Depends(get_state)):
    return await _authorized(request, state, launch, token)


async def _authorized(request: Request, state: ReceiverState, launch: str | None, token: str | None):
    q = request.query_params
    if len(q.getlist("auth_code")) > 1:
        raise _refuse(400, "bad-auth-code", "授权码重复 / more than one auth_code")
    auth_code = (q.get("auth_code") or "").strip()
    if not auth_code:
        raise _refuse(400, "missing-auth-code", "缺少授权码（auth_code）：请从微信授权页完成授权 / the authorisation "
                      "code (auth_code) is missing: complete the authorisation on WeChat's page")
    if not AUTH_CODE.match(auth_code):
        raise _refuse(400, "bad-auth-code", "授权码格式错误 / the authorisation code is malformed")
    expires_in = q.get("expires_in")
    if expires_in is not None and not re.fullmatch(r"[0-9]{1,7}", expires_in):
        raise _refuse(400, "bad-expires-in", "expires_in 格式错误 / expires_in is not a number")
    subject, _ = _checked_state(state, launch, token)
    platform = _platform(state)
    digest = hashlib.sha256(auth_code.encode("utf-8")).hexdigest()
    if not await run_in_threadpool(take_nonces, state.res, [(AUTH_CODE_SCOPE, digest)], AUTH_CODE_TTL_SECONDS):
        raise _refuse(409, "auth-code-used", "此授权码已使用过。若刚刚已授权成功，无需再操作；否则请重新打开授权链接 / this "
                      "authorisation code was already used. If you just authorised, nothing more is needed; "
                      "otherwise open the authorisation link again")
    try:
        info, linked, notes = await run_in_threadpool(_complete, state.res, platform, auth_code, subject)
    except WeChatApiError as exc:
        if exc.errcode in BAD_AUTH_CODE_ERRCODES:
            raise _refuse(400, "unknown-auth-code", "授权码无效或已过期（有效期 10 分钟），请重新打开授权链接 / the "
                          "authorisation code is unknown or expired (they last 10 minutes): open the authorisation "
                          f"link again (WeChat errcode {exc.errcode})") from None
        raise _wechat_refusal(exc) from None
    except (WeChatTransportError, NoVerifyTicket, TokenRefreshTimeout) as exc:
        raise _wechat_refusal(exc) from None
    granted = info.permission_sets()
    nonce = new_nonce()
    doc = _environment().get_template("wechat_authorized.html.j2").render(
        appid=info.authorizer_appid, launch_id=linked, granted=permission_rows(granted),
        missing=permission_rows([i for i in REQUIRED_SETS if i not in granted]), notes=notes, nonce=nonce)
    request.scope["weapp_reason"] = "authorized"
    return page_response(doc, 200, nonce)


TICKET = re.compile(r"^[0-9A-Za-z@_.\-]{8,512}$")
FASTREGISTER_TITLE = "复用公众号快速注册 / Fast registration with the 公众号"
FASTREGISTER_PAGES: dict[str, tuple[int, str, str]] = {  # status -> (HTTP status, zh, en)
    "registered": (200, "小程序已注册并完成认证，无需再操作。", "The mini program is registered and verified: nothing more "
                   "is needed."),
    "unverified": (200, "小程序已注册，但认证未能复用，需重新提交认证（运营会跟进）。", "The mini program is registered, but "
                   "the 认证 could not be copied: it is resubmitted (our team follows up)."),
    "failed": (200, "微信未能注册小程序，运营会核对资料后重新发起。", "WeChat did not register the mini program: our team "
               "checks the details and starts again."),
    "already-done": (409, "此授权已处理过，快速注册已完成，无需再操作。", "This authorisation was already handled: the fast "
                     "registration is done, nothing more is needed."),
    "ticket-used": (409, "此授权凭证已处理过；快速注册尚未完成，请重新打开授权链接。", "This ticket was already handled and "
                    "the fast registration is not done: open the authorisation link again."),
    "ticket-invalid": (400, "授权凭证无效、已过期或已使用，请重新打开授权链接。", "The authorisation ticket is invalid, expired "
                       "or used: open the authorisation link again."),
    "not-authorised": (409, "公众号尚未授权第三方平台快速注册小程序（权限集 27），请先完成授权。", "The 公众号 has not "
                       "authorised the platform to register mini programs (permission set 27): authorise it first."),
    "busy": (503, "微信暂时无法处理，请稍后重新打开授权链接。", "WeChat could not take it now: open the authorisation link "
             "again later."),
    "no-launch": (404, "未找到上线任务。", "The launch was not found."),
}


def _fastregister_page(request: Request, status: str, appid: str | None, notes: list[str]):
    code, zh, en = FASTREGISTER_PAGES[status]
    nonce = new_nonce()
    doc = _environment().get_template("wechat_fastregistered.html.j2").render(title=FASTREGISTER_TITLE, cls="ok" if code == 200 else "bad", zh=zh, en=en, appid=appid,
        notes=[n for n in notes if n], nonce=nonce)
    request.scope["weapp_reason"] = f"fastregistered-{status}"
    return page_response(doc, code, nonce)


@router.get(reuse.FASTREGISTERED_PATH + "/{launch}/{token}")
async def fastregistered(request: Request, launch: str, token: str, _: bytes = Depends(capped_body),
                         state: ReceiverState = Depends(get_state)):
    q = request.query_params
    if len(q.getlist("ticket")) > 1:
        raise _refuse(400, "bad-ticket", "授权凭证重复 / more than one ticket", FASTREGISTER_TITLE)
    ticket = (q.get("ticket") or "").strip()
    if not ticket:
        raise _refuse(400, "missing-ticket", "缺少授权凭证（ticket）：请从微信授权页完成确认 / the authorisation ticket "
                      "is missing: confirm on WeChat's page", FASTREGISTER_TITLE)
    if not TICKET.match(ticket):
        raise _refuse(400, "bad-ticket", "授权凭证格式错误 / the authorisation ticket is malformed", FASTREGISTER_TITLE)
    try:
        claims = verify_token(token, launch, reuse.STATE_GATE, state.res.now(), state.link_keys())
    except LinkError as exc:
        raise _refuse(400, exc.reason, exc.message, "链接无效 / Link not valid") from None
    platform = _platform(state)
    entries = [(reuse.TICKET_SCOPE, reuse.ticket_digest(ticket))]
    if not await run_in_threadpool(take_nonces, state.res, entries, reuse.TICKET_TTL_SECONDS):
        passed = await run_in_threadpool(reuse.registered, state.res, launch)
        return _fastregister_page(request, "already-done" if passed else "ticket-used", None, [
            "同一授权凭证只处理一次 / one ticket is handled once"])
    try:
        done = await run_in_threadpool(reuse.complete, state.res, platform, launch, claims.attempt, ticket)
    except (NoVerifyTicket, TokenRefreshTimeout) as exc:
        raise _wechat_refusal(exc) from None
    except DecisionRefused as exc:  # the launch moved on (another path, a gate staff decided): say what
        raise _refuse(409, "decision-refused", f"无法登记结果 / the result could not be recorded: {exc}",
                      FASTREGISTER_TITLE) from None
    return _fastregister_page(request, done.status, done.appid, done.notes)
