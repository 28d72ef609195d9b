"""Branch runs seen from outside a flow: wake the launch run parked on a join it may now pass.

The branch flows' completion hooks (tasks/branches.py) and the deadline watcher's lost
wake-up repair (launch/app/watcher.py) both call :func:`wake_launch`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from launch.domain.catalogue import branch_of_join

if TYPE_CHECKING:
    from launch.app.resources import Resources

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


def wake_launch(res: Resources, launch_id: str, finished: str | None = None, wait_seconds: float = 60.0) -> bool:
    """Resume the launch run if it is parked on a join it may now pass; the watcher repairs a
    wake-up lost here.

    `finished`: the branch that just ended. A launch parked on another branch's join that is
    not done yet is left alone: waking it would only replay it onto the same join.
    """
    store, orchestrator = res.store, res.orchestrator
    launch = store.get_launch(launch_id)
    if launch is None or not launch.flow_run_id:
        return False
    deadline = time.monotonic() + wait_seconds
    while True:
        state = orchestrator.read_state(launch.flow_run_id)
        if state is None or state.state_type in FINAL_STATES:
            return False
        joined = branch_of_join(state.pause_key) if state.parked else None
        if joined is not None:
            if finished is not None and joined != finished:
                other = store.get_branch(launch_id, joined)
                if other is None or other.status not in ("done", "failed"):
                    return False
            return orchestrator.resume_if_parked(launch.flow_run_id, state.pause_key)
        if state.state_type != "RUNNING" or time.monotonic() >= deadline:
            # Parked at a gate, or about to run (scheduled, pending): it reads the branch's status
            # when it reaches the join. Only a RUNNING launch may park on a join it read just before.
            return False
        time.sleep(0.5)


def branch_ended(res: Resources, launch_id: str, branch: str, ok: bool) -> bool:
    """What a branch run's end does (its flow's completion and failure hooks): a failed branch
    is marked failed in the store; either way the launch is woken if it waits for it."""
    if not ok:
        res.store.finish_branch(launch_id, branch, status="failed", at=res.now())
    return wake_launch(res, launch_id, branch)
