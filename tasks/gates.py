"""Thin tasks around the store for the gate mechanism.

Side-effecting tasks use Prefect's default cache policy (inputs + source + flow
run id) with persisted results, so when a resumed flow body replays from the top
they load their result instead of running again; the store writes behind them
are idempotent as well, so even a crash between the write and the result being
persisted changes nothing. Reads use NO_CACHE: a replay must see the store as it
is now.

Staff free text (who decided, notes, reasons, feedback) is kept in the store as
typed; what these tasks return (Prefect persists it as a result), log or show is
scrubbed (`launch.domain.masking.scrub_free_text`).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from launch import runtime
from launch.domain.deadlines import gate_due
from launch.domain.forms import FormProblem
from launch.domain.masking import mask_name, scrub_form_data, scrub_free_text, scrub_text
from launch.app.views import DecisionView, LaunchInfo, OpenedGate


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
def gate_in_use(launch_id: str, gate_id: str) -> bool:
    """Whether a gate that a setting can switch off is on for this launch. Decided once per
    launch (a persisted result): a replay after the setting changed keeps the path taken."""
    return gate_id in runtime.catalogue().gates


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


@task(cache_policy=NO_CACHE)
def record_form_decision(
    launch_id: str, gate_id: str, attempt: int, outcome: str, actor: str, payload: dict
) -> None:
    """Record a Resume form answered in the Prefect UI, as typed, in the store.

    Returns nothing and is not cached (no result or cache key holds what was typed);
    recording is insert-or-get, so running it again on a replay changes nothing.
    """
    runtime.store().record_decision(
        launch_id, gate_id, attempt, outcome=outcome, actor=actor, channel="ui", payload=payload,
        decided_at=runtime.now(),
    )


@task
def take_decision(
    launch_id: str, gate_id: str, attempt: int, outcome: str, actor: str, channel: str, payload: dict
) -> DecisionView:
    """Record (if not yet recorded) and consume a decision; close the gate's step.

    The gate passes the store's scrubbed view here; a decision already in the store (the
    usual case) is kept as recorded, never replaced by what is passed.
    """
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
    view = _view(decision)
    get_run_logger().info(
        "关卡 %s 第 %d 次：%s（%s，经 %s）/ gate %s attempt %d: %s by %s via %s",
        gate.name_zh, attempt, view.outcome, view.actor, view.channel,
        gate_id, attempt, view.outcome, view.actor, view.channel,
    )
    return view


@task(cache_policy=NO_CACHE)
def describe_gate(info: LaunchInfo, opened: OpenedGate) -> str:
    """The Markdown on top of the Resume form: what to check or do, by when."""
    from launch.app.presentation import gate_markdown

    store = runtime.store()
    cat = runtime.catalogue()
    text = gate_markdown(info, cat.gate(opened.gate), opened, store.steps_for(info.launch_id), cat,
                         tz=runtime.settings().timezone)
    return text + "\n\n" + FORM_PRIVACY_NOTE


FORM_PRIVACY_NOTE = (
    "> 请勿在表单中填写手机号、身份证号等个人信息：Prefect 会保存表单内容。"
    "需要记录时请使用 `weapp-launch approve`。 / Do not type phone or ID numbers or other personal data "
    "into this form: Prefect keeps what is typed here. Use `weapp-launch approve` when they must be recorded."
)


@task(retries=2, retry_delay_seconds=2)
def forget_form_answers(gate_key: str) -> int:
    """Delete the answers Prefect kept for this gate's Resume forms (`<key>`, `<key>-retry-N`).

    Called once the store has the gate's decision: from then on a replay takes the decision
    from the store before it could suspend at these keys again, so nothing reads them.
    A form typed in the Prefect UI holds what staff typed, as typed; this leaves Prefect
    with no copy of it once the gate has passed. Returns how many were deleted.
    """
    import re
    from uuid import UUID

    import httpx
    from prefect.client.orchestration import get_client

    run_id = _current_run_id()
    if run_id is None:
        return 0
    base = f"suspended-{gate_key}"  # Prefect's keyset: "<state name>-<pause key>-response"
    answer = re.compile(rf"{re.escape(base)}(?:-retry-\d+)?-response")
    deleted = 0
    with get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(UUID(run_id), key_prefix=base, limit=200, exclude_keys=set())
        for item in found:
            if not answer.fullmatch(item.key):
                continue
            try:
                client.delete_flow_run_input(UUID(run_id), item.key)
                deleted += 1
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 404:  # gone already is what we wanted
                    raise
    return deleted


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
        actor=scrub_free_text(decision.actor),
        channel=decision.channel,
        payload=scrub_form_data(decision.payload),
        decided_at=decision.decided_at,
        passed=decision.outcome in gate.form.passing_outcomes,
    )
