"""Preflight rules: every rule id fails and passes, check digits, materials, configuration."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
import yaml
from stdnum.cn import ric, uscc

from launch.domain.intake import Intake, IntakeFileError, SubjectType, load_intake, parse_intake
from launch.domain.rules import (
    RULE_IDS,
    CheckResult,
    KnownFacts,
    RuleConfig,
    RuleConfigError,
    add_months,
    check,
    materials_for,
    normalise_province,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TODAY = date(2026, 6, 1)
CFG = RuleConfig.load()

ACME_ADMIN_ID = "440304199208184561"
ACME_ADMIN_PHONE = "13912340003"
ACME_CODE = "91440101MA5C00000K"
OTHER_PERSON = {"name": "何另人", "id_number": "440106198807162513", "id_valid_until": "2034-07-16",
                "phone": "13712349876", "email": "he.lingren@example.com"}


def raw(name: str = "client-acme.yaml") -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def run(data: dict, *, facts: KnownFacts | None = None, config: RuleConfig = CFG, today: date = TODAY) -> CheckResult:
    return check(parse_intake(data), today=today, facts=facts or KnownFacts(), config=config)


# ---------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------


def principal_differs(province: str, letter: bool) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        d["subject"]["province"] = province
        d["principal_is_legal_representative"] = False
        d["principal"] = dict(OTHER_PERSON)
        if letter:
            d["documents"].append({"kind": "authorization_letter", "file": "letter.pdf"})

    return mutate


def setter(*path_and_value) -> Callable[[dict], None]:
    *path, value = path_and_value

    def mutate(d: dict) -> None:
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)

    return mutate


def both(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        for m in mutations:
            m(d)

    return mutate


def nothing(d: dict) -> None:
    return None


def pre_approval(item: str, document: str | None = None, in_documents: bool = False) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        d["mini_program"]["none_of_the_above"] = False
        entry = {"item": item}
        if document:
            entry["document"] = document
        d["mini_program"]["pre_approvals"] = [entry]
        if in_documents:
            d["documents"].append({"kind": f"pre_approval_{item}", "file": "approval.pdf"})

    return mutate


def pre_approval_full(item: str, number: str | None = "粤-12345号",
                      document: str | None = "approval.pdf") -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        d["mini_program"]["none_of_the_above"] = False
        entry = {"item": item}
        if number:
            entry["approval_number"] = number
        if document:
            entry["document"] = document
        d["mini_program"]["pre_approvals"] = [entry]

    return mutate


def admin_is_legal_rep(d: dict) -> None:
    d["mini_program"]["admin"] = copy.deepcopy(d["legal_representative"])
    d["mini_program"]["admin_emergency_phone"] = "13912340007"


def oa(**changes) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        d["registration"]["official_account"].update(changes)

    return mutate


def remove_document(kind: str) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        d["documents"] = [doc for doc in d["documents"] if doc["kind"] != kind]

    return mutate


IN_ONE_MONTH = add_months(TODAY, 1)

REUSE_OA_APPID = "wx0123456789abcdef"  # examples/client-reuse.yaml
INDIVIDUAL_BUSINESS_CODE = "92440101MA5D000003"
INDIVIDUAL_BUSINESS = both(setter("subject", "type", "individual_business"),
                           setter("subject", "credit_code", INDIVIDUAL_BUSINESS_CODE))


def INDIVIDUAL_ON_REUSE(d: dict) -> None:  # noqa: N802 - a mutation, named like the others
    """A 个人 subject on the reuse path (structurally valid: no credit code, no licence)."""
    d["subject"]["type"] = "individual"
    d["subject"]["name"] = d["principal"]["name"]
    d["subject"]["credit_code"] = None
    d["subject"]["licence_valid_until"] = None
    d["legal_representative"] = None
    d["principal_is_legal_representative"] = False
    d["authorization_letter"] = None


@dataclass
class Case:
    rule: str
    field: str
    severity: str
    fail: Callable[[dict], None]
    passing: Callable[[dict], None] = nothing
    base: str = "client-acme.yaml"
    facts_fail: KnownFacts = field(default_factory=KnownFacts)
    facts_pass: KnownFacts = field(default_factory=KnownFacts)
    id: str = ""


CASES: list[Case] = [
    Case("unknown-province", "subject.province", "warning",
         setter("subject", "province", "火星"), setter("subject", "province", "广东省")),
    Case("principal-must-be-legal-rep", "principal_is_legal_representative", "error",
         principal_differs("广东", letter=True), principal_differs("北京", letter=True)),
    Case("principal-must-be-legal-rep", "principal_is_legal_representative", "error",
         principal_differs("内蒙古自治区", letter=False), principal_differs("江苏", letter=True), id="long-name"),
    Case("principal-legal-rep-mismatch", "principal.id_number", "error",
         setter("principal", OTHER_PERSON), nothing),
    Case("authorization-letter-required", "authorization_letter", "error",
         setter("authorization_letter", None), nothing, base="client-reuse.yaml"),
    Case("authorization-letter-required", "authorization_letter", "error",
         principal_differs("北京", letter=False), principal_differs("北京", letter=True), id="api-requires"),
    Case("phones-must-differ", "emergency_contact.phone", "error",
         setter("emergency_contact", "phone", "+86 138-1234-0001"), setter("emergency_contact", "phone", "13912340002")),
    Case("remark-length", "mini_program.remark", "error",
         setter("mini_program", "remark", "一" * 19), setter("mini_program", "remark", "一" * 20)),
    Case("remark-length", "mini_program.remark", "error",
         setter("mini_program", "remark", "一" * 201), setter("mini_program", "remark", "一" * 200), id="too-long"),
    Case("profile-intro-length", "mini_program.intro", "error",
         setter("mini_program", "intro", "一二三"), setter("mini_program", "intro", "一二三四")),
    Case("profile-intro-length", "mini_program.intro", "error",
         setter("mini_program", "intro", "一" * 121), setter("mini_program", "intro", "一" * 120), id="too-long"),
    Case("profile-avatar-format", "mini_program.avatar", "error",
         setter("mini_program", "avatar", "clients/x/logo.svg"), setter("mini_program", "avatar", "clients/x/logo.PNG")),
    Case("profile-categories-invalid", "mini_program.categories", "error",
         setter("mini_program", "categories", [f"工具/类目{i}" for i in range(6)]),
         setter("mini_program", "categories", [f"工具/类目{i}" for i in range(5)])),
    Case("profile-categories-invalid", "mini_program.categories[0]", "error",
         setter("mini_program", "categories", ["备忘录"]), setter("mini_program", "categories", ["工具/备忘录"]),
         id="format"),
    Case("profile-categories-invalid", "mini_program.categories", "error",
         setter("mini_program", "categories", ["工具/备忘录", "工具 / 备忘录"]),
         setter("mini_program", "categories", ["工具/备忘录", "工具/信息查询"]), id="twice"),
    Case("address-note-missing", "subject.address_note", "error",
         both(setter("subject", "address_is_most_detailed", True), setter("subject", "address_note", "无门牌号")),
         both(setter("subject", "address_is_most_detailed", True),
              setter("subject", "address_note", "该村无门牌号，通讯地址已是最详细地址。"))),
    Case("pre-approval-document-missing", "mini_program.pre_approvals[0].document", "error",
         pre_approval("news"), pre_approval("news", document="clients/x/news-approval.pdf")),
    Case("pre-approval-document-missing", "mini_program.pre_approvals[0].document", "error",
         pre_approval("drugs_medical_devices"), pre_approval("drugs_medical_devices", in_documents=True),
         id="in-documents"),
    Case("pre-approval-unknown-item", "mini_program.pre_approvals[0].item", "error",
         pre_approval_full("gambling"), pre_approval_full("off_campus_training")),
    Case("pre-approval-unknown-item", "mini_program.pre_approvals[0].item", "error",
         pre_approval_full("博彩"), pre_approval_full("互联网金融"), id="chinese-name"),
    Case("pre-approval-number-missing", "mini_program.pre_approvals[0].approval_number", "error",
         pre_approval_full("education", number=None), pre_approval_full("education")),
    Case("admin-emergency-phone-missing", "mini_program.admin_emergency_phone", "error",
         setter("mini_program", "admin_emergency_phone", None), nothing),
    Case("admin-emergency-phone-same", "mini_program.admin_emergency_phone", "error",
         setter("mini_program", "admin_emergency_phone", "+86 139-1234-0003"), nothing),
    Case("admin-authorization-letter-required", "documents", "error",
         remove_document("admin_authorization_letter"), both(remove_document("admin_authorization_letter"),
                                                             admin_is_legal_rep)),
    Case("admin-authorization-letter-required", "documents", "error",
         remove_document("admin_authorization_letter"), nothing, base="client-reuse.yaml", id="reuse"),
    Case("mobile-invalid", "mini_program.admin_emergency_phone", "error",
         setter("mini_program", "admin_emergency_phone", "02012345678"), nothing, id="admin-emergency"),
    Case("service-types-limit", "mini_program.service_types", "error",
         setter("mini_program", "service_types", [f"类目{n}" for n in range(6)]),
         setter("mini_program", "service_types", [f"类目{n}" for n in range(5)])),
    Case("service-types-limit", "mini_program.service_types", "error",
         setter("mini_program", "service_types", []), setter("mini_program", "service_types", ["网上商城"]),
         id="empty"),
    Case("credit-code-invalid", "subject.credit_code", "error",
         setter("subject", "credit_code", "91440101MA5C00000J"), setter("subject", "credit_code", "91110000600037341L")),
    Case("credit-code-invalid", "subject.credit_code", "error",
         setter("subject", "credit_code", "91440101MA5C0000"), setter("subject", "credit_code", "91310000MA1FL1NL88"),
         id="length"),
    Case("credit-code-type-mismatch", "subject.type", "warning",
         setter("subject", "type", "individual_business"),
         both(setter("subject", "type", "individual_business"), setter("subject", "credit_code", "92440101MA5D000003"))),
    Case("id-number-invalid", "mini_program.admin.id_number", "error",
         setter("mini_program", "admin", "id_number", "110105194912310021"),
         setter("mini_program", "admin", "id_number", "11010519491231002X")),
    Case("id-number-invalid", "mini_program.admin.id_number", "error",
         setter("mini_program", "admin", "id_number", "110105194902300020"),  # 1949-02-30, check digit right
         setter("mini_program", "admin", "id_number", "11010519491231002x"), id="birth-date"),
    Case("id-number-invalid", "legal_representative.id_number", "error",
         setter("legal_representative", "id_number", "440106203001011234"),  # born in 2030: in the future
         nothing, id="future"),
    Case("id-number-invalid", "principal.id_number", "error",
         setter("principal", "id_number", "44010619850312123"), nothing, id="length"),
    Case("mobile-invalid", "mini_program.admin.phone", "error",
         setter("mini_program", "admin", "phone", "02012345678"),  # a Guangzhou landline
         setter("mini_program", "admin", "phone", "+86 139 1234 0003")),
    Case("mobile-invalid", "principal.phone", "error",
         setter("principal", "phone", "+85291234567"), setter("principal", "phone", "138-1234-0001"),
         id="not-mainland"),
    Case("mobile-invalid", "contacts[1].phone", "warning",
         setter("contacts", 1, "phone", "12345"), nothing, id="alert-contact"),
    Case("email-invalid", "registration.email", "error",
         setter("registration", "email", "weapp-acme-gz@"), setter("registration", "email", "Weapp-Acme@Example.com")),
    Case("email-invalid", "principal.email", "error",
         setter("principal", "email", "lin shili@example.com"), setter("principal", "email", None), id="person"),
    Case("email-invalid", "contacts[0].email", "warning",
         setter("contacts", 0, "email", "lin@@example"), nothing, id="alert-contact"),
    Case("document-expiring", "mini_program.admin.id_valid_until", "error",
         setter("mini_program", "admin", "id_valid_until", IN_ONE_MONTH),
         setter("mini_program", "admin", "id_valid_until", date.fromordinal(IN_ONE_MONTH.toordinal() + 1))),
    Case("document-expiring", "subject.licence_valid_until", "error",
         setter("subject", "licence_valid_until", date(2026, 5, 31)),
         setter("subject", "licence_valid_until", "2040-01-01"), id="expired"),
    Case("document-expiring", "documents[3].valid_until", "error",
         setter("documents", 3, "valid_until", date(2026, 6, 20)), setter("documents", 3, "valid_until", None),
         id="document"),
    Case("document-expiring", "authorization_letter.valid_until", "error",
         setter("authorization_letter", "valid_until", TODAY), nothing, base="client-reuse.yaml", id="letter"),
    Case("email-already-used", "registration.email", "error", nothing, nothing,
         facts_fail=KnownFacts(used_emails={"WEAPP-ACME-GZ@example.com"}),
         facts_pass=KnownFacts(used_emails={"someone-else@example.com"})),
    Case("quota-id-number", "mini_program.admin.id_number", "error", nothing, nothing,
         facts_fail=KnownFacts(mini_programs_per_id_number={ACME_ADMIN_ID: 5}),
         facts_pass=KnownFacts(mini_programs_per_id_number={ACME_ADMIN_ID: 4})),
    Case("quota-phone", "mini_program.admin.phone", "error", nothing, nothing,
         facts_fail=KnownFacts(mini_programs_per_phone={ACME_ADMIN_PHONE: 5}),
         facts_pass=KnownFacts(mini_programs_per_phone={ACME_ADMIN_PHONE: 4})),
    Case("quota-subject", "subject.credit_code", "error", nothing, nothing,
         facts_fail=KnownFacts(mini_programs_per_subject={ACME_CODE: 50}),
         facts_pass=KnownFacts(mini_programs_per_subject={ACME_CODE: 49})),
    Case("quota-subject", "subject.credit_code", "error",
         both(setter("subject", "type", "individual_business"), setter("subject", "credit_code", "92440101MA5D000003")),
         both(setter("subject", "type", "individual_business"), setter("subject", "credit_code", "92440101MA5D000003")),
         facts_fail=KnownFacts(mini_programs_per_subject={"92440101MA5D000003": 5}),
         facts_pass=KnownFacts(mini_programs_per_subject={"92440101MA5D000003": 4}), id="individual-business"),
    Case("official-account-not-verified", "registration.official_account.verified", "error",
         oa(verified=False), oa(verified=True), base="client-reuse.yaml"),
    Case("official-account-subject-mismatch", "registration.official_account.same_subject", "error",
         oa(same_subject=False), oa(same_subject=True), base="client-reuse.yaml"),
    Case("official-account-monthly-limit", "registration.official_account.fast_registrations_this_month", "error",
         oa(fast_registrations_this_month=5), oa(fast_registrations_this_month=4), base="client-reuse.yaml"),
    Case("official-account-link-limit", "registration.official_account.linked_same_subject", "error",
         oa(linked_same_subject=10), oa(linked_same_subject=9), base="client-reuse.yaml"),
    Case("official-account-monthly-limit", "registration.official_account.fast_registrations_this_month", "error",
         both(INDIVIDUAL_BUSINESS, oa(fast_registrations_this_month=1)),
         both(INDIVIDUAL_BUSINESS, oa(fast_registrations_this_month=0)), base="client-reuse.yaml",
         id="individual-business"),
    Case("official-account-subject-type", "subject.type", "error",
         INDIVIDUAL_ON_REUSE, INDIVIDUAL_BUSINESS, base="client-reuse.yaml"),
    Case("official-account-registration-pending", "registration.official_account.registration_pending", "error",
         oa(registration_pending=True), oa(registration_pending=False), base="client-reuse.yaml"),
    Case("official-account-registration-pending", "registration.official_account.registration_pending", "error",
         nothing, nothing, base="client-reuse.yaml",
         facts_fail=KnownFacts(pending_fast_registrations={REUSE_OA_APPID: 1}),
         facts_pass=KnownFacts(pending_fast_registrations={"wx00000000000000ff": 1}), id="other-launch"),
    Case("official-account-link-limit", "registration.official_account.linked_other_subject", "error",
         oa(same_subject=False, linked_other_subject=3), oa(same_subject=False, linked_other_subject=2),
         base="client-reuse.yaml", id="other-subject"),
    Case("material-missing", "documents", "warning",
         remove_document("face_check"), nothing),
    Case("material-missing", "principal.email", "warning",
         setter("principal", "email", None), nothing, id="email"),
    Case("material-missing", "documents", "warning",
         remove_document("principal_id_back"), nothing, base="client-reuse.yaml", id="admin-card"),
]


def _case_id(c: Case) -> str:
    return f"{c.rule}-{c.id}" if c.id else c.rule


def test_every_rule_has_a_case() -> None:
    assert {c.rule for c in CASES} == set(RULE_IDS)


def test_rule_ids_are_kebab_case_and_required_ones_exist() -> None:
    required = {
        "principal-must-be-legal-rep", "authorization-letter-required", "phones-must-differ", "remark-length",
        "address-note-missing", "pre-approval-document-missing", "service-types-limit", "credit-code-invalid",
        "id-number-invalid", "mobile-invalid", "email-invalid", "document-expiring", "email-already-used",
        "quota-id-number", "quota-phone", "quota-subject", "official-account-not-verified",
        "official-account-monthly-limit", "official-account-link-limit", "unknown-province",
        "pre-approval-unknown-item", "pre-approval-number-missing", "admin-emergency-phone-missing",
        "admin-emergency-phone-same", "admin-authorization-letter-required",
    }
    assert required <= set(RULE_IDS)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", r) for r in RULE_IDS)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_rule_fails(case: Case) -> None:
    data = raw(case.base)
    case.fail(data)
    result = run(data, facts=case.facts_fail)
    hits = [f for f in result.findings if f.rule_id == case.rule]
    assert hits, f"{case.rule} did not fire: {[f.rule_id for f in result.findings]}"
    assert (case.field, case.severity) in {(f.field, f.severity) for f in hits}, hits
    for f in hits:
        assert f.message == f"{f.message_zh} / {f.message_en}"
        assert f.message_zh and f.message_en
    assert result.ok is (not result.errors)
    if case.severity == "error":
        assert not result.ok


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_rule_passes(case: Case) -> None:
    data = raw(case.base)
    case.passing(data)
    result = run(data, facts=case.facts_pass)
    assert case.rule not in result.rule_ids(), [f.message for f in result.findings]


# ---------------------------------------------------------------------------
# Check digits with published samples
# ---------------------------------------------------------------------------


def test_gb11643_sample() -> None:
    assert ric.is_valid("11010519491231002X")  # the standard's own example
    assert not ric.is_valid("110105194912310021")  # check digit changed
    assert not ric.is_valid("110105194902300020")  # right check digit, 1949-02-30 does not exist
    assert ric.calc_check_digit("110105194902300020") == "0"


@pytest.mark.parametrize("code", ["91110000600037341L", "91310000MA1FL1NL88", ACME_CODE, "92440101MA5D000003"])
def test_uscc_samples(code: str) -> None:
    assert uscc.is_valid(code)
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert not uscc.is_valid(wrong)


def test_id_messages_distinguish_reasons() -> None:
    data = raw()
    data["mini_program"]["admin"]["id_number"] = "110105194902300020"
    (f,) = [f for f in run(data).findings if f.rule_id == "id-number-invalid"]
    assert "出生日期不存在" in f.message_zh and "birth date" in f.message_en
    data["mini_program"]["admin"]["id_number"] = "110105194912310021"
    (f,) = [f for f in run(data).findings if f.rule_id == "id-number-invalid"]
    assert "校验码" in f.message_zh and "check digit" in f.message_en


def test_every_person_id_is_checked() -> None:
    data = raw("client-reuse.yaml")
    for who in ("legal_representative", "principal"):
        data[who]["id_number"] = "110105194912310021"
    data["mini_program"]["admin"]["id_number"] = "110105194912310021"
    fields = {f.field for f in run(data).findings if f.rule_id == "id-number-invalid"}
    assert fields == {"legal_representative.id_number", "principal.id_number", "mini_program.admin.id_number"}


# ---------------------------------------------------------------------------
# Document validity: one calendar month
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "expected"),
    [(date(2026, 1, 31), date(2026, 2, 28)), (date(2024, 1, 31), date(2024, 2, 29)),
     (date(2026, 12, 15), date(2027, 1, 15)), (date(2026, 3, 31), date(2026, 4, 30))],
)
def test_add_months(start: date, expected: date) -> None:
    assert add_months(start, 1) == expected


def test_margin_is_a_calendar_month_not_30_days() -> None:
    today = date(2026, 1, 31)
    data = raw()
    data["mini_program"]["admin"]["id_valid_until"] = date(2026, 3, 1)  # 29 days > one calendar month here
    assert "document-expiring" not in run(data, today=today).rule_ids()
    data["mini_program"]["admin"]["id_valid_until"] = date(2026, 2, 28)
    assert "document-expiring" in run(data, today=today).rule_ids()


def test_margin_configurable() -> None:
    cfg = RuleConfig.load(overrides={"documents": {"margin_months": 3}})
    data = raw()
    data["mini_program"]["admin"]["id_valid_until"] = add_months(TODAY, 2)
    assert "document-expiring" in run(data, config=cfg).rule_ids()
    assert "document-expiring" not in run(data).rule_ids()


# ---------------------------------------------------------------------------
# Materials
# ---------------------------------------------------------------------------


def material(result: CheckResult, kind: str):
    (m,) = [m for m in result.materials if m.kind == kind]
    return m


def test_materials_acme() -> None:
    result = run(raw())
    kinds = [m.kind for m in result.materials]
    for kind in ["business_licence", "legal_rep_id", "principal_id_front", "principal_id_back", "admin_id",
                 "principal_phone", "emergency_phone", "email", "face_check"]:
        assert kind in kinds
        assert material(result, kind).required
    assert not result.missing_materials
    # the principal is the legal rep: their card serves as the legal rep's ID
    assert material(result, "legal_rep_id").provided
    letter = material(result, "authorization_letter")
    assert (letter.required, letter.provided) == (False, False)
    assert all(m.label_zh and m.label_en for m in result.materials)


def test_materials_reuse_letter_required_and_provided() -> None:
    result = run(raw("client-reuse.yaml"))
    letter = material(result, "authorization_letter")
    assert (letter.required, letter.provided) == (True, True)
    assert "江苏" in letter.note
    # the admin is the principal: the principal's card serves for the admin
    assert material(result, "admin_id").provided


@pytest.mark.parametrize(
    ("province", "api", "required"),
    [
        ("江苏", True, True),
        ("江苏", False, True),  # the bureau asks for it whatever the API does
        ("北京", True, True),  # WeChat's API asks for it
        ("北京", False, False),
        ("海南", False, False),
        ("上海", True, False),  # no letter can make a non-legal-rep principal acceptable here
        ("广东", True, False),
    ],
)
def test_authorisation_letter_only_where_needed(province: str, api: bool, required: bool) -> None:
    cfg = RuleConfig.load(overrides={"provinces": {"api_requires_letter_when_different": api}})
    data = raw()
    principal_differs(province, letter=False)(data)
    result = run(data, config=cfg)
    assert material(result, "authorization_letter").required is required
    assert ("authorization-letter-required" in result.rule_ids()) is required


def test_no_letter_when_principal_is_legal_rep() -> None:
    for province in ["江苏", "北京", "吉林"]:
        data = raw()
        data["subject"]["province"] = province
        result = run(data)
        assert not material(result, "authorization_letter").required
        assert "authorization-letter-required" not in result.rule_ids()


def test_pre_approval_materials() -> None:
    data = raw()
    data["mini_program"]["none_of_the_above"] = False
    data["mini_program"]["pre_approvals"] = [{"item": "education", "document": "edu.pdf"}, {"item": "culture"}]
    result = run(data)
    edu, culture = material(result, "pre_approval_education"), material(result, "pre_approval_culture")
    assert edu.required and edu.provided
    assert culture.required and not culture.provided
    assert [m.kind for m in result.missing_materials] == ["pre_approval_culture"]
    # the dedicated rule reports it; material-missing does not repeat it
    assert "material-missing" not in result.rule_ids()
    assert {f.field for f in result.findings if f.rule_id == "pre-approval-document-missing"} == {
        "mini_program.pre_approvals[1].document"
    }


def test_none_of_the_above_needs_no_pre_approval_material() -> None:
    assert not [m for m in run(raw()).materials if m.kind.startswith("pre_approval_")]


def individual_data() -> dict:
    data = raw()
    data["client_code"] = "zhou-studio"
    data["subject"] = {"type": "individual", "name": "周个人", "province": "北京", "address": "北京市朝阳区示例路 1 号"}
    del data["legal_representative"]
    person = {"name": "周个人", "id_number": "11010519491231002X", "id_valid_until": "长期", "phone": "13812340001",
              "email": "zhou@example.com"}
    data["principal"] = dict(person)
    data["principal_is_legal_representative"] = False
    data["mini_program"]["admin"] = dict(person)
    data["documents"] = [{"kind": "principal_id_front"}, {"kind": "principal_id_back"}, {"kind": "face_check"}]
    return data


def test_individual_materials_and_subject_quota() -> None:
    data = individual_data()
    intake = parse_intake(data)
    mats = {m.kind for m in materials_for(intake, CFG)}
    assert "business_licence" not in mats and "legal_rep_id" not in mats and "authorization_letter" not in mats
    result = check(intake, today=TODAY, facts=KnownFacts(), config=CFG)
    assert result.ok and not result.findings, [f.message for f in result.findings]
    facts = KnownFacts(mini_programs_per_id_number={"11010519491231002X": 5})
    result = check(intake, today=TODAY, facts=facts, config=CFG)
    assert {(f.rule_id, f.field) for f in result.findings} == {
        ("quota-id-number", "mini_program.admin.id_number"),
        ("quota-subject", "principal.id_number"),
    }


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def test_packaged_defaults_match_domain() -> None:
    c = RuleConfig.default()
    assert c.remark.min_chars == 20 and c.remark.max_chars == 200
    assert c.service_types.max == 5
    assert c.documents.margin_months == 1
    assert (c.quotas.per_id_number, c.quotas.per_phone) == (5, 5)
    # an organisation -> 50, an individual or 个体户 -> 5; 政府, 媒体, 其他组织 are organisations
    assert {k.value: v for k, v in c.quotas.per_subject.items()} == {
        "enterprise": 50, "public_institution": 50, "government": 50, "media": 50, "other_organisation": 50,
        "individual_business": 5, "individual": 5}
    oa_ = c.official_account
    assert (oa_.fast_registrations_per_month, oa_.links_same_subject, oa_.links_other_subject,
            oa_.new_links_per_month) == (5, 10, 3, 13)
    assert oa_.monthly_limit(SubjectType.individual_business) == 1
    assert oa_.monthly_limit(SubjectType.enterprise) == 5
    assert oa_.reuse_counts_against_new_links is False
    assert SubjectType.individual not in oa_.reuse_subject_types
    p = c.profile
    assert (p.name_changes_before_release, p.avatar_changes_per_year, p.intro_changes_per_month,
            p.categories_max, p.category_changes_per_month, p.windows) == (2, 5, 5, 5, 5, "rolling")
    assert len(c.provinces.must_be_legal_rep) == 22 and len(c.provinces.may_differ) == 9
    assert set(c.provinces.letter_required_when_different) == {"吉林", "山西", "甘肃", "江苏", "安徽", "四川"}


def test_overlay_deep_merges(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text("remark:\n  min_chars: 10\nquotas:\n  per_subject:\n    enterprise: 2\n", encoding="utf-8")
    c = RuleConfig.load(p)
    assert c.remark.min_chars == 10 and c.remark.max_chars == 200
    assert c.quotas.per_subject["enterprise"] == 2 and c.quotas.per_subject["individual"] == 5
    assert c.quotas.per_id_number == 5
    data = raw()
    data["mini_program"]["remark"] = "一" * 12
    assert "remark-length" not in run(data, config=c).rule_ids()
    facts = KnownFacts(mini_programs_per_subject={ACME_CODE: 2})
    assert "quota-subject" in run(raw(), config=c, facts=facts).rule_ids()


def test_overlay_lists_replace(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text("provinces:\n  may_differ: [北京]\n  letter_required_when_different: []\n", encoding="utf-8")
    c = RuleConfig.load(p)
    assert c.provinces.may_differ == ["北京"]
    assert "广东" in c.provinces.must_be_legal_rep


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("quotas:\n  per_idnumber: 3\n", ["quotas.per_idnumber", "Extra inputs"]),
        ("remark:\n  min_chars: many\n", ["remark.min_chars"]),
        ("severity:\n  no-such-rule: off\n", ["severity", "no-such-rule"]),
        ("provinces:\n  may_differ: [北京, 广东]\n", ["provinces", "广东"]),
        ("quotas: [1, 2\n", ["YAML", "line"]),
        ("- just\n- a list\n", ["mapping"]),
    ],
)
def test_overlay_errors_name_file_and_key(tmp_path: Path, text: str, needles: list[str]) -> None:
    p = tmp_path / "my-rules.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(RuleConfigError) as exc:
        RuleConfig.load(p)
    assert str(p) in str(exc.value)
    for needle in needles:
        assert needle in str(exc.value)


def test_overlay_unreadable(tmp_path: Path) -> None:
    with pytest.raises(RuleConfigError, match="nope.yaml"):
        RuleConfig.load(tmp_path / "nope.yaml")


def test_empty_overlay_is_defaults(tmp_path: Path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("# nothing changed\n", encoding="utf-8")
    assert RuleConfig.load(p) == RuleConfig.default()


def test_severity_override_and_off() -> None:
    data = raw()
    data["mini_program"]["remark"] = "短"
    cfg = RuleConfig.load(overrides={"severity": {"remark-length": "warning"}})
    result = run(data, config=cfg)
    assert result.ok and [f.severity for f in result.findings if f.rule_id == "remark-length"] == ["warning"]
    cfg = RuleConfig.load(overrides={"severity": {"remark-length": "off"}})
    assert "remark-length" not in run(data, config=cfg).rule_ids()


@pytest.mark.parametrize(("name", "short"), [("广东省", "广东"), ("内蒙古自治区", "内蒙古"), ("广西壮族自治区", "广西"),
                                             ("新疆维吾尔自治区", "新疆"), ("宁夏回族自治区", "宁夏"), ("上海市", "上海"),
                                             ("北京", "北京")])
def test_normalise_province(name: str, short: str) -> None:
    assert normalise_province(name) == short


# ---------------------------------------------------------------------------
# Examples and privacy
# ---------------------------------------------------------------------------


def _expected(path: Path) -> set[str] | None:
    """The `# expect:` header: rule ids, `(none)`, or `parse error` (-> None)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#\s*expect:\s*(.*)$", line)
        if m:
            value = m.group(1).strip()
            if value == "parse error":
                return None
            if value == "(none)":
                return set()
            return {v.strip() for v in value.split(",")}
    raise AssertionError(f"{path.name} has no '# expect:' header")


EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def test_examples_present() -> None:
    assert {"client-acme.yaml", "client-reuse.yaml", "broken-malformed.yaml"} <= set(EXAMPLE_FILES)
    assert len([n for n in EXAMPLE_FILES if n.startswith("broken-")]) >= 4


@pytest.mark.parametrize("today", [TODAY, date.today()], ids=["fixed", "today"])
@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_examples_do_what_they_claim(name: str, today: date) -> None:
    path = EXAMPLES / name
    expected = _expected(path)
    if expected is None:
        with pytest.raises(IntakeFileError):
            load_intake(path)
        return
    result = check(load_intake(path), today=today, facts=KnownFacts(), config=CFG)
    assert result.rule_ids() == expected, [f.message for f in result.findings]
    if expected:
        assert not result.ok
        assert name.startswith("broken-")
    else:
        assert result.ok and not result.findings and not result.missing_materials


def _raw_values(intake: Intake) -> set[str]:
    values: set[str] = set()
    for _, p in intake.people():
        values |= {p.id_number, p.phone}
    values.add(intake.emergency_contact.phone)
    if intake.subject.credit_code:
        values.add(intake.subject.credit_code)
    for c in intake.contacts:
        if c.phone:
            values.add(c.phone)
    for vals in intake.identifiers().values():
        values |= set(vals)
    return {v for v in values if v}


