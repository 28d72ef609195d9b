"""Staff free text (who decided, notes, reasons) reaches the store as typed and Prefect only scrubbed.

The unit tests check each hand-over to Prefect without a server: the decision service's
Resume input, the orchestrator (every caller's last step before Prefect), the watcher's
rebuilt input and the gate tasks' results. The server test types a raw mainland phone
number and ID number into decisions through the decision service (as `weapp-launch
approve` does), the staff HTTP route, the Prefect UI's Resume input and the watcher's
lost-resume repair, lets the flow pass those gates, then reads Prefect's own database,
the results folder and the runner log.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID

import pytest

from launch.domain.masking import mask_id_number, mask_phone
from tests.support.intakes import fresh_id_number, fresh_phone
from tests.support.prefect_db import results_text
from tests.support.resources import make_resources

# --------------------------------------------------------------------------- no server


def _raw_pair(rng: random.Random | None = None) -> tuple[str, str]:
    rng = rng or random.Random()
    return fresh_phone(rng), fresh_id_number(rng, "440106")


def _spaced(phone: str) -> str:
    return f"{phone[:3]} {phone[3:7]} {phone[7:]}"


@pytest.fixture
def res(tmp_path, monkeypatch):
    """Resources over a fresh SQLite store (no Prefect)."""
    for name in ("WEAPP_LAUNCH_PROCESS_FILE", "WEAPP_LAUNCH_CALENDAR_FILE", "WEAPP_LAUNCH_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    r = make_resources(tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'store.db'}")
    yield r
    r.close()


def _waiting_launch(res, gate: str, flow_run_id: str | None = None) -> str:
    store = res.store
    client_id = store.add_client(f"t-{uuid.uuid4().hex[:10]}", "测试公司", "测试小程序", "广东", "enterprise",
                                 "standalone", {"t": 1}, {})
    launch = store.create_launch(client_id)
    now = res.now()
    store.open_step(launch.id, gate, 1, started_at=now, due_at=now, status="waiting",
                    flow_run_id=flow_run_id or str(uuid.uuid4()), gate_key=f"{gate}-1")
    return launch.id


def test_decision_service_stores_as_typed_and_hands_prefect_a_scrubbed_input(res):
    from launch.app.decisions import submit_decision

    phone, id_number = _raw_pair()
    launch_id = _waiting_launch(res, "wechat-verification")
    handed: list[dict] = []

    class Orchestrator:  # what the service hands the orchestrator port
        def resume_if_parked(self, run_id, key, run_input=None, wait_seconds=0.0):
            handed.append(run_input)
            return True

    res = replace(res, _store=res.store, _orchestrator=Orchestrator())
    data = {"decided_by": f"王经理 {phone}", "outcome": "passed",
            "reason": f"身份证 {id_number}，电话 +86 {_spaced(phone)}", "note": f"备用 {phone}"}
    result = submit_decision(res, launch_id, "wechat-verification", data, "cli")
    assert result.status == "recorded" and result.resumed

    decision = res.store.get_decision(launch_id, "wechat-verification", 1)
    assert decision.actor == data["decided_by"]
    assert decision.payload == {"outcome": "passed", "reason": data["reason"], "note": data["note"]}

    [run_input] = handed
    text = json.dumps(run_input, ensure_ascii=False)
    assert phone not in text and id_number not in text and _spaced(phone) not in text
    assert run_input == {
        "decided_by": f"王经理 {mask_phone(phone)}", "outcome": "passed",
        "reason": f"身份证 {mask_id_number(id_number)}，电话 +86{mask_phone(phone)}", "note": f"备用 {mask_phone(phone)}",
    }


def test_orchestrator_scrubs_any_callers_resume_input(monkeypatch):
    import prefect.flow_runs

    import launch.orchestration.prefect as orchestrator

    phone, id_number = _raw_pair()
    run_id = str(uuid.uuid4())
    monkeypatch.setattr(orchestrator, "read_state",
                        lambda rid: orchestrator.RunState(rid, "PAUSED", "Suspended", "first-review-1"))
    sent: list[dict] = []
    monkeypatch.setattr(prefect.flow_runs, "resume_flow_run", lambda rid, run_input=None: sent.append(run_input))
    raw = {"decided_by": "wechat", "outcome": "rejected", "reason": f"主体负责人 {id_number} 手机 {phone} 不一致"}
    assert orchestrator.resume_if_parked(run_id, "first-review-1", dict(raw))
    assert sent == [{"decided_by": "wechat", "outcome": "rejected",
                     "reason": f"主体负责人 {mask_id_number(id_number)} 手机 {mask_phone(phone)} 不一致"}]
    # A join wake-up carries no input at all.
    assert orchestrator.resume_if_parked(run_id, "first-review-1") and sent[-1] is None


def test_watcher_rebuilds_a_scrubbed_input_that_still_validates():
    from launch.domain.catalogue import load_catalogue
    from launch.settings import get_settings
    from launch.app.watcher import _run_input

    phone, id_number = _raw_pair()
    gate = load_catalogue(get_settings().process_file).gate("design-confirmation")
    decision = SimpleNamespace(actor=f"设计 {phone}", outcome="rework",
                               payload={"feedback": f"联系人 {id_number}", "note": f"+86 {_spaced(phone)}"})
    run_input = _run_input(gate, decision)
    assert run_input == {"decided_by": f"设计 {mask_phone(phone)}", "outcome": "rework",
                         "feedback": f"联系人 {mask_id_number(id_number)}", "note": f"+86{mask_phone(phone)}"}
    gate.form.model_validate(run_input)
    # An actor longer than the form allows is shortened, after scrubbing.
    long = SimpleNamespace(actor=f"{phone} " + "很长的名字" * 10, outcome="confirmed", payload={})
    shortened = _run_input(gate, long)
    assert phone not in shortened["decided_by"] and shortened["decided_by"].startswith(mask_phone(phone))


def test_gate_task_views_are_scrubbed():
    from datetime import datetime, timezone

    from launch.app.activities import Activities
    from launch.app.resources import Resources
    from launch.settings import Settings

    _view = Activities(Resources(settings=Settings()), run_id=lambda: None)._view
    phone, id_number = _raw_pair()
    record = SimpleNamespace(gate="bureau-review", attempt=1, outcome="approved", actor=f"李四{phone}",
                             channel="ui", decided_at=datetime.now(timezone.utc),
                             payload={"filing_number": "粤B2-20090059-1626X", "note": f"证件{id_number}"})
    view = _view(record)
    assert view.actor == f"李四{mask_phone(phone)}"
    assert view.payload == {"filing_number": "粤B2-20090059-1626X", "note": f"证件{mask_id_number(id_number)}"}
    assert view.passed


# --------------------------------------------------------------------------- a real launch


def _responses_left(client, run_id: str) -> list[str]:
    found = client.filter_flow_run_input(UUID(run_id), key_prefix="suspended-", limit=500, exclude_keys=set())
    return sorted(i.key for i in found if i.key.endswith("-response"))


@pytest.fixture
def staff_api(stack):
    """The callback receiver in this process (its staff route, Bearer API key)."""
    import uvicorn

    from tests.support.stack import free_port
    from tests.support.wait import wait_for

    from launch.app import Resources
    from launch.receiver.app import create_app
    from launch.settings import Settings

    key = "test-" + uuid.uuid4().hex
    res = Resources(settings=Settings(api_key=key))  # the stack's settings, and a staff API key
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(res, applier_interval=1.0), host="127.0.0.1", port=port,
                                           access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the receiver")
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(15)
    res.close()


@pytest.mark.server
@pytest.mark.timeout(1500)
def test_typed_phone_and_id_numbers_never_reach_prefect(stack, staff_api):
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from launch.app.decisions import submit_decision
    from launch.app.watcher import repair
    from launch.app.activities import FORM_PRIVACY_NOTE
    from tests.flows.helpers import new_launch, parked_at, waiting_at
    from tests.support.prefect_db import dump_text
    from tests.support.stack import stack_resources
    from tests.support.wait import wait_for

    api_url, api_key = staff_api
    res = stack_resources()
    store = res.store
    rng = random.Random()
    typed = {path: _raw_pair(rng) for path in ("cli", "http", "ui", "watcher")}
    # the profile gate closes registration (issue 10): decided ahead, plainly, so the branches start
    started, client_raw = new_launch("client-acme.yaml", decided_ahead=("mini-program-profile",))
    launch_id, run_id = started["launch_id"], started["flow_run_id"]

    # 1. The decision service (what `weapp-launch approve` calls), resuming the parked run.
    phone, id_number = typed["cli"]
    wait_for(lambda: parked_at(run_id, "email-activation-1"), 240, "park at email-activation")
    cli = {"decided_by": f"王经理{phone}", "outcome": "done",
           "note": f"客户身份证 {id_number}，电话 +86 {_spaced(phone)}"}
    assert submit_decision(res, launch_id, "email-activation", cli, "cli").resumed

    # 2. The staff HTTP route.
    phone, id_number = typed["http"]
    wait_for(lambda: parked_at(run_id, "subject-info-1"), 240, "park at subject-info")
    http = {"decided_by": f"李四 {phone}", "outcome": "submitted", "appid": "wx" + uuid.uuid4().hex[:16],
            "original_id": "gh_" + uuid.uuid4().hex[:12], "note": f"法人证件 {id_number} / {phone}"}
    r = httpx.post(f"{api_url}/gates/{launch_id}/subject-info", json=http,
                   headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    assert r.status_code == 200 and r.json()["resumed"], r.text

    # 3. The Prefect UI's Resume input: first a form that breaks a rule (parks again), then a good one.
    phone, id_number = typed["ui"]
    wait_for(lambda: parked_at(run_id, "wechat-verification-1"), 240, "park at wechat-verification")
    with get_client(sync_client=True) as client:
        description = client.read_flow_run_input(UUID(run_id), "suspended-wechat-verification-1-description")
    assert FORM_PRIVACY_NOTE in json.loads(description)  # the form asks staff not to type such numbers
    resume_flow_run(UUID(run_id), run_input={"decided_by": f"王 {phone}", "outcome": "failed",
                                             "note": f"{id_number}"})  # no reason: refused
    wait_for(lambda: parked_at(run_id, "wechat-verification-1-retry-1"), 240, "park again after a refused form")
    ui = {"decided_by": f"王经理 {phone}", "outcome": "passed", "reason": f"核对身份证 {id_number}，手机 {phone}"}
    resume_flow_run(UUID(run_id), run_input=ui)
    wait_for(lambda: store.get_decision(launch_id, "wechat-verification", 1), 240, "the UI decision")

    # 4. A decision recorded without a resume; the watcher's repair pass resumes the branch run.
    phone, id_number = typed["watcher"]
    step = wait_for(lambda: waiting_at(launch_id, "design-draft"), 600, "design-draft to open")
    wait_for(lambda: parked_at(step.flow_run_id, "design-draft-1"), 240, "the design run to park")
    design_run = step.flow_run_id
    late = {"decided_by": f"设计 {phone}", "outcome": "done", "note": f"身份证{id_number}"}
    assert not submit_decision(res, launch_id, "design-draft", late, "cli", resume=False).resumed
    report = repair(res, grace_seconds=0)
    assert any(r.kind == "resume" and r.launch_id == launch_id for r in report.repaired), report

    # Every gate passed; the next ones are parked, so the tasks (and logs) before them are done.
    wait_for(lambda: parked_at(design_run, "design-confirmation-1"), 600, "park at design-confirmation")
    for gate in ("email-activation", "subject-info", "wechat-verification", "design-draft"):
        assert store.get_step(launch_id, gate, 1).status == "done", gate

    # The store keeps every decision as typed.
    decided = {g: store.get_decision(launch_id, g, 1)
               for g in ("email-activation", "subject-info", "wechat-verification", "design-draft")}
    assert (decided["email-activation"].actor, decided["email-activation"].payload["note"]) == (
        cli["decided_by"], cli["note"])
    assert (decided["subject-info"].actor, decided["subject-info"].payload["note"]) == (http["decided_by"], http["note"])
    assert decided["wechat-verification"].channel == "ui"
    assert (decided["wechat-verification"].actor, decided["wechat-verification"].payload["reason"]) == (
        ui["decided_by"], ui["reason"])
    assert (decided["design-draft"].actor, decided["design-draft"].payload["note"]) == (late["decided_by"], late["note"])

    # Prefect kept no Resume answer for a passed gate (the UI-typed ones included).
    with get_client(sync_client=True) as client:
        assert _responses_left(client, run_id) == []
        assert _responses_left(client, design_run) == []

    # Logs reach Prefect's database in batches: wait for the last gate's line, masked.
    masked_watcher_actor = f"设计 {mask_phone(typed['watcher'][0])}"
    wait_for(lambda: f"design-draft attempt 1: done by {masked_watcher_actor}" in dump_text(stack.prefect_db),
             60, "the design-draft log line")

    prefect_text = dump_text(stack.prefect_db)  # inputs, task runs, states, logs, artifacts, parameters, events
    result_files = results_text(stack.base / "results")
    runner_text = stack.runner_log.read_text(encoding="utf-8", errors="replace")
    assert result_files.strip(), "no result files were read"
    for path, (phone, id_number) in typed.items():
        for raw in (phone, _spaced(phone), id_number):
            assert raw not in prefect_text, f"{path}: {raw} in Prefect's database"
            assert raw not in result_files, f"{path}: {raw} in a result file"
            assert raw not in runner_text, f"{path}: {raw} in the runner log"
        assert mask_phone(phone) in prefect_text, f"{path}: the masked phone should be there"
    # Masked values do reach Prefect: the gate's log line and its task result.
    assert f"gate email-activation attempt 1: done by 王经理{mask_phone(typed['cli'][0])} via cli" in prefect_text
    assert mask_id_number(typed["ui"][1]) in result_files
    for value in client_raw["id_number"] + client_raw["phone"] + client_raw["credit_code"]:
        assert value not in prefect_text and value not in result_files
