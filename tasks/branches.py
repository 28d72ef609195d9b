"""Branches: filing, design, implementation and content each run as a flow run of their own.

Prefect allows one wait at a time per flow run, and a subflow cannot suspend, so
work that waits independently of the launch gets its own deployment run. Each is
started exactly once (a cached task plus an idempotency key, for replays and
crashes), and the launch joins it by parking on `join-<branch>-<n>` until the store
says the branch is done; the branch's completion hook wakes the launch.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run

from launch import runtime
from launch.app.branches import wake_launch
from launch.domain.catalogue import join_key
from launch.orchestration.names import deployment_of


@task
def start_branch(launch_id: str, branch: str, flow_name: str, parameters: dict) -> str:
    from prefect.deployments import run_deployment

    run = run_deployment(
        deployment_of(flow_name),
        parameters=parameters,
        timeout=0,
        as_subflow=False,
        idempotency_key=f"{launch_id}-{branch}",
        tags=["weapp-launch", launch_id],
    )
    store = runtime.store()
    store.start_branch(launch_id, branch, flow_run_id=str(run.id), started_at=runtime.now())
    store.note_effect(launch_id, f"branch:{branch}", str(flow_run.get_id()))
    get_run_logger().info("分支 %s 已启动 / branch %s started: %s", branch, branch, run.id)
    return str(run.id)


@task(cache_policy=NO_CACHE)
def branch_status(launch_id: str, branch: str) -> str | None:
    row = runtime.store().get_branch(launch_id, branch)
    return row.status if row else None


@task
def finish_branch(launch_id: str, branch: str) -> None:
    runtime.store().finish_branch(launch_id, branch, status="done", at=runtime.now())


def join_branch(launch_id: str, branch: str, timeout_seconds: int) -> None:
    """Park the calling (launch) run until the branch is done. Call from a flow body."""
    n = 0
    while True:
        status = branch_status(launch_id, branch)
        if status == "done":
            return
        if status == "failed":
            raise RuntimeError(f"分支 {branch} 失败 / branch {branch} failed; see its flow run")
        # A fired key returns at once on replay, so n walks past earlier wake-ups.
        suspend_flow_run(key=join_key(branch, n), timeout=timeout_seconds)
        n += 1


def branch_completed_hook(flow, flow_run, state) -> None:
    """on_completion hook of every branch flow (Prefect passes these as keywords)."""
    wake_launch(runtime.resources(), flow_run.parameters["launch_id"], flow_run.parameters.get("branch") or flow.name)


def branch_failed_hook(flow, flow_run, state) -> None:
    launch_id = flow_run.parameters["launch_id"]
    branch = flow_run.parameters.get("branch") or flow.name
    runtime.store().finish_branch(launch_id, branch, status="failed", at=runtime.now())
    wake_launch(runtime.resources(), launch_id, branch)
