"""The composition root of the Prefect processes (the runner, a worker's flow-run process).

Resources are built here once per process from WEAPP_LAUNCH_* settings and handed down: the
activities get them, the tasks get the activities, the flow bodies get the `Steps` over the
tasks. Nothing below this module looks anything up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from prefect import Task, get_run_logger
from prefect.runtime import flow_run

from flows.steps import PrefectSteps
from launch.app import Resources
from launch.app.activities import Activities
from launch.app.branches import branch_ended
from tasks.activities import build_tasks
from tasks.watcher_tasks import build_watcher_tasks


def current_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


@lru_cache
def resources() -> Resources:
    return Resources.from_settings()


@contextmanager
def fresh_resources() -> Iterator[Resources]:
    """Resources for one watcher phase: settings and the notifiers file read as they are now."""
    res = Resources.from_settings()
    try:
        yield res
    finally:
        res.close()


@lru_cache
def activity_tasks() -> dict[str, Task]:
    return build_tasks(Activities(resources(), run_id=current_run_id, logger=get_run_logger))


@lru_cache
def watcher_tasks() -> dict[str, Task]:
    return build_watcher_tasks(fresh_resources, current_run_id)


def steps() -> PrefectSteps:
    res = resources()
    return PrefectSteps(activity_tasks(), res.catalogue, res.settings.gate_timeout_days * 86400)


def branch_completed_hook(flow, flow_run, state) -> None:
    """on_completion hook of every branch flow (Prefect passes these as keywords): wake the launch."""
    branch_ended(resources(), flow_run.parameters["launch_id"], flow_run.parameters.get("branch") or flow.name, ok=True)


def branch_failed_hook(flow, flow_run, state) -> None:
    """on_failure / on_crashed hook: mark the branch failed and wake the launch, which then fails."""
    branch_ended(resources(), flow_run.parameters["launch_id"], flow_run.parameters.get("branch") or flow.name, ok=False)


BRANCH_HOOKS = dict(on_completion=[branch_completed_hook], on_failure=[branch_failed_hook],
                    on_crashed=[branch_failed_hook])
