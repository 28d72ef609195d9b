"""Design, implementation and content: each its own flow run, parallel to the filing."""

from __future__ import annotations

from prefect import flow

from flows.gate import pass_gate
from tasks.branches import branch_completed_hook, branch_failed_hook, finish_branch
from tasks.gates import launch_info

_HOOKS = dict(on_completion=[branch_completed_hook], on_failure=[branch_failed_hook], on_crashed=[branch_failed_hook])


@flow(name="design", persist_result=True, **_HOOKS)
def design(launch_id: str, branch: str = "design", attempt: int = 1) -> str:
    info = launch_info(launch_id)
    round_ = 1
    while True:
        pass_gate(info, "design-draft", round_)
        if pass_gate(info, "design-confirmation", round_).passed:
            break
        round_ += 1  # the client asked for rework: a new draft
    finish_branch(launch_id, branch)
    return "confirmed"


@flow(name="implementation", persist_result=True, **_HOOKS)
def implementation(launch_id: str, branch: str = "implementation-1", attempt: int = 1) -> str:
    """attempt 1 builds from the approved design; later attempts fix a failed code review."""
    info = launch_info(launch_id)
    pass_gate(info, "implementation", attempt)
    finish_branch(launch_id, branch)
    return "implemented"


@flow(name="content", persist_result=True, **_HOOKS)
def content(launch_id: str, branch: str = "content", attempt: int = 1) -> str:
    info = launch_info(launch_id)
    pass_gate(info, "content", attempt)
    finish_branch(launch_id, branch)
    return "filled"
