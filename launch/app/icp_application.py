"""The ICP filing application on WeChat (issue 12): built from the client's intake, its
documents uploaded from the client's files, submitted once with apply_icp_filing.

The field-by-field tables (and where each WeChat name comes from) are in
launch/domain/icp_fields.py; this module reads the files, asks WeChat's look-ups (IcpApi,
cached) and builds the request. The intake is decrypted here, in the app layer, and nothing
personal goes to Prefect or to the log: the run's log only says what happened.

Exactly once: before applying, WeChat is asked where the filing stands
(get_icp_entrance_info). A status already past "not filed" — 2 platform review, 4 bureau review
(not returned by an SMS timeout), 6 filed — means an earlier application went through (a crash
right after apply_icp_filing, before its answer was kept): the decision is recorded and
nothing is applied twice. A refusal with hints[] is noted on the gate as OUR intake fields and
preflight rule ids, in Chinese and English; the gate then waits for staff to fix the intake
and decide.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from launch.app.resources import Resources
from launch.domain.icp_fields import (
    NONE_OF_THE_ABOVE,
    ApplicationProblem,
    IcpLookups,
    MediaNeed,
    certificate_type_code,
    hint_target,
    locate,
    media_needs,
    nrlx_code,
    service_type_codes,
    subject_type_code,
    validity_end,
)
from launch.domain.intake import Intake, Person, parse_intake
from launch.domain.masking import scrub_text
from launch.domain.rules import RuleConfig, materials_for

log = logging.getLogger("weapp_launch.icp_application")

__all__ = [
    "ApplicationIncomplete",
    "apply_icp_filing",
    "build_application",
    "fetch_lookups",
    "hint_lines",
    "upload_documents",
    "verify_task_id_for",
]

# get_icp_entrance_info statuses that mean an application is in or through (launch.wechat.platform.icp.IcpStatus)
_SUBMITTED = (2, 4, 6)
_VIDEO = (".mp4", ".mov", ".avi", ".m4v")
_INDEX = re.compile(r"\[\d+\]")


class ApplicationIncomplete(Exception):
    """The application cannot be built or its documents cannot be read: WeChat is not called."""

    def __init__(self, problems: list[ApplicationProblem]):
        self.problems = problems
        super().__init__("; ".join(p.field for p in problems))

    def note(self) -> str:
        zh = "；".join(f"{p.field}：{p.zh}" for p in self.problems)
        en = "; ".join(f"{p.field}: {p.en}" for p in self.problems)
        return (f"未提交备案，客户资料不完整：{zh} / filing not submitted, the intake is incomplete: {en}")[:4000]


# --- look-ups and the face task ---------------------------------------------------------


def fetch_lookups(icp: Any, appid: str) -> IcpLookups:
    """WeChat's look-up lists (IcpApi caches them per process)."""
    return IcpLookups(service_content_types=icp.service_content_types(appid), nrlx_types=icp.nrlx_types(appid),
                      subject_types=icp.subject_types(appid), certificate_types=icp.certificate_types(appid),
                      districts=icp.district_codes(appid))


# The face task each face-verification attempt created, kept in the effects ledger (one row per
# task: "wechat:icp-verifytask:<attempt>:<task_id>"): the step's note, where the action also
# says it for staff and the reconciliation, is replaced when the gate is decided.
VERIFY_TASK_EFFECT = "wechat:icp-verifytask:"


def remember_verify_task(res: Resources, launch_id: str, attempt: int, task_id: str) -> None:
    res.store.note_effect(launch_id, f"{VERIFY_TASK_EFFECT}{attempt}:{task_id}"[:255])


def verify_task_id_for(res: Resources, launch_id: str) -> str | None:
    """The face task the application carries: the latest passed face-verification decision's
    task_id (a push, the reconciliation or staff's form), else the task the latest
    face-verification attempt created (the create_icp_verifytask action, ledger), else a
    task id still noted on an open face-verification step."""
    from launch.app.reconcile import face_task_id

    decided = [d for d in res.store.history(launch_id) if d.gate == "face-verification" and d.outcome == "passed"]
    for d in sorted(decided, key=lambda d: d.attempt, reverse=True):
        if d.payload.get("task_id"):
            return str(d.payload["task_id"])
    created = []
    for e in res.store.effects_for(launch_id):
        if e.effect_key.startswith(VERIFY_TASK_EFFECT):
            attempt, _, task_id = e.effect_key.removeprefix(VERIFY_TASK_EFFECT).partition(":")
            if attempt.isdigit() and task_id:
                created.append((int(attempt), e.ran_at, task_id))
    if created:
        return max(created)[2]
    steps = [s for s in res.store.steps_for(launch_id) if s.step == "face-verification"]
    for s in sorted(steps, key=lambda s: s.attempt, reverse=True):
        found = face_task_id(s)
        if found:
            return found
    return None


