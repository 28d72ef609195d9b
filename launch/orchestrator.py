"""The Prefect side of the house for callers outside flows: start a launch, resume a gate, read a run.

The CLI, the callback receiver and the deadline watcher use this; flows and tasks
never do (they are already inside Prefect).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from deployments import LAUNCH


@dataclass(frozen=True)
class RunState:
    flow_run_id: str
    state_type: str  # PAUSED, RUNNING, COMPLETED, ...
    state_name: str
    pause_key: str | None

    @property
    def parked(self) -> bool:
        return self.state_type == "PAUSED"


FORM_NOT_SAVED = "Run input schema not found"  # Prefect's refusal while a parked run's form is being saved
FORM_SAVE_SECONDS = 5.0


def form_saved(flow_run_id: str) -> bool:
    """Whether a run parked for input has its Resume form (input schema) saved yet."""
    from prefect.input.run_input import keyset_from_paused_state

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        if run.state is None or not run.state.is_paused():
            return False
        try:
            client.read_flow_run_input(run.id, keyset_from_paused_state(run.state)["schema"])
        except Exception:  # noqa: BLE001 - 404 until the engine has written it
            return False
    return True


def ui_url(flow_run_id: str | None) -> str:
    from launch.settings import get_settings

    if not flow_run_id:
        return ""
    return f"{get_settings().prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def start_launch_run(launch_id: str) -> str:
    """Create the launch's flow run (exactly once per launch id) and return its id."""
    from prefect.deployments import run_deployment

    run = run_deployment(
        LAUNCH,
        parameters={"launch_id": launch_id},
        timeout=0,
        as_subflow=False,
        idempotency_key=f"launch-{launch_id}",
        tags=["weapp-launch", launch_id],
    )
    return str(run.id)


def read_state(flow_run_id: str) -> RunState | None:
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return None
    state = run.state
    if state is None:
        return RunState(flow_run_id, "PENDING", "Pending", None)
    return RunState(
        flow_run_id,
        state.type.value,
        state.name or state.type.value,
        getattr(state.state_details, "pause_key", None),
    )


def resume_if_parked(flow_run_id: str, key: str, run_input: dict | None = None, wait_seconds: float = 0.0) -> bool:
    """Resume the run if it is parked at `key`; True when resumed.

    A run that is not parked there yet is left alone: the gate reads the store
    before it suspends, so the decision is not lost. `wait_seconds` covers the short
    moment between a gate opening in the store and the run actually parking.
    """
    from prefect.flow_runs import resume_flow_run

    deadline = time.monotonic() + wait_seconds
    # Prefect parks a run first and saves its Resume form a moment later; a resume in that
    # moment is refused ("Run input schema not found"), so it is retried for a little while.
    form_deadline = time.monotonic() + max(wait_seconds, FORM_SAVE_SECONDS)
    while True:
        state = read_state(flow_run_id)
        if state is not None and state.parked and state.pause_key == key:
            try:
                resume_flow_run(UUID(flow_run_id), run_input=run_input)
                return True
            except RuntimeError as exc:
                if FORM_NOT_SAVED in str(exc) and time.monotonic() < form_deadline:
                    time.sleep(0.1)
                    continue
                # Someone else resumed it first, or the server refused: the store has the decision.
                return False
        if state is None or state.state_type in {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)
