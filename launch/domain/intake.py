"""The client intake: everything a launch needs to know about one client, as ops write it in YAML.

Two kinds of problem, kept apart on purpose:

* STRUCTURE (a missing section, a wrong type, an unknown key, a contradictory
  combination such as the standalone path without an email) makes the file
  unusable: :func:`load_intake` raises :class:`IntakeFileError` listing every problem
  with its field path (``principal.phone``, ``documents[2].kind``).
* FORMAT and POLICY (a wrong ID check digit, a landline where a mobile is needed,
  a remark of 12 characters, an expiring licence, a quota reached) are preflight
  findings of :func:`launch.domain.rules.check`. The fields that carry such values
  are therefore plain ``str`` here.

Dates of validity accept ``YYYY-MM-DD`` or ``长期`` / ``long-term`` (stored as ``None``).
YAML numbers are accepted where text is expected (an unquoted phone or ID number).

Personal data (ID numbers, phones, emails, names) never leaves this module in the clear
except through the model itself: use :meth:`Intake.masked_summary` for display and
:meth:`Intake.identifiers` (normalised values, for the store's HMAC blind index).
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from launch.domain.masking import mask_email, mask_id_number, mask_licence, mask_name, mask_phone, scrub_text

__all__ = [
    "ADDRESS_MOST_DETAILED_NOTE",
    "DOCUMENT_KINDS",
    "FIXED_DOCUMENT_KINDS",
    "PRE_APPROVAL_ITEM_PATTERN",
    "Contact",
    "Document",
    "DocumentKind",
    "EmergencyContact",
    "Intake",
    "IntakeFileError",
    "MiniProgram",
    "OfficialAccount",
    "Person",
    "PreApproval",
    "Registration",
    "Subject",
    "SubjectType",
    "WECHAT_ACCOUNT_TYPE",
    "intake_json_schema",
    "load_intake",
    "normalise_credit_code",
    "normalise_email",
    "normalise_id_number",
    "normalise_phone",
    "parse_intake",
]

# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

ADDRESS_MOST_DETAILED_NOTE = "通讯地址已是最详细地址"


class SubjectType(StrEnum):
    """主体类型 / type of the subject (the legal owner of the mini-program).

    WeChat's public platform offers 企业 (which includes 个体工商户), 政府 (which takes
    事业单位), 媒体, 其他组织 and 个人; the agency keeps 事业单位 and 个体工商户 apart because
    their quotas and documents differ (see ``WECHAT_ACCOUNT_TYPE``).
    """

    enterprise = "enterprise"  # 企业
    public_institution = "public_institution"  # 事业单位
    individual_business = "individual_business"  # 个体工商户
    individual = "individual"  # 个人
    government = "government"  # 政府（机关）
    media = "media"  # 媒体
    other_organisation = "other_organisation"  # 其他组织（社会团体、民办非企业单位、基金会等）


SUBJECT_TYPE_LABELS: dict[SubjectType, tuple[str, str]] = {
    SubjectType.enterprise: ("企业", "enterprise"),
    SubjectType.public_institution: ("事业单位", "public institution"),
    SubjectType.individual_business: ("个体工商户", "individual business"),
    SubjectType.individual: ("个人", "individual"),
    SubjectType.government: ("政府", "government"),
    SubjectType.media: ("媒体", "media"),
    SubjectType.other_organisation: ("其他组织", "other organisation"),
}

# The account type WeChat's public platform files each subject type under (注册时的主体类型):
# what the reuse path's "only a verified 企业/媒体/政府/其他组织 公众号" is checked against.
WECHAT_ACCOUNT_TYPE: dict[SubjectType, tuple[str, str]] = {
    SubjectType.enterprise: ("企业", "enterprise"),
    SubjectType.individual_business: ("企业", "enterprise"),
    SubjectType.public_institution: ("政府", "government"),
    SubjectType.government: ("政府", "government"),
    SubjectType.media: ("媒体", "media"),
    SubjectType.other_organisation: ("其他组织", "other organisation"),
    SubjectType.individual: ("个人", "individual"),
}

# 前置审批项 are configuration (launch/domain/data/pre_approvals.yaml, overridable in the
# rules file): WeChat serves the list from query_icp_nrlx_types and says not to hard-code it.
# An intake names an item by its key (``news``) or its Chinese name (``新闻``); whether the
# name is known is a preflight finding (rule ``pre-approval-unknown-item``), not a parse error.
PRE_APPROVAL_ITEM_PATTERN = r"^(?:[a-z][a-z0-9_]*|[\u4e00-\u9fff（）()、·]{1,30})$"

# Kinds of material. A pre-approval document is ``pre_approval_<item key>`` for any item
# of the configured list.
FIXED_DOCUMENT_KINDS: tuple[str, ...] = (
    "business_licence",
    "legal_rep_id",
    "principal_id_front",
    "principal_id_back",
    "admin_id",
    "authorization_letter",
    "admin_authorization_letter",
    "face_check",
)
DOCUMENT_KINDS: tuple[str, ...] = FIXED_DOCUMENT_KINDS  # plus pre_approval_<item key>
_DOCUMENT_KIND_PATTERN = "^(?:" + "|".join(FIXED_DOCUMENT_KINDS) + r"|pre_approval_[a-z][a-z0-9_]*)$"
DocumentKind = Annotated[
    str,
    Field(pattern=_DOCUMENT_KIND_PATTERN),
]

# ---------------------------------------------------------------------------
# Field types
# ---------------------------------------------------------------------------

LONG_TERM_WORDS = frozenset({"长期", "长期有效", "long-term", "long term", "long_term", "longterm", "permanent"})


def _validity(value: Any) -> Any:
    if value is None:
        raise ValueError("填写日期 YYYY-MM-DD 或“长期” / give a date YYYY-MM-DD or 长期 (long-term)")
    if isinstance(value, str) and value.strip().lower() in LONG_TERM_WORDS:
        return None
    return value


def _optional_validity(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in LONG_TERM_WORDS:
        return None
    return value


_VALIDITY_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "enum": ["长期", "long-term"]},
    ]
}

# A validity that must be stated: a date, or 长期 / long-term (-> None).
# Serialised back as 长期 so a stored intake parses again (null is refused on input).
Validity = Annotated[
    date | None,
    BeforeValidator(_validity),
    PlainSerializer(lambda v: v.isoformat() if v else "长期", return_type=str, when_used="json"),
    WithJsonSchema(_VALIDITY_SCHEMA),
]
# A validity that may be left out (None = not stated or long-term: nothing to check).
OptionalValidity = Annotated[
    date | None,
    BeforeValidator(_optional_validity),
    WithJsonSchema({"anyOf": [*_VALIDITY_SCHEMA["anyOf"], {"type": "null"}]}),
]


def _d(zh: str, en: str) -> str:
    return f"{zh} / {en}"


class _Model(BaseModel):
    # Unknown keys are parse errors (a typo must not silently drop a value); YAML numbers
    # are accepted where text is expected (an unquoted phone or ID number).
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class Person(_Model):
    """自然人（法定代表人、主体负责人、小程序管理员）/ a natural person (legal rep, principal, admin)."""

    name: str = Field(description=_d("姓名（与证件一致）", "full name as on the ID card"))
    id_number: str = Field(
        description=_d("居民身份证号码（18 位，GB 11643）", "resident ID card number (18 characters, GB 11643)")
    )
    id_valid_until: Validity = Field(
        description=_d("身份证有效期截止日 YYYY-MM-DD，或“长期”", "ID card valid until YYYY-MM-DD, or 长期 (long-term)")
    )
    phone: str = Field(description=_d("本人手机号（中国大陆）", "the person's own mainland-China mobile number"))
    email: str | None = Field(default=None, description=_d("电子邮箱（可选）", "email address (optional)"))


class EmergencyContact(_Model):
    """应急联系人：备案要求第二个手机号，且须与主体负责人的不同 / emergency contact of the filing."""

    name: str = Field(description=_d("应急联系人姓名", "emergency contact's name"))
    phone: str = Field(
        description=_d("应急联系人本人手机号，须与主体负责人手机号不同", "own mobile number, must differ from the principal's")
    )
    email: str | None = Field(default=None, description=_d("电子邮箱（可选）", "email address (optional)"))


class Document(_Model):
    """客户已提供的一份材料 / one material the client has provided."""

    kind: DocumentKind = Field(description=_d("材料类别", "kind of material"))
    file: str | None = Field(
        default=None, description=_d("文件路径或存档引用（可选）", "file path or archive reference (optional)")
    )
    valid_until: OptionalValidity = Field(
        default=None, description=_d("有效期截止日，或“长期”（可选）", "valid until, or 长期 / long-term (optional)")
    )
    note: str = Field(default="", description=_d("备注", "note"))


class Subject(_Model):
    """主体信息 / the subject: the organisation or person who owns the mini-program."""

    type: SubjectType = Field(
        description=_d(
            "主体类型：enterprise 企业 | public_institution 事业单位 | individual_business 个体工商户"
            " | government 政府 | media 媒体 | other_organisation 其他组织 | individual 个人",
            "subject type",
        )
    )
    name: str = Field(description=_d("主体名称（与营业执照/证书一致；个人为姓名）", "name as on the licence; a person's name for 个人"))
    credit_code: str | None = Field(
        default=None,
        description=_d("统一社会信用代码（18 位，GB 32100）；个人主体不填", "unified social credit code (18 characters); absent for 个人"),
    )
    province: str = Field(
        description=_d("证件所在省份（简称，如 广东、北京、内蒙古）", "province of the licence, short Chinese name (广东, 北京, 内蒙古)")
    )
    address: str = Field(description=_d("通讯地址", "correspondence address"))
    address_is_most_detailed: bool = Field(
        default=False,
        description=_d("地址无门牌号且已是最详细地址", "the address has no house number and is already the most detailed"),
    )
    address_note: str = Field(
        default="",
        description=_d(
            f"主体信息备注；地址已是最详细时须含“{ADDRESS_MOST_DETAILED_NOTE}”",
            f"remark of the subject information; must contain “{ADDRESS_MOST_DETAILED_NOTE}” "
            "when the address is the most detailed",
        ),
    )
    licence_valid_until: OptionalValidity = Field(
        default=None,
        description=_d(
            "营业执照/证书有效期截止日，或“长期”；组织主体必填，个人不填",
            "licence valid until, or 长期 / long-term; required for organisations, absent for 个人",
        ),
    )

    @property
    def is_organisation(self) -> bool:
        return self.type is not SubjectType.individual

    @model_validator(mode="after")
    def _by_type(self) -> Subject:
        if self.is_organisation:
            if self.credit_code is None:
                raise ValueError("组织主体须填 credit_code / an organisation needs credit_code")
            if "licence_valid_until" not in self.model_fields_set:
                raise ValueError(
                    "组织主体须填 licence_valid_until（日期或“长期”）"
                    " / an organisation needs licence_valid_until (a date or 长期)"
                )
        else:
            if self.credit_code is not None:
                raise ValueError("个人主体没有统一社会信用代码，去掉 credit_code / an individual has no credit_code")
            if self.licence_valid_until is not None:
                raise ValueError("个人主体没有营业执照，去掉 licence_valid_until / an individual has no licence")
        return self


class PreApproval(_Model):
    """一项前置审批 / one pre-approval item the service needs.

    WeChat's apply_icp_filing takes each item as nrlx_details[] {type, code (the approval
    number, e.g. "粤-12345号"), media (the approval document)}.
    """

    item: str = Field(
        pattern=PRE_APPROVAL_ITEM_PATTERN,
        description=_d(
            "前置审批项：配置清单中的键（如 news、education、internet_finance）或中文名称（如 新闻、校外培训）；"
            "清单见 launch/domain/data/pre_approvals.yaml，可在规则文件中覆盖",
            "pre-approval item: a key of the configured list (news, education, internet_finance, …) or its "
            "Chinese name; the list is launch/domain/data/pre_approvals.yaml, overridable in the rules file",
        ),
    )
    approval_number: str | None = Field(
        default=None,
        max_length=100,
        description=_d("前置审批号（审批文件上的编号，如 粤-12345号）", "approval number on the approval document"),
    )
    document: str | None = Field(
        default=None, description=_d("审批文件（路径或引用）", "the approval document (path or reference)")
    )
    valid_until: OptionalValidity = Field(
        default=None, description=_d("审批文件有效期截止日，或“长期”", "approval valid until, or 长期 / long-term")
    )


class MiniProgram(_Model):
    """小程序信息 / the mini-program."""

    name: str = Field(description=_d("小程序名称", "mini-program name"))
    service_types: list[str] = Field(
        description=_d("服务内容类型（仅二级类目，最多 5 项）", "service content types (second level only, at most 5)")
    )
    pre_approvals: list[PreApproval] = Field(
        default_factory=list, description=_d("涉及的前置审批项", "pre-approval items the service involves")
    )
    none_of_the_above: bool = Field(
        default=False,
        description=_d("以上都不涉及（不涉及任何前置审批）", "以上都不涉及: no pre-approval item applies"),
    )
    remark: str = Field(
        description=_d("备案备注：服务内容描述，20–200 字", "filing remark describing the service, 20–200 characters")
    )
    admin: Person = Field(
        description=_d("小程序管理员（小程序负责人），扫码与人脸核身", "mini-program admin (person in charge): QR scan and face check")
    )
    admin_emergency_phone: str | None = Field(
        default=None,
        description=_d(
            "小程序负责人的应急联系电话（备案 icp_applets.principal_info.emergency_contact），须与其本人手机号不同",
            "emergency phone of the mini-program's person in charge (filing field "
            "icp_applets.principal_info.emergency_contact); must differ from their own mobile",
        ),
    )
    # The profile the tool sets through the platform (the mini-program-profile gate's action,
    # launch/app/profile_action.py); limits: rules profile-intro-length, profile-avatar-format,
    # profile-categories-invalid (figures under "profile" in the rules file). Optional: without
    # them staff set the profile in mp.weixin.qq.com as before.
    intro: str | None = Field(
        default=None,
        description=_d("小程序简介（功能介绍），4–120 字；由工具通过第三方平台设置",
                       "introduction (功能介绍), 4–120 characters; set by the tool through the platform"),
    )
    avatar: str | None = Field(
        default=None,
        description=_d("头像图片文件（BMP、JPEG、JPG、GIF、PNG，不超过 2 MB；路径，相对时在机构目录下）",
                       "avatar image file (BMP, JPEG, JPG, GIF, PNG, at most 2 MB; a path, relative ones under "
                       "the agency's home)"),
    )
    categories: list[str] = Field(
        default_factory=list,
        description=_d("服务类目，每项写“一级类目/二级类目”（微信可设置类目的名称），最多 5 项",
                       "service categories, each as 'first level/second level' (WeChat's category names), "
                       "at most 5"),
    )

    @model_validator(mode="after")
    def _pre_approvals(self) -> MiniProgram:
        if self.pre_approvals and self.none_of_the_above:
            raise ValueError(
                "pre_approvals 与 none_of_the_above 互相矛盾 / pre_approvals contradicts none_of_the_above"
            )
        if not self.pre_approvals and not self.none_of_the_above:
            raise ValueError(
                "列出 pre_approvals，或写 none_of_the_above: true（以上都不涉及）"
                " / list pre_approvals or set none_of_the_above: true"
            )
        items = [p.item for p in self.pre_approvals]
        if len(items) != len(set(items)):
            raise ValueError("pre_approvals 有重复项 / pre_approvals lists an item twice")
        return self


class OfficialAccount(_Model):
    """复用资质的公众号 / the 公众号 whose qualifications are reused."""

    name: str = Field(description=_d("公众号名称", "official account name"))
    appid: str = Field(description=_d("公众号 AppID", "official account AppID"))
    verified: bool = Field(description=_d("公众号已认证", "the official account is verified (认证)"))
    same_subject: bool = Field(
        description=_d("公众号与客户为同一主体", "the official account belongs to the client's subject")
    )
    fast_registrations_this_month: int = Field(
        default=0, ge=0, description=_d("本月已成功快速注册的小程序数", "successful fast registrations this month")
    )
    linked_same_subject: int = Field(
        default=0, ge=0, description=_d("已关联的同主体小程序数", "linked mini-programs of the same subject")
    )
    linked_other_subject: int = Field(
        default=0, ge=0, description=_d("已关联的非同主体小程序数", "linked mini-programs of other subjects")
    )
    new_links_this_month: int = Field(
        default=0,
        ge=0,
        description=_d(
            "本月新关联的小程序数（复用资质快速注册的小程序不占用每月新关联名额）",
            "new links made this month (a mini-program registered by reuse does not count against it)",
        ),
    )
    registration_pending: bool = Field(
        default=False,
        description=_d(
            "该公众号有一个快速注册仍在进行中（未完成时不能发起新的）",
            "a fast registration of this official account is still pending (no new one can start meanwhile)",
        ),
    )


class Registration(_Model):
    """注册路径 / how the mini-program account is registered."""

    path: Literal["standalone", "reuse_official_account", "platform_fast_registration"] = Field(
        description=_d(
            "standalone 独立注册 | reuse_official_account 复用公众号资质快速注册 | platform_fast_registration "
            "第三方平台代企业快速注册（法人扫码授权；须配置第三方平台）",
            "standalone registration, fast registration reusing a verified 公众号, or fast registration of an "
            "enterprise by the third-party platform (the legal person authorises; needs a configured platform)",
        )
    )
    component_phone: str | None = Field(
        default=None,
        description=_d(
            "第三方联系电话（代注册时微信必填，服务商的联系电话）；platform_fast_registration 必填",
            "the platform's contact phone WeChat asks for with a fast registration; required for "
            "platform_fast_registration",
        ),
    )
    email: str | None = Field(
        default=None,
        description=_d(
            "注册邮箱：未被公众平台、开放平台、企业微信使用且未绑定个人微信；独立注册必填",
            "registration email never used by the public/open platform or WeCom, nor bound to a personal WeChat; "
            "required for standalone",
        ),
    )
    official_account: OfficialAccount | None = Field(
        default=None, description=_d("复用资质的公众号；复用路径必填", "the reused 公众号; required for the reuse path")
    )

    @model_validator(mode="after")
    def _by_path(self) -> Registration:
        if self.path == "standalone":
            if not self.email:
                raise ValueError("独立注册须填 email / the standalone path needs registration.email")
            if self.official_account is not None:
                raise ValueError(
                    "独立注册不用 official_account / the standalone path takes no official_account"
                )
        elif self.path == "platform_fast_registration":
            if self.official_account is not None:
                raise ValueError("平台代注册不用 official_account / platform_fast_registration takes no official_account")
            if not (self.component_phone and re.fullmatch(r"\+?[\d\s-]{5,20}", self.component_phone.strip())):
                raise ValueError("registration.component_phone：平台代注册须填第三方联系电话（数字） / "
                                 "platform_fast_registration needs registration.component_phone (digits)")
        elif self.official_account is None:
            raise ValueError(
                "复用公众号路径须填 official_account / the reuse path needs registration.official_account"
            )
        return self


class Contact(_Model):
    """提醒联系人 / a person who receives alerts about this client."""

    name: str = Field(description=_d("姓名", "name"))
    email: str | None = Field(default=None, description=_d("电子邮箱", "email address"))
    phone: str | None = Field(default=None, description=_d("手机号", "mobile number"))
    role: str | None = Field(
        default=None, description=_d("角色（如 客户、客户经理）", "role (e.g. client, account manager)")
    )


_CLIENT_CODE = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class Intake(_Model):
    """客户资料：一次小程序上线所需的全部信息 / client intake: everything one launch needs."""

    client_code: str = Field(
        pattern=_CLIENT_CODE,
        description=_d("客户简码：小写字母、数字、短横线", "agency's short slug for the client: lowercase letters, digits, dashes"),
    )
    subject: Subject = Field(description=_d("主体信息", "subject information"))
    legal_representative: Person | None = Field(
        default=None,
        description=_d(
            "法定代表人（个体工商户为经营者）；组织主体必填",
            "legal representative (operator of a 个体工商户); required for organisations",
        ),
    )
    principal_is_legal_representative: bool = Field(
        description=_d("主体负责人即法定代表人", "the principal (主体负责人) is the legal representative"),
    )
    principal: Person = Field(description=_d("主体负责人（个人主体为本人）", "principal (主体负责人); the person themself for 个人"))
    emergency_contact: EmergencyContact = Field(description=_d("应急联系人", "emergency contact"))
    authorization_letter: Document | None = Field(
        default=None,
        description=_d(
            "授权书（主体负责人非法定代表人时）；也可在 documents 中列出",
            "authorisation letter (when the principal is not the legal rep); may also be listed in documents",
        ),
    )
    documents: list[Document] = Field(
        default_factory=list, description=_d("已提供的材料", "materials provided so far")
    )
    mini_program: MiniProgram = Field(description=_d("小程序信息", "mini-program information"))
    registration: Registration = Field(description=_d("注册路径", "registration path"))
    contacts: list[Contact] = Field(
        default_factory=list, description=_d("接收提醒的联系人", "people who receive alerts for this client")
    )

    @model_validator(mode="after")
    def _structure(self) -> Intake:
        if self.subject.is_organisation and self.legal_representative is None:
            raise ValueError("组织主体须填 legal_representative / an organisation needs legal_representative")
        if self.registration.path == "platform_fast_registration" and not (
                self.subject.is_organisation and len((self.subject.credit_code or "").strip()) == 18):
            # fastregisterenterpriseweapp (new version) takes an 18-character unified social credit
            # code only (WeChat's notice 0004829e9105005ce7d480e6561401)
            raise ValueError("registration.path：平台代注册仅限有 18 位统一社会信用代码的组织主体 / "
                             "platform_fast_registration needs an organisation with an 18-character credit code")
        if self.authorization_letter is not None and self.authorization_letter.kind != "authorization_letter":
            raise ValueError(
                "authorization_letter.kind 须为 authorization_letter"
                " / authorization_letter.kind must be authorization_letter"
            )
        return self

    # -- materials ---------------------------------------------------------

    def find_documents(self, kind: str) -> list[tuple[str, Document | PreApproval]]:
        """Every provided document of ``kind`` with its field path.

        Looks in ``documents``, the top-level ``authorization_letter`` and, for
        ``pre_approval_<item>``, the matching ``mini_program.pre_approvals`` entry when it
        names a document.
        """
        found: list[tuple[str, Document | PreApproval]] = []
        if kind == "authorization_letter" and self.authorization_letter is not None:
            found.append(("authorization_letter", self.authorization_letter))
        if kind.startswith("pre_approval_"):
            item = kind.removeprefix("pre_approval_")
            for i, p in enumerate(self.mini_program.pre_approvals):
                if p.item == item and p.document:
                    found.append((f"mini_program.pre_approvals[{i}]", p))
        for i, doc in enumerate(self.documents):
            if doc.kind == kind:
                found.append((f"documents[{i}]", doc))
        return found

    def has_document(self, kind: str) -> bool:
        return bool(self.find_documents(kind))

    def people(self) -> list[tuple[str, Person]]:
        """The persons with an ID card, with their field paths."""
        out: list[tuple[str, Person]] = []
        if self.legal_representative is not None:
            out.append(("legal_representative", self.legal_representative))
        out.append(("principal", self.principal))
        out.append(("mini_program.admin", self.mini_program.admin))
        return out

    # -- identifiers for the store -----------------------------------------

    def identifiers(self) -> dict[str, list[str]]:
        """Normalised values that count against WeChat's quotas, by kind.

        * ``id_number``: the mini-program admin's ID number (the binding that counts:
          one ID card -> at most 5 mini-programs). For a 个人 subject the admin is the
          individual, so this is also the subject's key.
        * ``phone``: the admin's mobile (one phone -> at most 5), digits only, no +86.
        * ``email``: the registration email, lower-case (one email -> one account); absent
          on the reuse path when none was given.
        * ``credit_code``: the subject's credit code (organisation -> at most 50,
          个体工商户 -> 5); absent for a 个人 subject.

        The store keeps HMAC digests of these and counts other launches sharing them.
        """
        out: dict[str, list[str]] = {
            "id_number": [normalise_id_number(self.mini_program.admin.id_number)],
            "phone": [normalise_phone(self.mini_program.admin.phone)],
            "email": [],
            "credit_code": [],
        }
        if self.registration.email:
            out["email"].append(normalise_email(self.registration.email))
        if self.subject.credit_code:
            out["credit_code"].append(normalise_credit_code(self.subject.credit_code))
        return out

    def subject_key(self) -> tuple[str, str]:
        """(kind, value) the per-subject quota is counted by: the credit code, or for a
        个人 subject the individual's (the principal's) ID number."""
        if self.subject.credit_code:
            return "credit_code", normalise_credit_code(self.subject.credit_code)
        return "id_number", normalise_id_number(self.principal.id_number)

    # -- display -------------------------------------------------------------

    def masked_summary(self) -> dict[str, Any]:
        """A summary for display (CLI, artifacts, alerts): nothing personal in the clear."""

        def person(p: Person | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {
                "name": mask_name(p.name),
                "id_number": mask_id_number(p.id_number),
                "id_valid_until": _show_validity(p.id_valid_until),
                "phone": mask_phone(p.phone),
                "email": mask_email(p.email),
            }

        s = self.subject
        individual = not s.is_organisation
        oa = self.registration.official_account
        return {
            "client_code": self.client_code,
            "subject": {
                "type": s.type.value,
                "type_zh": SUBJECT_TYPE_LABELS[s.type][0],
                # a 个人 subject's name and address are personal data
                "name": mask_name(s.name) if individual else s.name,
                "credit_code": mask_licence(s.credit_code),
                "province": s.province,
                "address": (s.province + "***") if individual else scrub_text(s.address),
                "licence_valid_until": None if individual else _show_validity(s.licence_valid_until),
            },
            "legal_representative": person(self.legal_representative),
            "principal_is_legal_representative": self.principal_is_legal_representative,
            "principal": person(self.principal),
            "emergency_contact": {
                "name": mask_name(self.emergency_contact.name),
                "phone": mask_phone(self.emergency_contact.phone),
                "email": mask_email(self.emergency_contact.email),
            },
            "mini_program": {
                "name": self.mini_program.name,
                "service_types": list(self.mini_program.service_types),
                "pre_approvals": [p.item for p in self.mini_program.pre_approvals],
                "none_of_the_above": self.mini_program.none_of_the_above,
                "remark": scrub_text(self.mini_program.remark),
                "admin": person(self.mini_program.admin),
                "admin_emergency_phone": mask_phone(self.mini_program.admin_emergency_phone),
            },
            "registration": {
                "path": self.registration.path,
                "email": mask_email(self.registration.email),
                "official_account": None
                if oa is None
                else {"name": oa.name, "appid": oa.appid, "verified": oa.verified, "same_subject": oa.same_subject},
            },
            "documents": sorted({d.kind for d in self.documents}
                                | ({"authorization_letter"} if self.authorization_letter else set())),
            "contacts": [
                {"name": mask_name(c.name), "role": c.role, "email": mask_email(c.email), "phone": mask_phone(c.phone)}
                for c in self.contacts
            ],
        }


def _show_validity(value: date | None) -> str:
    return "长期 / long-term" if value is None else value.isoformat()


# ---------------------------------------------------------------------------
# Normalisation (the form the store's blind index and KnownFacts are keyed by)
# ---------------------------------------------------------------------------


def normalise_id_number(value: str) -> str:
    """Strip spaces and dashes, upper-case the X check character."""
    return re.sub(r"[\s-]", "", value or "").upper()


def normalise_phone(value: str) -> str:
    """Digits only, without the +86 / 0086 country prefix."""
    digits = re.sub(r"\D", "", value or "")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def normalise_email(value: str) -> str:
    return (value or "").strip().lower()


def normalise_credit_code(value: str) -> str:
    return re.sub(r"[\s-]", "", value or "").upper()


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


class IntakeFileError(ValueError):
    """An intake file that cannot be used. ``problems`` holds (field path, 中文, English)."""

    def __init__(self, path: str | Path, problems: list[tuple[str, str, str]], headline: tuple[str, str]):
        self.path = str(path)
        self.problems = problems
        lines = [f"{self.path}: {headline[0]} / {headline[1]}"]
        for loc, zh, en in problems:
            prefix = f"{loc}: " if loc else ""
            lines.append(f"  - {prefix}{zh} / {en}")
        super().__init__("\n".join(lines))


class _IntakeLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text (pydantic parses them, with a field path on error)
    and refuses duplicate keys (a second ``phone:`` must not silently win)."""


_IntakeLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _IntakeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_IntakeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def loc_path(loc: tuple[Any, ...]) -> str:
    """('documents', 2, 'kind') -> 'documents[2].kind'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_ERROR_ZH: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "未知字段（拼写错误？）",
    "string_type": "应为文本",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "greater_than_equal": "不能为负数",
    "date_type": "应为日期 YYYY-MM-DD 或“长期”",
    "date_parsing": "应为日期 YYYY-MM-DD 或“长期”",
    "date_from_datetime_parsing": "应为日期 YYYY-MM-DD 或“长期”",
    "date_from_datetime_inexact": "应为日期 YYYY-MM-DD 或“长期”",
    "list_type": "应为列表",
    "model_type": "应为映射（键: 值）",
    "model_attributes_type": "应为映射（键: 值）",
    "dict_type": "应为映射（键: 值）",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "string_pattern_mismatch": "格式不符",
}


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str, str]]:
    problems = []
    # include_input=False: the offending value may be an ID number or phone.
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        typ = err["type"]
        msg = str(err["msg"])
        if typ == "value_error":
            text = msg.removeprefix("Value error, ")
            zh, _, en = text.partition(" / ")
            problems.append((loc_path(loc), zh, en or zh))
            continue
        zh = _ERROR_ZH.get(typ, "取值无效")
        problems.append((loc_path(loc), zh, msg))
    # de-duplicate (a union type reports once per member)
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def parse_intake(data: Any, *, source: str | Path = "<intake>") -> Intake:
    """Validate an already-parsed mapping; raises IntakeFileError naming ``source``."""
    if not isinstance(data, dict):
        kind = "空文件" if data is None else type(data).__name__
        raise IntakeFileError(
            source,
            [("", f"顶层应为映射（键: 值），实际为 {kind}", "the top level must be a mapping (key: value)")],
            ("不是客户资料", "not an intake"),
        )
    try:
        return Intake.model_validate(data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc)
        raise IntakeFileError(
            source,
            problems,
            (f"客户资料有 {len(problems)} 处结构错误", f"the intake has {len(problems)} structural error(s)"),
        ) from None


def load_intake(path: str | Path) -> Intake:
    """Read and validate an intake YAML file.

    Raises IntakeFileError (message names the file, every field path and the problem in
    Chinese and English) for an unreadable file, invalid YAML (with line and column),
    a top level that is not a mapping, and every structural error pydantic reports.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise IntakeFileError(
            p, [("", f"无法读取文件（{reason}）", f"cannot read the file ({reason})")], ("无法读取", "unreadable")
        ) from None
    try:
        data = yaml.load(text, Loader=_IntakeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where_zh = where_en = ""
        if mark is not None:
            where_zh = f"第 {mark.line + 1} 行第 {mark.column + 1} 列"
            where_en = f"line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise IntakeFileError(
            p,
            [("", f"{where_zh}：YAML 语法错误（{problem}）", f"{where_en}: invalid YAML ({problem})")],
            ("不是有效的 YAML", "not valid YAML"),
        ) from None
    return parse_intake(data, source=p)


def intake_json_schema() -> dict[str, Any]:
    """JSON Schema of the intake file, for editors (every field has a 中文 / English description)."""
    schema = Intake.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", "weapp-launch client intake")
    return schema
