"""What a staff member fills in at each gate — plain pydantic, no Prefect.

Field-level rules (types, Literal choices, patterns, lengths) live in the JSON
Schema, so Prefect's server refuses a bad Resume form and the run stays parked.
Rules that tie fields together ("a rejection needs its reason") cannot be
expressed there, so each form lists them in `problems()`; the gate checks them
after a resume and waits again if any remain, the CLI and the receiver refuse
them up front. Messages are "中文 / English" and name the field.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# Province abbreviations used in filing numbers (京ICP备…, 粤B2-…).
_PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# A mini-program's filing number is the subject's number followed by "-<n>X"
# (WeChat's docs: subject 粤B2-20090059, mini-program 粤B2-20090059-1626X).
MINI_PROGRAM_FILING_NUMBER = re.compile(rf"^[{_PROVINCE_CHARS}](?:ICP备\d{{8,12}}号|B2-\d{{8}})-\d{{1,5}}X$")
APPID = re.compile(r"^wx[0-9a-f]{16}$")
ORIGINAL_ID = re.compile(r"^gh_[0-9a-f]{12}$")


class FormProblem(BaseModel):
    field: str
    rule: str
    message: str  # "中文 / English"


_FORM_CLASSES: dict[str, type[GateForm]] = {}


class GateForm(BaseModel):
    """Fields every gate asks: the outcome and who decided (Prefect keeps no user on a resume)."""

    model_config = ConfigDict(extra="forbid")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:  # the forms of this module, by name (not Prefect's RunInput copies)
            _FORM_CLASSES[cls.__name__] = cls

    decided_by: str = Field(
        min_length=1,
        max_length=40,
        title="决定人 / Decided by",
        description="填写做出此决定的人员姓名 / Name of the person who made this decision",
    )
    note: str | None = Field(default=None, max_length=500, title="备注 / Note")

    # Outcomes that end the gate successfully; anything else loops back per the flow.
    passing_outcomes: ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[FormProblem]:
        return []

    def payload(self) -> dict:
        """What is stored as the decision's payload (decided_by is stored as the actor)."""
        return self.model_dump(mode="json", exclude={"decided_by"}, exclude_none=True)


def _required_when(form: BaseModel, field: str, outcome: str, zh: str, en: str) -> list[FormProblem]:
    value = getattr(form, field)
    if getattr(form, "outcome") == outcome and not (value and str(value).strip()):
        return [
            FormProblem(
                field=field,
                rule=f"{field.replace('_', '-')}-required",
                message=f"结果为「{outcome}」时必须填写{zh} / {en} is required when the outcome is '{outcome}'",
            )
        ]
    return []


class DoneForm(GateForm):
    outcome: Literal["done"] = Field(default="done", title="结果 / Outcome")
    passing_outcomes: ClassVar = ("done",)


class SubjectInfoForm(GateForm):
    """Standalone path: the account exists. Also decided by WeChat's notify_third_fasteregister
    push (enterprise fast registration through the legal person's face check), which carries
    the AppID but no original id: the original id is then entered later, or never (pushes on
    the message-event URL name the AppID in the path)."""

    outcome: Literal["submitted"] = Field(default="submitted", title="结果 / Outcome")
    appid: str = Field(pattern=APPID.pattern, title="AppID", description="wx 开头 18 位 / wx + 16 hex")
    original_id: str | None = Field(
        default=None, pattern=ORIGINAL_ID.pattern, title="原始 ID / Original id", description="gh_ + 12 hex"
    )
    passing_outcomes: ClassVar = ("submitted",)


class PassFailForm(GateForm):
    outcome: Literal["passed", "failed"] = Field(title="结果 / Outcome")
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("passed",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "failed", "原因", "reason")


