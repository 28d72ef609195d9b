"""Which attempt of a gate a decision belongs to, and when a release may go ahead. Pure rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from launch.domain.forms import FormProblem


class StepLike(Protocol):
    step: str
    attempt: int
    status: str


class DecisionLike(Protocol):
    gate: str
    attempt: int
    outcome: str
    consumed_at: object


@dataclass(frozen=True)
class Target:
    attempt: int | None  # None: nothing to record (duplicate)
    duplicate_reason: str | None = None  # "中文 / English"


def target_attempt(gate: str, steps: Iterable[StepLike], decisions: Iterable[DecisionLike], *,
                   channel: str | None = None, outcome: str | None = None) -> Target:
    """The attempt a decision arriving now is for.

    Waiting gate -> that attempt. Not reached yet -> attempt 1, taken when the flow
    gets there. Last attempt refused (rejection, SMS timeout, …) -> the next one,
    recorded early. Already passed, or a decision already waiting to be taken ->
    a duplicate: nothing changes.

    A WeChat push (``channel`` "wechat") repeating the refusal (``outcome``) that WeChat's API
    already gave for the last attempt (the watcher's reconciliation, channel "wechat-api") is
    that same result arriving late: a duplicate, never an early decision for the next attempt
    (whose submission WeChat cannot have answered before its gate opens).
    """
    mine = sorted((s for s in steps if s.step == gate), key=lambda s: s.attempt)
    taken = {d.attempt: d for d in decisions if d.gate == gate}
    pending = [d for d in taken.values() if d.consumed_at is None]
    if pending:
        d = pending[0]
        return Target(None, f"第 {d.attempt} 次已登记「{d.outcome}」，等待流程处理 / attempt {d.attempt} already "
                            f"has '{d.outcome}' recorded, waiting for the flow to take it")
    if not mine:
        return Target(1)
    last = mine[-1]
    if last.status == "waiting":
        return Target(last.attempt)
    if last.status == "done":
        return Target(None, f"该关卡已通过（第 {last.attempt} 次）/ gate already passed (attempt {last.attempt})")
    prior = taken.get(last.attempt)
    if (channel == "wechat" and prior is not None and getattr(prior, "channel", None) == "wechat-api"
            and prior.outcome == outcome):
        return Target(None, f"第 {last.attempt} 次的结果「{outcome}」已由微信接口查询登记 / attempt {last.attempt}'s "
                            f"result '{outcome}' was already recorded from WeChat's API")
    return Target(last.attempt + 1)


def release_blockers(filing_done: bool, review_passed: bool) -> list[FormProblem]:
    """Since 2023-09-01 a new mini-program goes live only when filed AND its review passed."""
    problems = []
    if not filing_done:
        problems.append(FormProblem(field="gate", rule="release-needs-filing",
                                    message="备案尚未完成，不能发布 / the ICP filing is not complete: release refused"))
    if not review_passed:
        problems.append(FormProblem(field="gate", rule="release-needs-review",
                                    message="代码审核尚未通过，不能发布 / code review has not passed: release refused"))
    return problems