# --- building ----------------------------------------------------------------------------


def _person(p: Person, *, email: str | None, emergency: str | None, cert_type: int | None,
            photos: tuple[str | None, str | None], letter: str | None = None,
            verify_task_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": p.name, "mobile": p.phone, "email": email or p.email or "",
        "certificate_type": cert_type, "certificate_number": p.id_number,
        # the intake keeps the card's end date only (start: not asked for; approximate)
        "certificate_validity_date_end": validity_end(p.id_valid_until),
        "certificate_photo_front": photos[0], "certificate_photo_back": photos[1],
    }
    if emergency:
        out["emergency_contact"] = emergency
    if letter:
        out["authorization_letter"] = letter
    if verify_task_id:
        out["verify_task_id"] = verify_task_id
    return {k: v for k, v in out.items() if v is not None}


def build_application(intake: Intake, verify_task_id: str, media_ids: dict[str, str], lookups: IcpLookups, *,
                      appid: str | None = None, rules: RuleConfig | None = None):
    """The apply_icp_filing body for this intake (launch.wechat.platform.icp.ApplyIcpFilingRequest).

    ``media_ids``: WeChat media field (e.g. ``icp_subject.organize_info.certificate_photo``,
    ``icp_applets.base_info.nrlx_details[0].media``) → media_id from upload_icp_media.
    Raises ApplicationIncomplete (our field paths, zh/en) for what WeChat's look-ups cannot
    place: an unknown subject type, province/city/district, service type or pre-approval item.
    """
    from launch.wechat.platform.icp import ApplyIcpFilingRequest

    problems: list[ApplicationProblem] = []
    s, mp = intake.subject, intake.mini_program

    subject_code = subject_type_code(lookups, s.type)
    if subject_code is None:
        problems.append(ApplicationProblem("subject.type", f"微信主体性质清单中没有“{s.type.value}”",
                                           f"WeChat's subject types have no match for {s.type.value}"))
    person_cert = certificate_type_code(lookups, person=True, subject_code=None)
    subject_cert = person_cert if not s.is_organisation else \
        certificate_type_code(lookups, person=False, subject_code=subject_code)
    if person_cert is None or subject_cert is None:
        problems.append(ApplicationProblem("subject.type", "微信证件类型清单中找不到对应证件",
                                           "WeChat's certificate types have no matching certificate"))
    prov, city, district, address = locate(lookups, s.province, s.address)
    if prov is None:
        problems.append(ApplicationProblem("subject.province", f"微信区域清单中没有省份“{s.province}”",
                                           f"province {s.province} is not in WeChat's district list"))
    elif city is None or district is None:
        problems.append(ApplicationProblem("subject.address", "通讯地址须写明所在市和区县（微信区域清单）",
                                           "the address must name its city and district (WeChat's district list)"))
    service_codes, unknown = service_type_codes(lookups, list(mp.service_types))
    if unknown:
        problems.append(ApplicationProblem(
            "mini_program.service_types", f"不在微信服务内容类型清单中：{'、'.join(unknown)}（规则 service-types-limit）",
            f"not in WeChat's service content types: {', '.join(unknown)} (rule service-types-limit)"))
    nrlx: list[dict[str, Any]] = []
    if mp.pre_approvals:
        for i, p in enumerate(mp.pre_approvals):
            found = rules.pre_approval(p.item) if rules else None
            name_zh = found[1].name_zh if found else p.item
            code = nrlx_code(lookups, name_zh, found[1].wechat_type if found else None)
            if code is None:
                problems.append(ApplicationProblem(
                    f"mini_program.pre_approvals[{i}].item", f"前置审批项“{p.item}”不在微信清单中（规则 pre-approval-unknown-item）",
                    f"pre-approval item {p.item} is not in WeChat's list (rule pre-approval-unknown-item)"))
                continue
            item: dict[str, Any] = {"type": code, "code": p.approval_number or ""}
            if media_ids.get(f"icp_applets.base_info.nrlx_details[{i}].media"):
                item["media"] = media_ids[f"icp_applets.base_info.nrlx_details[{i}].media"]
            nrlx.append(item)
    else:
        code = nrlx_code(lookups, NONE_OF_THE_ABOVE)
        if code is None:
            problems.append(ApplicationProblem("mini_program.none_of_the_above", f"微信前置审批清单中没有“{NONE_OF_THE_ABOVE}”",
                                               f"WeChat's pre-approval list has no “{NONE_OF_THE_ABOVE}”"))
        else:
            nrlx.append({"type": code})
    if problems:
        raise ApplicationIncomplete(problems)

    m = media_ids.get
    principal = _person(intake.principal, email=intake.principal.email, emergency=intake.emergency_contact.phone,
                        cert_type=person_cert,
                        photos=(m("icp_subject.principal_info.certificate_photo_front"),
                                m("icp_subject.principal_info.certificate_photo_back")),
                        letter=m("icp_subject.principal_info.authorization_letter"))
    subject: dict[str, Any] = {
        "base_info": {"type": subject_code, "name": s.name, "province": str(prov["code"]), "city": str(city["code"]),
                      "district": str(district["code"]), "address": address, "comment": s.address_note or ""},
        "principal_info": principal,
    }
    if s.is_organisation:
        subject["organize_info"] = {"certificate_type": subject_cert, "certificate_number": s.credit_code,
                                    # the intake keeps one address: the licence's is taken to be it (approximate)
                                    "certificate_address": s.address,
                                    "certificate_photo": m("icp_subject.organize_info.certificate_photo")}
        if intake.legal_representative is not None:
            subject["legal_person_info"] = {"name": intake.legal_representative.name,
                                            "certificate_number": intake.legal_representative.id_number}
    else:
        # 个人备案: organize_info repeats the principal's own values (the doc's rule)
        subject["organize_info"] = {"certificate_type": person_cert, "certificate_number": intake.principal.id_number,
                                    "certificate_address": s.address,
                                    "certificate_photo": m("icp_subject.principal_info.certificate_photo_front")}
    subject["organize_info"] = {k: v for k, v in subject["organize_info"].items() if v is not None}
    admin = _person(mp.admin, email=mp.admin.email, emergency=mp.admin_emergency_phone, cert_type=person_cert,
                    photos=(m("icp_applets.principal_info.certificate_photo_front"),
                            m("icp_applets.principal_info.certificate_photo_back")),
                    letter=m("icp_applets.principal_info.authorization_letter"), verify_task_id=verify_task_id)
    base = {"name": mp.name, "service_content_types": service_codes, "nrlx_details": nrlx, "comment": mp.remark}
    if appid:
        base = {"appid": appid, **base}
    try:
        return ApplyIcpFilingRequest.model_validate({
            "icp_subject": subject,
            "icp_applets": {"base_info": base, "principal_info": admin},
            "icp_materials": {},  # none of WeChat's other materials (承诺书, 更名函, …) is in the intake yet
        })
    except ValidationError as exc:
        # The request model's own limits (comment 20–200, 1–5 service types): said as our fields and rules.
        out = []
        for err in exc.errors(include_input=False, include_url=False):
            ours, rule_ids = hint_target(".".join(str(p) for p in err["loc"]))
            rule = f"（规则 {', '.join(rule_ids)}）" if rule_ids else ""
            rule_en = f" (rule {', '.join(rule_ids)})" if rule_ids else ""
            out.append(ApplicationProblem(ours, f"不符合微信接口要求{rule}", f"does not meet WeChat's limits{rule_en}: "
                                                                           f"{err['msg']}"))
        raise ApplicationIncomplete(out) from None


