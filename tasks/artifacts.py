"""Artifacts on the launch's own flow run, refreshed whenever a gate opens or is decided.

Branch runs write to the launch run too (by its id), so the launch page in the
Prefect UI always shows the whole picture: progress, a table of steps, what is
waiting on whom and by when, and the materials checklist.
"""

from __future__ import annotations

import json
from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate

from launch import runtime
from launch.domain.plan import make_plan
from launch.presentation import materials_markdown, progress_percent, step_rows, waiting_markdown


def artifact_keys(launch_id: str) -> dict[str, str]:
    return {kind: f"{launch_id}-{kind}" for kind in ("progress", "steps", "waiting", "materials")}


@task
def refresh_artifacts(launch_id: str, reason: str) -> None:
    """`reason` makes each refresh a distinct cached task, so a replay does not repeat it."""
    from tasks.gates import launch_info

    info = launch_info.fn(launch_id)
    if not info.flow_run_id:
        return
    store = runtime.store()
    cat = runtime.catalogue()
    launch = store.get_launch(launch_id)
    steps = store.steps_for(launch_id)
    released = launch.status == "released"
    plan = make_plan(cat, runtime.calendar(), launch.created_at.date(), info.registration_path)
    keys = artifact_keys(launch_id)
    run_id = UUID(info.flow_run_id)
    artifacts = [
        ArtifactCreate(
            key=keys["progress"], type="progress", flow_run_id=run_id,
            data=progress_percent(info, steps, cat, released), description="上线进度 / launch progress",
        ),
        ArtifactCreate(
            key=keys["steps"], type="table", flow_run_id=run_id,
            data=json.dumps(step_rows(steps, cat, plan), ensure_ascii=False),
            description="步骤：计划、实际、状态、次数 / steps: planned, actual, status, attempt",
        ),
        ArtifactCreate(
            key=keys["waiting"], type="markdown", flow_run_id=run_id,
            data=waiting_markdown(info, steps, cat, released), description="正在等待 / waiting for",
        ),
    ]
    materials = _materials(info.client_id)
    if materials is not None:
        artifacts.append(
            ArtifactCreate(
                key=keys["materials"], type="markdown", flow_run_id=run_id,
                data=materials_markdown(materials), description="材料清单 / materials checklist",
            )
        )
    with get_client(sync_client=True) as client:
        for artifact in artifacts:
            client.create_artifact(artifact)


def _materials(client_id: str):
    from launch.preflight import check_client

    result = check_client(runtime.store(), client_id, runtime.now().date())
    return result.materials if result else None
