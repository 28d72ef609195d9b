"""The watcher's reviver against a real Prefect server: it reschedules a run only when the
run is RUNNING and its heartbeats have stopped, never a parked or a live one.

Prefect's recipe (an automation that changes the state when heartbeats stop) rescheduled
parked and live launches here when a busy SQLite server missed the closing event; the
reviver decides from the run's state and its last heartbeat instead.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.states import Paused, Running

from launch.orchestration.prefect import HEARTBEAT_EVENT, REVIVED_MESSAGE, revive_dead_runs
from tests.flows.helpers import wait_for

pytestmark = pytest.mark.server


def _probe_run(name: str) -> str:
    """A flow run with no deployment (no runner will pick it up), put in RUNNING."""
    from prefect import flow

    @flow(name="revive-probe")
    def probe() -> None: ...

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(probe, name=name)
        client.set_flow_run_state(run.id, Running(), force=True)
    return str(run.id)


def _heartbeat(flow_run_id: str, at: datetime) -> None:
    import asyncio

    async def send():
        async with get_events_client() as events:
            await events.emit(Event(occurred=at, event=HEARTBEAT_EVENT,
                                    resource={"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"}))

    asyncio.run(send())

    def stored():
        with get_client(sync_client=True) as client:
            page = client.read_events(filter=EventFilter(
                event=EventNameFilter(name=[HEARTBEAT_EVENT]),
                resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"])), limit=5)
        return any(abs((e.occurred - at).total_seconds()) < 1 for e in page.events)

    wait_for(stored, 60, "the heartbeat to be stored")


def _state(flow_run_id: str):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id)).state


def test_reschedules_only_a_running_run_whose_heartbeats_stopped(stack):
    silent_run, quiet_run, parked_run = _probe_run("silent"), _probe_run("never-beat"), _probe_run("parked")
    time.sleep(3)  # the heartbeat comes a little after the RUNNING state began
    beat = datetime.now(timezone.utc)
    _heartbeat(silent_run, beat)
    _heartbeat(parked_run, beat)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(parked_run), Paused(pause_key="gate-1"), force=True)
    runs = [silent_run, quiet_run, parked_run]

    # RUNNING for over a minute, but heard from 58 s ago: alive.
    assert revive_dead_runs(runs, silent_seconds=60, now=beat + timedelta(seconds=58)) == []
    assert _state(silent_run).is_running()

    # Silent for longer than the threshold: rescheduled, with a reason. The others are left
    # alone: one never sent a heartbeat (dead cannot be told from slow), one is parked.
    revived = revive_dead_runs(runs, silent_seconds=60, now=beat + timedelta(seconds=400))
    assert [r.flow_run_id for r in revived] == [silent_run]
    assert 399 <= revived[0].silent_seconds <= 401
    state = _state(silent_run)
    assert state.is_scheduled() and state.message == REVIVED_MESSAGE
    assert _state(quiet_run).is_running()
    assert _state(parked_run).is_paused()

    # No longer RUNNING: a second pass changes nothing.
    assert revive_dead_runs(runs, silent_seconds=60, now=beat + timedelta(seconds=400)) == []
    assert revive_dead_runs([], silent_seconds=60) == []


def _parked_without_form(name: str, key: str) -> str:
    """A run parked for input whose process died before saving its form (no schema stored)."""
    from prefect.client.schemas.objects import StateDetails, StateType
    from prefect.states import State

    run_id = _probe_run(name)
    keyset = {"schema": f"{key}-schema", "response": f"{key}-response", "description": f"{key}-description"}
    parked = State(type=StateType.PAUSED, name="Suspended",
                   state_details=StateDetails(pause_key=key, pause_reschedule=True, run_input_keyset=keyset))
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run_id), parked, force=True)
    return run_id


def test_a_gate_parked_without_its_form_is_replayed_instead_of_resumed(stack):
    """Prefect refuses every resume of such a run ("Run input schema not found"); the decision is
    in the store, so the run is rescheduled to replay and its gate takes it without parking."""
    from launch.orchestration.prefect import FORM_SAVE_SECONDS, REPLAY_MESSAGE, resume_if_parked

    lost = _parked_without_form("lost-form", "design-draft-1")
    elsewhere = _parked_without_form("parked-elsewhere", "content-1")

    started = time.monotonic()
    assert resume_if_parked(lost, "design-draft-1", {"decided_by": "设计", "outcome": "done"}) is True
    assert time.monotonic() - started >= FORM_SAVE_SECONDS  # the form was given its time first
    state = _state(lost)
    assert state.is_scheduled() and state.message == REPLAY_MESSAGE

    # Parked at another key: not this decision's run state to change.
    assert resume_if_parked(elsewhere, "design-draft-1", {"decided_by": "设计", "outcome": "done"}) is False
    assert _state(elsewhere).is_paused()
