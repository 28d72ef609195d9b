"""Registration (issue 10, items 1–5): each test is named after its rule or gate and quotes
its source (/work/shared/domain.md "1. Registration: two paths" and "Events a server
receives"; shared/wechat-platform.md "Registration"). Pure: no server, no store."""

from __future__ import annotations

from launch.domain.catalogue import default_catalogue

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from launch.domain.catalogue import load_catalogue
from launch.domain.forms import FormError, MiniProgramProfileForm
from launch.domain.intake import SubjectType, load_intake, parse_intake
from launch.domain.profile import ProfileChange, changes_in_window, profile_changes, profile_problems
from launch.domain.rules import KnownFacts, RuleConfig, check
from launch.wechat.events import FastRegisterResult
from launch.wechat.mapping import fastregister_answer, plan_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TODAY = datetime(2026, 6, 1).date()
CFG = RuleConfig.load()


def reuse(name: str = "client-reuse.yaml", **oa) -> dict:
    data = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    data["registration"]["official_account"].update(oa)
    return data


def rules_fired(data: dict, facts: KnownFacts | None = None, config: RuleConfig = CFG) -> set[str]:
    return check(parse_intake(data), today=TODAY, facts=facts or KnownFacts(), config=config).rule_ids()


# ---------------------------------------------------------------- item 1: reuse path


def test_official_account_link_limit_reuse_does_not_count_against_new_links():
    """domain.md: "the mini-program created this way is linked to the 公众号 by default and
    does NOT count against the 13-new-links-a-month limit"."""
    assert "official-account-link-limit" not in rules_fired(reuse(new_links_this_month=13))
    assert "official-account-link-limit" not in rules_fired(reuse(new_links_this_month=40))
    # the old reading stays available, configurable
    strict = RuleConfig.load(overrides={"official_account": {"reuse_counts_against_new_links": True}})
    assert "official-account-link-limit" in rules_fired(reuse(new_links_this_month=13), config=strict)
    # the totals still apply: "a 公众号 links at most 10 same-subject ... mini-programs"
    assert "official-account-link-limit" in rules_fired(reuse(linked_same_subject=10))


def test_official_account_monthly_limit_individual_business_once_a_month():
    """domain.md: "at most 5 a month (successes only), and a 个体户's 公众号 once a month"."""
    data = reuse("client-reuse-individual-business.yaml", fast_registrations_this_month=0)
    assert "official-account-monthly-limit" not in rules_fired(data)
    data = reuse("client-reuse-individual-business.yaml", fast_registrations_this_month=1)
    assert "official-account-monthly-limit" in rules_fired(data)


def test_official_account_monthly_limit_other_organisations_five_successes():
    """domain.md: "At most 5 fast registrations a month per 公众号 (only successes count)"."""
    assert "official-account-monthly-limit" not in rules_fired(reuse(fast_registrations_this_month=4))
    assert "official-account-monthly-limit" in rules_fired(reuse(fast_registrations_this_month=5))
    lenient = RuleConfig.load(overrides={"official_account": {"fast_registrations_per_month_by_subject": {"individual_business": 5}}})
    data = reuse("client-reuse-individual-business.yaml", fast_registrations_this_month=1)
    assert "official-account-monthly-limit" not in rules_fired(data, config=lenient)


def test_official_account_subject_type_individual_is_error():
    """domain.md: "only a verified 企业/媒体/政府/其他组织 公众号 qualifies"."""
    result = check(load_intake(EXAMPLES / "broken-reuse-individual.yaml"), today=TODAY, facts=KnownFacts(),
                   config=CFG)
    hits = [f for f in result.findings if f.rule_id == "official-account-subject-type"]
    assert hits and hits[0].severity == "error" and hits[0].field == "subject.type"
    assert "个人" in hits[0].message_zh and "official-account-subject-type" in hits[0].message_en


@pytest.mark.parametrize("stype, code", [
    ("enterprise", "91320500MA1N00000U"),
    ("individual_business", "92440101MA5D000003"),
    ("government", None),
    ("media", None),
    ("other_organisation", None),
    ("public_institution", None),
])
def test_official_account_subject_type_organisations_qualify(stype, code):
    data = reuse()
    data["subject"]["type"] = stype
    if code:
        data["subject"]["credit_code"] = code
    assert "official-account-subject-type" not in rules_fired(data)


def test_official_account_registration_pending():
    """domain.md: "a 公众号 with a registration still pending cannot start another"."""
    assert "official-account-registration-pending" in rules_fired(reuse(registration_pending=True))
    appid = reuse()["registration"]["official_account"]["appid"]
    facts = KnownFacts(pending_fast_registrations={appid: 1})
    assert "official-account-registration-pending" in rules_fired(reuse(), facts=facts)
    assert "official-account-registration-pending" not in rules_fired(reuse())


