"""The watcher repairs what a lost wake-up left behind, on a real Prefect server with a
real runner (tests/support/stack.py):

1. a decision lands in the store but the resume never reaches Prefect: watch_once sees the
   run parked at that gate with the decision unconsumed, resumes it, the launch goes on;
2. a branch finishes but its completion hook never wakes the launch parked on
   ``join-<branch>-<n>``: the deployed deadline-watcher flow wakes it.
"""

from __future__ import annotations

import pytest

from devtools.simulator import Scenario, Simulator
from launch.app.watcher import watch_once
from tests.flows.helpers import REGISTRATION, attempts, new_launch, parked_at, waiting_at
from tests.support.stack import stack_resources
from tests.support.wait import wait_for

pytestmark = pytest.mark.server


def test_lost_resume_and_lost_branch_wake_up_are_repaired(stack):
    # The session stack runs no scheduled watcher: only the passes this test starts repair anything.
    # Registration after the first gate decided ahead: taken without parking.
    started, _ = new_launch("client-acme.yaml", decided_ahead=REGISTRATION[1:])
    _lost_resume_and_lost_wake_up(stack_resources(), started["launch_id"], started["flow_run_id"])


def _lost_resume_and_lost_wake_up(res, launch_id: str, run_id: str) -> None:
    store = res.store

    # 1. parked at the first gate; the decision is recorded, the resume is "lost"
    wait_for(lambda: waiting_at(launch_id, "email-activation") and parked_at(run_id, "email-activation-1"),
             120, "the launch to park at email-activation-1")
    decision, created = store.record_decision(
        launch_id, "email-activation", 1, "done", "客户张", "cli", {"outcome": "done"}, decided_at=res.now()
    )
    assert created and decision.consumed_at is None
    assert parked_at(run_id, "email-activation-1")  # nobody resumed it

    # (other tests' launches share this stack: only this launch's repairs are this test's)
    report = watch_once(res, grace_seconds=0, deliver=False)
    ours = [r for r in report.repaired if r.launch_id == launch_id]
    assert [r.kind for r in ours if r.kind == "resume"] == ["resume"], report.to_json()
    # subject-info was decided ahead: its step opens and closes at once, so ask that it exists
    # (polling for "waiting" can miss that window and wait for nothing)
    wait_for(lambda: store.get_step(launch_id, "subject-info", 1), 180, "the launch to reach subject-info")
    assert store.get_step(launch_id, "email-activation", 1).status == "done"
    assert store.get_decision(launch_id, "email-activation", 1).consumed_at is not None
    # the pass also enqueued the open gate's notice (no channels here: it stays pending)
    assert any(a.dedupe_key == f"{launch_id}:email-activation:1:notice" for a in store.list_alerts())
    # a second pass finds nothing left to repair
    again = watch_once(res, grace_seconds=0, deliver=False)
    assert not [r for r in again.repaired if r.kind in ("resume", "wake") and r.launch_id == launch_id]

    # 2. the launch waits on the design branch; the branch "finishes" but nobody wakes the launch
    never = lambda s: False  # noqa: E731  (and the filing waits: this test needs none of it)
    sim = Simulator(launch_id, Scenario(hold={"design-draft": never, "filing-materials": never}), res=res)
    assert sim.run(300, until=lambda: waiting_at(launch_id, "design-draft") and parked_at(run_id, "join-design-0")), (
        attempts(launch_id)
    )
    store.finish_branch(launch_id, "design", "done", at=res.now())
    assert parked_at(run_id, "join-design-0")

    from prefect.deployments import run_deployment

    watcher_run = run_deployment("deadline-watcher/default", timeout=180)
    assert watcher_run.state.is_completed(), watcher_run.state
    summary = watcher_run.state.result()
    assert summary["repaired"] >= 1 and summary["errors"] == [], summary
    # woken, the launch sees the branch done and moves on to the implementation branch
    wait_for(lambda: parked_at(run_id, "join-implementation-1-0"), 180, "the launch to join implementation-1")
    assert store.get_branch(launch_id, "implementation-1") is not None
