"""The launch: one flow run per client launch, from registration to release.

Only the order of steps lives here. Gates, branches, store writes and artifacts
are tasks; which gates exist, their forms and deadlines come from the catalogue.
"""

from __future__ import annotations

from prefect import flow

from flows.gate import pass_gate
from launch import runtime
from tasks.artifacts import refresh_artifacts
from tasks.branches import join_branch, start_branch
from tasks.gates import launch_info
from tasks.launches import bind_launch_run, mark_released


def _join(launch_id: str, branch: str) -> None:
    join_branch(launch_id, branch, runtime.settings().gate_timeout_days * 86400)


def _register(info) -> None:
    """Registration gates for the launch's path; a failed attempt starts that path's loop again."""
    cat = runtime.catalogue()
    attempt = 1
    while True:
        failed = False
        for gate in cat.gates_of("registration", info.registration_path, info.subject_type):
            decision = pass_gate(info, gate.id, attempt)
            if not decision.passed:
                failed = True
                break
        if not failed:
            return
        attempt += 1


@flow(name="launch", persist_result=True, log_prints=False)
def launch(launch_id: str) -> str:
    bind_launch_run(launch_id)
    info = launch_info(launch_id)
    _register(info)

    # Filing waits on WeChat, MIIT and the bureau for weeks: its own run, in parallel.
    start_branch(launch_id, "filing", "filing", {"launch_id": launch_id, "branch": "filing"})
    # Design -> implementation -> content, each its own run (each parks at its own gates).
    for flow_name in ("design", "implementation", "content"):
        branch = f"{flow_name}-1" if flow_name == "implementation" else flow_name
        start_branch(launch_id, branch, flow_name, {"launch_id": launch_id, "branch": branch, "attempt": 1})
        _join(launch_id, branch)

    # Code review can go in before the filing is done; a failure goes back to implementation.
    attempt = 1
    while True:
        pass_gate(info, "review-submission", attempt)
        if pass_gate(info, "code-review", attempt).passed:
            break
        attempt += 1
        fix = f"implementation-{attempt}"
        start_branch(launch_id, fix, "implementation", {"launch_id": launch_id, "branch": fix, "attempt": attempt})
        _join(launch_id, fix)

    # Release only when review passed AND the filing is complete (rule since 2023-09-01).
    _join(launch_id, "filing")
    pass_gate(info, "release", 1)
    mark_released(launch_id)
    refresh_artifacts(launch_id, "released")
    return "released"
