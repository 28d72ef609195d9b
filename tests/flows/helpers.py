from __future__ import annotations

import time
from datetime import date
from uuid import UUID

from prefect.client.orchestration import get_client

from launch import runtime
from launch.app.launches import start_launch
from launch.orchestration.prefect import form_saved
from launch.app.preflight import add_client
from tests.support.intakes import fresh_intake

TODAY = date(2026, 11, 21)


def new_launch(example: str = "client-acme.yaml") -> tuple[dict, dict]:
    intake, raw = fresh_intake(example)
    client_id, _ = add_client(runtime.resources(), intake, TODAY)
    return start_launch(runtime.resources(), client_id), raw


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def waiting_at(launch_id: str, gate: str, attempt: int = 1):
    step = runtime.store().get_step(launch_id, gate, attempt)
    return step if step is not None and step.status == "waiting" else None


def run_state(flow_run_id: str):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id)).state


def parked_at(flow_run_id: str, key: str) -> bool:
    """Parked at `key` and ready to resume: a gate's Resume form is saved just after it parks."""
    state = run_state(flow_run_id)
    if not (state.is_paused() and state.state_details.pause_key == key):
        return False
    return key.startswith("join-") or form_saved(flow_run_id)


def pause_keys_seen(flow_run_id: str) -> list[str]:
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(flow_run_id))
    return [s.state_details.pause_key for s in states if s.state_details.pause_key]


def attempts(launch_id: str) -> dict[str, list[tuple[int, str, str | None]]]:
    out: dict[str, list] = {}
    for s in runtime.store().steps_for(launch_id):
        out.setdefault(s.step, []).append((s.attempt, s.status, s.outcome))
    return {k: sorted(v) for k, v in out.items()}
