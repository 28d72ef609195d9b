"""Preflight: check a client intake against the filing and registration rules before a launch.

``check(intake, today=..., facts=..., config=...)`` returns a :class:`CheckResult`: the
findings (each with a rule id, a field path, a severity and a 中文 / English message) and
the list of materials this client must provide, with what is still missing.

* Every rule is a small function registered in ``_RULES`` (rule id -> function); the table
  is the list of rules, ``RULE_IDS`` its keys. Rules read figures from :class:`RuleConfig`
  (packaged ``data/rules.yaml``, optionally overlaid by the agency's own YAML), never
  constants of their own.
* What the store already knows (existing mini-programs per ID number, phone, subject;
  emails already used) comes in as :class:`KnownFacts`; nothing here touches a database.
* Messages never carry a raw ID number, phone, credit code or email: values are quoted
  masked, and every message goes through :func:`scrub_text` as a last guard.

Choices worth knowing:

* "Documents must be valid for more than a month" is one CALENDAR month by date
  arithmetic (2026-01-31 + 1 month = 2026-02-28), not 30 days; a document valid until
  exactly that day, or earlier, is an error (expired documents too, with their own text).
* Quotas count mini-programs that already exist (the caller excludes the launch being
  checked); reaching the limit blocks one more. The ID-number and phone quotas apply to the
  mini-program admin (the binding that counts); for a 个人 subject the per-subject quota is
  read from ``mini_programs_per_id_number`` under the individual's ID number.
* An authorisation letter is required when the principal is not the legal representative
  and the province is one whose bureau asks for it, or always when
  ``provinces.api_requires_letter_when_different`` (WeChat's filing API asks for it; default
  true). In a province where the principal must be the legal representative, no letter
  helps: only ``principal-must-be-legal-rep`` is reported.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import phonenumbers
import yaml

from launch.domain.yamltext import load_yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator, model_validator
from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric, uscc

from launch.domain.intake import (
    ADDRESS_MOST_DETAILED_NOTE,
    SUBJECT_TYPE_LABELS,
    WECHAT_ACCOUNT_TYPE,
    Intake,
    Person,
    SubjectType,
    loc_path,
    normalise_credit_code,
    normalise_email,
    normalise_id_number,
    normalise_phone,
)
from launch.domain.masking import mask_email, mask_id_number, mask_licence, mask_phone, scrub_text

__all__ = [
    "RULE_IDS",
    "CheckResult",
    "Finding",
    "KnownFacts",
    "Material",
    "ProfileRules",
    "RuleConfig",
    "RuleConfigError",
    "add_months",
    "check",
    "materials_for",
    "normalise_province",
]

Severity = Literal["error", "warning"]

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


class RuleConfigError(ValueError):
    """A rules file that cannot be used; the message names the file and the key."""


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProvinceRules(_Cfg):
    must_be_legal_rep: list[str] = Field(description="主体负责人必须是法定代表人的省份 / principal must be the legal rep")
    may_differ: list[str] = Field(description="主体负责人可以不是法定代表人的省份 / principal may differ")
    letter_required_when_different: list[str] = Field(
        description="不是法定代表人时管局要求授权书的省份 / bureau requires a letter when the principal differs"
    )
    api_requires_letter_when_different: bool = Field(
        description="微信接口在负责人非法定代表人时总要求授权书 / WeChat's API always asks for the letter then"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ProvinceRules:
        both = sorted(set(self.must_be_legal_rep) & set(self.may_differ))
        if both:
            raise ValueError(f"同时出现在 must_be_legal_rep 与 may_differ: {', '.join(both)}")
        stray = sorted(set(self.letter_required_when_different) - set(self.may_differ))
        if stray:
            raise ValueError(f"letter_required_when_different 须是 may_differ 的子集，多出: {', '.join(stray)}")
        return self


class RemarkRules(_Cfg):
    min_chars: int = Field(ge=0)
    max_chars: int = Field(ge=1)


class ServiceTypeRules(_Cfg):
    max: int = Field(ge=1)


class DocumentRules(_Cfg):
    margin_months: int = Field(ge=0, description="documents must be valid for more than this many calendar months")


class QuotaRules(_Cfg):
    per_id_number: int = Field(ge=0)
    per_phone: int = Field(ge=0)
    per_subject: dict[SubjectType, int]

    @field_validator("per_subject")
    @classmethod
    def _all_types(cls, v: dict[SubjectType, int]) -> dict[SubjectType, int]:
        missing = [t.value for t in SubjectType if t not in v]
        if missing:
            raise ValueError(f"缺少主体类型 / missing subject types: {', '.join(missing)}")
        return v


class OfficialAccountRules(_Cfg):
    """复用公众号资质快速注册 / reusing a verified 公众号's qualifications."""

    fast_registrations_per_month: int = Field(ge=0, description="successful fast registrations a month (default)")
    fast_registrations_per_month_by_subject: dict[SubjectType, int] = Field(
        default_factory=dict, description="per subject type, overriding the default (个体户: 1)"
    )
    reuse_subject_types: list[SubjectType] = Field(
        description="subject types whose verified 公众号 may be reused (企业/媒体/政府/其他组织; not 个人)"
    )
    links_same_subject: int = Field(ge=0)
    links_other_subject: int = Field(ge=0)
    new_links_per_month: int = Field(ge=0)
    reuse_counts_against_new_links: bool = Field(
        default=False,
        description="a mini-program registered by reuse counts against the 公众号's new links a month (WeChat: no)",
    )

    def monthly_limit(self, subject_type: SubjectType) -> int:
        return self.fast_registrations_per_month_by_subject.get(subject_type, self.fast_registrations_per_month)


class ProfileRules(_Cfg):
    """小程序基本信息 (name, avatar, introduction, service categories): set before filing, and
    WeChat's change limits, checked against the counters kept on the client
    (launch/domain/profile.py)."""

    name_changes_before_release: int = Field(ge=0)
    avatar_changes_per_year: int = Field(ge=0)
    intro_changes_per_month: int = Field(ge=0)
    categories_max: int = Field(ge=1)
    category_changes_per_month: int = Field(ge=0)
    intro_min_chars: int = Field(default=4, ge=0, description="简介最少字数 / introduction at least (setSignature: 4)")
    intro_max_chars: int = Field(default=120, ge=1, description="简介最多字数 / at most (setSignature: 120)")
    avatar_formats: list[str] = Field(
        default_factory=lambda: ["bmp", "jpeg", "jpg", "gif", "png"],
        description="头像文件格式 / avatar file formats (setHeadImage: BMP, JPEG, JPG, GIF, PNG)",
    )
    windows: Literal["rolling", "calendar"] = Field(
        default="rolling",
        description="rolling: the month/year ending now (stricter); calendar: the natural month/year (Asia/Shanghai)",
    )


