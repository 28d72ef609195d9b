"""The ICP filing application (apply_icp_filing) and the client intake, field by field: pure
tables and look-up matching, no I/O (the app layer, launch/app/icp_application.py, reads the
files, calls WeChat and builds the request from these).

Sources of the WeChat field names (checked against each other):
- WeChat open platform, 申请小程序备案 applyIcpFiling
  (developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/record/api_applyicpfiling):
  the request's three objects icp_subject {base_info, personal_info, organize_info, principal_info,
  legal_person_info}, icp_applets {base_info, principal_info}, icp_materials {commitment_letter, …};
  legal_person_info "非个人备案，且主体负责人不是法人时，必填"; the look-up codes (province, city,
  district from query_icp_district_code; types from query_icp_subject_types,
  query_icp_certificate_types, query_icp_service_content_types, query_icp_nrlx_types);
- WxJava weixin-java-open, me.chanjar.weixin.open.bean.icp.WxOpenApplyIcpFiling* (the field names
  of each object: base_info type/name/province/city/district/address/comment; organize_info
  certificate_type/number/address/photo; principal_info name/mobile/email/emergency_contact/
  certificate_type/number/validity_date_start/validity_date_end ("长期" when long-term, else
  YYYYmmdd)/photo_front/photo_back/authorization_letter/verify_task_id; legal_person_info
  name/certificate_number; applets base_info appid/name/service_content_types/nrlx_details
  {type, code, media}/comment; WxOpenUploadIcpMedia: type image|video, certificate_type,
  icp_order_field — "如要用于多个备案字段，则填写其中一个字段名即可");
- the base_info.address rule "地址开头的省市区不用填入" (WxJava's comment quoting the doc).

WeChat says never to hard-code its look-up lists: types and codes are matched here BY NAME
against the lists the caller fetched (IcpApi's cached look-ups), never by a fixed id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from launch.domain.intake import Intake, Person, SubjectType, normalise_id_number

__all__ = [
    "HINT_FIELDS",
    "MEDIA_FIELDS",
    "NONE_OF_THE_ABOVE",
    "ApplicationProblem",
    "IcpLookups",
    "MediaNeed",
    "hint_target",
    "media_needs",
]

NONE_OF_THE_ABOVE = "以上都不涉及"

# --- hints[].err_field → (our intake field, our preflight rule ids) ----------------------
# One place. A hint's err_field is a dotted path into the request (index parts such as
# ``nrlx_details[0]`` or ``nrlx_details.0`` are dropped before the look-up; an unknown field
# falls back to its longest known prefix, then to WeChat's own path with no rule).
_SUBJ = "icp_subject"
_APP = "icp_applets"
_DOC = "documents"  # the intake's materials list; the kind is named after it

HINT_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    f"{_SUBJ}.base_info.type": ("subject.type", ("credit-code-type-mismatch",)),
    f"{_SUBJ}.base_info.name": ("subject.name", ()),
    f"{_SUBJ}.base_info.province": ("subject.province", ("unknown-province",)),
    f"{_SUBJ}.base_info.city": ("subject.address", ()),
    f"{_SUBJ}.base_info.district": ("subject.address", ()),
    f"{_SUBJ}.base_info.address": ("subject.address", ()),
    f"{_SUBJ}.base_info.comment": ("subject.address_note", ("address-note-missing",)),
    f"{_SUBJ}.organize_info.certificate_type": ("subject.type", ("credit-code-type-mismatch",)),
    f"{_SUBJ}.organize_info.certificate_number": ("subject.credit_code", ("credit-code-invalid",)),
    f"{_SUBJ}.organize_info.certificate_address": ("subject.address", ()),
    f"{_SUBJ}.organize_info.certificate_photo": (f"{_DOC}[business_licence]", ("material-missing",)),
    f"{_SUBJ}.personal_info.residence_permit": (_DOC, ("material-missing",)),
    f"{_SUBJ}.principal_info.name": ("principal.name", ("principal-legal-rep-mismatch",)),
    f"{_SUBJ}.principal_info.mobile": ("principal.phone", ("mobile-invalid",)),
    f"{_SUBJ}.principal_info.email": ("principal.email", ("email-invalid",)),
    f"{_SUBJ}.principal_info.emergency_contact": ("emergency_contact.phone", ("phones-must-differ", "mobile-invalid")),
    f"{_SUBJ}.principal_info.certificate_type": ("principal.id_number", ("id-number-invalid",)),
    f"{_SUBJ}.principal_info.certificate_number": ("principal.id_number", ("id-number-invalid",)),
    f"{_SUBJ}.principal_info.certificate_validity_date_start": ("principal.id_valid_until", ("document-expiring",)),
    f"{_SUBJ}.principal_info.certificate_validity_date_end": ("principal.id_valid_until", ("document-expiring",)),
    f"{_SUBJ}.principal_info.certificate_photo_front": (f"{_DOC}[principal_id_front]", ("material-missing",)),
    f"{_SUBJ}.principal_info.certificate_photo_back": (f"{_DOC}[principal_id_back]", ("material-missing",)),
    f"{_SUBJ}.principal_info.authorization_letter": ("authorization_letter", ("authorization-letter-required",)),
    f"{_SUBJ}.principal_info.verify_task_id": ("face-verification", ()),
    f"{_SUBJ}.legal_person_info.name": ("legal_representative.name", ("principal-legal-rep-mismatch",)),
    f"{_SUBJ}.legal_person_info.certificate_number": ("legal_representative.id_number", ("id-number-invalid",)),
    f"{_APP}.base_info.appid": ("subject-info.appid", ()),  # the launch's app id, not an intake field
    f"{_APP}.base_info.name": ("mini_program.name", ()),
    f"{_APP}.base_info.service_content_types": ("mini_program.service_types", ("service-types-limit",)),
    f"{_APP}.base_info.nrlx_details": ("mini_program.pre_approvals", ("pre-approval-unknown-item",)),
    f"{_APP}.base_info.nrlx_details.type": ("mini_program.pre_approvals.item", ("pre-approval-unknown-item",)),
    f"{_APP}.base_info.nrlx_details.code": ("mini_program.pre_approvals.approval_number",
                                            ("pre-approval-number-missing",)),
    f"{_APP}.base_info.nrlx_details.media": ("mini_program.pre_approvals.document", ("pre-approval-document-missing",)),
    f"{_APP}.base_info.comment": ("mini_program.remark", ("remark-length",)),
    f"{_APP}.principal_info.name": ("mini_program.admin.name", ()),
    f"{_APP}.principal_info.mobile": ("mini_program.admin.phone", ("mobile-invalid",)),
    f"{_APP}.principal_info.email": ("mini_program.admin.email", ("email-invalid",)),
    f"{_APP}.principal_info.emergency_contact": ("mini_program.admin_emergency_phone",
                                                 ("admin-emergency-phone-missing", "admin-emergency-phone-same")),
    f"{_APP}.principal_info.certificate_type": ("mini_program.admin.id_number", ("id-number-invalid",)),
    f"{_APP}.principal_info.certificate_number": ("mini_program.admin.id_number", ("id-number-invalid",)),
    f"{_APP}.principal_info.certificate_validity_date_start": ("mini_program.admin.id_valid_until",
                                                              ("document-expiring",)),
    f"{_APP}.principal_info.certificate_validity_date_end": ("mini_program.admin.id_valid_until",
                                                            ("document-expiring",)),
    f"{_APP}.principal_info.certificate_photo_front": (f"{_DOC}[admin_id]", ("material-missing",)),
    f"{_APP}.principal_info.certificate_photo_back": (f"{_DOC}[admin_id]", ("material-missing",)),
    f"{_APP}.principal_info.authorization_letter": (f"{_DOC}[admin_authorization_letter]",
                                                    ("admin-authorization-letter-required",)),
    f"{_APP}.principal_info.verify_task_id": ("face-verification", ()),
    "icp_materials": (_DOC, ("material-missing",)),
}

_INDEX = re.compile(r"\[\d+\]|\.\d+(?=\.|$)")


def hint_target(err_field: str) -> tuple[str, tuple[str, ...]]:
    """(our field, our rule ids) for WeChat's err_field; WeChat's own path when unknown."""
    key = _INDEX.sub("", err_field or "")
    while key:
        if key in HINT_FIELDS:
            return HINT_FIELDS[key]
        key = key.rpartition(".")[0]
    return err_field, ()


# --- documents → media fields -------------------------------------------------------
# WeChat media field (upload_icp_media's icp_order_field and the field the media_id goes to)
# → the intake's document kinds, in the order tried. The admin's card is one `admin_id`
# document in the intake: it serves both sides (a scan with both faces); when the admin is
# the principal, the principal's two sides serve.
MEDIA_FIELDS: dict[str, tuple[str, ...]] = {
    f"{_SUBJ}.organize_info.certificate_photo": ("business_licence",),
    f"{_SUBJ}.principal_info.certificate_photo_front": ("principal_id_front",),
    f"{_SUBJ}.principal_info.certificate_photo_back": ("principal_id_back",),
    f"{_SUBJ}.principal_info.authorization_letter": ("authorization_letter",),
    f"{_APP}.principal_info.certificate_photo_front": ("admin_id",),
    f"{_APP}.principal_info.certificate_photo_back": ("admin_id",),
    f"{_APP}.principal_info.authorization_letter": ("admin_authorization_letter",),
}


@dataclass(frozen=True)
class MediaNeed:
    """One media field of the application and where its file comes from."""

    field: str  # WeChat's field (icp_order_field)
    kind: str  # the intake's document kind
    file: str | None  # the intake's file reference (None: listed without a file, or not listed)
    required: bool
    certificate: str | None = None  # "person" (an ID card) | "subject" (the licence) | None


def _file_of(intake: Intake, kind: str) -> str | None:
    for _, doc in intake.find_documents(kind):
        ref = getattr(doc, "file", None) or getattr(doc, "document", None)
        if ref:
            return ref
    return None


def _same(a: Person | None, b: Person | None) -> bool:
    return a is not None and b is not None and normalise_id_number(a.id_number) == normalise_id_number(b.id_number)


def media_needs(intake: Intake, required_kinds: set[str]) -> list[MediaNeed]:
    """The media fields this application carries. ``required_kinds``: the document kinds
    preflight's materials_for says this client must provide (letters depend on the province
    and on who is who)."""
    org = intake.subject.is_organisation
    admin_is_principal = _same(intake.mini_program.admin, intake.principal)
    out: list[MediaNeed] = []
    for wechat_field, kinds in MEDIA_FIELDS.items():
        kind = kinds[0]
        if kind == "business_licence" and not org:
            continue
        if kind in ("authorization_letter", "admin_authorization_letter") and kind not in required_kinds \
                and not intake.has_document(kind):
            continue
        ref = _file_of(intake, kind)
        if kind == "admin_id" and ref is None and admin_is_principal:
            kind = "principal_id_front" if wechat_field.endswith("front") else "principal_id_back"
            ref = _file_of(intake, kind)
        certificate = "subject" if kind == "business_licence" else "person" if "_id" in kind else None
        required = kind in required_kinds or kind in ("business_licence", "principal_id_front", "principal_id_back",
                                                      "admin_id")
        out.append(MediaNeed(wechat_field, kind, ref, required, certificate))
    for i, p in enumerate(intake.mini_program.pre_approvals):
        ref = p.document or _file_of(intake, f"pre_approval_{p.item}")
        out.append(MediaNeed(f"{_APP}.base_info.nrlx_details[{i}].media", f"pre_approval_{p.item}", ref, True))
    return out


# --- look-ups ----------------------------------------------------------------------


@dataclass(frozen=True)
class IcpLookups:
    """WeChat's look-up lists as fetched (items as WeChat gives them)."""

    service_content_types: list[dict[str, Any]] = field(default_factory=list)
    nrlx_types: list[dict[str, Any]] = field(default_factory=list)
    subject_types: list[dict[str, Any]] = field(default_factory=list)
    certificate_types: list[dict[str, Any]] = field(default_factory=list)
    districts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ApplicationProblem:
    """Something the application cannot carry: our field, zh, en."""

    field: str
    zh: str
    en: str


