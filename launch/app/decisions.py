"""Recording a staff or WeChat decision from outside a flow: CLI, callback receiver, signed link.

The store is written first (it is the record of truth); then, if the run is parked
at that gate, it is resumed. A run not parked there yet finds the decision when
it reaches the gate, so nothing that arrives early is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from launch.domain.decisions import release_blockers, target_attempt
from launch.domain.forms import FormError, FormProblem
from launch.domain.masking import scrub_form_data
from launch.domain.vocabulary import DecisionChannel, DecisionStatus

if TYPE_CHECKING:
    from launch.app.resources import Resources

PENDING = ("Prefect 恢复后将自动继续 / it will be applied as soon as the Prefect API answers")

log = logging.getLogger("weapp_launch.decisions")


@dataclass
class DecisionResult:
    launch_id: str
    gate: str
    attempt: int | None
    status: DecisionStatus
    resumed: bool = False
    message: str = ""
    problems: list[FormProblem] = field(default_factory=list)
    # The decision is in the store but resuming its parked run failed (Prefect down, refused):
    # the runner's retry loop (deployments/serve.py) or the watcher applies it later.
    resume_error: str | None = None

    def to_json(self) -> dict:
        return {
            "launch_id": self.launch_id,
            "gate": self.gate,
            "attempt": self.attempt,
            "status": self.status,
            "resumed": self.resumed,
            "resume_pending": self.resume_error is not None,
            "resume_error": self.resume_error,
            "message": self.message,
        }


class DecisionRefused(ValueError):
    def __init__(self, problems: list[FormProblem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


def _refuse(field_: str, rule: str, message: str) -> DecisionRefused:
    return DecisionRefused([FormProblem(field=field_, rule=rule, message=message)])


def validate_decision(res: Resources, launch_id: str, gate_id: str, data: dict):
    """Everything that can be checked without writing: launch, gate, path, form, release rule."""
    store, cat = res.store, res.catalogue
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
        form = cat.validate_form(gate_id, data)
    except FormError as exc:
        raise DecisionRefused(exc.problems) from None
    if gate_id == "release":
        blockers = release_blockers(*release_state(res, launch_id))
        if blockers:
            raise DecisionRefused(blockers)
    return launch, gate, form


def release_state(res: Resources, launch_id: str) -> tuple[bool, bool]:
    """(filing done, review passed), read from the store."""
    store, cat = res.store, res.catalogue
    filing = store.get_branch(launch_id, "filing")
    passing = cat.gate("code-review").form.passing_outcomes
    review_passed = any(d.gate == "code-review" and d.outcome in passing for d in store.history(launch_id))
    return (filing is not None and filing.status == "done"), review_passed


def submit_decision(
    res: Resources,
    launch_id: str,
    gate_id: str,
    data: dict,
    channel: DecisionChannel | str,
    *,
    attempt: int | None = None,
    inbox_id: int | None = None,
    resume: bool = True,
) -> DecisionResult:
    """Validate, record (once), and wake the run if it is parked at this gate."""
    try:
        channel = DecisionChannel(channel)
    except ValueError:
        raise ValueError(f"channel must be one of {[c.value for c in DecisionChannel]}") from None
    launch, gate, form = validate_decision(res, launch_id, gate_id, data)
    store = res.store
    if attempt is None:
        target = target_attempt(gate_id, store.steps_for(launch_id), store.history(launch_id),
                                channel=channel, outcome=form.outcome)
        if target.attempt is None:
            return _duplicate(res, launch_id, gate_id, None, target.duplicate_reason or "", resume)
        attempt = target.attempt
    decision, created = store.record_decision(
        launch_id,
        gate_id,
        attempt,
        outcome=form.outcome,
        actor=form.decided_by,
        channel=channel,
        payload=form.payload(),
        decided_at=res.now(),
        inbox_id=inbox_id,
    )
    if not created:  # this attempt is decided, or this push already decided the gate (decision.attempt)
        return _duplicate(
            res, launch_id, gate_id, decision.attempt,
            f"第 {decision.attempt} 次已有决定「{decision.outcome}」，未做更改 / attempt {decision.attempt} already "
            f"decided '{decision.outcome}'; nothing changed",
            resume,
        )
    resumed, error = False, None
    step = store.get_step(launch_id, gate_id, attempt)
    if resume and step is not None and step.status == "waiting" and step.flow_run_id:
        # The store has the decision as typed; Prefect's copy (the Resume answer) is scrubbed.
        run_input = scrub_form_data(form.model_dump(mode="json"))
        try:
            resumed = res.orchestrator.resume_if_parked(step.flow_run_id, gate.key(attempt), run_input, wait_seconds=15)
        except Exception as exc:  # noqa: BLE001 - recorded already: the retry loop / watcher applies it
            error = _resume_failure(exc)
    if error:
        where = f"恢复流程失败（{error}），{PENDING}"
    else:
        where = "流程已继续 / the run resumed" if resumed else "流程到达该关卡时将采用 / taken when the run reaches the gate"
    return DecisionResult(
        launch_id, gate_id, attempt, DecisionStatus.RECORDED, resumed=resumed, resume_error=error,
        message=f"已登记 {gate.name_zh} 第 {attempt} 次：{form.outcome}；{where}",
    )


UNREACHABLE = "Prefect API 无法连接 / unreachable"
NOT_CONFIGURED = "未配置 Prefect API / no Prefect API configured"


def _failure_label(text: str) -> str:
    """A short, secret-free label for why a resume failed, from an exception's type and message."""
    if "No Prefect API URL" in text:
        return NOT_CONFIGURED
    if any(name in text for name in ("ConnectError", "ConnectTimeout", "ConnectionRefused", "RemoteProtocolError")):
        return UNREACHABLE
    return "Prefect API 出错 / error: " + text.split(":", 1)[0][:60]


