"""A launch driven through every gate on a real Prefect server with a real runner.

The outside world (staff, client, WeChat, MIIT, the bureau) is the scripted
Simulator, deciding through the same service the CLI and the receiver use.
"""

from __future__ import annotations

import json
import random
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run

from launch import runtime
from launch.app.decisions import DecisionRefused, submit_decision
from devtools.simulator import BUMPY, PASSING, Scenario, Simulator
from launch.app.watcher import watch_once
from tests.flows.helpers import attempts, new_launch, parked_at, pause_keys_seen, wait_for, waiting_at
from tests.support.intakes import fresh_id_number, fresh_phone
from tests.support.prefect_db import dump_text, results_text

# Beside the scale test the machine is saturated: a launch may take several times its ~2 minutes.
pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]


def _artifacts(flow_run_id: str) -> dict[str, object]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]))
        )
    latest: dict[str, object] = {}
    for a in sorted(found, key=lambda a: a.created):
        latest[a.key] = a.data
    return latest


def test_standalone_launch_through_every_detour(stack):
    started, raw = new_launch("client-acme.yaml")
    # Staff type a phone and an ID number into free text on the way (issue 9: neither may reach Prefect).
    rng = random.Random()
    typed_phone, typed_id = fresh_phone(rng), fresh_id_number(rng)
    typed = f"已电话通知客户 {typed_phone}，法人身份证 {typed_id} 已核对"
    answers = {**BUMPY, "content": [{"outcome": "done", "note": typed}],
               "release": [{"outcome": "released", "note": typed}]}
    launch_id, run_id = started["launch_id"], started["flow_run_id"]
    refused_release: list[DecisionRefused] = []

    def bureau_may_answer(sim: Simulator) -> bool:
        # Keep the filing open until code review has passed, then check release is refused meanwhile.
        if not sim.decided("code-review", "passed"):
            return False
        if not refused_release:
            # one watcher pass (enqueue only) while gates are open: the outbox is audited below
            watch_once(runtime.now(), worker_id="e2e-audit", deliver=False, repair_runs=False)
            with pytest.raises(DecisionRefused) as err:
                submit_decision(runtime.resources(), launch_id, "release", {"decided_by": "运营", "outcome": "released"}, "cli")
            refused_release.append(err.value)
        return True

    sim = Simulator(launch_id, Scenario(answers=answers, hold={"bureau-review": bureau_may_answer}), repair_every=30)
    assert sim.run(timeout=780), f"not released; steps: {attempts(launch_id)}; repairs: {sim.repairs}"

    # Release was refused while the filing was open, with a field-named bilingual reason.
    assert [p.rule for p in refused_release[0].problems] == ["release-needs-filing"]
    assert "备案" in refused_release[0].problems[0].message and "filing" in refused_release[0].problems[0].message

    seen = attempts(launch_id)
    store = runtime.store()
    # WeChat's order (create_icp_verifytask: create the face task only when every other
    # material is ready; the application carries its task id): materials → face → submit.
    assert seen["filing-materials"] == [(1, "done", "confirmed")]
    assert seen["face-verification"] == [(1, "done", "passed")]  # reused: still inside its 3 days
    materials, face = store.get_step(launch_id, "filing-materials", 1), store.get_step(launch_id, "face-verification", 1)
    submitted = store.get_step(launch_id, "filing-submission", 1)
    assert materials.finished_at <= face.started_at and face.finished_at <= submitted.started_at
    # SMS timeout → staff resubmit → only then a new SMS with a new 24-hour window.
    assert seen["filing-resubmission"] == [(1, "done", "resubmitted")]
    sms1, resub, sms2 = (store.get_step(launch_id, "sms-verification", 1),
                         store.get_step(launch_id, "filing-resubmission", 1),
                         store.get_step(launch_id, "sms-verification", 2))
    assert sms1.finished_at <= resub.started_at and resub.finished_at <= sms2.started_at
    # The client accepted the trial version before each 提审.
    assert seen["trial-acceptance"] == [(1, "done", "accepted"), (2, "done", "accepted")]
    for n in (1, 2):
        assert (store.get_step(launch_id, "trial-acceptance", n).finished_at
                <= store.get_step(launch_id, "review-submission", n).started_at)
    assert seen["design-confirmation"] == [(1, "rejected", "rework"), (2, "done", "confirmed")]
    assert seen["design-draft"] == [(1, "done", "done"), (2, "done", "done")]
    assert seen["sms-verification"] == [(1, "rejected", "timed_out"), (2, "done", "verified"), (3, "done", "verified")]
    assert seen["bureau-review"] == [(1, "rejected", "rejected"), (2, "done", "approved")]
    # A bureau rejection goes back through submission and first review.
    assert [a for a, *_ in seen["filing-submission"]] == [1, 2]
    assert [a for a, *_ in seen["first-review"]] == [1, 2]
    assert seen["code-review"] == [(1, "rejected", "failed"), (2, "done", "passed")]
    assert seen["implementation"] == [(1, "done", "done"), (2, "done", "done")]
    assert seen["release"] == [(1, "done", "released")]

    # Release opened only after the filing branch finished.
    filing = store.get_branch(launch_id, "filing")
    release = store.get_step(launch_id, "release", 1)
    assert filing.status == "done" and release.started_at >= filing.finished_at
    # The review fix ran as its own implementation run, started once.
    assert {b.branch for b in store.branches_for(launch_id)} == {
        "filing", "design", "implementation-1", "content", "implementation-2"
    }

    # Every decision is in the audit trail, in order, with actor and channel.
    history = store.history(launch_id)
    assert [d.decided_at for d in history] == sorted(d.decided_at for d in history)
    assert all(d.actor and d.channel == "simulator" for d in history)
    assert {(d.gate, d.attempt) for d in history} == {
        (s.step, s.attempt) for s in store.steps_for(launch_id)
    }

    # Every side-effecting task body ran exactly once across all the replays.
    effects = store.effects_for(launch_id)
    assert effects and all(e.count == 1 for e in effects), [(e.effect_key, e.count) for e in effects if e.count != 1]

    # The launch run's artifacts are current: 100 %, every step in the table, released.
    # (the run refreshes them just after marking the launch released: give it a moment)
    arts = wait_for(lambda: (a := _artifacts(run_id)) and "已发布" in str(a.get(f"{launch_id}-waiting", "")) and a,
                    120, "the artifacts to say released")
    assert float(arts[f"{launch_id}-progress"]) == 100.0
    table = json.loads(arts[f"{launch_id}-steps"])
    assert len(table) == len(store.steps_for(launch_id))
    assert "已发布" in arts[f"{launch_id}-waiting"]
    assert "材料清单" in arts[f"{launch_id}-materials"]

    # Prefect's own database never saw the client's ID numbers or phones, nor those staff typed;
    # neither did the result files or the runner's log; and no link token is in any of them.
    assert store.get_decision(launch_id, "release", 1).payload["note"] == typed  # our record keeps it
    texts = {"Prefect's database": dump_text(stack.prefect_db),
             "result files": results_text(stack.base / "results"),
             "runner log": stack.runner_log.read_text(encoding="utf-8", errors="replace")}
    for where, text in texts.items():
        for value in raw["id_number"] + raw["phone"] + raw["credit_code"] + [typed_phone, typed_id]:
            assert value not in text, f"{value} in {where}"
        assert "token=" not in text and "X-Weapp-Token" not in text, where
    outbox = store.list_alerts(launch_id=launch_id)
    assert outbox, "the watcher pass during the bureau's review enqueued nothing"
    for alert in outbox:  # a link is signed when it is sent, never stored
        assert "token=" not in f"{alert.title}{alert.body}" and typed_phone not in alert.body