# Our subject type → WeChat's subject type names (query_icp_subject_types), tried in order.
# 个体工商户 has a type of its own in the filing list; 媒体 has none (registered as an
# enterprise or a public institution); 其他组织 covers several of WeChat's types (社会团体,
# 民办非企业单位, 基金会, …): the first that the list has is taken — approximate.
SUBJECT_TYPE_NAMES: dict[SubjectType, tuple[str, ...]] = {
    SubjectType.enterprise: ("企业",),
    SubjectType.individual_business: ("个体工商户", "企业"),
    SubjectType.individual: ("个人",),
    SubjectType.government: ("政府机关", "政府"),
    SubjectType.public_institution: ("事业单位",),
    SubjectType.media: ("企业", "事业单位"),
    SubjectType.other_organisation: ("社会团体", "民办非企业单位", "基金会"),
}


def subject_type_code(lookups: IcpLookups, subject_type: SubjectType) -> int | None:
    by_name = {str(t.get("name", "")).strip(): t.get("type") for t in lookups.subject_types}
    for name in SUBJECT_TYPE_NAMES.get(subject_type, ()):
        if name in by_name:
            return by_name[name]
    return None


def certificate_type_code(lookups: IcpLookups, *, person: bool, subject_code: int | None) -> int | None:
    """The ID card's type (居民身份证) for a person; for the subject, the licence type of its
    subject type (营业执照 preferred, else the first of that subject type)."""
    items = lookups.certificate_types
    if person:
        for want in ("居民身份证", "身份证"):
            for t in items:
                if want in str(t.get("name", "")):
                    return t.get("type")
        return None
    mine = [t for t in items if t.get("subject_type") == subject_code]
    for t in mine:
        if "营业执照" in str(t.get("name", "")):
            return t.get("type")
    return mine[0].get("type") if mine else None