def test_reuse_individual_business_example_passes():
    result = check(load_intake(EXAMPLES / "client-reuse-individual-business.yaml"), today=TODAY,
                   facts=KnownFacts(), config=CFG)
    assert result.ok and not result.findings, [f.message for f in result.findings]


# ---------------------------------------------------------------- item 4: subject types


@pytest.mark.parametrize("stype, limit", [
    ("enterprise", 50), ("public_institution", 50), ("government", 50), ("media", 50),
    ("other_organisation", 50), ("individual_business", 5),
])
def test_quota_subject_new_subject_types(stype, limit):
    """domain.md: "an organisation → at most 50 mini-programs, an individual or 个体户 → 5"."""
    data = yaml.safe_load((EXAMPLES / "client-acme.yaml").read_text(encoding="utf-8"))
    data["subject"]["type"] = stype
    code = data["subject"]["credit_code"]
    assert "quota-subject" in rules_fired(data, KnownFacts(mini_programs_per_subject={code: limit}))
    assert "quota-subject" not in rules_fired(data, KnownFacts(mini_programs_per_subject={code: limit - 1}))


def test_subject_types_include_government_media_other_organisation():
    assert {t.value for t in SubjectType} == {
        "enterprise", "public_institution", "individual_business", "individual", "government", "media",
        "other_organisation"}


def test_credit_code_type_mismatch_government():
    data = yaml.safe_load((EXAMPLES / "client-acme.yaml").read_text(encoding="utf-8"))
    data["subject"]["type"] = "government"  # the example's code starts 91: an enterprise's
    assert "credit-code-type-mismatch" in rules_fired(data)


# ---------------------------------------------------------------- item 2: the push and the reuse answer


def test_notify_third_fasteregister_answers_the_legal_person_path_not_reuse():
    """domain.md: notify_third_fasteregister "answers the fast registration of an enterprise
    mini-program through the legal person's face check (fastregisterweapp), NOT the
    reuse-a-公众号 path"."""
    ok = plan_for(FastRegisterResult.from_fields(
        {"appid": "wx0123456789abcdef", "status": 0, "info": {"code": "X"}}))
    assert [gate for gate, _ in ok.decisions] == ["subject-info"]
    assert ok.decisions[0][1]["appid"] == "wx0123456789abcdef"
    default_catalogue().validate_form("subject-info", ok.decisions[0][1])  # no original id in the push: still valid
    failed = plan_for(FastRegisterResult.from_fields({"status": 89249, "msg": "任务执行中", "info": {"code": "X"}}))
    assert failed.decisions == [] and "89249" in failed.note
    for plan in (ok, failed):
        assert all(gate != "fast-registration" for gate, _ in plan.decisions)


@pytest.mark.parametrize("response, outcome", [
    ({"errcode": 0, "appid": "wx0123456789abcdef", "is_wx_verify_succ": True, "is_link_succ": True}, "succeeded"),
    ({"errcode": 0, "appid": "wx0123456789abcdef", "is_wx_verify_succ": "false", "is_link_succ": "true"},
     "registered_unverified"),
    ({"errcode": 61058, "errmsg": "ticket invalid"}, "failed"),
])
def test_fast_registration_reuse_answers_at_once(response, outcome):
    """domain.md: the reuse path "answers synchronously (account/fastregister: appid,
    is_wx_verify_succ, is_link_succ)"; registered but 认证 failed is its own outcome."""
    gate, data = fastregister_answer(response)
    assert gate == "fast-registration" and data["outcome"] == outcome
    form = default_catalogue().validate_form(gate, data)
    if outcome != "failed":
        assert form.appid == "wx0123456789abcdef" and form.linked is True
    assert (outcome in form.passing_outcomes) is (outcome != "failed")


def test_fast_registration_registered_unverified_needs_appid():
    with pytest.raises(FormError) as exc:
        default_catalogue().validate_form("fast-registration", {"decided_by": "x", "outcome": "registered_unverified"})
    assert exc.value.problems[0].field == "appid"


# ---------------------------------------------------------------- items 2–3: the registration loop


# ---------------------------------------------------------------- item 5: the profile gate


def test_mini_program_profile_gate_closes_registration_before_filing():
    """The filing branch starts after registration; the profile gate is registration's last."""
    cat = load_catalogue()
    gate = cat.gate("mini-program-profile")
    assert gate.phase == "registration" and gate.path is None
    assert "registration" in cat.phases["filing"].after
    for path in ("standalone", "reuse_official_account"):
        assert [g.id for g in cat.gates_of("registration", path, "enterprise")][-1] == "mini-program-profile"