def test_reuse_official_account_path(stack):
    started, _ = new_launch("client-reuse.yaml")
    launch_id = started["launch_id"]
    sim = Simulator(launch_id, repair_every=30)
    assert sim.run(timeout=780), (attempts(launch_id), sim.repairs)
    registration = [s.step for s in runtime.store().steps_for(launch_id)][:3]
    assert registration == ["official-account-authorization", "fast-registration", "admin-binding"]
    assert runtime.store().get_launch(launch_id).appid == PASSING["fast-registration"]["appid"]


def test_early_decisions_duplicates_and_invalid_input(stack):
    from launch.app.launches import start_launch
    from launch.app.preflight import add_client
    from tests.flows.helpers import TODAY
    from tests.support.intakes import fresh_intake

    intake, _ = fresh_intake()
    client_id, _ = add_client(runtime.resources(), intake, TODAY)
    store = runtime.store()
    launch = store.create_launch(client_id)
    # Decided before the flow even exists: recorded for attempt 1, taken later without a suspend.
    early = submit_decision(runtime.resources(), launch.id, "email-activation", {"decided_by": "客户", "outcome": "done"}, "cli")
    assert (early.status, early.attempt, early.resumed) == ("recorded", 1, False)
    again = submit_decision(runtime.resources(), launch.id, "email-activation", {"decided_by": "客户", "outcome": "done"}, "cli")
    assert again.status == "duplicate" and again.attempt is None

    started = start_launch(runtime.resources(), client_id)
    assert started["launch_id"] == launch.id
    run_id = started["flow_run_id"]
    wait_for(lambda: waiting_at(launch.id, "subject-info"), 300, "subject-info to open")
    wait_for(lambda: parked_at(run_id, "subject-info-1"), 180, "the run to park at subject-info")
    assert "email-activation-1" not in pause_keys_seen(run_id)
    assert store.get_step(launch.id, "email-activation", 1).status == "done"

    # Invalid input to Prefect itself: the server refuses it and the run stays parked.
    with pytest.raises(RuntimeError):
        resume_flow_run(UUID(run_id), run_input={"decided_by": "x", "outcome": "submitted", "appid": "bad"})
    assert parked_at(run_id, "subject-info-1")

    # A bad decision through our service is refused, names the field, and changes nothing.
    before = len(store.history(launch.id))
    with pytest.raises(DecisionRefused) as err:
        submit_decision(runtime.resources(), launch.id, "subject-info", {"decided_by": "运营", "appid": "wx1", "original_id": "gh_0"}, "cli")
    assert {p.field for p in err.value.problems} == {"appid", "original_id"}
    assert len(store.history(launch.id)) == before and parked_at(run_id, "subject-info-1")

    # The UI form passes the schema but breaks a cross-field rule: noted, and the run parks again.
    ok = submit_decision(runtime.resources(), launch.id, "subject-info", {"decided_by": "运营", **PASSING["subject-info"]}, "cli")
    assert ok.status == "recorded" and ok.resumed
    wait_for(lambda: parked_at(run_id, "wechat-verification-1"), 300, "park at wechat-verification")
    resume_flow_run(UUID(run_id), run_input={"decided_by": "运营", "outcome": "failed"})  # no reason given
    wait_for(lambda: parked_at(run_id, "wechat-verification-1-retry-1"), 300, "park again after a refused form")
    step = store.get_step(launch.id, "wechat-verification", 1)
    assert step.status == "waiting" and "reason" in (step.note or "")
    assert store.get_decision(launch.id, "wechat-verification", 1) is None

    # A good answer from the Prefect UI form goes through and is recorded with channel ui.
    resume_flow_run(UUID(run_id), run_input={"decided_by": "王经理", "outcome": "passed"})
    wait_for(lambda: store.get_decision(launch.id, "wechat-verification", 1), 300, "the UI decision")
    decision = store.get_decision(launch.id, "wechat-verification", 1)
    assert (decision.channel, decision.actor, decision.outcome) == ("ui", "王经理", "passed")

    # Approving again is a no-op that says so.
    dup = submit_decision(runtime.resources(), launch.id, "wechat-verification", {"decided_by": "王经理", "outcome": "passed"}, "cli")
    assert dup.status == "duplicate" and "already" in dup.message
    assert len([d for d in store.history(launch.id) if d.gate == "wechat-verification"]) == 1
