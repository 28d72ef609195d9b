"""The launch: one flow run per client launch, from registration to release (the order of
steps is launch/process/launch.py; this binds it to Prefect)."""

from __future__ import annotations

from prefect import flow

from flows.wiring import steps
from launch.process import launch as process


@flow(name="launch", persist_result=True, log_prints=False)
def launch(launch_id: str) -> str:
    return process.launch(steps(), launch_id)