def service_type_codes(lookups: IcpLookups, names: list[str]) -> tuple[list[int], list[str]]:
    """(codes, names not in WeChat's list). Which level a type is, WeChat judges."""
    by_name = {str(t.get("name", "")).strip(): t.get("type") for t in lookups.service_content_types}
    codes, unknown = [], []
    for n in names:
        (codes.append(by_name[n.strip()]) if n.strip() in by_name else unknown.append(n))
    return codes, unknown


def nrlx_code(lookups: IcpLookups, name_zh: str, configured: int | None = None) -> int | None:
    for t in lookups.nrlx_types:
        if str(t.get("name", "")).strip() == name_zh:
            return t.get("type")
    return configured


_DIVISION_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "地区", "省",
                      "市", "区", "县", "盟", "旗")


def _short(name: str) -> str:
    for suffix in _DIVISION_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def locate(lookups: IcpLookups, province: str, address: str) -> tuple[dict | None, dict | None, dict | None, str]:
    """(province, city, district items, the address without its leading province/city/district)
    from the intake's short province name and its address. The district is the first one of
    the province whose name (full, then short) appears in the address; its city is the one
    above it (so 北京's 市辖区 needs not appear). Approximate: an address that names no
    district of the list locates no district."""
    prov = next((p for p in lookups.districts if p.get("type", 1) == 1 and
                 (str(p.get("name", "")).startswith(province) or _short(str(p.get("name", ""))) == province)), None)
    if prov is None:
        return None, None, None, address
    best: tuple[int, dict, dict] | None = None
    cities = prov.get("sub_list") or []
    for city in cities:
        for district in city.get("sub_list") or []:
            name = str(district.get("name", ""))
            for candidate in (name, _short(name)):
                pos = address.find(candidate) if len(candidate) >= 2 else -1
                if pos >= 0 and (best is None or pos < best[0]):
                    best = (pos, city, district)
                    break
    if best is None:
        city = next((c for c in cities if str(c.get("name", "")) and str(c.get("name")) in address), None)
        return prov, city, None, address
    _, city, district = best
    rest = address.strip()
    for item in (prov, city, district):
        name = str(item.get("name", ""))
        for candidate in (name, _short(name)):
            if candidate and rest.startswith(candidate):
                rest = rest[len(candidate):].lstrip()
                break
    return prov, city, district, rest or address


def validity_end(value: date | None) -> str:
    """certificate_validity_date_end: YYYYmmdd, or 长期."""
    return "长期" if value is None else value.strftime("%Y%m%d")
