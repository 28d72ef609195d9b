"""The ICP filing submitted by the tool (issue 12): the application built from the client's
intake and documents, on the in-memory orchestrator against the local WeChat stand-in over real
HTTP. A good intake is applied once and the gate passes (channel wechat-api); WeChat's hints[]
come back as our intake fields and rule ids on the gate; a crash right after apply_icp_filing
applies nothing twice; a missing file stops the call; without a platform the gate stays manual."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from devtools.simulator import PASSING
from devtools.wechat_standin import lookups as standin_lookups
from launch.app.icp_application import build_application
from launch.app.launches import start_launch
from launch.app.preflight import add_client
from launch.domain.icp_fields import HINT_FIELDS, IcpLookups, hint_target
from launch.domain.intake import parse_intake
from launch.domain.rules import RULE_IDS
from launch.process.memory import Crash
from launch.wechat.platform.code import CommitRequest
from launch.wechat.platform.tokens import remember_ticket
from tests.support.intakes import fresh_intake
from tests.support.memory_env import World
from tests.support.standin import COMPONENT_APPID, SECRET

APPID = PASSING["subject-info"]["appid"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64



def client_intake(folder: Path, *, service_types=("点餐", "会员服务"), drop_file: str | None = None,
                  seed: int = 1) -> dict:
    """The example enterprise, with service types from the stand-in's list and its documents as
    real files in the client's folder."""
    intake, _ = fresh_intake("client-acme.yaml", seed=seed)
    data = intake.model_dump(mode="json")
    data["mini_program"]["service_types"] = list(service_types)
    folder.mkdir(parents=True, exist_ok=True)
    for doc in data["documents"]:
        if doc.get("file"):
            path = folder / Path(doc["file"]).name
            path.write_bytes(PNG)
            doc["file"] = str(path)
            if doc["kind"] == drop_file:
                path.unlink()
    return data


def new_launch(w: World, data: dict) -> str:
    client_id, _ = add_client(w.res, parse_intake(data), w.clock.now().date())
    launch_id = start_launch(w.res, client_id)["launch_id"]
    w.orch.drain()
    return launch_id


def until_waiting(w: World, launch_id: str, key: str, standin=None) -> None:
    """Answer every other gate as staff (the face check passed on WeChat first) until `key`
    waits; the filing submission is never answered here (the tool's to do)."""
    for _ in range(80):
        if w.orch.revive():
            w.orch.drain()
            continue
        waiting = sorted(w.waiting(launch_id))
        if key in waiting:
            return
        gate = waiting[0].rsplit("-", 1)[0]
        if gate == "filing-submission":
            raise AssertionError(f"the filing submission waits: {w.res.store.get_step(launch_id, gate, 1).note}")
        if gate == "face-verification" and standin is not None:
            standin.advance(appid=APPID, kind="face")  # the admin did the face check on WeChat
        if gate == "implementation":
            w.res.wechat.code.commit(APPID, CommitRequest(template_id=1, ext_json={"extAppid": APPID},
                                                          user_version="1.0.0", user_desc="第一版"))
        w.decide(launch_id, gate)
    raise AssertionError(f"{key} never waited: {w.waiting(launch_id)}")


def ledger(w: World, launch_id: str, prefix: str) -> dict[str, int]:
    return {e.effect_key: e.count for e in w.res.store.effects_for(launch_id) if e.effect_key.startswith(prefix)}


# --- pure -------------------------------------------------------------------------------


def test_every_mapped_rule_is_one_of_ours_and_indexes_are_dropped():
    for wechat_field, (ours, rule_ids) in HINT_FIELDS.items():
        assert set(rule_ids) <= set(RULE_IDS), (wechat_field, rule_ids)
    assert hint_target("icp_subject.principal_info.mobile") == ("principal.phone", ("mobile-invalid",))
    assert hint_target("icp_applets.base_info.nrlx_details[1].code")[1] == ("pre-approval-number-missing",)
    assert hint_target("icp_applets.base_info.nrlx_details.0.media")[1] == ("pre-approval-document-missing",)
    assert hint_target("icp_materials.commitment_letter")[0] == "documents"
    assert hint_target("something.new") == ("something.new", ())


def test_the_application_carries_every_field_the_standin_requires(tmp_path):
    intake = parse_intake(client_intake(tmp_path / "client"))
    lookups = IcpLookups(standin_lookups.SERVICE_CONTENT_TYPES, standin_lookups.NRLX_TYPES,
                         standin_lookups.SUBJECT_TYPES, standin_lookups.CERTIFICATE_TYPES, standin_lookups.DISTRICTS)
    media = {f: f"m-{i}" for i, f in enumerate(standin_lookups.MEDIA_FIELDS)}
    body = build_application(intake, "task-1", media, lookups, appid=APPID).model_dump(mode="json", exclude_none=True)
    for path in standin_lookups.REQUIRED_FILING_FIELDS:
        node = body
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        assert node not in (None, "", []), path
    base = body["icp_subject"]["base_info"]
    assert (base["type"], base["province"], base["city"], base["district"]) == (1, "440000", "440100", "440106")
    assert not base["address"].startswith("广州")  # the province, city and district are not repeated
    assert body["icp_applets"]["base_info"]["service_content_types"] == [601, 602]
    assert body["icp_applets"]["base_info"]["nrlx_details"] == [{"type": 9}]  # 以上都不涉及, found by name
    assert body["icp_subject"]["legal_person_info"]["name"] == intake.legal_representative.name


