"""Thin tasks around the store for the gate mechanism.

Side-effecting tasks use Prefect's default cache policy (inputs + source + flow
run id) with persisted results, so when a resumed flow body replays from the top
they load their result instead of running again; the store writes behind them
are idempotent as well, so even a crash between the write and the result being
persisted changes nothing. Reads use NO_CACHE: a replay must see the store as it
is now.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from launch import runtime
from launch.domain.deadlines import gate_due
from launch.domain.forms import FormProblem
from launch.domain.masking import mask_name, scrub_text
from launch.views import DecisionView, LaunchInfo, OpenedGate


def _current_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


@task(cache_policy=NO_CACHE)
def launch_info(launch_id: str) -> LaunchInfo:
    store = runtime.store()
    launch = store.get_launch(launch_id)
    if launch is None:
        raise ValueError(f"launch_id: 没有这个上线任务 / no launch {launch_id}")
    client = store.get_client(launch.client_id)
    name = client.display_name
    if client.subject_type == "individual":
        name = mask_name(name)
    return LaunchInfo(
        launch_id=launch.id,
        client_id=client.id,
        client_name=name,
        mini_program_name=client.mini_program_name,
        registration_path=launch.registration_path,
        subject_type=client.subject_type,
        flow_run_id=launch.flow_run_id,
    )


@task
def open_gate(launch_id: str, gate_id: str, attempt: int) -> OpenedGate:
    """The gate starts waiting: its step row, deadline and the run that will park there."""
    gate = runtime.catalogue().gate(gate_id)
    store = runtime.store()
    opened_at = runtime.now()
    due = gate_due(gate, opened_at, runtime.calendar())
    step = store.open_step(
        launch_id,
        gate_id,
        attempt,
        started_at=opened_at,
        due_at=due.at,
        provisional=due.provisional,
        flow_run_id=_current_run_id(),
        gate_key=gate.key(attempt),
    )
    # The ledger counts executions of this task body: a replay must load, not run again.
    store.note_effect(launch_id, f"open:{gate.key(attempt)}", _current_run_id())
    return OpenedGate(
        gate=gate_id,
        attempt=attempt,
        key=gate.key(attempt),
        opened_at=step.started_at,
        due_at=step.due_at,
        provisional=step.provisional,
    )


@task(cache_policy=NO_CACHE)
def find_decision(launch_id: str, gate_id: str, attempt: int) -> DecisionView | None:
    decision = runtime.store().get_decision(launch_id, gate_id, attempt)
    return _view(decision) if decision else None


@task
def take_decision(
    launch_id: str, gate_id: str, attempt: int, outcome: str, actor: str, channel: str, payload: dict
) -> DecisionView:
    """Record (if not yet recorded) and consume a decision; close the gate's step."""
    gate = runtime.catalogue().gate(gate_id)
    store = runtime.store()
    now = runtime.now()
    decision, created = store.record_decision(
        launch_id, gate_id, attempt, outcome=outcome, actor=actor, channel=channel, payload=payload, decided_at=now
    )
    passed = decision.outcome in gate.form.passing_outcomes
    if passed and decision.payload.get("appid"):
        # Registration tells us who the mini-program is: WeChat's pushes are matched on these.
        store.set_app_ids(launch_id, decision.payload["appid"], decision.payload.get("original_id"))
    store.mark_decision_consumed(decision.id, at=now)
    store.finish_step(
        launch_id, gate_id, attempt, status="done" if passed else "rejected", outcome=decision.outcome, at=now
    )
    store.note_effect(launch_id, f"decide:{gate.key(attempt)}", _current_run_id())
    get_run_logger().info(
        "关卡 %s 第 %d 次：%s（%s，经 %s）/ gate %s attempt %d: %s by %s via %s",
        gate.name_zh, attempt, decision.outcome, decision.actor, decision.channel,
        gate_id, attempt, decision.outcome, decision.actor, decision.channel,
    )
    return _view(decision)


@task(cache_policy=NO_CACHE)
def describe_gate(info: LaunchInfo, opened: OpenedGate) -> str:
    """The Markdown on top of the Resume form: what to check or do, by when."""
    from launch.presentation import gate_markdown

    store = runtime.store()
    cat = runtime.catalogue()
    return gate_markdown(info, cat.gate(opened.gate), opened, store.steps_for(info.launch_id), cat)


@task(cache_policy=NO_CACHE)
def note_problems(launch_id: str, gate_id: str, attempt: int, problems: list[FormProblem]) -> None:
    """A Resume form passed the schema but broke a cross-field rule: say why and wait again."""
    text = "; ".join(f"{p.field}: {p.message}" for p in problems)
    runtime.store().annotate_step(launch_id, gate_id, attempt, note=scrub_text(text))
    get_run_logger().warning("表单未通过校验，继续等待 / form refused, still waiting: %s", scrub_text(text))


def _view(decision) -> DecisionView:
    gate = runtime.catalogue().gate(decision.gate)
    return DecisionView(
        gate=decision.gate,
        attempt=decision.attempt,
        outcome=decision.outcome,
        actor=decision.actor,
        channel=decision.channel,
        payload=decision.payload or {},
        decided_at=decision.decided_at,
        passed=decision.outcome in gate.form.passing_outcomes,
    )
