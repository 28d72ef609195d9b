"""复用公众号资质快速注册 through the third-party platform (registration path
``reuse_official_account``), as WeChat documents it (developers.weixin.qq.com/doc/oplatform/openApi/
register-management/fast-registration-officalaccount/registerMiniprogramByOffiaccount):

1. Gate ``official-account-authorization`` opens; its action (``send_link``) checks that the
   intake names the 公众号 (``registration.official_account.appid``) and that the 公众号 has
   authorised the platform with permission set 27 (快速注册小程序) — else a note says which, and the
   gate stays manual — then sends the client (the 公众号's admin) WeChat's fastregisterauth link,
   whose redirect_uri is this receiver's ``/wechat/fastregistered/{launch}/{state}`` (``state``:
   a link token signed with the link keys for that gate attempt).
2. The admin confirms; WeChat redirects there with ``?ticket=…``. ``complete`` (called by the
   receiver off its event loop) calls account/fastregister with the 公众号's authorizer token,
   ONCE per ticket (the ticket's digest is taken as a nonce before the call; the receiver does it),
   records ``official-account-authorization`` done and ``fast-registration`` from
   ``launch.wechat.mapping.fastregister_answer`` (channel wechat-api), and exchanges the returned
   authorization_code with api_query_auth so the new mini program is authorised to the platform.

The ticket and authorization_code are credentials: never logged, never stored, never in a
decision, an alert or Prefect.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from launch.app.links import make_token
from launch.domain.forms import APPID
from launch.app.resources import Resources
from launch.app.wechat_actions import send_client_link
from launch.domain.vocabulary import DecisionChannel

log = logging.getLogger("weapp_launch.fastregister")

AUTH_GATE = "official-account-authorization"
RESULT_GATE = "fast-registration"
STATE_GATE = "wechat-fastregister"  # the "gate" a fastregistered state token is signed for
FASTREGISTERED_PATH = "/wechat/fastregistered"
TICKET_SCOPE = "wechat-fastregister-ticket"  # nonces: sha256 of each ticket, taken before WeChat is asked
TICKET_TTL_SECONDS = 7 * 24 * 3600.0
PERMISSION_SET = 27  # 快速注册小程序
TICKET_USED = 61058  # WeChat: the ticket is invalid, expired or used (retries < 5 s apart count as used)
DECIDED_BY = "微信接口 / WeChat API (fastregister)"  # decided_by: at most 40 characters
OA_FIELD = "registration.official_account.appid"
LINK_PLACEHOLDER = re.compile(r"\[\[fastregister-link:([a-z0-9][a-z0-9-]{0,63}):([1-9][0-9]{0,3}):(wx[0-9a-f]{16})\]\]")


def ticket_digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()


def official_account_appid(res: Resources, launch) -> str | None:
    """The reused 公众号's app id from the (encrypted) intake, or None when it is missing or not
    an app id (wx + 16 hex)."""
    intake = res.store.client_intake(launch.client_id) or {}
    oa = (intake.get("registration") or {}).get("official_account") or {}
    appid = (oa.get("appid") or "").strip()
    return appid if APPID.fullmatch(appid) else None


def authorised_for_fastregister(res: Resources, appid: str) -> tuple[bool, str]:
    """(True, "") when the 公众号 authorised the platform with permission set 27, else (False, note)."""
    state = res.store.authorizer_state(appid)
    if state is None or state.revoked_at is not None:
        return False, (
            f"公众号 {appid} 尚未授权给第三方平台（需权限集 27「快速注册小程序」），请公众号管理员先完成授权（weapp-launch "
            f"wechat authorize），本关卡暂由运营处理 / the 公众号 {appid} has not authorised the platform (permission set "
            "27, fast registration of mini programs, is needed): its admin authorises it first (weapp-launch wechat "
            "authorize); until then staff decide this gate")
    if PERMISSION_SET not in state.func_info:
        return False, (
            f"公众号 {appid} 的授权未勾选权限集 27「快速注册小程序」，请公众号管理员重新授权并勾选，本关卡暂由运营处理 / "
            f"the 公众号 {appid} authorised the platform without permission set 27 (fast registration of mini "
            "programs): its admin authorises again with it ticked; until then staff decide this gate")
    return True, ""


def signed_state(res: Resources, launch_id: str, attempt: int, now: datetime | None = None) -> str:
    expires = (now or res.now()) + timedelta(hours=res.settings.link_ttl_hours)
    return make_token(launch_id, STATE_GATE, attempt, expires, res.settings.link_keys())


def redirect_uri(res: Resources, launch_id: str, attempt: int, now: datetime | None = None) -> str:
    """`{public_url}/wechat/fastregistered/{launch}/{state}`: where WeChat sends the admin with the
    ticket (the state travels in the path, as for /wechat/authorized)."""
    state = signed_state(res, launch_id, attempt, now)
    return (f"{res.settings.public_url.rstrip('/')}{FASTREGISTERED_PATH}/"
            f"{quote(launch_id, safe='')}/{quote(state, safe='')}")


def link_placeholder(launch_id: str, attempt: int, appid: str) -> str:
    """What the outbox keeps where the fastregisterauth link goes (its redirect's state is a
    credential, signed only when the alert is delivered)."""
    link = f"[[fastregister-link:{launch_id}:{attempt}:{appid}]]"
    if not LINK_PLACEHOLDER.fullmatch(link):
        raise ValueError(f"not a launch id, attempt and 公众号 app id: {launch_id!r}, {attempt!r}, {appid!r}")
    return link


def render_link_placeholders(res: Resources, text: str, now: datetime, *, live: bool = True) -> str:
    """Each fastregister placeholder in ``text`` as WeChat's fastregisterauth link, its state
    signed ``now``; an attempt already decided or superseded (or no platform any more) gets the
    dead-link note instead. For the channels only: never written back to the store."""
    from launch.app.links import DEAD_LINK_TEXT, LinkError, check_live
    from launch.wechat.platform.registration import fastregisterauth_link

    def fresh(m) -> str:
        launch_id, attempt, appid = m.group(1), int(m.group(2)), m.group(3)
        component_appid = res.settings.wechat_component_appid
        if not component_appid:
            return DEAD_LINK_TEXT
        if live:
            try:
                check_live(res.store, launch_id, AUTH_GATE, attempt)
            except LinkError:
                return DEAD_LINK_TEXT
            except Exception:  # noqa: BLE001 - the receiver checks the state again; a store hiccup must not stop the alert
                pass
        return fastregisterauth_link(component_appid, appid, redirect_uri(res, launch_id, attempt, now))

    return LINK_PLACEHOLDER.sub(fresh, text)


def send_link(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """The action of ``official-account-authorization``: the 公众号 admin gets WeChat's
    fastregisterauth link (an alert to the client). Returns what happened."""
    appid = official_account_appid(res, launch)
    if appid is None:
        res.store.annotate_step(launch.id, gate_id, attempt, note=(
            f"资料缺少公众号 AppID 或格式不对（字段：{OA_FIELD}；规则：复用公众号路径必填，wx 开头加 16 位小写十六进制），"
            f"本关卡暂由运营处理 / the intake has no valid 公众号 app id (field: {OA_FIELD}; rule: required on the "
            "reuse path, wx followed by 16 lower-case hex digits): staff decide this gate"))
        return "refused:intake"
    ok, note = authorised_for_fastregister(res, appid)
    if not ok:
        res.store.annotate_step(launch.id, gate_id, attempt, note=note)
        return "manual:not-authorised"
    res.store.annotate_step(launch.id, gate_id, attempt, note=(
        f"复用公众号快速注册的授权链接已发给公众号管理员；确认后工具自动注册并登记结果 / the fastregisterauth link was "
        f"sent to the 公众号's admin (appid {appid}); once they confirm, the tool registers and records the result"))
    # The link's redirect holds a signed state: the outbox keeps a placeholder, the deliverer signs it.
    send_client_link(
        res, launch.id, gate_id, attempt, kind="fastregister-link", link=link_placeholder(launch.id, attempt, appid),
        title="请公众号管理员确认复用资质快速注册小程序 / the 公众号 admin confirms the fast registration",
        ask_zh="请公众号管理员用本人微信打开以下链接（或扫描其二维码），确认复用公众号资质快速注册小程序",
        ask_en=("Ask the 公众号's administrator to open this link in their WeChat (or scan its QR code) and confirm "
                "the fast registration of the mini program with the 公众号's qualifications"))
    return "link-sent"


@dataclass
class Completed:
    """What the receiver's page shows."""

    status: str  # registered | unverified | failed | already-done | ticket-invalid | not-authorised | busy | no-launch
    appid: str | None = None
    notes: list[str] = field(default_factory=list)


