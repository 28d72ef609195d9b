"""From a parsed WeChat push to gate decisions. Pure: no store, no Prefect, no clock.

`plan_for(event)` says which gates the push decides (each as the gate's form data, so
the usual form validation applies), a note for staff when the push only informs, and
how the launch is found. `decisions_for(event)` is the decisions alone.

What each push means (shared/domain.md, "Events a server receives"):

- weapp_audit_success -> code-review passed; weapp_audit_fail -> code-review failed with
  WeChat's reason and screenshots; weapp_audit_delay -> a note (the review takes longer).
- notify_third_fasteregister answers the fast registration of an ENTERPRISE mini-program
  through the legal person's face check (fastregisterweapp: the platform's standalone
  path), NOT the reuse-a-公众号 path (shared/domain.md, "Events a server receives";
  WeChat's "注册审核事件推送"). Status 0 -> subject-info submitted with the new appid (the
  standalone gate that records the account; the push carries no original id); any other
  status -> a note for staff (the legal person's check failed or is still running). It
  never decides fast-registration. For a launch on the platform's path
  (platform_fast_registration; the inbox knows the path once it found the launch,
  ``fastregister_plan(event, path)``) it decides platform-registration instead: registered
  with the app id, or failed (a new task follows).
- The reuse path (account/fastregister) answers synchronously: ``fastregister_answer``
  turns that answer (appid, is_wx_verify_succ, is_link_succ, errcode) into the
  fast-registration decision: succeeded; registered_unverified (registered but 认证
  failed: only the 认证 is redone); failed (nothing registered).
- notify_icpfiling_verify_result -> face-verification passed (3) / failed (2).
- notify_apply_icpfiling_result, by beian_status:
  3 -> first-review rejected; 4 -> first-review passed, and with sms_verify_status 2 ->
  sms-verification verified, 3 -> sms-verification timed_out; 5 -> bureau-review rejected;
  6 -> filed: the plan says so (``filed``) but decides nothing itself, because approving the
  bureau review needs the filing number, which the push does not carry. The caller (the
  inbox's applier and the watcher's reconciliation, launch/app/reconcile.py ``filed_plan``)
  asks WeChat for it (get_online_icp_order: icp_applets[].base_info.record_number) and then
  decides bureau-review "approved" with it (``bureau_approved_plan``); without a platform, or
  when asking fails, the note stays and the gate waits; 2 and >= 1024 -> a note only. 1025–1031
  are "not filed" WITH what is missing (get_icp_entrance_info's status enum: 1025 小程序信息未填,
  1026 小程序类目未填, 1027 both, 1028–1031 the same plus 小程序未认证): the note names it and
  what to do (NOT_FILED_MISSING), instead of a plain "not filed".
- wxa_nickname_audit (WeChat reviewed a name the tool set) -> ``name_reviewed``: the caller runs
  the mini-program-profile gate's action again, which asks api_wxa_querynickname and decides.
- anything else: stored and acknowledged, never acted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from launch.wechat.events import (
    BEIAN_STATUS_LABELS,
    AuditDelay,
    AuditFail,
    AuditSuccess,
    FastRegisterResult,
    IcpFilingResult,
    IcpVerifyResult,
    NicknameAudit,
)

__all__ = [
    "DECIDED_BY",
    "DECIDED_BY_API",
    "NOT_FILED_MISSING",
    "Lookup",
    "Plan",
    "decisions_for",
    "bureau_approved_plan",
    "face_plan",
    "verification_plan",
    "fastregister_answer",
    "fastregister_plan",
    "registration_task_plan",
    "filing_plan",
    "missing_for",
    "note_for",
    "plan_for",
    "review_plan",
]

DECIDED_BY = "微信推送 / WeChat push"
DECIDED_BY_API = "微信接口查询 / WeChat API"  # the watcher's reconciliation asked WeChat (launch/app/reconcile.py)

# Form limits (launch/domain/forms.py): keep WeChat's free text inside them rather than
# have a push refused for a long reason.
_REASON_MAX = {"code-review": 1000}
_DEFAULT_REASON_MAX = 500
_SCREENSHOTS_MAX = 20

BUREAU_REJECTED_REASON = "管局驳回，详见备案平台 / rejected by the bureau, see the filing platform"
PLATFORM_REJECTED_REASON = "微信平台初审驳回，详见备案平台 / rejected in WeChat's first review, see the filing platform"
FACE_FAILED_REASON = "人脸核身未通过，请重新发起核验任务 / face verification failed: start a new verification task"
AUDIT_FAILED_REASON = "微信未给出原因 / WeChat gave no reason"
FILED_NOTE = ("管局审核已通过、已备案；备案号向微信查询（get_online_icp_order），查询不到时由巡检重试，或在管局审核关卡登记 / "
              "filed: the filing number is asked of WeChat (get_online_icp_order); if that fails the watcher asks "
              "again, or enter it at the bureau-review gate")

# What a "not filed" status code says is missing. Source: WeChat open platform,
# 获取小程序备案状态及驳回原因 (get_icp_entrance_info), enum of info.status:
# 1024 未备案, 1025 未备案 && 小程序信息未填, 1026 未备案 && 小程序类目未填,
# 1027 未备案 && 小程序信息未填 && 小程序类目未填, 1028 未备案 && 小程序未认证,
# 1029–1031 the combinations with 小程序未认证 (as mirrored by the Go SDKs' ICPStatuses maps).
# Bit view: 1024 + 1 (information) + 2 (category) + 4 (verification).
_MISSING_BITS: tuple[tuple[int, str, str, str], ...] = (
    (1, "小程序信息未填", "the mini-program's information is not filled",
     "在小程序后台补全小程序信息 / fill in the mini-program's information"),
    (2, "小程序服务类目未填", "the mini-program's service category is not set",
     "在小程序后台设置服务类目 / set a service category"),
    (4, "小程序未认证", "the mini-program is not verified (认证)",
     "完成微信认证 / complete WeChat verification"),
)
NOT_FILED_MISSING: dict[int, tuple[tuple[str, str, str], ...]] = {
    1024 + bits: tuple((zh, en, todo) for bit, zh, en, todo in _MISSING_BITS if bits & bit)
    for bits in range(1, 8)
}


def missing_for(status: int) -> tuple[tuple[str, str, str], ...]:
    """(中文, English, to do) of each thing a 1025–1031 status says is missing; () otherwise."""
    return NOT_FILED_MISSING.get(status, ())


@dataclass(frozen=True)
class Lookup:
    """How the launch of a push is found: by "original_id", "appid" or "credit_code" (a
    blind-index digest is computed from the raw value by the caller; the value is only
    in the raw event, never stored)."""

    by: str
    value: str | None


@dataclass(frozen=True)
class Plan:
    decisions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    note: str | None = None
    lookups: tuple[Lookup, ...] = ()
    acted_on: bool = True  # False for unknown events: stored, never acted on
    filed: bool = False  # WeChat says filed (status 6): bureau-review is approved once the number is known
    name_reviewed: bool = False  # WeChat reviewed the name the tool set: its profile action runs again


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _decision(gate: str, outcome: str, *, decided_by: str = DECIDED_BY, **fields: Any) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {"decided_by": decided_by, "outcome": outcome}
    for key, value in fields.items():
        if value is None or value == "" or value == []:
            continue
        if key == "reason":
            value = _clip(value, _REASON_MAX.get(gate, _DEFAULT_REASON_MAX))
        data[key] = value
    return gate, data


def _audit_lookups(event) -> tuple[Lookup, ...]:
    # The path app id (message event URL) is added by the caller, after the original id.
    return (Lookup("original_id", event.to_user_name or None),)


def plan_for(event) -> Plan:
    """The decisions, note and launch lookups of one parsed push (any launch.wechat.events model)."""
    if isinstance(event, AuditSuccess):
        return replace(review_plan("passed"), lookups=_audit_lookups(event))
    if isinstance(event, AuditFail):
        return replace(review_plan("failed", reason=event.reason, screenshots=event.screenshots),
                       lookups=_audit_lookups(event))
    if isinstance(event, AuditDelay):
        return replace(review_plan("delayed", reason=event.reason), lookups=_audit_lookups(event))
    if isinstance(event, NicknameAudit):
        # The name is one field of the profile gate: the tool's profile action asks WeChat
        # (api_wxa_querynickname) and decides the gate, as the watcher's retry does.
        verdict = {3: "通过 / passed", 2: "驳回 / rejected"}.get(event.ret or 0, f"ret={event.ret}")
        return Plan(note=f"微信名称审核{verdict} / WeChat's review of the name: {verdict}", lookups=_audit_lookups(event),
                    name_reviewed=True)
    if isinstance(event, FastRegisterResult):
        return fastregister_plan(event)
    if isinstance(event, IcpVerifyResult):
        return replace(face_plan(event.result, event.task_id), lookups=(Lookup("appid", event.verify_appid or None),))
    if isinstance(event, IcpFilingResult):
        return replace(
            filing_plan(event.beian_status, event.sms_verify_status, status_label=event.status_label),
            lookups=(Lookup("appid", event.authorizer_appid or None),),
        )
    return Plan(acted_on=False)


PLATFORM_REGISTRATION = "platform-registration"
PLATFORM_PATH = "platform_fast_registration"


def fastregister_plan(event: FastRegisterResult, path: str | None = None) -> Plan:
    """notify_third_fasteregister for a launch on registration path ``path`` (None: not known
    yet, as when the push lands). On the platform's path (platform_fast_registration) it decides
    platform-registration: "registered" with the new app id, or "failed" with WeChat's status and
    msg (the gate then starts a new task). Otherwise (the standalone path, as before) status 0
    decides subject-info and anything else is a note for staff."""
    lookups = (Lookup("credit_code", event.info.code or None), Lookup("appid", event.appid or None))
    if path == PLATFORM_PATH:
        plan = registration_task_plan(event.status, event.appid, msg=event.msg, decided_by=DECIDED_BY, pushed=True)
        return replace(plan, lookups=lookups)
    if event.ok and event.appid:
        return Plan(
            [_decision("subject-info", "submitted", appid=event.appid,
                       note="企业快速注册（法人人脸核验）完成 / enterprise fast registration (legal person's face "
                            "check) done")],
            lookups=lookups,
        )
    msg = _clip(event.msg, 200) or "-"
    return Plan(
        note=f"企业快速注册（法人人脸核验）未完成，状态码 {event.status}：{msg} / enterprise fast registration "
        f"(legal person's face check) not done, status {event.status}: {msg}",
        lookups=lookups,
    )


# The registration task's status as the query action answers it. ASSUMPTION (no doc page for the
# new version's query was found): 0 = created, waiting for the legal person; a task that has the
# new app id is done; these end it without one (the stand-in's enum, after fastregisterpersonalweapp:
# 5 the legal person's check failed, 11 the authorisation link expired unused).
REGISTRATION_FAILED_STATUSES = (5, 11)


NOT_AUTHORISED_NOTE = ("平台代注册完成，但微信的已授权账号列表中没有它（查询结果也不含授权码）：请客户管理员授权第三方平台"
                       "（weapp-launch wechat authorize） / registered, but WeChat does not list it among the accounts "
                       "authorised to the platform (and the query carries no auth code): have the client's admin "
                       "authorise the platform (weapp-launch wechat authorize)")


def registration_task_plan(status: int | None, appid: str | None, *, msg: str | None = None,
                           decided_by: str = DECIDED_BY, pushed: bool = False, authorised: bool = True) -> Plan:
    """platform-registration from WeChat's answer about the registration task (the push's
    status, or the query action's): the new app id -> registered; a failure -> failed with
    WeChat's words (a new task follows); still waiting -> nothing. A push's non-zero status is
    always a failure (``pushed``); a queried status only when it is a known failure.
    ``authorised`` False (found by the query, whose answer carries no auth code, and the app id
    neither authorised here nor in WeChat's authoriser list): the decision's note tells staff to
    have it authorised."""
    if appid and status in (None, 0, 12):
        note = "平台代注册完成 / registered by the platform" if authorised else NOT_AUTHORISED_NOTE
        return Plan([_decision(PLATFORM_REGISTRATION, "registered", decided_by=decided_by, appid=appid, note=note)])
    if (status not in (None, 0)) if pushed else (status in REGISTRATION_FAILED_STATUSES):
        text = _clip(msg, 200) or "-"
        return Plan([_decision(PLATFORM_REGISTRATION, "failed", decided_by=decided_by,
                               reason=f"代注册未完成，状态 {status}：{text}，将重新发起 / registration not done, status "
                                      f"{status}: {text}; a new one is started")])
    return Plan(note="等待法人授权 / waiting for the legal person's authorisation" if status == 0 else None)


# --- What WeChat's answer means, whether it came as a push or from asking WeChat's API (the
# watcher's reconciliation, launch/app/reconcile.py): one mapping, two channels. ``decided_by``
# says which; ``reason`` replaces the push's fixed wording when the API gave WeChat's own words.


def review_plan(result: str, *, reason: str | None = None, screenshots: list[str] | tuple[str, ...] = (),
                decided_by: str = DECIDED_BY) -> Plan:
    """code-review from a review result: "passed" / "failed" (WeChat's reason, screenshots'
    media ids) / "delayed" (a note only)."""
    if result == "passed":
        return Plan([_decision("code-review", "passed", decided_by=decided_by)])
    if result == "failed":
        shots = [s for s in screenshots if s][:_SCREENSHOTS_MAX]
        return Plan([_decision("code-review", "failed", decided_by=decided_by, reason=reason or AUDIT_FAILED_REASON,
                               screenshots=shots)])
    if result == "delayed":
        note = "微信代码审核延后 / WeChat delayed the code review"
        if reason:
            note += f": {_clip(reason, 200)}"
        return Plan(note=note)
    raise ValueError(f"unknown review result {result!r}")


def face_plan(result: int, task_id: str | None, *, decided_by: str = DECIDED_BY) -> Plan:
    """face-verification from the face check's result: 3 passed, 2 failed, else a note."""
    task = _clip(task_id, 128) or None
    if result == 3:
        return Plan([_decision("face-verification", "passed", decided_by=decided_by, task_id=task)])
    if result == 2:
        return Plan([_decision("face-verification", "failed", decided_by=decided_by, reason=FACE_FAILED_REASON,
                               task_id=task)])
    return Plan(note=f"人脸核身结果 {result}（未知）/ face verification result {result} (unknown)")


def verification_plan(verified: bool, *, decided_by: str = DECIDED_BY_API) -> Plan:
    """wechat-verification (认证) from getaccountbasicinfo's wx_verify_info.qualification_verify:
    true -> passed; false decides nothing (WeChat tells "not verified" and "still in review" or
    "refused" apart nowhere in that answer: a refusal stays for staff to enter, with its reason)."""
    if verified:
        return Plan([_decision("wechat-verification", "passed", decided_by=decided_by,
                               note="微信认证已完成（资质认证） / 认证 done (qualification_verify)")])
    return Plan()


def filing_plan(status: int, sms_verify_status: int | None, *, reason: str | None = None,
                status_label: str | None = None, decided_by: str = DECIDED_BY) -> Plan:
    """The filing gates from a filing status (beian_status / get_icp_entrance_info's status)
    and sms_verify_status; ``reason``: WeChat's rejection reasons when known (audit_data)."""
    if status == 3:
        return Plan([_decision("first-review", "rejected", decided_by=decided_by,
                               reason=reason or PLATFORM_REJECTED_REASON)])
    if status == 4:
        decisions = [_decision("first-review", "passed", decided_by=decided_by)]
        note = None
        if sms_verify_status == 2:
            decisions.append(_decision("sms-verification", "verified", decided_by=decided_by))
        elif sms_verify_status == 3:
            decisions.append(_decision("sms-verification", "timed_out", decided_by=decided_by,
                                       note="工信部短信核验超时 / MIIT SMS verification timed out"))
        elif sms_verify_status == 1:
            note = "等待工信部短信核验 / waiting for the MIIT SMS verification"
        return Plan(decisions, note=note)
    if status == 5:
        return Plan([_decision("bureau-review", "rejected", decided_by=decided_by,
                               reason=reason or BUREAU_REJECTED_REASON)])
    if status == 6:
        return Plan(note=FILED_NOTE, filed=True)
    missing = missing_for(status)
    if missing:
        zh = "；".join(m[0] for m in missing)
        en = "; ".join(m[1] for m in missing)
        todo = "；".join(m[2] for m in missing)
        return Plan(note=f"未备案，尚缺：{zh} / not filed, missing: {en} (status {status}). 请处理 / to do: {todo}")
    label = status_label or ("未备案 / not filed" if status >= 1024 else
                             BEIAN_STATUS_LABELS.get(status, f"未知状态 {status} / unknown status"))
    return Plan(note=f"备案状态 / filing status: {label} ({status})")


def bureau_approved_plan(filing_number: str, *, decided_by: str = DECIDED_BY) -> Plan:
    """bureau-review approved with the mini program's filing number WeChat gave
    (get_online_icp_order), after a status-6 ("filed") push or answer."""
    return Plan([_decision("bureau-review", "approved", decided_by=decided_by, filing_number=filing_number.strip())])


FAST_REGISTER_NOT_VERIFIED_REASON = (
    "已注册但认证失败（is_wx_verify_succ=false），请重新提交认证 / registered but 认证 failed "
    "(is_wx_verify_succ=false): resubmit the 认证"
)


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true")


def fastregister_answer(response: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The fast-registration decision of WeChat's synchronous answer to
    ``POST /cgi-bin/account/fastregister`` (reuse a 公众号's qualifications):
    {errcode, errmsg, appid, authorization_code, is_wx_verify_succ, is_link_succ}.

    errcode != 0 or no appid -> failed (nothing registered; errors 61051–61061);
    is_wx_verify_succ false -> registered_unverified (the account exists; only the 认证 is
    redone); else succeeded. ``linked`` carries is_link_succ. The authorization_code is
    never put in the decision."""
    errcode = int(response.get("errcode") or 0)
    appid = response.get("appid") or None
    if errcode != 0 or not appid:
        errmsg = response.get("errmsg") or ""
        return _decision(
            "fast-registration", "failed",
            reason=f"快速注册失败，错误码 {errcode}：{errmsg} / fast registration failed, errcode {errcode}: {errmsg}",
        )
    linked = _truthy(response.get("is_link_succ")) if "is_link_succ" in response else None
    if not _truthy(response.get("is_wx_verify_succ")):
        return _decision("fast-registration", "registered_unverified", appid=appid, linked=linked,
                         reason=FAST_REGISTER_NOT_VERIFIED_REASON)
    return _decision("fast-registration", "succeeded", appid=appid, linked=linked)


def decisions_for(event) -> list[tuple[str, dict[str, Any]]]:
    """[(gate, form data)] a push decides, decided_by "微信推送 / WeChat push"; [] when it only informs."""
    return plan_for(event).decisions


def note_for(event) -> str | None:
    """What a push that decides nothing (or not everything) tells staff."""
    return plan_for(event).note
