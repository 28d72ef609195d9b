"""One launch from start to release on a real Prefect server with a real runner, decided the
ways production decides: staff through the decision service (the CLI's), the Prefect UI's
Resume form, and WeChat's pushes over real HTTP to a running receiver.

The loops of the process (rejections, timeouts, rework, the review loop) are the flow-logic
tests' (tests/process, on the in-memory orchestrator); this launch shows what only a real
server can: a decision recorded before its run exists is taken without a suspend, Prefect
refuses input its form schema does not allow, a form answer that breaks a cross-field rule
parks the run again, pushes resume the gates of the right runs (an early one taken without a
suspend, a repeated one once), release waits for the filing, every run starts once and every
task body runs once across every replay, the run's artifacts, and that no personal data or
link token reaches Prefect's database, its result files or the runner's log.

Each park and each resume is a new flow-run process (seconds of CPU on a loaded machine):
the gates that show nothing of the above have their decisions recorded before the launch
starts (taken at their gate without parking), the others are decided while their run waits.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from uuid import UUID

import httpx
import pytest
import uvicorn
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run

from devtools.simulator import PASSING, Scenario, Simulator, WeChatPusher, push_for
from launch.app import Resources
from launch.app.decisions import DecisionRefused, submit_decision
from launch.app.launches import start_launch
from launch.app.preflight import add_client
from launch.app.watcher import watch_once
from launch.settings import Settings
from tests.api.conftest import AES_KEY, COMPONENT_APPID, TOKEN, free_port
from tests.flows.helpers import TODAY, attempts, parked_at, pause_keys_seen, waiting_at
from tests.support.intakes import fresh_id_number, fresh_intake, fresh_phone
from tests.support.prefect_db import dump_text, results_text
from tests.support.stack import stack_resources
from tests.support.wait import wait_for

# Beside the scale test the machine is saturated: a launch may take several times its ~2 minutes.
pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]

WECHAT_GATES = ("face-verification", "first-review", "sms-verification", "code-review")
# Recorded up front, from the simulator's passing answers (content carries what staff typed).
DECIDED_AHEAD = ("mini-program-profile", "filing-materials", "filing-submission", "design-draft",
                 "design-confirmation", "implementation", "content", "trial-acceptance", "review-submission")


@pytest.fixture
def receiver(stack):
    """The callback receiver in this process (its own Resources: the stack's settings and a
    WeChat identity), serving real HTTP."""
    from launch.receiver.app import create_app

    res = Resources(settings=Settings(wechat_token=TOKEN, wechat_encoding_aes_key=AES_KEY,
                                      wechat_component_appid=COMPONENT_APPID))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(res, applier_interval=1.0), host="127.0.0.1", port=port,
                                           access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the receiver")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)
    res.close()


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


def _flow_runs(launch_id: str) -> list[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[launch_id])))
    return sorted(r.parameters.get("branch", "launch") for r in runs)


def test_one_launch_from_start_to_release(stack, receiver):
    res = stack_resources()
    store = res.store
    intake, raw = fresh_intake("client-acme.yaml")
    client_id, _ = add_client(res, intake, TODAY)
    launch_id = store.create_launch(client_id).id
    # Staff type a phone and an ID number into free text on the way (issue 9: neither may reach Prefect).
    rng = random.Random()
    typed_phone, typed_id = fresh_phone(rng), fresh_id_number(rng)
    typed = f"已电话通知客户 {typed_phone}，法人身份证 {typed_id} 已核对"
    for gate in DECIDED_AHEAD:
        data = {"decided_by": "运营", **PASSING[gate], **({"note": typed} if gate == "content" else {})}
        assert submit_decision(res, launch_id, gate, data, "cli", attempt=1).status == "recorded", gate

    # 1. Decided before the flow even exists: recorded for attempt 1, taken later without a suspend.
    early = submit_decision(res, launch_id, "email-activation", {"decided_by": "客户", "outcome": "done"}, "cli")
    assert (early.status, early.attempt, early.resumed) == ("recorded", 1, False)
    again = submit_decision(res, launch_id, "email-activation", {"decided_by": "客户", "outcome": "done"}, "cli")
    assert again.status == "duplicate" and again.attempt is None
    started = start_launch(res, client_id)
    assert started["launch_id"] == launch_id
    run_id = started["flow_run_id"]
    wait_for(lambda: waiting_at(launch_id, "subject-info") and parked_at(run_id, "subject-info-1"), 300,
             "the run to park at subject-info")
    assert "email-activation-1" not in pause_keys_seen(run_id)
    assert store.get_step(launch_id, "email-activation", 1).status == "done"

    # 2. Input Prefect's form schema refuses: the server says no and the run stays parked.
    with pytest.raises(RuntimeError):
        resume_flow_run(UUID(run_id), run_input={"decided_by": "x", "outcome": "submitted", "appid": "bad"})
    assert parked_at(run_id, "subject-info-1")
    # A bad decision through our service is refused, names the fields, and changes nothing.
    before = len(store.history(launch_id))
    with pytest.raises(DecisionRefused) as err:
        submit_decision(res, launch_id, "subject-info", {"decided_by": "运营", "appid": "wx1", "original_id": "gh_0"},
                        "cli")
    assert {p.field for p in err.value.problems} == {"appid", "original_id"}
    assert len(store.history(launch_id)) == before and parked_at(run_id, "subject-info-1")
    appid, original_id = "wx" + uuid.uuid4().hex[:16], "gh_" + uuid.uuid4().hex[:12]
    ok = submit_decision(res, launch_id, "subject-info",
                         {"decided_by": "运营", **PASSING["subject-info"], "appid": appid, "original_id": original_id},
                         "cli")
    assert ok.status == "recorded" and ok.resumed
    # An early push: face verification passes long before its gate (the filing starts after
    # registration). Pushes find their launch by the app id the run records once it takes subject-info.
    wait_for(lambda: store.get_launch(launch_id).appid == appid, 300, "the run to record the app id")
    pusher = WeChatPusher(receiver, TOKEN, AES_KEY, COMPONENT_APPID)
    path, message = push_for("face-verification", {"outcome": "passed"}, appid, original_id, COMPONENT_APPID)
    assert pusher.send(path, message) == 200
    early_face = wait_for(lambda: store.get_decision(launch_id, "face-verification", 1), 30,
                          "the early push to be recorded")
    assert early_face.channel == "wechat" and early_face.consumed_at is None
    assert store.get_branch(launch_id, "filing") is None

    # 3. The Prefect UI's form: schema-valid but breaking a cross-field rule (no reason for a
    # failure) is noted and the run parks again; a good answer is recorded with channel ui.
    wait_for(lambda: parked_at(run_id, "wechat-verification-1"), 300, "park at wechat-verification")
    resume_flow_run(UUID(run_id), run_input={"decided_by": "运营", "outcome": "failed"})
    wait_for(lambda: parked_at(run_id, "wechat-verification-1-retry-1"), 300, "park again after a refused form")
    step = store.get_step(launch_id, "wechat-verification", 1)
    assert step.status == "waiting" and "reason" in (step.note or "")
    assert store.get_decision(launch_id, "wechat-verification", 1) is None
    resume_flow_run(UUID(run_id), run_input={"decided_by": "王经理", "outcome": "passed"})
    decision = wait_for(lambda: store.get_decision(launch_id, "wechat-verification", 1), 300, "the UI decision")
    assert (decision.channel, decision.actor, decision.outcome) == ("ui", "王经理", "passed")
    dup = submit_decision(res, launch_id, "wechat-verification", {"decided_by": "王经理", "outcome": "passed"}, "cli")
    assert dup.status == "duplicate" and "already" in dup.message

    # 4. The rest: people through the service (the simulator), WeChat's gates by push only.
    answers = {"release": [{"outcome": "released", "note": typed}]}
    refused_release: list[DecisionRefused] = []

    def bureau_may_answer(sim: Simulator) -> bool:
        # Keep the filing open until code review has passed, and check release is refused meanwhile.
        if not sim.decided("code-review", "passed"):
            return False
        if not refused_release:
            # one watcher pass (enqueue only) while gates are open: the outbox is audited below
            watch_once(res, worker_id="e2e-audit", deliver=False, repair_runs=False)
            with pytest.raises(DecisionRefused) as err:
                submit_decision(res, launch_id, "release", {"decided_by": "运营", "outcome": "released"}, "cli")
            refused_release.append(err.value)
        return True

    never = {gate: (lambda sim: False) for gate in WECHAT_GATES}
    sim = Simulator(launch_id, Scenario(answers=answers, hold={**never, "bureau-review": bureau_may_answer}),
                    repair_every=30, res=res)

    def answer_by_push(gate: str, outcome: str, attempt: int = 1, **extra) -> None:
        assert sim.run(420, until=lambda: waiting_at(launch_id, gate, attempt)), (gate, attempts(launch_id))
        push = push_for(gate, {"outcome": outcome, **extra}, appid, original_id, COMPONENT_APPID)
        assert pusher.send(*push) == 200
        wait_for(lambda: store.get_step(launch_id, gate, attempt).status != "waiting", 240, f"{gate} to be taken")

    answer_by_push("first-review", "passed")
    # The same push delivered twice (WeChat retries) changes nothing.
    push = push_for("sms-verification", {"outcome": "verified"}, appid, original_id, COMPONENT_APPID)
    assert sim.run(300, until=lambda: waiting_at(launch_id, "sms-verification"))
    assert pusher.send(*push) == 200 and pusher.send(*push) == 200
    wait_for(lambda: store.get_step(launch_id, "sms-verification", 1).status == "done", 240, "sms verified")
    answer_by_push("code-review", "passed")
    assert sim.run(600), f"not released; steps: {attempts(launch_id)}; repairs: {sim.repairs}"

    # Release was refused while the filing was open, with a field-named bilingual reason.
    assert [p.rule for p in refused_release[0].problems] == ["release-needs-filing"]
    assert "备案" in refused_release[0].problems[0].message and "filing" in refused_release[0].problems[0].message
    filing = store.get_branch(launch_id, "filing")
    assert filing.status == "done" and store.get_step(launch_id, "release", 1).started_at >= filing.finished_at

    # Every gate passed once, each branch run started once.
    seen = attempts(launch_id)
    assert all(len(rows) == 1 and rows[0][1] == "done" for gate, rows in seen.items()
               if gate != "wechat-verification"), seen
    assert seen["wechat-verification"] == [(1, "done", "passed")]  # the refused form asked again, same attempt
    assert {b.branch for b in store.branches_for(launch_id)} == {"filing", "design", "implementation-1", "content"}
    assert _flow_runs(launch_id) == sorted(["launch", "filing", "design", "implementation-1", "content"])
    # The decisions recorded ahead were taken at their gates without a suspend.
    suspended = {k for r in [run_id] + [b.flow_run_id for b in store.branches_for(launch_id)]
                 for k in pause_keys_seen(r)}
    assert not {f"{g}-1" for g in DECIDED_AHEAD} & suspended, suspended

    # Pushes decided WeChat's gates; the early one was taken at its gate without a suspend.
    filing_run = filing.flow_run_id
    assert "face-verification-1" not in pause_keys_seen(filing_run)
    by_gate = {(d.gate, d.attempt): d for d in store.history(launch_id)}
    for key in [("face-verification", 1), ("first-review", 1), ("sms-verification", 1), ("code-review", 1)]:
        assert by_gate[key].channel == "wechat", key
    events = store.events_for(launch_id)
    sms_rows = [e for e in events if e.kind == "icp_filing_result" and e.payload["event"].get("sms_verify_status") == 2]
    assert len(sms_rows) == 1  # the resent push is one inbox row
    assert events and all(e.applied_at is not None for e in events)

    # Every decision is in the audit trail once, in order, with its actor.
    history = store.history(launch_id)
    assert [d.decided_at for d in history] == sorted(d.decided_at for d in history)
    assert all(d.actor for d in history)
    assert {(d.gate, d.attempt) for d in history} == {(s.step, s.attempt) for s in store.steps_for(launch_id)}
    assert len(history) == len({(d.gate, d.attempt) for d in history})

    # Every side-effecting task body ran exactly once across all the replays.
    effects = store.effects_for(launch_id)
    assert effects and all(e.count == 1 for e in effects), [(e.effect_key, e.count) for e in effects if e.count != 1]

    # The launch run's artifacts are current: 100 %, every step in the table, released.
    # (the run refreshes them just after marking the launch released: give it a moment)
    arts = wait_for(lambda: (a := _artifacts(run_id)) and "已发布" in str(a.get(f"{launch_id}-waiting", "")) and a,
                    120, "the artifacts to say released")
    assert float(arts[f"{launch_id}-progress"]) == 100.0
    assert len(json.loads(arts[f"{launch_id}-steps"])) == len(store.steps_for(launch_id))
    assert "材料清单" in arts[f"{launch_id}-materials"]

    # Prefect's own database never saw the client's ID numbers or phones, nor those staff typed;
    # neither did the result files or the runner's log; and no link token is in any of them.
    assert store.get_decision(launch_id, "release", 1).payload["note"] == typed  # our record keeps it
    assert store.get_decision(launch_id, "content", 1).payload["note"] == typed
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

    # A forged push changes nothing in the launch.
    before = len(store.history(launch_id))
    r = httpx.post(f"{receiver}/wechat/auth", params={"signature": "0" * 40, "timestamp": str(int(time.time())),
                                                     "nonce": "forged", "encrypt_type": "aes",
                                                     "msg_signature": "0" * 40},
                   content=b"<xml><Encrypt>AAAA</Encrypt></xml>")
    assert r.status_code in (400, 401, 403) and len(store.history(launch_id)) == before
