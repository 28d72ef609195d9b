"""The client intake model: loading, structural errors, identifiers, masking, JSON Schema."""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from launch.domain.intake import (
    DOCUMENT_KINDS,
    Intake,
    IntakeFileError,
    intake_json_schema,
    load_intake,
    normalise_phone,
    parse_intake,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VALID = ["client-acme.yaml", "client-reuse.yaml"]


def raw(name: str = "client-acme.yaml") -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict | str, name: str = "intake.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def problems_of(exc: pytest.ExceptionInfo[IntakeFileError]) -> dict[str, str]:
    return {loc: f"{zh} / {en}" for loc, zh, en in exc.value.problems}


# ---------------------------------------------------------------------------
# Valid files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID)
def test_valid_examples_load(name: str) -> None:
    intake = load_intake(EXAMPLES / name)
    assert isinstance(intake, Intake)
    assert re.fullmatch(r"[a-z0-9-]+", intake.client_code)


def test_acme_fields() -> None:
    i = load_intake(EXAMPLES / "client-acme.yaml")
    assert i.subject.type.value == "enterprise"
    assert i.subject.licence_valid_until is None  # 长期
    assert i.legal_representative is not None
    assert i.legal_representative.id_valid_until == date(2035, 3, 12)
    assert i.registration.path == "standalone"
    assert i.mini_program.none_of_the_above is True
    assert i.has_document("face_check")
    assert not i.has_document("authorization_letter")


def test_reuse_fields() -> None:
    i = load_intake(EXAMPLES / "client-reuse.yaml")
    assert i.registration.official_account is not None
    assert i.registration.official_account.verified
    assert i.principal_is_legal_representative is False
    # the top-level authorization_letter counts as the document
    assert [path for path, _ in i.find_documents("authorization_letter")] == ["authorization_letter"]
    assert i.legal_representative is not None and i.legal_representative.id_valid_until is None


@pytest.mark.parametrize("word", ["长期", "long-term", "Long-Term", "长期有效", "permanent"])
def test_long_term_words(word: str) -> None:
    data = raw()
    data["principal"]["id_valid_until"] = word
    assert parse_intake(data).principal.id_valid_until is None


def test_unquoted_numbers_are_text() -> None:
    data = raw()
    data["principal"]["phone"] = 13812340001
    data["legal_representative"]["id_number"] = 440106198503121237
    i = parse_intake(data)
    assert i.principal.phone == "13812340001"
    assert i.legal_representative is not None
    assert i.legal_representative.id_number == "440106198503121237"


def test_format_problems_are_not_parse_errors() -> None:
    """Bad check digits, bad phones, short remarks load fine: they are preflight findings."""
    data = raw()
    data["principal"]["id_number"] = "110105194912310021"
    data["principal"]["phone"] = "12345"
    data["principal"]["email"] = "not an email"
    data["mini_program"]["remark"] = "短"
    data["subject"]["credit_code"] = "91440101MA5C000000"
    data["mini_program"]["service_types"] = [f"t{n}" for n in range(9)]
    parse_intake(data)


def test_documents_cover_every_kind() -> None:
    data = raw()
    data["documents"] = [{"kind": k} for k in DOCUMENT_KINDS]
    i = parse_intake(data)
    assert all(i.has_document(k) for k in DOCUMENT_KINDS)


def test_pre_approval_document_found_in_either_place() -> None:
    data = raw()
    data["mini_program"]["none_of_the_above"] = False
    data["mini_program"]["pre_approvals"] = [{"item": "news", "document": "news.pdf"}, {"item": "culture"}]
    data["documents"].append({"kind": "pre_approval_culture", "file": "culture.pdf"})
    i = parse_intake(data)
    assert [p for p, _ in i.find_documents("pre_approval_news")] == ["mini_program.pre_approvals[0]"]
    assert [p for p, _ in i.find_documents("pre_approval_culture")] == ["documents[6]"]
    assert not i.has_document("pre_approval_education")


# ---------------------------------------------------------------------------
# identifiers() and masked_summary()
# ---------------------------------------------------------------------------


def test_identifiers_normalised() -> None:
    data = raw()
    data["mini_program"]["admin"]["id_number"] = "11010519491231002x"
    data["mini_program"]["admin"]["phone"] = "+86 139-1234-0003"
    data["registration"]["email"] = "WeApp-Acme-GZ@Example.COM"
    data["subject"]["credit_code"] = "91440101ma5c00000k"
    ids = parse_intake(data).identifiers()
    assert ids == {
        "id_number": ["11010519491231002X"],
        "phone": ["13912340003"],
        "email": ["weapp-acme-gz@example.com"],
        "credit_code": ["91440101MA5C00000K"],
    }


def test_identifiers_reuse_without_email() -> None:
    ids = load_intake(EXAMPLES / "client-reuse.yaml").identifiers()
    assert ids["email"] == []
    assert ids["id_number"] == ["32011119830704221X"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("13812340001", "13812340001"), ("+86 138 1234 0001", "13812340001"), ("0086-138-1234-0001", "13812340001"),
     ("8613812340001", "13812340001")],
)
def test_normalise_phone(value: str, expected: str) -> None:
    assert normalise_phone(value) == expected


