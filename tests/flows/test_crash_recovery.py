"""SIGKILL the worker while a launch is parked and while a branch run is running; it goes on.

The runner and every flow-run process it started are killed as a process group, as
when a machine dies. A parked launch holds no process, so a new runner simply picks
it up on resume. A run killed mid-flight stops sending heartbeats; the deadline
watcher's repair pass (here every 30 s, as its schedule would run it) finds it RUNNING
and silent, puts it back to Scheduled, and the new runner replays it, loading every
finished task's result: no side effect runs twice.

The launch goes as far as what the kills touch needs: the revived design run finishes and
wakes the launch, which starts the implementation branch (the filing branch is held at its
first gate; the rest of the process after a replay is the flow-logic tests' to show).
"""

from __future__ import annotations

import time
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from devtools.simulator import PASSING, Scenario, Simulator
from launch.app.decisions import submit_decision
from launch.orchestration.prefect import REVIVED_MESSAGE
from launch.app import Resources
from launch.settings import Settings
from tests.flows.helpers import REGISTRATION, attempts, new_launch, parked_at, waiting_at
from tests.support.wait import wait_for

pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]  # slow beside the scale test


def _runs_of(launch_id: str):
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[launch_id])))


def test_sigkill_while_parked_and_while_a_branch_runs(stack):
    # Registration and the design's confirmation decided ahead: no park there, nothing to show.
    started, _ = new_launch("client-acme.yaml", decided_ahead=(*REGISTRATION, "design-confirmation"))
    launch_id, run_id = started["launch_id"], started["flow_run_id"]
    # The watcher's reviver at its smallest setting (60 s is the floor; 75 s: two heartbeats and
    # some room on a loaded machine), so that the killed run is found dead sooner than 150 s.
    res = Resources(settings=Settings(dead_run_seconds=75))
    store = res.store
    hold_design = {"on": True}
    never = lambda s: False  # noqa: E731
    sim = Simulator(launch_id, Scenario(hold={"design-draft": lambda s: not hold_design["on"],
                                              "filing-materials": never, "implementation": never}),
                    repair_every=30, res=res)

    # 1. Parked: registration done, the launch waits on the design branch, which waits at its draft.
    assert sim.run(360, until=lambda: waiting_at(launch_id, "design-draft") and parked_at(run_id, "join-design-0"))
    stack.kill_runner()
    stack.start_runner()
    assert parked_at(run_id, "join-design-0")

    # 2. Running: answer the draft, and kill the worker while the design run is executing.
    design_run = store.get_branch(launch_id, "design").flow_run_id
    submit_decision(res, launch_id, "design-draft", {"decided_by": "设计", **PASSING["design-draft"]}, "cli")

    def design_running():
        with get_client(sync_client=True) as client:
            return client.read_flow_run(UUID(design_run)).state.is_running()

    wait_for(design_running, 240, "the design run to be running", interval=0.1)
    time.sleep(2)  # its first heartbeat is out
    killed_mid_flight = design_running()  # on a fast machine it may have finished in those 2 s
    stack.kill_runner()
    stack.start_runner()
    hold_design["on"] = False

    # The watcher reschedules the orphaned run; it finishes and the launch goes on to implementation.
    def implementation_started() -> bool:
        design = store.get_branch(launch_id, "design")
        return (design.status == "done" and store.get_branch(launch_id, "implementation-1") is not None
                and parked_at(run_id, "join-implementation-1-0") and bool(waiting_at(launch_id, "implementation")))

    assert sim.run(480, until=implementation_started), (
        f"the launch did not go on after the crash; steps: {attempts(launch_id)}; repairs: {sim.repairs}")
    revived = [r for r in sim.repairs if r.kind == "revive"]
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(design_run))
    revived_states = [s for s in states if s.type.value == "SCHEDULED" and s.message == REVIVED_MESSAGE]
    if killed_mid_flight:
        # revived by a watcher pass: the simulator's, or the runner-side one (either records the state)
        assert revived or revived_states, f"the killed design run was not revived; repairs: {sim.repairs}"
        assert revived_states, [(s.type.value, s.message) for s in states]

    # Every side-effecting task body ran exactly once, across kills and replays.
    effects = store.effects_for(launch_id)
    assert all(e.count == 1 for e in effects), [(e.effect_key, e.count) for e in effects if e.count != 1]
    # Each branch and the launch have exactly one flow run: nothing was started twice.
    runs = _runs_of(launch_id)
    names = sorted(r.parameters.get("branch", "launch") for r in runs)
    assert names == sorted(["launch", "filing", "design", "implementation-1"])
    # One decision per gate attempt; the design draft decided once.
    assert len([d for d in store.history(launch_id) if d.gate == "design-draft"]) == 1
    res.close()
