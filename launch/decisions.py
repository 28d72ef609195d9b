"""Recording a staff or WeChat decision from outside a flow: CLI, callback receiver, signed link.

The store is written first (it is the record of truth); then, if the run is parked
at that gate, it is resumed. A run not parked there yet finds the decision when
it reaches the gate, so nothing that arrives early is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from launch import runtime
from launch.domain.decisions import release_blockers, target_attempt
from launch.domain.forms import FormError, FormProblem, validate_form

CHANNELS = ("ui", "cli", "wechat", "link", "api", "simulator", "system")


@dataclass
class DecisionResult:
    launch_id: str
    gate: str
    attempt: int | None
    status: str  # recorded | duplicate
    resumed: bool = False
    message: str = ""
    problems: list[FormProblem] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "launch_id": self.launch_id,
            "gate": self.gate,
            "attempt": self.attempt,
            "status": self.status,
            "resumed": self.resumed,
            "message": self.message,
        }


class DecisionRefused(ValueError):
    def __init__(self, problems: list[FormProblem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


def _refuse(field_: str, rule: str, message: str) -> DecisionRefused:
    return DecisionRefused([FormProblem(field=field_, rule=rule, message=message)])


def validate_decision(launch_id: str, gate_id: str, data: dict):
    """Everything that can be checked without writing: launch, gate, path, form, release rule."""
    store, cat = runtime.store(), runtime.catalogue()
    launch = store.get_launch(launch_id)
    if launch is None:
        raise _refuse("launch_id", "unknown-launch", f"没有这个上线任务 / no launch {launch_id}")
    if gate_id not in cat.gates:
        raise _refuse("gate", "unknown-gate", f"未知的关卡 {gate_id} / unknown gate {gate_id}; see `weapp-launch gates`")
    gate = cat.gates[gate_id]
    if gate.path is not None and gate.path != launch.registration_path:
        raise _refuse("gate", "gate-not-on-path",
                      f"关卡 {gate_id} 不属于该任务的注册路径 {launch.registration_path} / "
                      f"gate {gate_id} is not on this launch's registration path {launch.registration_path}")
    try:
        form = validate_form(gate_id, data)
    except FormError as exc:
        raise DecisionRefused(exc.problems) from None
    if gate_id == "release":
        blockers = release_blockers(*release_state(launch_id))
        if blockers:
            raise DecisionRefused(blockers)
    return launch, gate, form


def release_state(launch_id: str) -> tuple[bool, bool]:
    """(filing done, review passed), read from the store."""
    store, cat = runtime.store(), runtime.catalogue()
    filing = store.get_branch(launch_id, "filing")
    passing = cat.gate("code-review").form.passing_outcomes
    review_passed = any(d.gate == "code-review" and d.outcome in passing for d in store.history(launch_id))
    return (filing is not None and filing.status == "done"), review_passed


def submit_decision(
    launch_id: str,
    gate_id: str,
    data: dict,
    channel: str,
    *,
    attempt: int | None = None,
    inbox_id: int | None = None,
    resume: bool = True,
) -> DecisionResult:
    """Validate, record (once), and wake the run if it is parked at this gate."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}")
    launch, gate, form = validate_decision(launch_id, gate_id, data)
    store = runtime.store()
    if attempt is None:
        target = target_attempt(gate_id, store.steps_for(launch_id), store.history(launch_id))
        if target.attempt is None:
            return DecisionResult(launch_id, gate_id, None, "duplicate", message=target.duplicate_reason or "")
        attempt = target.attempt
    decision, created = store.record_decision(
        launch_id,
        gate_id,
        attempt,
        outcome=form.outcome,
        actor=form.decided_by,
        channel=channel,
        payload=form.payload(),
        decided_at=runtime.now(),
        inbox_id=inbox_id,
    )
    if not created:
        return DecisionResult(
            launch_id, gate_id, attempt, "duplicate",
            message=f"第 {attempt} 次已有决定「{decision.outcome}」，未做更改 / attempt {attempt} already decided "
                    f"'{decision.outcome}'; nothing changed",
        )
    resumed = False
    step = store.get_step(launch_id, gate_id, attempt)
    if resume and step is not None and step.status == "waiting" and step.flow_run_id:
        from launch.orchestrator import resume_if_parked

        resumed = resume_if_parked(step.flow_run_id, gate.key(attempt), form.model_dump(mode="json"), wait_seconds=15)
    where = "流程已继续 / the run resumed" if resumed else "流程到达该关卡时将采用 / taken when the run reaches the gate"
    return DecisionResult(
        launch_id, gate_id, attempt, "recorded", resumed=resumed,
        message=f"已登记 {gate.name_zh} 第 {attempt} 次：{form.outcome}；{where}",
    )