PROFILE = {"decided_by": "运营", "outcome": "set", "name": "示例小馆", "avatar_set": True,
           "intro": "点餐与会员", "categories": ["餐饮服务"]}


@pytest.mark.parametrize("field, value, rule", [
    ("name", "", "profile-name-missing"),
    ("avatar_set", False, "profile-avatar-missing"),
    ("intro", " ", "profile-intro-missing"),
    ("categories", [], "profile-categories-missing"),
])
def test_mini_program_profile_must_be_set(field, value, rule):
    """wechat-platform.md: submit_audit 86002 "name/avatar/intro not set", 85008 "category not
    set"; get_icp_entrance_info 1025–1027 "information or category missing"."""
    with pytest.raises(FormError) as exc:
        default_catalogue().validate_form("mini-program-profile", {**PROFILE, field: value})
    (problem,) = exc.value.problems
    assert problem.field == field and problem.rule == rule
    assert " / " in problem.message and rule in problem.message


def test_mini_program_profile_categories_from_the_command_line():
    form = default_catalogue().validate_form("mini-program-profile", {**PROFILE, "categories": "餐饮服务|外卖", "avatar_set": "true",
                                                  "name_changes": "1"})
    assert form.categories == ["餐饮服务", "外卖"] and form.avatar_set is True and form.name_changes == 1


NOW = datetime(2026, 6, 20, 4, 0, tzinfo=UTC)
LIMITS = CFG.profile


def answer(**changes) -> MiniProgramProfileForm:
    return MiniProgramProfileForm.model_validate({**PROFILE, **changes})


def history(field: str, *days_ago: int) -> list[ProfileChange]:
    return [ProfileChange(field, NOW - timedelta(days=d)) for d in days_ago]


def rules_of(problems) -> set[str]:
    return {p.rule for p in problems}


def test_profile_name_changes():
    """domain.md: "Name: 2 changes before release"."""
    assert not profile_problems(answer(name_changes=1), history("name", 40), NOW, LIMITS)
    problems = profile_problems(answer(name_changes=1), history("name", 300, 40), NOW, LIMITS)
    assert rules_of(problems) == {"profile-name-changes"}
    assert problems[0].field == "name_changes" and "2" in problems[0].message
    # changes after the first release do not count against "before release"
    released = NOW - timedelta(days=100)
    assert not profile_problems(answer(name_changes=1), history("name", 300, 40), NOW, LIMITS, released_at=released)


def test_profile_avatar_changes():
    """domain.md: "avatar 5 a year"."""
    assert not profile_problems(answer(avatar_changes=1), history("avatar", 10, 50, 100, 200, 370), NOW, LIMITS)
    problems = profile_problems(answer(avatar_changes=1), history("avatar", 10, 50, 100, 200, 300), NOW, LIMITS)
    assert rules_of(problems) == {"profile-avatar-changes"}


def test_profile_intro_changes():
    """domain.md: "intro 5 a month"."""
    assert not profile_problems(answer(intro_changes=1), history("intro", 1, 2, 3, 4, 40), NOW, LIMITS)
    assert rules_of(profile_problems(answer(intro_changes=2), history("intro", 1, 2, 3, 4), NOW, LIMITS)) == {
        "profile-intro-changes"}


def test_profile_category_changes_and_max():
    """domain.md: "service categories at most 5, 5 changes a month"."""
    assert rules_of(profile_problems(answer(categories=["a", "b", "c", "d", "e", "f"]), [], NOW, LIMITS)) == {
        "profile-categories-max"}
    assert not profile_problems(answer(categories=["a", "b", "c", "d", "e"]), [], NOW, LIMITS)
    assert rules_of(profile_problems(answer(category_changes=1), history("categories", 1, 2, 3, 4, 5), NOW,
                                     LIMITS)) == {"profile-category-changes"}


def test_profile_windows_rolling_is_stricter_than_calendar():
    """A change on 31 May counts in the rolling month ending 20 June, not in June's calendar month."""
    past = [ProfileChange("intro", datetime(2026, 5, 31, 4, 0, tzinfo=UTC))] * 5
    assert changes_in_window(past, "intro", NOW, "month", "rolling") == 5
    assert changes_in_window(past, "intro", NOW, "month", "calendar") == 0
    calendar = RuleConfig.load(overrides={"profile": {"windows": "calendar"}}).profile
    assert profile_problems(answer(intro_changes=1), past, NOW, LIMITS)
    assert not profile_problems(answer(intro_changes=1), past, NOW, calendar)


def test_profile_changes_counted_from_the_answer():
    changes = profile_changes(answer(name_changes=1, category_changes=2), NOW)
    assert [(c.field, c.count) for c in changes] == [("name", 1), ("categories", 2)]
