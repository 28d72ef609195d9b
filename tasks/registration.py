"""Thin tasks of the registration phase: the profile gate's change counters.

The ``mini-program-profile`` gate is decided like any gate; this task then checks the
decision against the client's change counters in the store (WeChat's limits, counted by
``launch.domain.profile``) and either counts its changes on the client or refuses it: the
step is marked rejected with a "中文 / English" note naming the field and the rule, and the
flow opens the next attempt. Cached with persisted results like the other side-effecting
tasks; the store write is idempotent too (unique per client, launch, attempt and field).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from launch import runtime
from launch.domain.forms import FormProblem, MiniProgramProfileForm
from launch.domain.masking import scrub_text
from launch.domain.profile import ProfileChange, profile_changes, profile_problems

PROFILE_GATE = "mini-program-profile"


def check_profile_decision(store, launch_id: str, attempt: int, config=None) -> tuple[list[FormProblem], list]:
    """(problems, changes to count) of the recorded profile decision of ``attempt``.

    Usable outside a flow (an up-front check in the decision service would call the same)."""
    from launch.app.preflight import rule_config

    decision = store.get_decision(launch_id, PROFILE_GATE, attempt)
    if decision is None:
        return [], []
    launch = store.get_launch(launch_id)
    form = MiniProgramProfileForm.model_validate(
        {**decision.payload, "decided_by": decision.actor or "-", "outcome": decision.outcome}
    )
    history = [
        ProfileChange(c.field, c.changed_at, c.count)
        for c in store.profile_changes(launch.client_id, exclude=(launch_id, attempt))
    ]
    released = [x.released_at for x in store.list_launches(client_id=launch.client_id) if x.released_at]
    limits = (config or rule_config(runtime.settings())).profile
    problems = profile_problems(form, history, decision.decided_at, limits, released_at=min(released, default=None))
    return problems, profile_changes(form, decision.decided_at)


@task
def settle_profile(launch_id: str, attempt: int) -> list[str]:
    """Count the decided profile gate's changes on the client, or refuse it. Returns the
    rule ids it broke (empty: accepted and counted)."""
    store = runtime.store()
    problems, changes = check_profile_decision(store, launch_id, attempt)
    if problems:
        text = scrub_text("; ".join(f"{p.field}: {p.message}" for p in problems))
        store.refuse_decided_step(launch_id, PROFILE_GATE, attempt, note=text)
        get_run_logger().warning("小程序基本信息未通过 / profile refused: %s", text)
        return [p.rule for p in problems]
    launch = store.get_launch(launch_id)
    store.record_profile_changes(
        launch.client_id, launch_id, attempt, [(c.field, c.count, c.at) for c in changes]
    )
    return []