def _everything_wrong(data: dict) -> tuple[dict, KnownFacts]:
    data = copy.deepcopy(data)
    data["mini_program"]["admin"]["id_number"] = "440304199208184562"
    data["legal_representative"]["id_number"] = "440106198503121238"
    data["principal"]["phone"] = "02012345678"
    data["emergency_contact"]["phone"] = "020-1234-5678"
    data["mini_program"]["admin"]["phone"] = "1391234000"
    data["subject"]["credit_code"] = "91440101MA5C00000J"
    data["contacts"][1]["phone"] = "1371234000"
    facts = KnownFacts(
        mini_programs_per_id_number={"440304199208184562": 9},
        mini_programs_per_phone={"1391234000": 9},
        mini_programs_per_subject={"91440101MA5C00000J": 99},
        used_emails={"weapp-acme-gz@example.com"},
    )
    return data, facts


@pytest.mark.parametrize("name", [n for n in EXAMPLE_FILES if n != "broken-malformed.yaml"])
def test_no_raw_personal_values_in_findings(name: str) -> None:
    intake = load_intake(EXAMPLES / name)
    facts = KnownFacts(
        mini_programs_per_id_number=dict.fromkeys(intake.identifiers()["id_number"], 99),
        mini_programs_per_phone=dict.fromkeys(intake.identifiers()["phone"], 99),
        mini_programs_per_subject=dict.fromkeys(intake.identifiers()["credit_code"], 99),
    )
    result = check(intake, today=TODAY, facts=facts, config=CFG)
    assert {"quota-id-number", "quota-phone"} <= result.rule_ids()
    text = json.dumps(result.model_dump(mode="json"), ensure_ascii=False)
    summary = json.dumps(intake.masked_summary(), ensure_ascii=False)
    for value in _raw_values(intake):
        assert value not in text, value
        assert value not in summary, value


