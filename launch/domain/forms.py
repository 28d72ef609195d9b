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
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class GateForm(BaseModel):
    """Fields every gate asks: the outcome and who decided (Prefect keeps no user on a resume)."""

    model_config = ConfigDict(extra="forbid")

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
    outcome: Literal["submitted"] = Field(default="submitted", title="结果 / Outcome")
    appid: str = Field(pattern=APPID.pattern, title="AppID", description="wx 开头 18 位 / wx + 16 hex")
    original_id: str = Field(pattern=ORIGINAL_ID.pattern, title="原始 ID / Original id", description="gh_ + 12 hex")
    passing_outcomes: ClassVar = ("submitted",)


class PassFailForm(GateForm):
    outcome: Literal["passed", "failed"] = Field(title="结果 / Outcome")
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("passed",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "failed", "原因", "reason")


class FastRegistrationForm(GateForm):
    outcome: Literal["succeeded", "failed"] = Field(title="结果 / Outcome")
    appid: str | None = Field(default=None, pattern=APPID.pattern, title="AppID")
    original_id: str | None = Field(default=None, pattern=ORIGINAL_ID.pattern, title="原始 ID / Original id")
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("succeeded",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "appid", "succeeded", "AppID", "appid") + _required_when(
            self, "reason", "failed", "原因", "reason"
        )


class ReviewDecisionForm(GateForm):
    """First review: passed, or rejected with the platform's reason."""

    outcome: Literal["passed", "rejected"] = Field(title="结果 / Outcome")
    reason: str | None = Field(default=None, max_length=500, title="驳回原因 / Rejection reason")
    passing_outcomes: ClassVar = ("passed",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "rejected", "驳回原因", "rejection reason")


class SmsVerificationForm(GateForm):
    outcome: Literal["verified", "timed_out", "rejected"] = Field(
        title="结果 / Outcome",
        description="verified 已核验；timed_out 超时或输错 5 次（重新提交，发新短信）；rejected 需修改字段（重新初审）",
    )
    reason: str | None = Field(default=None, max_length=500, title="原因 / Reason")
    passing_outcomes: ClassVar = ("verified",)

    def problems(self) -> list[FormProblem]:
        return _required_when(self, "reason", "rejected", "原因", "reason")


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


# Gate id -> its form. The catalogue checks every gate it lists has one.
FORMS: dict[str, type[GateForm]] = {
    "email-activation": DoneForm,
    "subject-info": SubjectInfoForm,
    "wechat-verification": PassFailForm,
    "official-account-authorization": DoneForm,
    "fast-registration": FastRegistrationForm,
    "admin-binding": DoneForm,
    "filing-submission": DoneForm,
    "face-verification": PassFailForm,
    "first-review": ReviewDecisionForm,
    "sms-verification": SmsVerificationForm,
    "bureau-review": BureauReviewForm,
    "design-draft": DoneForm,
    "design-confirmation": DesignConfirmationForm,
    "implementation": VersionForm,
    "content": DoneForm,
    "review-submission": ReviewSubmissionForm,
    "code-review": CodeReviewForm,
    "release": ReleaseForm,
}


class FormError(ValueError):
    """A gate form was refused; `problems` name each field and rule."""

    def __init__(self, gate: str, problems: list[FormProblem]):
        self.gate = gate
        self.problems = problems
        lines = "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(f"{gate}: {lines}")


def validate_form(gate: str, data: dict) -> GateForm:
    """Parse and fully check a decision for `gate`; raise FormError naming every bad field."""
    try:
        form_cls = FORMS[gate]
    except KeyError:
        raise FormError(
            gate, [FormProblem(field="gate", rule="unknown-gate", message=f"未知的关卡 {gate} / unknown gate {gate}")]
        ) from None
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
