"""Issue 10, filing and review half: each rule and gate tested from its source's own words.

Sources (quoted in each test; docs/domain-rules.md lists them):
- WeChat open platform, 发起小程序管理员人脸核身 (create_icp_verifytask), 注意事项.
- WeChat open platform, 申请小程序备案 (apply_icp_filing) fields, as mirrored by WxJava's
  WxOpenApplyIcpFilingParam (principal_info.emergency_contact / authorization_letter /
  verify_task_id; nrlx_details[].type / code / media).
- WeChat open platform, 获取前置审批项类型 (query_icp_nrlx_types).
- WeChat open platform, 获取小程序备案状态及驳回原因 (get_icp_entrance_info), status enum.
- shared/domain.md, ICP filing step 8 (SMS) and "Review and release".
"""

from __future__ import annotations

from launch.domain.catalogue import default_catalogue

import copy
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from launch.domain.alerts import default_ladders, planned_rungs
from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import load_catalogue
from launch.domain.deadlines import gate_due
from launch.domain.forms import FormError
from launch.domain.intake import parse_intake
from launch.domain.rules import KnownFacts, RuleConfig, RuleConfigError, check
from launch.wechat.events import IcpFilingResult, IcpVerifyResult
from launch.wechat.mapping import decisions_for, note_for

SH = ZoneInfo("Asia/Shanghai")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TODAY = date(2026, 6, 1)
CFG = RuleConfig.load()
WX = "wx0123456789abcdef"


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def raw(name: str = "client-acme.yaml") -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def findings(data: dict, config: RuleConfig = CFG):
    return check(parse_intake(data), today=TODAY, facts=KnownFacts(), config=config).findings


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


# ---------------------------------------------------------------- 6. face verification


def test_face_verification_order_materials_then_face_task_then_submission(cat):
    # create_icp_verifytask: "为避免申请备案时task_id过期,请确保其余所有备案材料已准备好,以及备案前置条件
    # 已完成,再发起人脸核身" — and apply_icp_filing carries principal_info.verify_task_id.
    filing = [g.id for g in cat.gates_of("filing")]
    assert filing.index("filing-materials") < filing.index("face-verification") < filing.index("filing-submission")
    assert filing.index("filing-submission") < filing.index("first-review") < filing.index("sms-verification")
    assert filing.index("sms-verification") < filing.index("bureau-review")
    assert cat.gate("filing-materials").actor == "staff"
    assert "verify_task_id" in default_catalogue().validate_form("filing-submission", {"decided_by": "运营", "verify_task_id": "R5PqRPNb6G"}).payload()


def test_face_verification_notice_lives_24_hours_with_an_urgent_ladder(cat):
    # create_icp_verifytask: "人脸核身通知有效期为 24 小时…过期后需重新发起".
    gate = cat.gate("face-verification")
    assert gate.deadline.hours == 24 and gate.deadline.workdays is None
    assert gate.ladder == "face-24h"
    cal = WorkCalendar()
    opened = at(2026, 10, 1, 9)  # a holiday: clock hours do not care
    due = gate_due(gate, opened, cal)
    assert due.at == at(2026, 10, 2, 9)
    rungs = planned_rungs(gate, opened, due, cal, default_ladders()["face-24h"], opened)
    assert [(r.rung_id, r.fire_at) for r in rungs] == [
        ("notice", opened),
        ("left-12h", at(2026, 10, 1, 21)),
        ("left-4h", at(2026, 10, 2, 5)),
        ("left-1h", at(2026, 10, 2, 8)),
        ("expired", at(2026, 10, 2, 9)),
        ("expired-2h", at(2026, 10, 2, 11)),
    ]
    assert {r.rung_id for r in rungs if r.escalated} == {"expired", "expired-2h"}


def test_face_verification_task_lives_3_days_then_is_redone(cat):
    # create_icp_verifytask: "小程序备案场景下(along_with_auth为false)[task_id有效期]为 3 天".
    gate = cat.gate("face-verification")
    opened = at(2026, 10, 1, 9)
    assert not gate.result_expired(opened, opened + timedelta(days=3) - timedelta(seconds=1))
    assert gate.result_expired(opened, opened + timedelta(days=3))
    assert not cat.gate("first-review").result_expired(opened, opened + timedelta(days=365))


def test_face_verification_push_carries_the_task_id():
    ev = IcpVerifyResult.from_fields({"task_id": "R5PqRPNb6GmG3i0rqd4pTg", "verify_appid": WX, "result": 3})
    ((gate, data),) = decisions_for(ev)
    assert (gate, data["outcome"], data["task_id"]) == ("face-verification", "passed", "R5PqRPNb6GmG3i0rqd4pTg")
    default_catalogue().validate_form(gate, data)


# ---------------------------------------------------------------- 7. SMS: resubmit, then a new SMS