class PreApprovalItemCfg(_Cfg):
    """One 前置审批 item of the configured list (data/pre_approvals.yaml)."""

    name_zh: str
    name_en: str
    wechat_type: int | None = Field(default=None, description="type id of query_icp_nrlx_types")
    retired: bool = Field(default=False, description="no longer offered by WeChat: refused like an unknown item")


class FilingRules(_Cfg):
    """ICP filing rules that come from WeChat's filing API (apply_icp_filing)."""

    admin_emergency_phone_required: bool = Field(
        description="小程序负责人须有应急联系电话 / the mini-program's person in charge needs an emergency phone"
    )
    admin_letter_when_not_legal_rep: bool = Field(
        description="小程序负责人非法定代表人时须提供小程序负责人授权书 / a letter when the admin is not the legal rep"
    )
    pre_approval_number_required: bool = Field(
        description="每个前置审批项须填审批号 / every pre-approval item needs its approval number"
    )


class RuleConfig(_Cfg):
    """Every figure the rules use. Defaults: the packaged ``data/rules.yaml`` and
    ``data/pre_approvals.yaml`` (the 前置审批 list, key ``pre_approval_items``)."""

    provinces: ProvinceRules
    remark: RemarkRules
    service_types: ServiceTypeRules
    documents: DocumentRules
    quotas: QuotaRules
    official_account: OfficialAccountRules
    profile: ProfileRules
    filing: FilingRules
    pre_approval_items: dict[str, PreApprovalItemCfg]
    severity: dict[str, Literal["error", "warning", "off"]] = Field(default_factory=dict)

    @field_validator("pre_approval_items")
    @classmethod
    def _item_keys(cls, v: dict[str, PreApprovalItemCfg]) -> dict[str, PreApprovalItemCfg]:
        import re as _re

        bad = [k for k in v if not _re.fullmatch(r"[a-z][a-z0-9_]*", k)]
        if bad:
            raise ValueError(f"前置审批项的键只能用小写字母、数字、下划线 / item keys use a-z, 0-9, _: {', '.join(bad)}")
        return v

    def pre_approval(self, name: str) -> tuple[str, PreApprovalItemCfg] | None:
        """(key, item) of a configured, not retired 前置审批 item named by key or Chinese name."""
        n = (name or "").strip()
        for key, item in self.pre_approval_items.items():
            if not item.retired and n in (key, item.name_zh):
                return key, item
        return None

    def pre_approval_labels(self, name: str) -> tuple[str, str]:
        found = self.pre_approval(name)
        return (found[1].name_zh, found[1].name_en) if found else (name, name)

    @field_validator("severity")
    @classmethod
    def _known_rules(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(RULE_IDS))
        if unknown:
            raise ValueError(f"未知规则 / unknown rule id: {', '.join(unknown)}")
        return v

    @classmethod
    def load(cls, path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None) -> RuleConfig:
        """The packaged defaults, deep-merged with the YAML at ``path`` (if given) and then
        with ``overrides`` (if given). Mappings merge key by key; lists and scalars replace.

        Raises RuleConfigError naming the file and the key for unreadable or invalid YAML,
        a top level that is not a mapping, unknown keys and wrong values.
        """
        packaged = resources.files("launch.domain").joinpath("data/rules.yaml")
        data = _read_yaml(packaged.read_text(encoding="utf-8"), "launch/domain/data/rules.yaml")
        items = resources.files("launch.domain").joinpath("data/pre_approvals.yaml")
        data = _deep_merge(data, _read_yaml(items.read_text(encoding="utf-8"), "launch/domain/data/pre_approvals.yaml"))
        source = "launch/domain/data/rules.yaml"
        if path is not None:
            p = Path(path)
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RuleConfigError(f"{p}: 无法读取规则文件 / cannot read the rules file ({exc})") from None
            overlay = _read_yaml(text, str(p))
            if overlay is not None:
                if not isinstance(overlay, dict):
                    raise RuleConfigError(f"{p}: 顶层应为映射 / the top level must be a mapping")
                data = _deep_merge(data, overlay)
                source = str(p)
        if overrides:
            data = _deep_merge(data, dict(overrides))
            source = f"{source} + overrides" if path is not None else "overrides"
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            lines = [f"{source}: 规则配置无效 / invalid rules configuration"]
            for err in exc.errors(include_input=False, include_url=False):
                key = loc_path(err["loc"]) or "(top level)"
                lines.append(f"  - {key}: {str(err['msg']).removeprefix('Value error, ')}")
            raise RuleConfigError("\n".join(lines)) from None

    @classmethod
    def default(cls) -> RuleConfig:
        """The packaged defaults (cached)."""
        return _default_config()


@lru_cache(maxsize=1)
def _default_config() -> RuleConfig:
    return RuleConfig.load()


