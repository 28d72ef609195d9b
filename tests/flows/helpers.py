"""What the real-server tests ask of a stack: start a launch as the CLI does, read where its
runs are parked (Prefect's view and the store's)."""

from __future__ import annotations

from datetime import date
from typing import Iterable
from uuid import UUID

from prefect.client.orchestration import get_client

from devtools.simulator import PASSING
from launch.app.decisions import submit_decision
from launch.app.launches import start_launch
from launch.app.preflight import add_client
from launch.orchestration.prefect import form_saved
from tests.support.intakes import fresh_intake
from tests.support.stack import stack_resources
from tests.support.wait import wait_for  # noqa: F401  (the real-server tests' one wait loop)

TODAY = date(2026, 11, 21)
REGISTRATION = ("email-activation", "subject-info", "wechat-verification", "mini-program-profile")  # client-acme's


def new_launch(example: str = "client-acme.yaml", decided_ahead: Iterable[str] = (),
               answers: dict[str, dict] | None = None) -> tuple[dict, dict]:
    """Register a client from a fresh intake and start its launch, as the CLI does; returns
    (start_launch's answer, the intake's raw values). The gates `decided_ahead` get their
    passing answer (or `answers[gate]`) recorded first: taken at their gate without parking,
    they cost no flow-run process."""
    res = stack_resources()
    intake, raw = fresh_intake(example)
    client_id, _ = add_client(res, intake, TODAY)
    if decided_ahead:
        launch = res.store.create_launch(client_id)
        for gate in decided_ahead:
            data = {"decided_by": "运营", **PASSING[gate], **(answers or {}).get(gate, {})}
            result = submit_decision(res, launch.id, gate, data, "cli", attempt=1)
            assert result.status == "recorded", (gate, result)
    return start_launch(res, client_id), raw


def waiting_at(launch_id: str, gate: str, attempt: int = 1):
    step = stack_resources().store.get_step(launch_id, gate, attempt)
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
    for s in stack_resources().store.steps_for(launch_id):
        out.setdefault(s.step, []).append((s.attempt, s.status, s.outcome))
    return {k: sorted(v) for k, v in out.items()}