def _personal_values(intake: Intake) -> set[str]:
    values: set[str] = set()
    people = [p for _, p in intake.people()]
    for p in people:
        values |= {p.id_number, p.phone}
        if p.email:
            values.add(p.email)
    values.add(intake.emergency_contact.phone)
    if intake.subject.credit_code:
        values.add(intake.subject.credit_code)
    if intake.registration.email:
        values.add(intake.registration.email)
    for c in intake.contacts:
        values |= {v for v in (c.email, c.phone) if v}
    for vals in intake.identifiers().values():
        values |= set(vals)
    return values


@pytest.mark.parametrize("name", VALID)
def test_masked_summary_has_nothing_personal(name: str) -> None:
    intake = load_intake(EXAMPLES / name)
    text = json.dumps(intake.masked_summary(), ensure_ascii=False)
    for value in _personal_values(intake):
        assert value not in text, f"{value!r} in the clear"
    # full names are masked to the surname
    for _, person in intake.people():
        assert person.name not in text
    assert "*" in text


def test_masked_summary_individual_hides_name_and_address() -> None:
    data = individual_data()
    intake = parse_intake(data)
    summary = intake.masked_summary()
    text = json.dumps(summary, ensure_ascii=False)
    assert "周个人" not in text
    assert data["subject"]["address"] not in text
    assert summary["subject"]["credit_code"] == ""


def individual_data() -> dict:
    data = raw()
    data["client_code"] = "zhou-studio"
    data["subject"] = {
        "type": "individual",
        "name": "周个人",
        "province": "北京",
        "address": "北京市朝阳区示例路 1 号院 2 号楼 301",
    }
    del data["legal_representative"]
    person = {"name": "周个人", "id_number": "11010519491231002X", "id_valid_until": "长期", "phone": "13812340001",
              "email": "zhou@example.com"}
    data["principal"] = dict(person)
    data["principal_is_legal_representative"] = False
    data["mini_program"]["admin"] = dict(person)
    data["documents"] = [{"kind": "principal_id_front"}, {"kind": "principal_id_back"}, {"kind": "face_check"}]
    return data


def test_individual_subject_loads() -> None:
    i = parse_intake(individual_data())
    assert i.legal_representative is None
    assert i.identifiers()["credit_code"] == []
    assert i.subject_key() == ("id_number", "11010519491231002X")


# ---------------------------------------------------------------------------
# load_intake errors
# ---------------------------------------------------------------------------