# --- documents ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    path: Path
    content_type: str
    media_type: str


def _resolve(ref: str, roots: list[Path]) -> Path | None:
    p = Path(ref).expanduser()
    candidates = [p] if p.is_absolute() else [root / p for root in roots]
    return next((c for c in candidates if c.is_file()), None)


def _labels(intake: Intake, rules: RuleConfig) -> dict[str, tuple[str, str]]:
    return {m.kind: (m.label_zh, m.label_en) for m in materials_for(intake, rules)}


def upload_documents(res: Resources, icp: Any, appid: str, intake: Intake, *,
                     certificate: Callable[[MediaNeed], int | None] = lambda need: None) -> dict[str, str]:
    """Upload the documents the application carries (read from the intake's paths: absolute,
    or under the agency's home folder, or the working folder) and return WeChat field →
    media_id. A required material without a readable file raises ApplicationIncomplete
    naming it, before anything is uploaded. One upload per distinct file."""
    rules = res.rules
    required = {m.kind for m in materials_for(intake, rules) if m.required}
    labels = _labels(intake, rules)
    roots = [Path(res.settings.home), Path.cwd()]
    needs = media_needs(intake, required)
    files: dict[str, _File] = {}
    problems: list[ApplicationProblem] = []
    for need in needs:
        path = _resolve(need.file, roots) if need.file else None
        zh, en = labels.get(need.kind, (need.kind, need.kind))
        if path is None:
            if need.required:
                why_zh, why_en = ("未提供文件", "no file given") if not need.file else ("文件不存在", "file not found")
                problems.append(ApplicationProblem(f"documents[{need.kind}]", f"{zh}：{why_zh}（规则 material-missing）",
                                                   f"{en}: {why_en} (rule material-missing)"))
            continue
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        files[need.field] = _File(path, content_type, "video" if path.suffix.lower() in _VIDEO else "image")
    if problems:
        raise ApplicationIncomplete(problems)
    media: dict[str, str] = {}
    uploaded: dict[Path, str] = {}
    for need in needs:
        f = files.get(need.field)
        if f is None:
            continue
        if f.path not in uploaded:
            # icp_order_field: the field's name without list indexes (nrlx_details[0].media -> nrlx_details.media)
            answer = icp.upload_icp_media(appid, media_type=f.media_type, icp_order_field=_INDEX.sub("", need.field),
                                          filename=f.path.name,
                                          content=f.path.read_bytes(), content_type=f.content_type,
                                          certificate_type=certificate(need))
            uploaded[f.path] = answer.media_id
        media[need.field] = uploaded[f.path]
    return media


