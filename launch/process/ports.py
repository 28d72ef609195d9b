"""The port between flow logic and an orchestrator: what a flow body may do.

A body calls activities (`steps.open_gate(...)`, ...) and waits (`steps.suspend(...)`).
Prefect's rules, which every adapter keeps:
- a run waits at one place at a time; a resumed run replays its body from the top;
- a *cached* activity that finished loads its result on replay instead of running again
  (keyed by its name and arguments, per run); an uncached one (a read) runs every time;
- a suspend whose key was already resumed returns the input it was resumed with at once.
So every choice a body makes from the store goes through a cached activity, and every wait
has a key of its own (attempt numbers, join counters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from launch.app.views import DecisionView, LaunchInfo, OpenedGate
from launch.domain.catalogue import Catalogue
from launch.domain.forms import FormProblem, GateForm


@dataclass(frozen=True)
class ActivitySpec:
    name: str
    cached: bool  # a side effect or a choice: a replay loads its result
    retries: int = 2  # the writes are idempotent, so a transient failure is retried
    tolerated: bool = False  # a failure does not stop the run (a replay tries it again)


# One place for each activity's replay behaviour: the Prefect tasks and the in-memory
# orchestrator both read this.
ACTIVITIES: dict[str, ActivitySpec] = {a.name: a for a in (
    ActivitySpec("launch_info", cached=False),
    ActivitySpec("bind_launch_run", cached=True),
    ActivitySpec("gate_in_use", cached=True),
    ActivitySpec("open_gate", cached=True),
    ActivitySpec("find_decision", cached=False),
    ActivitySpec("record_form_decision", cached=False),  # returns nothing: no result holds what was typed
    ActivitySpec("take_decision", cached=True),
    ActivitySpec("describe_gate", cached=False),
    ActivitySpec("note_problems", cached=False),
    ActivitySpec("forget_form_answers", cached=True, tolerated=True),
    ActivitySpec("settle_profile", cached=True),
    ActivitySpec("face_task_still_valid", cached=True),
    ActivitySpec("start_branch", cached=True),
    ActivitySpec("branch_status", cached=False),
    ActivitySpec("finish_branch", cached=True),
    ActivitySpec("mark_released", cached=True),
    ActivitySpec("refresh_artifacts", cached=True, tolerated=True),
    # Acting on WeChat: a replay must not call again (cached); a failure leaves the gate to staff
    # and is tried again on the next replay (tolerated); no blind task retry (the client retries
    # what WeChat says is safe to retry).
    ActivitySpec("act", cached=True, retries=0, tolerated=True),
)}


class Steps(Protocol):
    """What a flow body sees. `catalogue` and `gate_timeout_seconds` are read once per run."""

    catalogue: Catalogue
    gate_timeout_seconds: int

    def suspend(self, key: str, *, form: type[GateForm] | None = None, description: str = "") -> Any:
        """Park the run at `key` (with a Resume form when `form` is given) until resumed;
        returns the resume input (a validated form instance, or None without a form)."""

    def launch_info(self, launch_id: str) -> LaunchInfo: ...
    def bind_launch_run(self, launch_id: str) -> None: ...
    def gate_in_use(self, launch_id: str, gate_id: str) -> bool: ...
    def open_gate(self, launch_id: str, gate_id: str, attempt: int) -> OpenedGate: ...
    def find_decision(self, launch_id: str, gate_id: str, attempt: int) -> DecisionView | None: ...
    def record_form_decision(self, launch_id: str, gate_id: str, attempt: int, outcome: str, actor: str,
                             payload: dict) -> None: ...
    def take_decision(self, launch_id: str, gate_id: str, attempt: int, outcome: str, actor: str, channel: str,
                      payload: dict) -> DecisionView: ...
    def describe_gate(self, info: LaunchInfo, opened: OpenedGate) -> str: ...
    def note_problems(self, launch_id: str, gate_id: str, attempt: int, problems: list[FormProblem]) -> None: ...
    def forget_form_answers(self, gate_key: str) -> int: ...
    def settle_profile(self, launch_id: str, attempt: int) -> list[str]: ...
    def face_task_still_valid(self, launch_id: str, face_attempt: int, before_submission: int) -> bool: ...
    def start_branch(self, launch_id: str, branch: str, flow_name: str, parameters: dict) -> str: ...
    def branch_status(self, launch_id: str, branch: str) -> str | None: ...
    def finish_branch(self, launch_id: str, branch: str) -> None: ...
    def mark_released(self, launch_id: str) -> None: ...
    def refresh_artifacts(self, launch_id: str, reason: str) -> None: ...
    def act(self, launch_id: str, gate_id: str, attempt: int) -> str: ...