def test_filing_resubmission_comes_before_a_new_sms(cat):
    # shared/domain.md step 8: "On timeout or failure the filing returns to the platform: staff
    # resubmit, and only then is a new SMS sent (a new 24-hour window)". Five wrong entries too.
    gate = cat.gate("filing-resubmission")
    assert (gate.phase, gate.actor) == ("filing", "staff")
    assert "重新提交" in gate.todo_zh and "新短信" in gate.todo_zh
    assert cat.gate("sms-verification").deadline.hours == 24 and cat.gate("sms-verification").ladder == "sms"
    assert default_catalogue().validate_form("filing-resubmission", {"decided_by": "运营"}).outcome == "resubmitted"


def test_sms_timeout_push_still_maps_to_the_sms_gate():
    # get_icp_entrance_info: sms_verify_status "3:核验超时" (meaningful while status is 4).
    ev = IcpFilingResult.from_fields({"authorizer_appid": WX, "beian_status": 4, "sms_verify_status": 3})
    assert [(g, d["outcome"]) for g, d in decisions_for(ev)] == [
        ("first-review", "passed"), ("sms-verification", "timed_out")]


# ---------------------------------------------------------------- 8. 前置审批 from configuration


def test_pre_approval_unknown_item_list_is_seeded_from_wechat():
    # query_icp_nrlx_types example: 新闻 1, 出版 2, 教育 3, 医疗保健 4, 药品和医疗器械 5, 电子公告服务 6,
    # 文化 9, 广播电影电视节目 10, 网络预约车 11, 互联网金融 13, 校外培训 14 — "切勿…硬编码".
    names = {v.name_zh: v.wechat_type for v in CFG.pre_approval_items.values()}
    assert names == {"新闻": 1, "出版": 2, "教育": 3, "医疗保健": 4, "药品和医疗器械": 5, "电子公告服务": 6,
                     "文化": 9, "广播电影电视节目": 10, "网络预约车": 11, "互联网金融": 13, "校外培训": 14}


def test_pre_approval_unknown_item_is_a_bilingual_error_naming_field_and_rule():
    data = raw()
    data["mini_program"].update(none_of_the_above=False, pre_approvals=[
        {"item": "lottery", "approval_number": "x-1", "document": "a.pdf"}])
    (f,) = [f for f in findings(data) if f.rule_id == "pre-approval-unknown-item"]
    assert f.severity == "error" and f.field == "mini_program.pre_approvals[0].item"
    assert "pre-approval-unknown-item" in f.message_zh and "pre-approval-unknown-item" in f.message_en
    assert "lottery" in f.message_zh and " / " in f.message