def registered(res: Resources, launch_id: str) -> bool:
    """Whether the launch's fast registration passed (registered, verified or not)."""
    return any(d.gate == RESULT_GATE and d.outcome in ("succeeded", "registered_unverified")
               for d in res.store.history(launch_id))


def _submit(res: Resources, launch_id: str, gate: str, data: dict, attempt: int | None):
    from launch.app.decisions import submit_decision

    return submit_decision(res, launch_id, gate, data, DecisionChannel.WECHAT_API, attempt=attempt)


def complete(res: Resources, platform, launch_id: str, attempt: int, ticket: str) -> Completed:
    """The ticket came back (the receiver took its nonce already): register, record, authorise."""
    from launch.wechat.mapping import fastregister_answer
    from launch.wechat.platform.errors import WeChatApiError, WeChatTransportError

    launch = res.store.get_launch(launch_id)
    if launch is None:
        return Completed("no-launch", notes=["未找到上线任务 / the launch was not found"])
    if registered(res, launch_id):
        return Completed("already-done", launch.appid, ["快速注册已完成，无需再操作 / the fast registration is already "
                                                       "done: nothing more is needed"])
    appid = official_account_appid(res, launch)
    if appid is None:
        return Completed("not-authorised", notes=[
            f"资料缺少公众号 AppID 或格式不对（字段：{OA_FIELD}；规则：wx 开头加 16 位十六进制） / the intake has no "
            f"valid 公众号 app id (field: {OA_FIELD}; rule: wx followed by 16 hex digits)"])
    ok, note = authorised_for_fastregister(res, appid)
    if not ok:
        res.store.annotate_step(launch_id, AUTH_GATE, attempt, note=note)
        return Completed("not-authorised", notes=[note])
    try:
        result = platform.registration.fastregister(appid, ticket)
    except WeChatTransportError as exc:
        note = (f"微信暂时无法处理（{exc.zh}），请稍后重新打开授权链接 / WeChat could not take it now ({exc.en}): open "
                "the authorisation link again later")
        res.store.annotate_step(launch_id, AUTH_GATE, attempt, note=note)
        return Completed("busy", notes=[note])
    except WeChatApiError as exc:
        log.warning("account/fastregister refused for launch %s: errcode %s", launch_id, exc.errcode)
        if exc.errcode == TICKET_USED:
            note = (f"授权凭证无效、已过期或已使用（错误码 {TICKET_USED}），请公众号管理员重新打开授权链接 / the "
                    f"authorisation ticket is invalid, expired or already used (errcode {TICKET_USED}): the 公众号's "
                    "admin opens the authorisation link again")
            res.store.annotate_step(launch_id, AUTH_GATE, attempt, note=note)
            return Completed("ticket-invalid", notes=[note])
        if exc.retryable:
            note = (f"微信暂时无法处理（{exc.zh}，错误码 {exc.errcode}），请稍后重新打开授权链接 / WeChat could not take "
                    f"it now ({exc.en}, errcode {exc.errcode}): open the authorisation link again later")
            res.store.annotate_step(launch_id, AUTH_GATE, attempt, note=note)
            return Completed("busy", notes=[note])
        answer = {"errcode": exc.errcode, "errmsg": " / ".join(x for x in (exc.zh, exc.en) if x) or "-"}
        _submit(res, launch_id, AUTH_GATE, {"decided_by": DECIDED_BY, "outcome": "done"}, None)
        gate, data = fastregister_answer(answer)
        _submit(res, launch_id, gate, {**data, "decided_by": DECIDED_BY}, None)
        return Completed("failed", notes=[data.get("reason", "")])
    response = {"errcode": 0, "appid": result.appid, "is_wx_verify_succ": result.is_wx_verify_succ}
    if result.is_link_succ is not None:
        response["is_link_succ"] = result.is_link_succ
    notes: list[str] = []
    try:  # the new mini program authorises the platform: the tool may act on it from now on
        platform.auth.query_auth(result.authorization_code)
    except Exception as exc:  # noqa: BLE001 — the registration stands; staff have it authorised
        log.warning("api_query_auth after fastregister failed for %s: %s", result.appid, type(exc).__name__)
        notes.append("新小程序已注册，但授权换取失败，请用 weapp-launch wechat authorize 让管理员授权 / the mini program "
                     "is registered but exchanging its authorisation failed: have its admin authorise the platform "
                     "(weapp-launch wechat authorize)")
    _submit(res, launch_id, AUTH_GATE, {"decided_by": DECIDED_BY, "outcome": "done"}, None)
    gate, data = fastregister_answer(response)
    _submit(res, launch_id, gate, {**data, "decided_by": DECIDED_BY}, None)
    log.info("launch %s: fast registration by the 公众号 answered %s (mini program %s)", launch_id,
             data["outcome"], result.appid)
    status = "registered" if data["outcome"] == "succeeded" else "unverified"
    if status == "unverified":
        notes.append("小程序已注册，但认证未能复用，请重新提交认证 / the mini program is registered but the 认证 could not "
                     "be copied: resubmit the 认证")
    return Completed(status, result.appid, notes)