class FastRegistrationForm(GateForm):
    """复用公众号资质快速注册: WeChat answers account/fastregister at once with the AppID,
    is_wx_verify_succ (the 认证 was copied) and is_link_succ (linked to the 公众号); no push.

    ``registered_unverified`` = registered but 认证 failed: the mini-program exists (the
    registration passed) and only the 认证 is done again, at the wechat-verification gate.
    ``failed`` = nothing was registered: the 公众号 admin authorises again.
    """

    outcome: Literal["succeeded", "registered_unverified", "failed"] = Field(
        title="结果 / Outcome",
        description="succeeded 注册且认证成功；registered_unverified 已注册但认证失败（只需重新认证）；failed 未注册"
        " / registered and verified; registered but 认证 failed (redo the 认证 only); not registered",
    )
    appid: str | None = Field(default=None, pattern=APPID.pattern, title="AppID")
    original_id: str | None = Field(default=None, pattern=ORIGINAL_ID.pattern, title="原始 ID / Original id")
    linked: bool | None = Field(
        default=None, title="已关联公众号 / Linked to the 公众号", description="is_link_succ"
    )
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("succeeded", "registered_unverified")

    def problems(self) -> list[FormProblem]:
        return (
            _required_when(self, "appid", "succeeded", "AppID", "appid")
            + _required_when(self, "appid", "registered_unverified", "AppID", "appid")
            + _required_when(self, "reason", "failed", "原因", "reason")
        )


class PlatformRegistrationForm(GateForm):
    """平台代注册: the platform's fast registration of an enterprise mini program
    (fastregisterenterpriseweapp, new version). WeChat answers with notify_third_fasteregister
    (the new app id) or the query action; ``failed`` (the legal person's check failed, the
    24-hour link expired, WeChat refused) reopens the gate: a new task, a new link."""

    outcome: Literal["registered", "failed"] = Field(
        title="结果 / Outcome",
        description="registered 注册成功；failed 失败或授权链接过期（重新发起）/ registered; failed or the link "
        "expired (a new registration is started)",
    )
    appid: str | None = Field(default=None, pattern=APPID.pattern, title="AppID")
    original_id: str | None = Field(default=None, pattern=ORIGINAL_ID.pattern, title="原始 ID / Original id")
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("registered",)

    def problems(self) -> list[FormProblem]:
        return (_required_when(self, "appid", "registered", "AppID", "appid")
                + _required_when(self, "reason", "failed", "原因", "reason"))


def _split_list(value: object) -> object:
    # The CLI sends text: "餐饮|外卖" (also 、 , ，) becomes a list.
    if isinstance(value, str):
        import re as _re

        return [v.strip() for v in _re.split(r"[|、,，]", value) if v.strip()]
    return value


class MiniProgramProfileForm(GateForm):
    """小程序基本信息 before filing: WeChat reports a filing as not possible while the name,
    avatar, introduction or service category is missing. The change counters on the client
    are checked against WeChat's limits when the gate is decided (launch/domain/profile.py)."""

    outcome: Literal["set"] = Field(default="set", title="结果 / Outcome")
    name: str = Field(default="", max_length=30, title="小程序名称 / Name")
    avatar_set: bool = Field(default=False, title="头像已设置 / Avatar set")
    intro: str = Field(default="", max_length=120, title="简介 / Introduction")
    categories: Annotated[list[str], BeforeValidator(_split_list)] = Field(
        default_factory=list, max_length=20, title="服务类目 / Service categories",
        description="最多 5 个；命令行用 | 分隔 / at most 5; on the command line separated by |",
    )
    name_changes: int = Field(default=0, ge=0, le=10, title="本次名称修改次数 / Name changes now",
                              description="首次设置不算修改 / the first setting is not a change")
    avatar_changes: int = Field(default=0, ge=0, le=10, title="本次头像修改次数 / Avatar changes now")
    intro_changes: int = Field(default=0, ge=0, le=10, title="本次简介修改次数 / Introduction changes now")
    category_changes: int = Field(default=0, ge=0, le=10, title="本次类目修改次数 / Category changes now")
    passing_outcomes: ClassVar = ("set",)

    def problems(self) -> list[FormProblem]:
        found = []

        def missing(field: str, rule: str, zh: str, en: str) -> None:
            found.append(FormProblem(
                field=field, rule=rule,
                message=f"备案前须设置{zh}（规则 {rule}） / the {en} must be set before filing (rule {rule})",
            ))

        if not self.name.strip():
            missing("name", "profile-name-missing", "小程序名称", "name")
        if not self.avatar_set:
            missing("avatar_set", "profile-avatar-missing", "头像", "avatar")
        if not self.intro.strip():
            missing("intro", "profile-intro-missing", "简介", "introduction")
        if not self.categories:
            missing("categories", "profile-categories-missing", "服务类目", "service category")
        return found


