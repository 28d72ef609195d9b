"""Catalogue, gate forms, decision targeting and the plan: pure, no server."""

from __future__ import annotations

from launch.domain.catalogue import default_catalogue

import ast
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import CatalogueError, load_catalogue
from launch.domain.decisions import release_blockers, target_attempt
from launch.domain.forms import FormError
from launch.domain.plan import make_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


# ------------------------------------------------------------------ catalogue


def test_every_gate_of_the_domain_is_catalogued_with_a_form(cat):
    expected = {
        "email-activation", "subject-info", "wechat-verification", "official-account-authorization",
        "fast-registration", "admin-binding", "filing-submission", "face-verification", "first-review",
        "sms-verification", "bureau-review", "design-draft", "design-confirmation", "implementation",
        "content", "review-submission", "code-review", "release",
        # filing and review (issue 10): WeChat's order, the SMS resubmission, the trial version
        "filing-materials", "filing-resubmission", "trial-acceptance",
    }
    assert expected <= set(cat.gates) and all(g.form for g in cat.gates.values())


def test_paths_and_subject_types_select_gates(cat):
    standalone = [g.id for g in cat.gates_of("registration", "standalone", "enterprise")]
    assert standalone == ["email-activation", "subject-info", "wechat-verification", "mini-program-profile"]
    # Individuals cannot get 认证: the verification gate is skipped for them.
    assert [g.id for g in cat.gates_of("registration", "standalone", "individual")] == [
        "email-activation", "subject-info", "mini-program-profile"]
    # On the reuse path the 认证 gate is met only after "registered but 认证 failed".
    reuse = [g.id for g in cat.gates_of("registration", "reuse_official_account", "enterprise")]
    assert reuse == ["official-account-authorization", "fast-registration", "admin-binding", "mini-program-profile"]
    assert cat.gate("wechat-verification").path is None
    assert cat.gate("wechat-verification").optional_on_paths == ("reuse_official_account",)


def test_deadline_rules_match_the_domain(cat):
    assert cat.gate("sms-verification").deadline.hours == 24
    assert cat.gate("sms-verification").ladder == "sms"
    assert cat.gate("face-verification").deadline.hours == 24  # the notice; the task: valid_for
    assert cat.gate("face-verification").valid_for.days == 3
    assert cat.gate("face-verification").ladder == "face-24h"
    assert cat.gate("first-review").deadline.workdays == 2
    assert cat.gate("bureau-review").deadline.workdays == 20
    assert cat.gate("code-review").deadline.workdays == 7


def test_phases_in_dependency_order(cat):
    order = [p.id for p in cat.phase_order()]
    assert order.index("registration") < order.index("filing")
    assert order.index("design") < order.index("implementation") < order.index("content") < order.index("review")
    assert order[-1] == "release" and set(cat.phases["release"].after) == {"review", "filing"}


def test_gate_keys_are_prefect_safe(cat):
    for gate in cat.gates.values():
        key = gate.key(12)
        assert key == key.lower() and all(c.isalnum() or c == "-" for c in key)


def test_override_file_changes_one_figure(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("gates:\n  code-review:\n    deadline: {workdays: 5}\n", encoding="utf-8")
    cat = load_catalogue(f)
    assert cat.gate("code-review").deadline.workdays == 5
    assert cat.gate("bureau-review").deadline.workdays == 20


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("gates:\n  code-review:\n    deadline: {workdays: 5, hours: 3}\n", "exactly one"),
        ("gates:\n  code-review:\n    actor: nobody\n", "unknown actor"),
        ("phases:\n  design:\n    after: [release]\n", "cycle"),
        ("phases:\n  design:\n    estimate_wd: [3, 1]\n", "min <= max"),
        ("gates:\n  made-up:\n    phase: design\n", "made-up"),
        ("- a list\n", "mapping"),
        ("gates: [\n", "YAML"),
    ],
)
def test_bad_override_is_refused_naming_the_problem(tmp_path, text, fragment):
    f = tmp_path / "p.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(f)
    assert fragment in str(err.value) and str(f) in str(err.value)


# ------------------------------------------------------------------ forms


def test_bureau_approval_needs_a_well_formed_filing_number():
    ok = default_catalogue().validate_form("bureau-review", {"decided_by": "李", "outcome": "approved", "filing_number": "粤B2-20090059-1626X"})
    assert ok.filing_number == "粤B2-20090059-1626X"
    default_catalogue().validate_form("bureau-review", {"decided_by": "李", "outcome": "approved", "filing_number": "京ICP备2023012345号-1X"})
    with pytest.raises(FormError) as missing:
        default_catalogue().validate_form("bureau-review", {"decided_by": "李", "outcome": "approved"})
    assert [p.rule for p in missing.value.problems] == ["filing-number-required"]
    # A subject's number (no -<n>X) is not a mini-program's number.
    with pytest.raises(FormError) as subject_number:
        default_catalogue().validate_form("bureau-review", {"decided_by": "李", "outcome": "approved", "filing_number": "粤B2-20090059"})
    assert subject_number.value.problems[0].field == "filing_number"
    assert subject_number.value.problems[0].rule == "filing-number-format"


@pytest.mark.parametrize(
    "gate, data, field",
    [
        ("code-review", {"outcome": "failed"}, "reason"),
        ("first-review", {"outcome": "rejected"}, "reason"),
        ("bureau-review", {"outcome": "rejected"}, "reason"),
        ("design-confirmation", {"outcome": "rework"}, "feedback"),
        ("fast-registration", {"outcome": "succeeded"}, "appid"),
        ("sms-verification", {"outcome": "rejected"}, "reason"),
    ],
)
def test_refusals_need_their_reason(gate, data, field):
    with pytest.raises(FormError) as err:
        default_catalogue().validate_form(gate, {"decided_by": "王", **data})
    assert [p.field for p in err.value.problems] == [field]
    assert " / " in err.value.problems[0].message  # Chinese and English