def test_malformed_example_reports_line() -> None:
    path = EXAMPLES / "broken-malformed.yaml"
    with pytest.raises(IntakeFileError) as exc:
        load_intake(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "line 15" in msg and "第 15 行" in msg
    assert "YAML" in msg


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(IntakeFileError) as exc:
        load_intake(missing)
    assert str(missing) in str(exc.value)
    assert "无法读取" in str(exc.value) and "cannot read" in str(exc.value)


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "gbk.yaml"
    p.write_bytes("client_code: 客户".encode("gbk"))
    with pytest.raises(IntakeFileError, match="cannot read"):
        load_intake(p)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(IntakeFileError) as exc:
        load_intake(write(tmp_path, text))
    assert "mapping" in str(exc.value) and "映射" in str(exc.value)


def test_duplicate_key_refused(tmp_path: Path) -> None:
    text = (EXAMPLES / "client-acme.yaml").read_text(encoding="utf-8")
    text = text.replace('  phone: "13912340002"\n', '  phone: "13912340002"\n  phone: "13912340009"\n', 1)
    with pytest.raises(IntakeFileError) as exc:
        load_intake(write(tmp_path, text))
    assert "duplicate key 'phone'" in str(exc.value)
    assert re.search(r"line \d+", str(exc.value))


def test_missing_field_named_by_path(tmp_path: Path) -> None:
    data = raw()
    del data["principal"]["phone"]
    path = write(tmp_path, data)
    with pytest.raises(IntakeFileError) as exc:
        load_intake(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "principal.phone: 缺少必填字段 / Field required" in msg


def test_extra_key_named_by_path(tmp_path: Path) -> None:
    data = raw()
    data["subject"]["colour"] = "blue"
    data["documents"][1]["pages"] = 2
    with pytest.raises(IntakeFileError) as exc:
        load_intake(write(tmp_path, data))
    probs = problems_of(exc)
    assert "subject.colour" in probs and "未知字段" in probs["subject.colour"]
    assert "documents[1].pages" in probs


def test_all_errors_listed(tmp_path: Path) -> None:
    data = raw()
    del data["principal"]["phone"]
    data["subject"]["type"] = "company"
    data["mini_program"]["service_types"] = "网上商城"
    data["registration"]["official_account"] = {"name": "x"}
    data["principal"]["id_valid_until"] = "2030-02-30"
    data["documents"][0]["kind"] = "licence"
    data["mini_program"]["admin"]["id_valid_until"] = None
    with pytest.raises(IntakeFileError) as exc:
        load_intake(write(tmp_path, data))
    probs = problems_of(exc)
    for loc in [
        "principal.phone",
        "subject.type",
        "mini_program.service_types",
        "registration.official_account.appid",
        "principal.id_valid_until",
        "documents[0].kind",
        "mini_program.admin.id_valid_until",
    ]:
        assert loc in probs, (loc, probs)
    assert "长期" in probs["principal.id_valid_until"]
    assert f"{len(probs)} 处结构错误" in str(exc.value)


def test_error_message_never_echoes_the_value(tmp_path: Path) -> None:
    data = raw()
    data["principal"]["id_valid_until"] = "440106198503121237"
    data["principal"]["email"] = ["13812340001"]
    with pytest.raises(IntakeFileError) as exc:
        load_intake(write(tmp_path, data))
    assert "440106198503121237" not in str(exc.value)
    assert "13812340001" not in str(exc.value)


@pytest.mark.parametrize(
    ("mutate", "loc", "needle"),
    [
        (lambda d: d["registration"].pop("email"), "registration", "registration.email"),
        (lambda d: d["registration"].update(path="reuse_official_account", email=None), "registration",
         "official_account"),
        (lambda d: d["registration"].update(official_account={"name": "x", "appid": "wx1", "verified": True,
                                                                "same_subject": True}), "registration",
         "no official_account"),
        (lambda d: d["subject"].pop("credit_code"), "subject", "credit_code"),
        (lambda d: d["subject"].pop("licence_valid_until"), "subject", "licence_valid_until"),
        (lambda d: d["subject"].update(type="individual"), "subject", "no credit_code"),
        (lambda d: d["mini_program"].update(pre_approvals=[{"item": "news"}]), "mini_program", "contradicts"),
        (lambda d: d["mini_program"].update(none_of_the_above=False), "mini_program", "none_of_the_above"),
        (lambda d: d["mini_program"].update(none_of_the_above=False,
                                            pre_approvals=[{"item": "news"}, {"item": "news"}]),
         "mini_program", "twice"),
        (lambda d: d.pop("legal_representative"), "", "legal_representative"),
        (lambda d: d.update(client_code="Acme GZ"), "client_code", "格式不符"),
        (lambda d: d["mini_program"].update(pre_approvals=[{"item": "Gambling!"}], none_of_the_above=False),
         "mini_program.pre_approvals[0].item", "格式不符"),
        (lambda d: d.update(authorization_letter={"kind": "business_licence"}), "", "authorization_letter.kind"),
        (lambda d: d["registration"].update(
            path="reuse_official_account",
            official_account={"name": "x", "appid": "wx", "verified": True, "same_subject": True,
                              "fast_registrations_this_month": -1}),
         "registration.official_account.fast_registrations_this_month", "不能为负数"),
    ],
)
def test_structural_combinations(mutate, loc: str, needle: str) -> None:
    data = copy.deepcopy(raw())
    mutate(data)
    with pytest.raises(IntakeFileError) as exc:
        parse_intake(data, source="t.yaml")
    probs = problems_of(exc)
    assert loc in probs, probs
    assert needle in probs[loc]
    assert str(exc.value).startswith("t.yaml: ")


def test_individual_with_licence_refused() -> None:
    data = individual_data()
    data["subject"]["licence_valid_until"] = "2030-01-01"
    with pytest.raises(IntakeFileError, match="no licence"):
        parse_intake(data)


def test_dates_stay_text_in_yaml_so_errors_have_paths(tmp_path: Path) -> None:
    text = (EXAMPLES / "client-acme.yaml").read_text(encoding="utf-8").replace("2035-03-12", "2035-02-30", 1)
    with pytest.raises(IntakeFileError) as exc:
        load_intake(write(tmp_path, text))
    assert "legal_representative.id_valid_until" in problems_of(exc)


# ---------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------


def test_json_schema_is_json_with_descriptions() -> None:
    schema = json.loads(json.dumps(intake_json_schema(), ensure_ascii=False))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    checked = 0
    for where in [schema, *schema["$defs"].values()]:
        for name, prop in where.get("properties", {}).items():
            desc = prop.get("description", "")
            assert " / " in desc, (name, desc)
            assert re.search(r"[\u4e00-\u9fff]", desc), (name, desc)
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("name", VALID)
def test_examples_validate_against_schema(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from launch.domain.intake import _IntakeLoader  # dates as text, like the file

    data = yaml.load((EXAMPLES / name).read_text(encoding="utf-8"), Loader=_IntakeLoader)  # noqa: S506
    jsonschema.validate(data, intake_json_schema())