class ReviewDecisionForm(GateForm):
    """First review: passed, or rejected with the platform's reason."""

    outcome: Literal["passed", "rejected"] = Field(title="结果 / Outcome")
    reason: str | None = Field(default=None, max_length=500, title="驳回原因 / Rejection reason")
    passing_outcomes: ClassVar = ("passed",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "rejected", "驳回原因", "rejection reason")


# The SMS outcomes steer the filing's loops (launch/process/branches.py reads these names).
SMS_VERIFIED, SMS_TIMED_OUT, SMS_REJECTED = "verified", "timed_out", "rejected"


class SmsVerificationForm(GateForm):
    outcome: Literal[SMS_VERIFIED, SMS_TIMED_OUT, SMS_REJECTED] = Field(
        title="结果 / Outcome",
        description="verified 已核验；timed_out 超时或输错 5 次（重新提交，发新短信）；rejected 需修改字段（重新初审）",
    )
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("verified",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "rejected", "原因", "reason")


class FilingMaterialsForm(GateForm):
    """Every filing material is ready (WeChat: create the face task only then)."""

    outcome: Literal["confirmed"] = Field(default="confirmed", title="结果 / Outcome")
    passing_outcomes: ClassVar = ("confirmed",)


class FaceVerificationForm(GateForm):
    """The admin's face check on the task created when this gate opened."""

    outcome: Literal["passed", "failed"] = Field(title="结果 / Outcome")
    task_id: str | None = Field(
        default=None,
        max_length=128,
        title="核验任务 ID / Verify task id",
        description="create_icp_verifytask 返回的 task_id，提交备案时带上 / the task id the filing carries",
    )
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("passed",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "failed", "原因", "reason")


class FilingSubmissionForm(GateForm):
    """The filing is submitted (apply_icp_filing), carrying the face task's id."""

    outcome: Literal["done"] = Field(default="done", title="结果 / Outcome")
    verify_task_id: str | None = Field(
        default=None,
        max_length=128,
        title="人脸核验任务 ID / Face verify task id",
        description="备案申请携带的人脸核身任务 ID（3 天内有效）/ the face task id the application carries (valid 3 days)",
    )
    passing_outcomes: ClassVar = ("done",)


class FilingResubmissionForm(GateForm):
    """After an SMS timeout or five wrong entries the filing is back on the platform:
    staff resubmit it; only then does MIIT send a new SMS."""

    outcome: Literal["resubmitted"] = Field(default="resubmitted", title="结果 / Outcome")
    passing_outcomes: ClassVar = ("resubmitted",)


_PHONE_LIKE = re.compile(r"\+?\d[\d\s-]{6,}\d")


class TrialAcceptanceForm(GateForm):
    """The client has tried the trial version (体验版) and accepts it before 提审."""

    outcome: Literal["accepted", "changes_requested"] = Field(title="结果 / Outcome")
    trial_members: list[str] = Field(
        default_factory=list,
        max_length=50,
        title="体验成员 / Trial members",
        description="已添加的体验成员（微信号或姓名；手机号会被遮盖）/ trial members added (WeChat id or name; "
        "phone-like values are masked)",
    )
    qr_shared: bool = Field(default=False, title="已分享体验版二维码 / Trial QR code shared")
    feedback: str | None = Field(default=None, max_length=1000, title="修改意见 / Requested changes")
    passing_outcomes: ClassVar = ("accepted",)

    def problems(self) -> list[FormProblem]:
        found = _required_when(self, "feedback", "changes_requested", "修改意见", "requested changes")
        if self.outcome == "accepted":
            if not [m for m in self.trial_members if m.strip()]:
                found.append(FormProblem(
                    field="trial_members", rule="trial-members-required",
                    message="客户验收前须添加至少一名体验成员 / add at least one trial member before the client accepts",
                ))
            if not self.qr_shared:
                found.append(FormProblem(
                    field="qr_shared", rule="trial-qr-required",
                    message="客户验收前须分享体验版二维码 / share the trial version's QR code before the client accepts",
                ))
        return found

    def payload(self) -> dict:
        data = super().payload()
        data["trial_members"] = [_PHONE_LIKE.sub(lambda m: _mask_phone_like(m.group(0)), t)
                                 for t in self.trial_members]
        return data