def test_pre_approval_unknown_item_list_is_overridable(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("pre_approval_items:\n  lottery: {name_zh: 彩票, name_en: lottery, wechat_type: 15}\n"
                     "  ride_hailing: {retired: true}\n", encoding="utf-8")
    cfg = RuleConfig.load(rules)
    data = raw()
    data["mini_program"].update(none_of_the_above=False, pre_approvals=[
        {"item": "彩票", "approval_number": "x-1", "document": "a.pdf"}])
    assert not [f for f in findings(data, cfg) if f.rule_id.startswith("pre-approval")]
    data["mini_program"]["pre_approvals"][0]["item"] = "ride_hailing"
    assert {f.rule_id for f in findings(data, cfg)} == {"pre-approval-unknown-item"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("pre_approval_items:\n  Bad-Key: {name_zh: 坏, name_en: bad}\n", encoding="utf-8")
    with pytest.raises(RuleConfigError, match="pre_approval_items"):
        RuleConfig.load(bad)


def test_pre_approval_number_missing_and_document_missing():
    # apply_icp_filing nrlx_details: "前置审批号,如果前置审批类型不是'以上都不涉及',则必填" and
    # media: "前置审批媒体材料 media_id".
    data = raw()
    data["mini_program"].update(none_of_the_above=False, pre_approvals=[{"item": "教育"}])
    got = {(f.rule_id, f.field) for f in findings(data)}
    assert ("pre-approval-number-missing", "mini_program.pre_approvals[0].approval_number") in got
    assert ("pre-approval-document-missing", "mini_program.pre_approvals[0].document") in got
    result = check(parse_intake(data), today=TODAY, facts=KnownFacts(), config=CFG)
    assert "pre_approval_education" in {m.kind for m in result.missing_materials}


def test_pre_approval_example_passes():
    result = check(parse_intake(raw("client-with-preapproval.yaml")), today=TODAY, facts=KnownFacts(), config=CFG)
    assert result.ok and not result.findings and not result.missing_materials


# ---------------------------------------------------------------- 9. the admin's phone and letter


def test_admin_emergency_phone_missing():
    # apply_icp_filing icp_applets.principal_info.emergency_contact: "负责人应急联系方式".
    data = raw()
    data["mini_program"].pop("admin_emergency_phone")
    (f,) = [f for f in findings(data) if f.rule_id == "admin-emergency-phone-missing"]
    assert f.field == "mini_program.admin_emergency_phone" and "admin-emergency-phone-missing" in f.message


def test_admin_emergency_phone_same():
    # shared/domain.md: two phone numbers "must differ, and each must be the person's own".
    data = raw()
    data["mini_program"]["admin_emergency_phone"] = data["mini_program"]["admin"]["phone"]
    (f,) = [f for f in findings(data) if f.rule_id == "admin-emergency-phone-same"]
    assert "139****0003" in f.message_zh and "13912340003" not in f.message


def test_admin_authorization_letter_required():
    # apply_icp_filing principal_info.authorization_letter: "当主体负责人不是法人时需要主体负责人授权书,
    # 当小程序负责人不是法人时需要小程序负责人授权书".
    data = raw()
    data["documents"] = [d for d in data["documents"] if d["kind"] != "admin_authorization_letter"]
    (f,) = [f for f in findings(data) if f.rule_id == "admin-authorization-letter-required"]
    assert f.severity == "error" and "admin_authorization_letter" in f.message_en
    same = copy.deepcopy(data)
    same["mini_program"]["admin"] = copy.deepcopy(same["legal_representative"])
    same["mini_program"]["admin_emergency_phone"] = "13912340009"
    assert "admin-authorization-letter-required" not in {f.rule_id for f in findings(same)}
    off = RuleConfig.load(overrides={"filing": {"admin_letter_when_not_legal_rep": False}})
    assert "admin-authorization-letter-required" not in {f.rule_id for f in findings(data, off)}


def test_admin_emergency_phone_is_masked_in_the_summary():
    summary = parse_intake(raw()).masked_summary()
    assert summary["mini_program"]["admin_emergency_phone"] == "139****0005"


# ---------------------------------------------------------------- 10. 1025–1027 say what is missing


@pytest.mark.parametrize("status, words", [
    (1025, ["小程序信息未填"]),
    (1026, ["小程序服务类目未填"]),
    (1027, ["小程序信息未填", "小程序服务类目未填"]),
    (1028, ["小程序未认证"]),
])
def test_not_filed_statuses_say_what_is_missing(status, words):
    # get_icp_entrance_info status enum: "1025 未备案 && 小程序信息未填", "1026 未备案 && 小程序类目未填",
    # "1027 未备案 && 小程序信息未填 && 小程序类目未填" (1028–1031 add 小程序未认证).
    ev = IcpFilingResult.from_fields({"authorizer_appid": WX, "beian_status": status})
    assert decisions_for(ev) == []
    note = note_for(ev)
    assert all(w in note for w in words) and "missing" in note and str(status) in note
    plain = note_for(IcpFilingResult.from_fields({"authorizer_appid": WX, "beian_status": 1024}))
    assert "missing" not in plain and "未备案" in plain


# ---------------------------------------------------------------- 11. trial version accepted before 提审


def test_trial_acceptance_gate_comes_before_review_submission(cat):
    # shared/domain.md: "Versions: development → trial (体验版, for trial members) → submitted for
    # review → online"; members include "trial members".
    review = [g.id for g in cat.gates_of("review")]
    assert review.index("trial-acceptance") < review.index("review-submission")
    assert cat.gate("trial-acceptance").actor == "client"
    assert "trial-acceptance" not in cat.with_switches({"trial_acceptance": False}).gates
    assert "trial-acceptance" in cat.with_switches({"trial_acceptance": True}).gates


def test_trial_acceptance_setting_defaults_on(monkeypatch):
    from launch.settings import Settings

    assert Settings().trial_acceptance is True
    monkeypatch.setenv("WEAPP_LAUNCH_TRIAL_ACCEPTANCE", "false")
    assert Settings().trial_acceptance is False


def test_trial_acceptance_form_records_members_qr_and_acceptance():
    form = default_catalogue().validate_form("trial-acceptance", {"decided_by": "客户林", "outcome": "accepted",
                                              "trial_members": ["13812345678", "wx_lin"], "qr_shared": True})
    assert form.payload() == {"outcome": "accepted", "trial_members": ["138****5678", "wx_lin"], "qr_shared": True}
    with pytest.raises(FormError) as err:
        default_catalogue().validate_form("trial-acceptance", {"decided_by": "客户林", "outcome": "accepted"})
    assert {p.rule for p in err.value.problems} == {"trial-members-required", "trial-qr-required"}
    assert all(" / " in p.message for p in err.value.problems)
    with pytest.raises(FormError) as err:
        default_catalogue().validate_form("trial-acceptance", {"decided_by": "客户林", "outcome": "changes_requested"})
    assert [p.field for p in err.value.problems] == ["feedback"]


# ---------------------------------------------------------------- the demo's printout


@dataclass
class _Step:
    step: str
    attempt: int
    started_at: datetime
    outcome: str | None


def test_demo_prints_the_filing_order(cat):
    from devtools.demo import filing_order

    t = at(2026, 10, 8, 9)
    steps = [_Step("sms-verification", 2, t + timedelta(hours=6), "verified"),
             _Step("filing-materials", 1, t, "confirmed"),
             _Step("design-draft", 1, t, "done"),
             _Step("face-verification", 1, t + timedelta(hours=1), "passed"),
             _Step("filing-resubmission", 1, t + timedelta(hours=5), "resubmitted"),
             _Step("sms-verification", 1, t + timedelta(hours=4), "timed_out")]
    assert filing_order(steps, cat) == [
        "filing-materials#1 (confirmed)", "face-verification#1 (passed)", "sms-verification#1 (timed_out)",
        "filing-resubmission#1 (resubmitted)", "sms-verification#2 (verified)"]
