"""Design, implementation and content: each its own flow run, parallel to the filing."""

from __future__ import annotations

from prefect import flow

from flows.wiring import BRANCH_HOOKS, steps
from launch.process import branches


@flow(name="design", persist_result=True, **BRANCH_HOOKS)
def design(launch_id: str, branch: str = "design", attempt: int = 1) -> str:
    return branches.design(steps(), launch_id, branch, attempt)


@flow(name="implementation", persist_result=True, **BRANCH_HOOKS)
def implementation(launch_id: str, branch: str = "implementation-1", attempt: int = 1) -> str:
    return branches.implementation(steps(), launch_id, branch, attempt)


@flow(name="content", persist_result=True, **BRANCH_HOOKS)
def content(launch_id: str, branch: str = "content", attempt: int = 1) -> str:
    return branches.content(steps(), launch_id, branch, attempt)