def _mask_phone_like(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


class BureauReviewForm(GateForm):
    outcome: Literal["approved", "rejected"] = Field(title="结果 / Outcome")
    filing_number: str | None = Field(
        default=None,
        max_length=40,
        title="备案号 / Filing number",
        description="小程序备案号，以 -<数字>X 结尾，如 粤B2-20090059-1626X / ends in -<n>X",
    )
    reason: str | None = Field(default=None, max_length=500, title="驳回原因 / Rejection reason")
    passing_outcomes: ClassVar = ("approved",)

    def problems(self) -> list[FormProblem]:
        found = _required_when(self, "filing_number", "approved", "备案号", "filing number")
        found += _required_when(self, "reason", "rejected", "驳回原因", "rejection reason")
        if self.outcome == "approved" and self.filing_number and not MINI_PROGRAM_FILING_NUMBER.match(
            self.filing_number.strip()
        ):
            found.append(
                FormProblem(
                    field="filing_number",
                    rule="filing-number-format",
                    message="备案号格式不正确，小程序备案号形如 粤B2-20090059-1626X 或 京ICP备2023012345号-1X"
                    " / filing number must look like 粤B2-20090059-1626X (a mini-program's number ends in -<n>X)",
                )
            )
        return found


class DesignConfirmationForm(GateForm):
    outcome: Literal["confirmed", "rework"] = Field(title="结果 / Outcome")
    feedback: str | None = Field(default=None, max_length=1000, title="修改意见 / Rework feedback")
    passing_outcomes: ClassVar = ("confirmed",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "feedback", "rework", "修改意见", "feedback")


class VersionForm(GateForm):
    outcome: Literal["done"] = Field(default="done", title="结果 / Outcome")
    version: str = Field(min_length=1, max_length=32, title="版本号 / Version")
    passing_outcomes: ClassVar = ("done",)


class ReviewSubmissionForm(GateForm):
    outcome: Literal["submitted"] = Field(default="submitted", title="结果 / Outcome")
    version: str = Field(min_length=1, max_length=32, title="版本号 / Version")
    feedback: str | None = Field(
        default=None, max_length=200, title="提审说明 / Feedback to reviewers", description="≤ 200 字 / characters"
    )
    passing_outcomes: ClassVar = ("submitted",)


class CodeReviewForm(GateForm):
    outcome: Literal["passed", "failed"] = Field(title="结果 / Outcome")
    reason: str | None = Field(default=None, max_length=1000, title="未通过原因 / Failure reason")
    screenshots: list[str] = Field(default_factory=list, max_length=20, title="截图 media id / Screenshots")
    passing_outcomes: ClassVar = ("passed",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "failed", "未通过原因", "failure reason")


class ReleaseForm(GateForm):
    outcome: Literal["released"] = Field(default="released", title="结果 / Outcome")
    passing_outcomes: ClassVar = ("released",)


def form_class(name: str) -> type[GateForm]:
    """A gate form by class name, as the catalogue names it (`form:` of each gate)."""
    found = _FORM_CLASSES.get(name)
    if found is None:
        raise KeyError(f"未知的表单 {name} / unknown form {name}; known: {', '.join(sorted(_FORM_CLASSES))}")
    return found


class FormError(ValueError):
    """A gate form was refused; `problems` name each field and rule."""

    def __init__(self, gate: str, problems: list[FormProblem]):
        self.gate = gate
        self.problems = problems
        lines = "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(f"{gate}: {lines}")


def validate_form(gate: str, form_cls: type[GateForm], data: dict) -> GateForm:
    """Parse and fully check a decision for `gate` (its form `form_cls`); raise FormError
    naming every bad field. `Catalogue.validate_form(gate_id, data)` finds the form."""
    try:
        form = form_cls.model_validate(data)
    except ValidationError as exc:
        raise FormError(gate, [_problem_from_pydantic(err) for err in exc.errors()]) from None
    problems = form.problems()
    if problems:
        raise FormError(gate, problems)
    return form


_PYDANTIC_ZH = {
    "missing": "必填",
    "literal_error": "取值不在可选范围内",
    "string_pattern_mismatch": "格式不正确",
    "string_too_long": "过长",
    "string_too_short": "过短或为空",
    "extra_forbidden": "不是此表单的字段",
    "string_type": "应为文本",
}


def _problem_from_pydantic(err: dict) -> FormProblem:
    field = ".".join(str(p) for p in err["loc"]) or "form"
    zh = _PYDANTIC_ZH.get(err["type"], "无效")
    return FormProblem(field=field, rule=err["type"].replace("_", "-"), message=f"{field} {zh} / {err['msg']}")