def test_no_raw_values_when_everything_is_wrong() -> None:
    data, facts = _everything_wrong(raw())
    intake = parse_intake(data)
    result = check(intake, today=TODAY, facts=facts, config=CFG)
    assert {"id-number-invalid", "mobile-invalid", "credit-code-invalid", "quota-id-number", "quota-phone",
            "quota-subject", "email-already-used"} <= result.rule_ids()
    text = json.dumps(result.model_dump(mode="json"), ensure_ascii=False)
    for value in _raw_values(intake) | {"020-1234-5678", "weapp-acme-gz@example.com"}:
        assert value not in text, value


def test_result_serialises() -> None:
    data = raw()
    data["mini_program"]["remark"] = "短"
    dumped = run(data).model_dump(mode="json")
    assert dumped["ok"] is False
    (f,) = dumped["findings"]
    assert set(f) == {"severity", "rule_id", "field", "message_zh", "message_en", "message"}
    assert {"kind", "label_zh", "label_en", "required", "provided", "note"} <= set(dumped["materials"][0])


def test_errors_before_warnings() -> None:
    data = raw()
    data["subject"]["province"] = "火星"
    data["mini_program"]["remark"] = "短"
    sev = [f.severity for f in run(data).findings]
    assert sev == sorted(sev, key=lambda s: s != "error") and set(sev) == {"error", "warning"}