# --- against the stand-in ---------------------------------------------------------------


def test_a_good_intake_is_applied_once_and_the_gate_passes(world, standin, tmp_path):
    launch_id = new_launch(world, client_intake(tmp_path / "client"))
    until_waiting(world, launch_id, "first-review-1", standin)
    decision = world.res.store.get_decision(launch_id, "filing-submission", 1)
    assert decision.channel == "wechat-api" and decision.outcome == "done"
    assert decision.payload["verify_task_id"]  # the face task the create_icp_verifytask action noted
    assert standin.calls("/wxa/icp/apply_icp_filing", APPID) == 1
    # five documents, one upload per distinct file: licence, principal's two sides, admin's card, admin's letter
    assert standin.calls("/wxa/icp/upload_icp_media", APPID) == 5
    assert standin.state(APPID)["filing"]["status"] == 2  # in WeChat's first review
    assert ledger(world, launch_id, "decide:filing-submission") == {"decide:filing-submission-1": 1}


def test_a_bad_field_comes_back_as_our_intake_field_and_rule(world, standin, tmp_path):
    # 生活服务 is a first-level type: WeChat takes second-level types only (hints[] on the field)
    launch_id = new_launch(world, client_intake(tmp_path / "client", service_types=("生活服务",)))
    with pytest.raises(AssertionError, match="filing submission waits"):
        until_waiting(world, launch_id, "first-review-1", standin)
    note = world.res.store.get_step(launch_id, "filing-submission", 1).note
    assert "mini_program.service_types（规则 service-types-limit）" in note
    assert "mini_program.service_types (rule service-types-limit)" in note
    assert "errcode 86202" in note and " / " in note
    assert world.res.store.get_decision(launch_id, "filing-submission", 1) is None
    assert standin.calls("/wxa/icp/apply_icp_filing", APPID) == 1
    world.decide(launch_id, "filing-submission")  # staff fixed the intake and submitted
    assert "first-review-1" in world.waiting(launch_id)


def test_a_missing_file_stops_the_call_and_names_the_material(world, standin, tmp_path):
    launch_id = new_launch(world, client_intake(tmp_path / "client", drop_file="business_licence"))
    with pytest.raises(AssertionError, match="filing submission waits"):
        until_waiting(world, launch_id, "first-review-1", standin)
    note = world.res.store.get_step(launch_id, "filing-submission", 1).note
    assert "营业执照" in note and "business licence" in note and "material-missing" in note
    assert standin.calls("/wxa/icp/upload_icp_media", APPID) == 0
    assert standin.calls("/wxa/icp/apply_icp_filing", APPID) == 0


def test_a_crash_after_the_action_applies_nothing_twice(world, standin, tmp_path):
    world.orch.crash_after("act", when=lambda args: args[1] == "filing-submission")
    launch_id = new_launch(world, client_intake(tmp_path / "client"))
    until_waiting(world, launch_id, "first-review-1", standin)
    assert standin.calls("/wxa/icp/apply_icp_filing", APPID) == 1
    assert world.res.store.get_decision(launch_id, "filing-submission", 1).channel == "wechat-api"
    assert ledger(world, launch_id, "decide:filing-submission") == {"decide:filing-submission-1": 1}


def test_a_crash_right_after_apply_icp_filing_asks_wechat_before_applying_again(world, standin, tmp_path,
                                                                               monkeypatch):
    """The process dies after WeChat took the application but before the decision was kept: the
    replay asks get_icp_entrance_info, sees the filing in review (status 2) and records it."""
    import launch.app.wechat_actions as actions

    real = actions._record
    crashed = []

    def record_or_die(res, launch, gate_id, attempt, data):
        if gate_id == "filing-submission" and not crashed:
            crashed.append(gate_id)
            raise Crash("died right after apply_icp_filing")
        return real(res, launch, gate_id, attempt, data)

    monkeypatch.setattr(actions, "_record", record_or_die)
    launch_id = new_launch(world, client_intake(tmp_path / "client"))
    until_waiting(world, launch_id, "first-review-1", standin)
    assert crashed
    assert standin.calls("/wxa/icp/apply_icp_filing", APPID) == 1
    decision = world.res.store.get_decision(launch_id, "filing-submission", 1)
    assert decision.channel == "wechat-api" and "状态 2" in decision.payload["note"]
    assert ledger(world, launch_id, "decide:filing-submission") == {"decide:filing-submission-1": 1}


def test_without_a_platform_the_filing_submission_stays_manual(tmp_path, standin):
    w = World(tmp_path / "home")
    assert w.res.wechat is None
    launch_id = new_launch(w, client_intake(tmp_path / "client"))
    with pytest.raises(AssertionError, match="filing submission waits: None"):
        until_waiting(w, launch_id, "first-review-1")
    assert w.res.store.get_decision(launch_id, "filing-submission", 1) is None
    w.decide(launch_id, "filing-submission")
    assert "first-review-1" in w.waiting(launch_id)
    assert standin.calls() == 0
