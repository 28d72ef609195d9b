"""The one mechanism behind every human-gated step, and the launch's wait for a branch.

open the gate (step row, deadline)  ->  a decision already in the store?  ->  take it
                                   └─>  otherwise park the run with the gate's form
A decision can arrive before the gate is reached (CLI, WeChat push, signed link): it waits
in the store and is taken here without a suspend. A Resume form that breaks a cross-field
rule is noted and the run parks again on a new key. A decision in the store wins over the
form; the form as typed goes to the store only (the gate then works from the store's
scrubbed view), and what the orchestrator kept of the form is deleted once decided.
"""

from __future__ import annotations

from launch.app.views import DecisionView, LaunchInfo
from launch.domain.catalogue import join_key
from launch.process.ports import Steps


class BranchFailed(RuntimeError):
    pass


def pass_gate(steps: Steps, info: LaunchInfo, gate_id: str, attempt: int = 1) -> DecisionView:
    gate = steps.catalogue.gate(gate_id)
    opened = steps.open_gate(info.launch_id, gate_id, attempt)
    if gate.action:
        # Where a platform is configured the tool acts on WeChat first (submit for review,
        # release, create the face-check task); the gate then waits as always.
        steps.act(info.launch_id, gate_id, attempt)
    steps.refresh_artifacts(info.launch_id, f"open-{opened.key}")
    decision = steps.find_decision(info.launch_id, gate_id, attempt)
    retry = 0
    while decision is None:
        key = opened.key if retry == 0 else f"{opened.key}-retry-{retry}"
        form = steps.suspend(key, form=gate.form, description=steps.describe_gate(info, opened))
        decision = steps.find_decision(info.launch_id, gate_id, attempt)
        if decision is not None:
            break  # recorded by the CLI, a push or a link: it wins over the form
        problems = form.problems()
        if problems:
            steps.note_problems(info.launch_id, gate_id, attempt, problems)
            retry += 1
            continue
        steps.record_form_decision(info.launch_id, gate_id, attempt, form.outcome, form.decided_by, form.payload())
        decision = steps.find_decision(info.launch_id, gate_id, attempt)
    taken = steps.take_decision(
        info.launch_id, gate_id, attempt, decision.outcome, decision.actor, decision.channel, decision.payload
    )
    steps.refresh_artifacts(info.launch_id, f"decided-{gate_id}-{attempt}")
    steps.forget_form_answers(opened.key)
    return taken


def join_branch(steps: Steps, launch_id: str, branch: str) -> None:
    """Park the launch until the branch is done; the branch's completion wakes it."""
    n = 0
    while True:
        status = steps.branch_status(launch_id, branch)
        if status == "done":
            return
        if status == "failed":
            raise BranchFailed(f"分支 {branch} 失败 / branch {branch} failed; see its flow run")
        # A fired key returns at once on replay, so n walks past earlier wake-ups.
        steps.suspend(join_key(branch, n))
        n += 1