# --- the gate's action ---------------------------------------------------------------------


def hint_lines(exc: Any) -> tuple[list[str], list[str]]:
    """Each hint as our intake field and rule ids (zh lines, en lines); WeChat's words scrubbed."""
    zh, en = [], []
    for h in exc.hints:
        ours, rule_ids = hint_target(h.err_field)
        ours = ours or "申请 / application"  # a hint naming no field (e.g. the filing's state)
        rules = ", ".join(rule_ids)
        msg = scrub_text(h.errmsg or "")[:200]
        where = h.err_field or "-"
        zh.append(f"{ours}（规则 {rules}）：{msg}（微信字段 {where}，错误码 {h.errcode}）" if rules
                  else f"{ours}：{msg}（微信字段 {where}，错误码 {h.errcode}）")
        en.append(f"{ours} (rule {rules}): {msg} (WeChat field {where}, errcode {h.errcode})" if rules
                  else f"{ours}: {msg} (WeChat field {where}, errcode {h.errcode})")
    return zh, en


def apply_icp_filing(res: Resources, platform: Any, launch: Any, gate_id: str, attempt: int) -> str:
    """提交备案: build the application from the intake, upload its documents, apply once.
    Records the filing-submission decision (channel wechat-api) when WeChat took it."""
    from launch.app.wechat_actions import _record
    from launch.wechat.platform.errors import IcpFilingRejected

    icp = platform.icp
    entrance = icp.get_icp_entrance_info(launch.appid)
    if entrance.status in _SUBMITTED and not (entrance.status == 4 and entrance.sms_verify_status == 3):
        # An earlier application went through (its answer was lost): take it, apply nothing.
        _record(res, launch, gate_id, attempt, {
            "outcome": "done", "note": f"微信备案状态 {entrance.status}：申请已提交 / WeChat's filing status "
                                       f"{entrance.status}: the application is in"})
        return "already-applied"

    def note(text: str) -> None:
        res.store.annotate_step(launch.id, gate_id, attempt, note=text[:4000])

    task_id = verify_task_id_for(res, launch.id)
    if not task_id:
        note("未提交备案：没有人脸核身任务 ID（人脸核身关卡未记录 task_id）/ filing not submitted: no face-check "
             "task id (the face-verification gate recorded none)")
        return "refused:no-verify-task"
    intake = parse_intake(res.store.client_intake(launch.client_id), source="client intake")
    try:
        lookups = fetch_lookups(icp, launch.appid)
        subject_code = subject_type_code(lookups, intake.subject.type)

        def certificate(need: MediaNeed) -> int | None:
            if need.certificate is None:
                return None
            return certificate_type_code(lookups, person=need.certificate == "person", subject_code=subject_code)

        media = upload_documents(res, icp, launch.appid, intake, certificate=certificate)
        request = build_application(intake, task_id, media, lookups, appid=launch.appid, rules=res.rules)
    except ApplicationIncomplete as exc:
        note(exc.note())
        log.warning("filing application for %s not submitted: incomplete (%s)", launch.id,
                    ", ".join(p.field for p in exc.problems))
        return "refused:incomplete"
    try:
        icp.apply_icp_filing(launch.appid, request)
    except IcpFilingRejected as exc:
        zh, en = hint_lines(exc)
        note(f"微信退回备案申请（错误码 {exc.errcode}），请修改客户资料后决定：" + "；".join(zh)
             + f" / WeChat refused the filing application (errcode {exc.errcode}); fix the intake, then decide: "
             + "; ".join(en))
        log.warning("WeChat refused the filing application of %s: errcode %s, %d hint(s)", launch.id, exc.errcode,
                    len(exc.hints))
        return f"refused:{exc.errcode}"
    _record(res, launch, gate_id, attempt, {"outcome": "done", "verify_task_id": task_id})
    return "applied"