@pytest.mark.parametrize(
    "gate, data, field, rule",
    [
        ("code-review", {"outcome": "maybe"}, "outcome", "literal-error"),
        ("code-review", {"outcome": "passed", "decided_by": ""}, "decided_by", "string-too-short"),
        ("subject-info", {"appid": "wxNOTHEX", "original_id": "gh_0123456789ab"}, "appid", "string-pattern-mismatch"),
        ("review-submission", {"version": "1", "feedback": "长" * 201}, "feedback", "string-too-long"),
        ("release", {"colour": "red"}, "colour", "extra-forbidden"),
    ],
)
def test_field_rules_name_the_field(gate, data, field, rule):
    with pytest.raises(FormError) as err:
        default_catalogue().validate_form(gate, {"decided_by": "王", **data} if "decided_by" not in data else data)
    assert (field, rule) in [(p.field, p.rule) for p in err.value.problems]


def test_unknown_gate_and_missing_actor():
    with pytest.raises(FormError) as err:
        default_catalogue().validate_form("no-such-gate", {"decided_by": "x"})
    assert err.value.problems[0].rule == "unknown-gate"
    with pytest.raises(FormError) as err:
        default_catalogue().validate_form("release", {})
    assert err.value.problems[0].field == "decided_by"


def test_form_schema_carries_choices_for_the_prefect_ui():
    schema = default_catalogue().gate("code-review").form.model_json_schema()
    assert schema["properties"]["outcome"]["enum"] == ["passed", "failed"]
    assert "decided_by" in schema["required"]


# ------------------------------------------------------------------ decision targeting


@dataclass
class S:
    step: str
    attempt: int
    status: str


@dataclass
class D:
    gate: str
    attempt: int
    outcome: str
    consumed_at: object = None


def test_not_reached_yet_targets_attempt_one():
    assert target_attempt("bureau-review", [], []).attempt == 1


def test_waiting_gate_targets_its_attempt():
    steps = [S("bureau-review", 1, "rejected"), S("bureau-review", 2, "waiting")]
    assert target_attempt("bureau-review", steps, [D("bureau-review", 1, "rejected", "t")]).attempt == 2


def test_after_a_refusal_the_next_attempt_is_recorded_early():
    steps = [S("sms-verification", 1, "rejected")]
    assert target_attempt("sms-verification", steps, [D("sms-verification", 1, "timed_out", "t")]).attempt == 2


def test_passed_gate_and_pending_decision_are_duplicates():
    passed = target_attempt("release", [S("release", 1, "done")], [D("release", 1, "released", "t")])
    assert passed.attempt is None and "already passed" in passed.duplicate_reason
    pending = target_attempt("content", [], [D("content", 1, "done", None)])
    assert pending.attempt is None and "waiting for the flow" in pending.duplicate_reason


def test_release_blockers():
    assert release_blockers(True, True) == []
    assert [p.rule for p in release_blockers(False, True)] == ["release-needs-filing"]
    assert {p.rule for p in release_blockers(False, False)} == {"release-needs-filing", "release-needs-review"}


# ------------------------------------------------------------------ plan


def test_plan_respects_parallel_branches_and_holidays(cat):
    plan = make_plan(cat, WorkCalendar(), date(2026, 9, 24), "standalone")
    by = {p.phase: p for p in plan.phases}
    # Registration 1–3 wd from Thu 09-24: 09-25..27 is the Mid-Autumn break, so 09-28 (Mon) at the earliest.
    assert by["registration"].earliest_finish == date(2026, 9, 28)
    assert by["registration"].latest_finish == date(2026, 9, 30)
    # Design starts with filing after registration, not after filing.
    assert by["design"].earliest_start == by["filing"].earliest_start == date(2026, 9, 28)
    # 1 wd after 09-28 is 09-29; National Day 10-01..07 off; 10-10 (Sat) is an adjusted working day.
    assert by["design"].earliest_finish == date(2026, 9, 29)
    assert by["implementation"].earliest_finish == date(2026, 10, 8)
    assert by["content"].earliest_finish == date(2026, 10, 9)
    assert by["review"].earliest_finish == date(2026, 10, 10)
    # Filing 5 wd from 09-28: 09-29, 09-30, 10-08, 10-09, 10-10.
    assert by["filing"].earliest_finish == date(2026, 10, 10)
    # Release waits for the later of review and filing.
    assert plan.go_live_earliest == max(by["review"].earliest_finish, by["filing"].earliest_finish)
    assert plan.go_live_latest == max(by["review"].latest_finish, by["filing"].latest_finish)
    assert plan.provisional is False


def test_plan_into_an_unpublished_year_is_provisional(cat):
    plan = make_plan(cat, WorkCalendar(), date(2026, 12, 15), "reuse_official_account")
    assert plan.provisional is True
    assert plan.to_json()["provisional"] is True


# ------------------------------------------------------------------ purity


def test_domain_imports_nothing_from_prefect_or_the_store():
    for path in (ROOT / "launch" / "domain").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("prefect", "sqlalchemy", "apprise", "launch.store", "fastapi")), (path, name)


def test_join_keys_name_their_branch_and_gate_keys_do_not():
    from launch.domain.catalogue import branch_of_join, join_key

    assert join_key("implementation-2", 3) == "join-implementation-2-3"
    assert branch_of_join(join_key("implementation-2", 3)) == "implementation-2"
    assert branch_of_join("join-design-0") == "design"
    for not_a_join in ("design-draft-1", "join-design", "join--0", "", None, "JOIN-design-0"):
        assert branch_of_join(not_a_join) is None, not_a_join