def _read_yaml(text: str, name: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RuleConfigError(f"{name}:{where}: YAML 无效 / invalid YAML ({getattr(exc, 'problem', exc)})") from None


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------
# Inputs and outputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownFacts:
    """What the store already knows, passed in by the caller. Keys are NORMALISED values
    (see ``Intake.identifiers``): ID numbers upper-case, phones digits without +86, emails
    lower-case, credit codes upper-case. Counts exclude the launch being checked."""

    # existing mini-programs whose admin has this ID number
    mini_programs_per_id_number: Mapping[str, int] = field(default_factory=dict)
    # existing mini-programs whose admin has this phone
    mini_programs_per_phone: Mapping[str, int] = field(default_factory=dict)
    # existing mini-programs of this subject, by credit code (个人: see mini_programs_per_id_number)
    mini_programs_per_subject: Mapping[str, int] = field(default_factory=dict)
    # registration emails already used by an account
    used_emails: Set[str] = field(default_factory=frozenset)
    # fast registrations still pending (other launches on the reuse path), by the 公众号's AppID
    pending_fast_registrations: Mapping[str, int] = field(default_factory=dict)


class Finding(BaseModel):
    """One problem found by a rule."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    rule_id: str
    field: str = Field(description="field path in the intake, e.g. principal.id_number")
    message_zh: str
    message_en: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message(self) -> str:
        return f"{self.message_zh} / {self.message_en}"


class Material(BaseModel):
    """One material the filing or registration needs from this client."""

    model_config = ConfigDict(frozen=True)

    kind: str
    label_zh: str
    label_en: str
    required: bool
    provided: bool
    note: str = ""

    @property
    def missing(self) -> bool:
        return self.required and not self.provided


class CheckResult(BaseModel):
    findings: list[Finding]
    materials: list[Material]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def missing_materials(self) -> list[Material]:
        return [m for m in self.materials if m.missing]

    def rule_ids(self, severity: Severity | None = None) -> set[str]:
        return {f.rule_id for f in self.findings if severity is None or f.severity == severity}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

_PROVINCE_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")


def normalise_province(name: str) -> str:
    """广东省 -> 广东, 内蒙古自治区 -> 内蒙古, 上海市 -> 上海."""
    n = (name or "").strip()
    for suffix in _PROVINCE_SUFFIXES:
        if n.endswith(suffix) and len(n) > len(suffix):
            return n[: -len(suffix)]
    return n


def add_months(d: date, months: int) -> date:
    """Calendar-month arithmetic, clamping to the month's last day (01-31 + 1 = 02-28/29)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass
class _Hit:
    field: str
    zh: str
    en: str
    severity: Severity = "error"


@dataclass
class _Ctx:
    intake: Intake
    today: date
    facts: KnownFacts
    config: RuleConfig

    @property
    def province(self) -> str:
        return normalise_province(self.intake.subject.province)

    @property
    def is_org(self) -> bool:
        return self.intake.subject.is_organisation

    @property
    def principal_differs(self) -> bool:
        return self.is_org and not self.intake.principal_is_legal_representative


_ROLE_LABELS = {
    "legal_representative": ("法定代表人", "legal representative"),
    "principal": ("主体负责人", "principal"),
    "mini_program.admin": ("小程序管理员", "mini-program admin"),
    "mini_program.admin_emergency_phone": ("小程序负责人的应急联系", "the admin's emergency contact"),
    "emergency_contact": ("应急联系人", "emergency contact"),
    "registration": ("注册", "registration"),
}


def _role(path: str) -> tuple[str, str]:
    if path.startswith("contacts["):
        return ("提醒联系人", "alert contact")
    return _ROLE_LABELS.get(path, (path, path))


def _letter_requirement(ctx: _Ctx) -> tuple[bool, str, str]:
    """(required, reason zh, reason en) for the authorisation letter."""
    prov = ctx.config.provinces
    if not ctx.principal_differs or ctx.province in prov.must_be_legal_rep:
        return False, "", ""
    if ctx.province in prov.letter_required_when_different:
        return True, f"{ctx.province}管局要求", f"the {ctx.province} bureau requires it"
    if prov.api_requires_letter_when_different:
        return True, "微信备案接口要求", "WeChat's filing API requires it"
    return False, "", ""


# ---------------------------------------------------------------------------
# The rules (one function each; the table below is the list)
# ---------------------------------------------------------------------------

RuleFn = Callable[[_Ctx], Iterable[_Hit]]
_RULES: dict[str, RuleFn] = {}


def _rule(rule_id: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        if rule_id in _RULES:
            raise RuntimeError(f"rule {rule_id} registered twice")
        _RULES[rule_id] = fn
        return fn

    return register


@_rule("unknown-province")
def _unknown_province(ctx: _Ctx) -> Iterator[_Hit]:
    prov = ctx.config.provinces
    if ctx.province not in prov.must_be_legal_rep and ctx.province not in prov.may_differ:
        yield _Hit(
            "subject.province",
            f"省份“{ctx.intake.subject.province}”不在规则表中，无法判断主体负责人要求，请人工确认",
            f"province '{ctx.intake.subject.province}' is not in the rule lists; check the principal rules by hand",
            "warning",
        )


@_rule("principal-must-be-legal-rep")
def _principal_must_be_legal_rep(ctx: _Ctx) -> Iterator[_Hit]:
    if ctx.principal_differs and ctx.province in ctx.config.provinces.must_be_legal_rep:
        yield _Hit(
            "principal_is_legal_representative",
            f"{ctx.province}要求主体负责人必须是法定代表人",
            f"in {ctx.province} the principal must be the legal representative",
        )


@_rule("principal-legal-rep-mismatch")
def _principal_legal_rep_mismatch(ctx: _Ctx) -> Iterator[_Hit]:
    i = ctx.intake
    if ctx.is_org and i.principal_is_legal_representative and i.legal_representative is not None:
        if normalise_id_number(i.principal.id_number) != normalise_id_number(i.legal_representative.id_number):
            yield _Hit(
                "principal.id_number",
                "已声明主体负责人即法定代表人，但两者身份证号不同",
                "the principal is declared to be the legal representative but the ID numbers differ",
            )


@_rule("authorization-letter-required")
def _authorization_letter_required(ctx: _Ctx) -> Iterator[_Hit]:
    required, why_zh, why_en = _letter_requirement(ctx)
    if required and not ctx.intake.has_document("authorization_letter"):
        yield _Hit(
            "authorization_letter",
            f"主体负责人不是法定代表人，须提供授权书（{why_zh}）",
            f"the principal is not the legal representative: an authorisation letter is required ({why_en})",
        )


@_rule("phones-must-differ")
def _phones_must_differ(ctx: _Ctx) -> Iterator[_Hit]:
    i = ctx.intake
    if normalise_phone(i.principal.phone) == normalise_phone(i.emergency_contact.phone):
        yield _Hit(
            "emergency_contact.phone",
            "应急联系人手机号与主体负责人手机号相同，备案需要两个不同的本人手机号",
            "the emergency contact's phone equals the principal's; the filing needs two different phones",
        )


@_rule("remark-length")
def _remark_length(ctx: _Ctx) -> Iterator[_Hit]:
    r = ctx.config.remark
    n = len(ctx.intake.mini_program.remark.strip())
    if not r.min_chars <= n <= r.max_chars:
        yield _Hit(
            "mini_program.remark",
            f"备注为 {n} 字，须为 {r.min_chars}–{r.max_chars} 字",
            f"the remark has {n} characters; it must have {r.min_chars}–{r.max_chars}",
        )


@_rule("profile-intro-length")
def _profile_intro_length(ctx: _Ctx) -> Iterator[_Hit]:
    r = ctx.config.profile
    intro = ctx.intake.mini_program.intro
    if intro is None:
        return
    n = len(intro.strip())
    if not r.intro_min_chars <= n <= r.intro_max_chars:
        yield _Hit(
            "mini_program.intro",
            f"简介为 {n} 字，须为 {r.intro_min_chars}–{r.intro_max_chars} 字（微信 setSignature）",
            f"the introduction has {n} characters; it must have {r.intro_min_chars}–{r.intro_max_chars} "
            "(WeChat's setSignature)",
        )


@_rule("profile-avatar-format")
def _profile_avatar_format(ctx: _Ctx) -> Iterator[_Hit]:
    avatar = ctx.intake.mini_program.avatar
    formats = [f.lower() for f in ctx.config.profile.avatar_formats]
    if avatar is not None and avatar.rsplit(".", 1)[-1].lower() not in formats:
        yield _Hit(
            "mini_program.avatar",
            f"头像文件须为 {'、'.join(f.upper() for f in formats)} 格式",
            f"the avatar file must be one of {', '.join(f.upper() for f in formats)}",
        )


@_rule("profile-categories-invalid")
def _profile_categories_invalid(ctx: _Ctx) -> Iterator[_Hit]:
    cats = ctx.intake.mini_program.categories
    most = ctx.config.profile.categories_max
    if len(cats) > most:
        yield _Hit("mini_program.categories", f"服务类目有 {len(cats)} 项，最多 {most} 项",
                   f"{len(cats)} service categories; at most {most}")
    for i, c in enumerate(cats):
        parts = [p.strip() for p in c.split("/")]
        if len(parts) != 2 or not all(parts):
            yield _Hit(f"mini_program.categories[{i}]", "服务类目须写成“一级类目/二级类目”",
                       "a service category must read 'first level/second level'")
    if len({c.replace(" ", "") for c in cats}) != len(cats):
        yield _Hit("mini_program.categories", "服务类目有重复项", "a service category is listed twice")


@_rule("address-note-missing")
def _address_note_missing(ctx: _Ctx) -> Iterator[_Hit]:
    s = ctx.intake.subject
    if s.address_is_most_detailed and ADDRESS_MOST_DETAILED_NOTE not in s.address_note:
        yield _Hit(
            "subject.address_note",
            f"地址已是最详细地址时，备注须写明“{ADDRESS_MOST_DETAILED_NOTE}”",
            f"when the address is already the most detailed, the remark must say “{ADDRESS_MOST_DETAILED_NOTE}”",
        )


def _pre_approvals(ctx: _Ctx) -> Iterator[tuple[int, Any, tuple[str, PreApprovalItemCfg] | None]]:
    for idx, p in enumerate(ctx.intake.mini_program.pre_approvals):
        yield idx, p, ctx.config.pre_approval(p.item)


@_rule("pre-approval-unknown-item")
def _pre_approval_unknown_item(ctx: _Ctx) -> Iterator[_Hit]:
    """WeChat: the 前置审批 types come from query_icp_nrlx_types (configured list)."""
    known = [f"{k}（{v.name_zh}）" for k, v in ctx.config.pre_approval_items.items() if not v.retired]
    for idx, p, found in _pre_approvals(ctx):
        if found is None:
            yield _Hit(
                f"mini_program.pre_approvals[{idx}].item",
                f"前置审批项“{p.item}”不在配置的清单中（规则 pre-approval-unknown-item；可选：{'、'.join(known)}）",
                f"pre-approval item '{p.item}' is not in the configured list (rule pre-approval-unknown-item; "
                f"known: {', '.join(known)})",
            )


@_rule("pre-approval-number-missing")
def _pre_approval_number_missing(ctx: _Ctx) -> Iterator[_Hit]:
    """WeChat apply_icp_filing nrlx_details[].code: the approval number is required for a
    pre-approval item other than 以上都不涉及."""
    if not ctx.config.filing.pre_approval_number_required:
        return
    for idx, p, found in _pre_approvals(ctx):
        if found is not None and not (p.approval_number and p.approval_number.strip()):
            zh, en = found[1].name_zh, found[1].name_en
            yield _Hit(
                f"mini_program.pre_approvals[{idx}].approval_number",
                f"前置审批“{zh}”缺少审批号（规则 pre-approval-number-missing）",
                f"pre-approval item '{en}' has no approval number (rule pre-approval-number-missing)",
            )


def _pre_approval_has_document(ctx: _Ctx, p: Any, key: str) -> bool:
    return bool(p.document) or ctx.intake.has_document(f"pre_approval_{key}")


@_rule("pre-approval-document-missing")
def _pre_approval_document_missing(ctx: _Ctx) -> Iterator[_Hit]:
    for idx, p, found in _pre_approvals(ctx):
        if found is not None and not _pre_approval_has_document(ctx, p, found[0]):
            zh, en = found[1].name_zh, found[1].name_en
            yield _Hit(
                f"mini_program.pre_approvals[{idx}].document",
                f"前置审批“{zh}”缺少审批文件",
                f"pre-approval item '{en}' has no approval document",
            )


@_rule("admin-emergency-phone-missing")
def _admin_emergency_phone_missing(ctx: _Ctx) -> Iterator[_Hit]:
    """WeChat apply_icp_filing icp_applets.principal_info.emergency_contact (负责人应急联系方式)."""
    mp = ctx.intake.mini_program
    if ctx.config.filing.admin_emergency_phone_required and not (mp.admin_emergency_phone or "").strip():
        yield _Hit(
            "mini_program.admin_emergency_phone",
            "小程序负责人（管理员）须填应急联系电话（规则 admin-emergency-phone-missing）",
            "the mini-program's person in charge (admin) needs an emergency phone (rule admin-emergency-phone-missing)",
        )


@_rule("admin-emergency-phone-same")
def _admin_emergency_phone_same(ctx: _Ctx) -> Iterator[_Hit]:
    """The emergency phone is a second number: it must differ from the person's own mobile."""
    mp = ctx.intake.mini_program
    if mp.admin_emergency_phone and normalise_phone(mp.admin_emergency_phone) == normalise_phone(mp.admin.phone):
        shown = mask_phone(mp.admin_emergency_phone)
        yield _Hit(
            "mini_program.admin_emergency_phone",
            f"小程序负责人的应急联系电话 {shown} 与其本人手机号相同，须为另一个号码（规则 admin-emergency-phone-same）",
            f"the admin's emergency phone {shown} equals their own mobile; it must be another number "
            "(rule admin-emergency-phone-same)",
        )


def _admin_letter_required(ctx: _Ctx) -> bool:
    """WeChat apply_icp_filing principal_info.authorization_letter: "当小程序负责人不是法人时需要
    小程序负责人授权书" (the mini-program's person in charge who is not the legal person needs
    an authorisation letter). Organisations only: a 个人 subject has no legal person."""
    if not ctx.is_org or not ctx.config.filing.admin_letter_when_not_legal_rep:
        return False
    return not _same_person(ctx.intake.mini_program.admin, ctx.intake.legal_representative)


@_rule("admin-authorization-letter-required")
def _admin_authorization_letter_required(ctx: _Ctx) -> Iterator[_Hit]:
    if _admin_letter_required(ctx) and not ctx.intake.has_document("admin_authorization_letter"):
        yield _Hit(
            "documents",
            "小程序负责人（管理员）不是法定代表人，须提供小程序负责人授权书"
            "（documents 中 kind: admin_authorization_letter；规则 admin-authorization-letter-required）",
            "the mini-program's person in charge (admin) is not the legal representative: a letter authorising "
            "them is required (documents kind admin_authorization_letter; rule admin-authorization-letter-required)",
        )


@_rule("service-types-limit")
def _service_types_limit(ctx: _Ctx) -> Iterator[_Hit]:
    mx = ctx.config.service_types.max
    n = len(ctx.intake.mini_program.service_types)
    if n == 0:
        yield _Hit("mini_program.service_types", "至少选择一项服务内容类型", "choose at least one service content type")
    elif n > mx:
        yield _Hit(
            "mini_program.service_types",
            f"服务内容类型 {n} 项，最多 {mx} 项（仅二级类目）",
            f"{n} service content types; at most {mx} (second level only)",
        )


_USCC_REASONS = {
    stdnum_exc.InvalidLength: ("长度应为 18 位", "it must have 18 characters"),
    stdnum_exc.InvalidFormat: ("含不允许的字符", "it contains characters not allowed"),
    stdnum_exc.InvalidChecksum: ("校验码错误（GB 32100）", "wrong check character (GB 32100)"),
}


@_rule("credit-code-invalid")
def _credit_code_invalid(ctx: _Ctx) -> Iterator[_Hit]:
    code = ctx.intake.subject.credit_code
    if not ctx.is_org or code is None:
        return
    try:
        uscc.validate(code)
    except stdnum_exc.ValidationError as exc:
        zh, en = _USCC_REASONS.get(type(exc), ("无效", "invalid"))
        shown = mask_licence(normalise_credit_code(code))
        yield _Hit(
            "subject.credit_code",
            f"统一社会信用代码 {shown} 无效：{zh}",
            f"unified social credit code {shown} is invalid: {en}",
        )


# First two characters of a USCC by subject type (registration authority + entity type).
_USCC_PREFIXES: dict[SubjectType, tuple[str, ...]] = {
    SubjectType.enterprise: ("91", "93"),
    SubjectType.individual_business: ("92",),
    SubjectType.public_institution: ("12",),
    SubjectType.government: ("11",),
    # 媒体 are registered as enterprises or public institutions: no expectation.
    # 社会团体/民办非企业/基金会 (5x) and the other registration authorities (2-8, A, N, Y):
    SubjectType.other_organisation: ("13", "19", "2", "3", "4", "5", "6", "7", "8", "A", "N", "Y"),
}


@_rule("credit-code-type-mismatch")
def _credit_code_type_mismatch(ctx: _Ctx) -> Iterator[_Hit]:
    s = ctx.intake.subject
    if not ctx.is_org or s.credit_code is None or not uscc.is_valid(s.credit_code):
        return
    expected = _USCC_PREFIXES.get(s.type, ())
    code = normalise_credit_code(s.credit_code)
    if expected and not code.startswith(expected):
        yield _Hit(
            "subject.type",
            f"信用代码前两位 {code[:2]} 与主体类型不符（应为 {'/'.join(expected)}），请核对",
            f"the credit code starts with {code[:2]}, unusual for this subject type "
            f"(expected {'/'.join(expected)}); please check",
            "warning",
        )


_RIC_REASONS = {
    stdnum_exc.InvalidLength: ("长度应为 18 位", "it must have 18 characters"),
    stdnum_exc.InvalidFormat: ("格式错误", "bad format"),
    stdnum_exc.InvalidChecksum: ("校验码错误（GB 11643）", "wrong check digit (GB 11643)"),
}


def _id_problem(value: str, today: date) -> tuple[str, str] | None:
    try:
        ric.validate(value)
    except stdnum_exc.InvalidComponent:
        try:
            ric.get_birth_date(value)
        except stdnum_exc.ValidationError:
            return "出生日期不存在", "the birth date does not exist"
        return "地区码无效", "unknown region code"
    except stdnum_exc.ValidationError as exc:
        return _RIC_REASONS.get(type(exc), ("无效", "invalid"))
    if ric.get_birth_date(value) > today:
        return "出生日期在未来", "the birth date is in the future"
    return None


@_rule("id-number-invalid")
def _id_number_invalid(ctx: _Ctx) -> Iterator[_Hit]:
    for path, person in ctx.intake.people():
        problem = _id_problem(person.id_number, ctx.today)
        if problem:
            role_zh, role_en = _role(path)
            shown = mask_id_number(normalise_id_number(person.id_number))
            yield _Hit(
                f"{path}.id_number",
                f"{role_zh}身份证号 {shown} 无效：{problem[0]}",
                f"{role_en}'s ID number {shown} is invalid: {problem[1]}",
            )


def _phones(ctx: _Ctx) -> Iterator[tuple[str, str, Severity]]:
    for path, person in ctx.intake.people():
        yield path, person.phone, "error"
    yield "emergency_contact", ctx.intake.emergency_contact.phone, "error"
    if ctx.intake.mini_program.admin_emergency_phone:
        yield "mini_program.admin_emergency_phone", ctx.intake.mini_program.admin_emergency_phone, "error"
    for idx, c in enumerate(ctx.intake.contacts):
        if c.phone:
            # alert contacts are not filing data: a bad one must not block the launch
            yield f"contacts[{idx}]", c.phone, "warning"


def _mobile_problem(value: str) -> tuple[str, str] | None:
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return "不是电话号码", "not a phone number"
    if not phonenumbers.is_valid_number(number):
        return "不是有效号码", "not a valid number"
    if phonenumbers.region_code_for_number(number) != "CN":
        return "不是中国大陆号码", "not a mainland-China number"
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return "不是手机号（座机？）", "not a mobile number (a landline?)"
    return None


@_rule("mobile-invalid")
def _mobile_invalid(ctx: _Ctx) -> Iterator[_Hit]:
    for path, phone, severity in _phones(ctx):
        problem = _mobile_problem(phone)
        if problem:
            role_zh, role_en = _role(path)
            shown = mask_phone(phone)
            yield _Hit(
                path if path.endswith("_phone") else f"{path}.phone",
                f"{role_zh}手机号 {shown} 无效：{problem[0]}",
                f"{role_en}'s mobile {shown} is invalid: {problem[1]}",
                severity,
            )


def _emails(ctx: _Ctx) -> Iterator[tuple[str, str, Severity]]:
    i = ctx.intake
    if i.registration.email:
        yield "registration", i.registration.email, "error"
    for path, person in i.people():
        if person.email:
            yield path, person.email, "error"
    if i.emergency_contact.email:
        yield "emergency_contact", i.emergency_contact.email, "error"
    for idx, c in enumerate(i.contacts):
        if c.email:
            yield f"contacts[{idx}]", c.email, "warning"


@_rule("email-invalid")
def _email_invalid(ctx: _Ctx) -> Iterator[_Hit]:
    for path, email, severity in _emails(ctx):
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError:
            role_zh, role_en = _role(path)
            shown = mask_email(email)
            yield _Hit(
                f"{path}.email",
                f"{role_zh}邮箱 {shown} 格式无效",
                f"{role_en}'s email {shown} is not a valid address",
                severity,
            )


_DOC_LABELS: dict[str, tuple[str, str]] = {
    "business_licence": ("营业执照", "business licence"),
    "legal_rep_id": ("法定代表人身份证", "legal representative's ID card"),
    "principal_id_front": ("主体负责人身份证人像面", "principal's ID card, photo side"),
    "principal_id_back": ("主体负责人身份证国徽面", "principal's ID card, emblem side"),
    "admin_id": ("小程序管理员身份证", "mini-program admin's ID card"),
    "authorization_letter": ("授权书", "authorisation letter"),
    "admin_authorization_letter": ("小程序负责人授权书", "authorisation letter of the mini-program's person in charge"),
    "face_check": ("管理员人脸核身", "admin face check"),
}


def _doc_labels(kind: str, config: RuleConfig) -> tuple[str, str]:
    if kind.startswith("pre_approval_"):
        zh, en = config.pre_approval_labels(kind.removeprefix("pre_approval_"))
        return f"前置审批文件（{zh}）", f"pre-approval document ({en})"
    return _DOC_LABELS.get(kind, (kind, kind))


def _validities(ctx: _Ctx) -> Iterator[tuple[str, str, str, date]]:
    """(field path, label zh, label en, valid until) of every dated document."""
    i = ctx.intake
    if ctx.is_org and i.subject.licence_valid_until is not None:
        yield "subject.licence_valid_until", "营业执照", "business licence", i.subject.licence_valid_until
    for path, person in i.people():
        if person.id_valid_until is not None:
            zh, en = _role(path)
            yield f"{path}.id_valid_until", f"{zh}身份证", f"{en}'s ID card", person.id_valid_until
    if i.authorization_letter is not None and i.authorization_letter.valid_until is not None:
        yield "authorization_letter.valid_until", "授权书", "authorisation letter", i.authorization_letter.valid_until
    for idx, p in enumerate(i.mini_program.pre_approvals):
        if p.valid_until is not None:
            zh, en = ctx.config.pre_approval_labels(p.item)
            yield (f"mini_program.pre_approvals[{idx}].valid_until", f"前置审批（{zh}）",
                   f"pre-approval ({en})", p.valid_until)
    for idx, d in enumerate(i.documents):
        if d.valid_until is not None:
            zh, en = _doc_labels(d.kind, ctx.config)
            yield f"documents[{idx}].valid_until", zh, en, d.valid_until


@_rule("document-expiring")
def _document_expiring(ctx: _Ctx) -> Iterator[_Hit]:
    months = ctx.config.documents.margin_months
    limit = add_months(ctx.today, months)
    for path, zh, en, until in _validities(ctx):
        if until < ctx.today:
            yield _Hit(path, f"{zh}已于 {until} 过期", f"the {en} expired on {until}")
        elif until <= limit:
            yield _Hit(
                path,
                f"{zh}有效期至 {until}，须在 {limit} 之后仍有效（超过 {months} 个月）",
                f"the {en} is valid until {until}; it must stay valid beyond {limit} (more than {months} month(s))",
            )


@_rule("email-already-used")
def _email_already_used(ctx: _Ctx) -> Iterator[_Hit]:
    email = ctx.intake.registration.email
    if not email:
        return
    used = {normalise_email(e) for e in ctx.facts.used_emails}
    if normalise_email(email) in used:
        shown = mask_email(email)
        yield _Hit(
            "registration.email",
            f"注册邮箱 {shown} 已被使用；一个邮箱只能注册一个账号",
            f"the registration email {shown} is already used; one email, one account",
        )


def _count(mapping: Mapping[str, int], key: str, normalise: Callable[[str], str]) -> int:
    if key in mapping:
        return mapping[key]
    return sum(v for k, v in mapping.items() if normalise(k) == key)


@_rule("quota-id-number")
def _quota_id_number(ctx: _Ctx) -> Iterator[_Hit]:
    admin = ctx.intake.mini_program.admin
    key = normalise_id_number(admin.id_number)
    n = _count(ctx.facts.mini_programs_per_id_number, key, normalise_id_number)
    limit = ctx.config.quotas.per_id_number
    if n >= limit:
        yield _Hit(
            "mini_program.admin.id_number",
            f"管理员身份证 {mask_id_number(key)} 已绑定 {n} 个小程序，达到上限 {limit}",
            f"the admin's ID card {mask_id_number(key)} already has {n} mini-programs; the limit is {limit}",
        )


@_rule("quota-phone")
def _quota_phone(ctx: _Ctx) -> Iterator[_Hit]:
    key = normalise_phone(ctx.intake.mini_program.admin.phone)
    n = _count(ctx.facts.mini_programs_per_phone, key, normalise_phone)
    limit = ctx.config.quotas.per_phone
    if n >= limit:
        yield _Hit(
            "mini_program.admin.phone",
            f"管理员手机号 {mask_phone(key)} 已绑定 {n} 个小程序，达到上限 {limit}",
            f"the admin's phone {mask_phone(key)} already has {n} mini-programs; the limit is {limit}",
        )


@_rule("quota-subject")
def _quota_subject(ctx: _Ctx) -> Iterator[_Hit]:
    kind, key = ctx.intake.subject_key()
    if kind == "credit_code":
        n = _count(ctx.facts.mini_programs_per_subject, key, normalise_credit_code)
        path = "subject.credit_code"
    else:
        n = _count(ctx.facts.mini_programs_per_id_number, key, normalise_id_number)
        path = "principal.id_number"
    stype = ctx.intake.subject.type
    limit = ctx.config.quotas.per_subject[stype]
    if n >= limit:
        yield _Hit(
            path,
            f"该主体已有 {n} 个小程序，达到上限 {limit}",
            f"this subject already has {n} mini-programs; the limit for a {stype.value} is {limit}",
        )


def _official_account(ctx: _Ctx):  # noqa: ANN202
    reg = ctx.intake.registration
    return reg.official_account if reg.path == "reuse_official_account" else None


_OA = "registration.official_account"


@_rule("official-account-subject-type")
def _official_account_subject_type(ctx: _Ctx) -> Iterator[_Hit]:
    # 复用资质快速注册: only a verified 企业/媒体/政府/其他组织 公众号 qualifies; the mini-program
    # takes the 公众号's subject, so the client's subject type is the 公众号's.
    oa = _official_account(ctx)
    stype = ctx.intake.subject.type
    if oa is not None and stype not in ctx.config.official_account.reuse_subject_types:
        zh, en = SUBJECT_TYPE_LABELS[stype]
        wzh, wen = WECHAT_ACCOUNT_TYPE[stype]
        yield _Hit(
            "subject.type",
            f"主体类型为{zh}（公众平台类型：{wzh}）：只有已认证的企业、媒体、政府或其他组织公众号可复用资质快速注册小程序，"
            "请改用独立注册（规则 official-account-subject-type）",
            f"subject type {en} (WeChat account type: {wen}): only a verified enterprise, media, government "
            "or other-organisation 公众号 can reuse its qualifications; register standalone instead "
            "(rule official-account-subject-type)",
        )


@_rule("official-account-registration-pending")
def _official_account_registration_pending(ctx: _Ctx) -> Iterator[_Hit]:
    oa = _official_account(ctx)
    if oa is None:
        return
    others = ctx.facts.pending_fast_registrations.get(oa.appid, 0)
    if oa.registration_pending or others > 0:
        where_zh = f"（本系统中另有 {others} 个进行中）" if others else ""
        where_en = f" ({others} more in progress here)" if others else ""
        yield _Hit(
            f"{_OA}.registration_pending",
            f"公众号“{oa.name}”还有快速注册未完成{where_zh}，完成前不能发起新的快速注册"
            "（规则 official-account-registration-pending）",
            f"official account '{oa.name}' has a fast registration still pending{where_en}; "
            "no new one can start until it finishes (rule official-account-registration-pending)",
        )


@_rule("official-account-not-verified")
def _official_account_not_verified(ctx: _Ctx) -> Iterator[_Hit]:
    oa = _official_account(ctx)
    if oa is not None and not oa.verified:
        yield _Hit(
            f"{_OA}.verified",
            f"公众号“{oa.name}”未认证，不能复用资质快速注册",
            f"official account '{oa.name}' is not verified; its qualifications cannot be reused",
        )


@_rule("official-account-subject-mismatch")
def _official_account_subject_mismatch(ctx: _Ctx) -> Iterator[_Hit]:
    oa = _official_account(ctx)
    if oa is not None and not oa.same_subject:
        yield _Hit(
            f"{_OA}.same_subject",
            "复用资质注册的小程序沿用公众号的主体；该公众号不属于客户主体",
            "a mini-program registered by reuse takes the official account's subject, "
            "and this account belongs to another subject",
        )


@_rule("official-account-monthly-limit")
def _official_account_monthly_limit(ctx: _Ctx) -> Iterator[_Hit]:
    # Only successes count (the intake gives successful registrations this month); a
    # 个体户's 公众号 may reuse its qualifications once a month, other organisations 5 times.
    oa = _official_account(ctx)
    stype = ctx.intake.subject.type
    limit = ctx.config.official_account.monthly_limit(stype)
    if oa is not None and oa.fast_registrations_this_month >= limit:
        zh, en = SUBJECT_TYPE_LABELS[stype]
        yield _Hit(
            f"{_OA}.fast_registrations_this_month",
            f"该公众号本月已成功快速注册 {oa.fast_registrations_this_month} 个小程序，达到{zh}公众号每月上限 {limit}"
            "（规则 official-account-monthly-limit）",
            f"the official account made {oa.fast_registrations_this_month} successful fast registrations this "
            f"month; the monthly limit for subject type {en} is {limit} (rule official-account-monthly-limit)",
        )


@_rule("official-account-link-limit")
def _official_account_link_limit(ctx: _Ctx) -> Iterator[_Hit]:
    oa = _official_account(ctx)
    if oa is None:
        return
    cfg = ctx.config.official_account
    if oa.same_subject and oa.linked_same_subject >= cfg.links_same_subject:
        yield _Hit(
            f"{_OA}.linked_same_subject",
            f"公众号已关联 {oa.linked_same_subject} 个同主体小程序，达到上限 {cfg.links_same_subject}",
            f"the official account links {oa.linked_same_subject} same-subject mini-programs; "
            f"the limit is {cfg.links_same_subject}",
        )
    if not oa.same_subject and oa.linked_other_subject >= cfg.links_other_subject:
        yield _Hit(
            f"{_OA}.linked_other_subject",
            f"公众号已关联 {oa.linked_other_subject} 个非同主体小程序，达到上限 {cfg.links_other_subject}",
            f"the official account links {oa.linked_other_subject} other-subject mini-programs; "
            f"the limit is {cfg.links_other_subject}",
        )
    # A mini-program registered by reuse is linked by default and does NOT count against the
    # 公众号's new links a month (WeChat's article on 复用资质快速注册); configurable.
    if cfg.reuse_counts_against_new_links and oa.new_links_this_month >= cfg.new_links_per_month:
        yield _Hit(
            f"{_OA}.new_links_this_month",
            f"公众号本月已新关联 {oa.new_links_this_month} 个小程序，达到每月上限 {cfg.new_links_per_month}",
            f"the official account made {oa.new_links_this_month} new links this month; "
            f"the monthly limit is {cfg.new_links_per_month}",
        )


# Materials with a dedicated rule of their own are not repeated by material-missing.
_MATERIALS_WITH_OWN_RULE = ("authorization_letter", "admin_authorization_letter", "pre_approval_",
                            "admin_emergency_phone")


@_rule("material-missing")
def _material_missing(ctx: _Ctx) -> Iterator[_Hit]:
    for m in materials_for(ctx.intake, ctx.config):
        if not m.missing or m.kind.startswith(_MATERIALS_WITH_OWN_RULE):
            continue
        path = {"email": "principal.email", "principal_phone": "principal.phone",
                "emergency_phone": "emergency_contact.phone"}.get(m.kind, "documents")
        yield _Hit(path, f"尚缺材料：{m.label_zh}", f"material still missing: {m.label_en}", "warning")


RULE_IDS: tuple[str, ...] = tuple(_RULES)


# ---------------------------------------------------------------------------
# Materials
# ---------------------------------------------------------------------------


def _same_person(a: Person | None, b: Person | None) -> bool:
    return a is not None and b is not None and normalise_id_number(a.id_number) == normalise_id_number(b.id_number)


def materials_for(intake: Intake, config: RuleConfig) -> list[Material]:
    """The materials this client must provide (ICP filing step 1 and registration), and
    which of them are provided. A listed document counts as provided; the principal's ID
    card (both sides) also serves as the legal rep's or the admin's when they are the same
    person."""
    ctx = _Ctx(intake, date.min, KnownFacts(), config)  # no date-dependent rule here
    has = intake.has_document
    principal_card = has("principal_id_front") and has("principal_id_back")
    out: list[Material] = []

    def add(kind: str, required: bool, provided: bool, note: str = "") -> None:
        zh, en = _MATERIAL_LABELS.get(kind) or _doc_labels(kind, config)
        out.append(Material(kind=kind, label_zh=zh, label_en=en, required=required, provided=provided, note=note))

    if ctx.is_org:
        add("business_licence", True, has("business_licence"), "最新版 / latest version")
        same = intake.principal_is_legal_representative
        add("legal_rep_id", True, has("legal_rep_id") or (same and principal_card),
            "主体负责人即法定代表人时同一证件 / same card when the principal is the legal rep" if same else "")
    add("principal_id_front", True, has("principal_id_front"))
    add("principal_id_back", True, has("principal_id_back"))
    admin_is_principal = _same_person(intake.mini_program.admin, intake.principal)
    add("admin_id", True, has("admin_id") or (admin_is_principal and principal_card),
        "管理员即主体负责人时同一证件 / same card as the principal's" if admin_is_principal else "")
    if ctx.is_org:
        required, why_zh, why_en = _letter_requirement(ctx)
        if required:
            note = f"{why_zh} / {why_en}"
        elif ctx.principal_differs:
            note = "本省主体负责人须为法定代表人，授权书无效 / in this province only the legal rep can be principal"
        else:
            note = "主体负责人即法定代表人，无需授权书 / not needed: the principal is the legal rep"
        add("authorization_letter", required, has("authorization_letter"), note)
    if ctx.is_org:
        admin_letter = _admin_letter_required(ctx)
        add("admin_authorization_letter", admin_letter, has("admin_authorization_letter"),
            "小程序负责人非法定代表人时需要（微信备案接口）/ needed when the admin is not the legal rep "
            "(WeChat's filing API)" if admin_letter else
            "小程序负责人即法定代表人，无需授权书 / not needed: the admin is the legal rep")
    for p in intake.mini_program.pre_approvals:
        found = config.pre_approval(p.item)
        key = found[0] if found else p.item
        add(f"pre_approval_{key}", True, bool(p.document) or has(f"pre_approval_{key}"),
            f"审批号 / approval number: {p.approval_number}" if p.approval_number else "须附审批号 / needs its number")
    add("principal_phone", True, bool(intake.principal.phone), "本人手机号 / the person's own mobile")
    add("emergency_phone", True, bool(intake.emergency_contact.phone),
        "须与主体负责人手机号不同，且为本人手机 / must differ from the principal's, the person's own")
    add("admin_emergency_phone", config.filing.admin_emergency_phone_required,
        bool(intake.mini_program.admin_emergency_phone),
        "小程序负责人的应急联系电话，须与其本人手机号不同 / the admin's emergency phone, not their own mobile")
    add("email", True, bool(intake.principal.email), "主体负责人邮箱 / the principal's email")
    add("face_check", True, has("face_check"),
        "白底、表情自然、睁眼、面部无遮挡；核验任务 3 天内有效 / white background, natural expression, "
        "eyes open, face unobstructed; the task lives 3 days")
    return out


_MATERIAL_LABELS: dict[str, tuple[str, str]] = {
    "business_licence": ("营业执照", "business licence"),
    "principal_phone": ("主体负责人手机号", "principal's mobile"),
    "emergency_phone": ("应急联系人手机号", "emergency contact's mobile"),
    "admin_emergency_phone": ("小程序负责人应急联系电话", "admin's emergency phone"),
    "email": ("电子邮箱", "email"),
    "face_check": ("管理员人脸核身准备就绪", "admin ready for the face check"),
}


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def check(intake: Intake, *, today: date, facts: KnownFacts, config: RuleConfig) -> CheckResult:
    """Run every rule of the table on ``intake`` as of ``today``.

    ``ok`` is true when no finding is an error. Severities may be overridden (or a rule
    switched off) in ``config.severity``.
    """
    ctx = _Ctx(intake, today, facts, config)
    findings: list[Finding] = []
    for rule_id, fn in _RULES.items():
        override = config.severity.get(rule_id)
        if override == "off":
            continue
        for hit in fn(ctx):
            findings.append(
                Finding(
                    severity=override or hit.severity,  # type: ignore[arg-type]
                    rule_id=rule_id,
                    field=hit.field,
                    # last guard: messages quote masked values only; scrub anything that slipped
                    message_zh=scrub_text(hit.zh),
                    message_en=scrub_text(hit.en),
                )
            )
    findings.sort(key=lambda f: f.severity != "error")
    return CheckResult(findings=findings, materials=materials_for(intake, config))
