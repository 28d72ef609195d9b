"""Launch-level store writes."""

from __future__ import annotations

from prefect import task
from prefect.runtime import flow_run

from launch import runtime


@task
def mark_released(launch_id: str) -> None:
    store = runtime.store()
    store.set_launch_status(launch_id, "released", at=runtime.now())
    store.note_effect(launch_id, "released", str(flow_run.get_id()))


@task
def bind_launch_run(launch_id: str) -> None:
    """The launch run records its own id: wake-ups and artifacts find it even if `start` died midway."""
    runtime.store().set_launch_flow_run(launch_id, str(flow_run.get_id()))
