"""The one mechanism behind every human-gated step.

open the gate (step row, deadline)  ->  a decision already in the store?  ->  take it
                                   └─>  otherwise park the run with the gate's form
A decision can arrive before the gate is reached (CLI, WeChat push, signed link):
it waits in the store and is taken here without a suspend. A Resume form that
breaks a cross-field rule is noted and the run parks again on a new key.

What staff type (who decided, notes, reasons) goes to the store as typed and to
Prefect only scrubbed: a form answered in the Prefect UI is recorded in the store by
a task that returns nothing, the gate carries on with the store's (scrubbed) view of
it, and the answers Prefect kept for the gate's Resume forms are deleted once the
store has the decision.
"""

from __future__ import annotations

from functools import lru_cache

from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput

from launch import runtime
from launch.domain.forms import GateForm
from launch.app.views import DecisionView, LaunchInfo
from tasks.artifacts import refresh_artifacts
from tasks.gates import (
    describe_gate,
    find_decision,
    forget_form_answers,
    note_problems,
    open_gate,
    record_form_decision,
    take_decision,
)


@lru_cache
def run_input_for(form: type[GateForm]) -> type[RunInput]:
    """The Prefect Resume form of a gate: the domain form, as a RunInput."""
    return type(f"{form.__name__}Input", (RunInput, form), {"__module__": __name__})


def pass_gate(info: LaunchInfo, gate_id: str, attempt: int = 1) -> DecisionView:
    gate = runtime.catalogue().gate(gate_id)
    opened = open_gate(info.launch_id, gate_id, attempt)
    refresh_artifacts(info.launch_id, f"open-{opened.key}")
    decision = find_decision(info.launch_id, gate_id, attempt)
    retry = 0
    while decision is None:
        key = opened.key if retry == 0 else f"{opened.key}-retry-{retry}"
        form_input = run_input_for(gate.form).with_initial_data(
            description=describe_gate(info, opened)
        )
        form = suspend_flow_run(
            wait_for_input=form_input, key=key, timeout=runtime.settings().gate_timeout_days * 86400
        )
        # A decision recorded in the store (CLI, push, link) wins over the form.
        decision = find_decision(info.launch_id, gate_id, attempt)
        if decision is not None:
            break
        problems = form.problems()
        if problems:
            note_problems(info.launch_id, gate_id, attempt, problems)
            retry += 1
            continue
        # The form as typed goes to the store only; from here on the gate works from the store.
        record_form_decision(info.launch_id, gate_id, attempt, form.outcome, form.decided_by, form.payload())
        decision = find_decision(info.launch_id, gate_id, attempt)
    taken = take_decision(
        info.launch_id, gate_id, attempt, decision.outcome, decision.actor, decision.channel, decision.payload
    )
    refresh_artifacts(info.launch_id, f"decided-{gate_id}-{attempt}")
    # Cached like the tasks above: after a crash before it ran, the next replay runs it. A
    # failure (server briefly away) does not stop the launch; it is not cached, so a replay retries.
    forget_form_answers(opened.key, return_state=True)
    return taken
