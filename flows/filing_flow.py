"""The ICP filing branch (launch/process/branches.py: materials, face verification,
submission, first review, 12381 SMS, bureau, and their loops), bound to Prefect."""

from __future__ import annotations

from prefect import flow

from flows.wiring import BRANCH_HOOKS, steps
from launch.process import branches


@flow(name="filing", persist_result=True, **BRANCH_HOOKS)
def filing(launch_id: str, branch: str = "filing", attempt: int = 1) -> str:
    return branches.filing(steps(), launch_id, branch, attempt)