def _resume_failure(exc: BaseException) -> str:
    log.info("resume failed after the decision was recorded: %s", type(exc).__name__)
    chain, current = [], exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        label = _failure_label(f"{type(item).__name__}: {item}")
        if label in (UNREACHABLE, NOT_CONFIGURED):
            return label
    return _failure_label(type(exc).__name__)


def _duplicate(res: Resources, launch_id: str, gate_id: str, attempt: int | None, reason: str,
               resume: bool) -> DecisionResult:
    """Nothing new to record; but if this gate's recorded decision never reached its parked run
    (the first try found Prefect down), try that resume again now."""
    result = DecisionResult(launch_id, gate_id, attempt, DecisionStatus.DUPLICATE, message=reason)
    if not resume:
        return result
    report = resume_recorded(res, launch_id=launch_id, gate_id=gate_id)
    if report.repaired:
        result.resumed = True
        result.message += "；已重新恢复流程 / retried the resume: the run resumed"
    elif report.errors:
        # the watcher's errors read "resume <where>: <ExceptionType>: <message>"
        result.resume_error = _failure_label(report.errors[0].split(": ", 1)[-1])
        result.message += f"；重试恢复失败（{result.resume_error}），{PENDING}"
    return result


def resume_recorded(res: Resources, *, launch_id: str | None = None, gate_id: str | None = None,
                    grace_seconds: float = 0.0, limit: int = 50):
    """Resume runs parked at a gate whose decision is recorded but never reached the run (its
    resume failed: Prefect was down, the caller crashed). The watcher's lost-resume repair
    (launch.app.watcher.resume_lost), run on demand: by a repeated `approve`, and every few seconds
    by the runner (deployments/serve.py) so a decision is applied as soon as Prefect answers.

    Cheap when there is nothing to do: one indexed query (waiting steps with an unconsumed
    decision); Prefect is asked only about those. Returns the watcher's PassReport (repaired,
    errors); never raises for Prefect being down.
    """
    from launch.app.watcher import PassReport, resume_lost

    store = res.store

    class _Only:
        """The store, narrowed to one launch / gate when asked."""

        @staticmethod
        def unconsumed_decisions_at_waiting_gates(decided_before=None, limit=100):
            pairs = store.unconsumed_decisions_at_waiting_gates(decided_before, limit if launch_id is None else 1000)
            return [(d, s) for d, s in pairs
                    if (launch_id is None or d.launch_id == launch_id) and (gate_id is None or d.gate == gate_id)][:limit]

    now = res.now()
    report = PassReport(now, "resume-retry")
    resume_lost(res, now, limit, grace_seconds, report, store=_Only())
    return report
