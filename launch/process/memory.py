"""An in-memory orchestrator that keeps Prefect's rules, for flow-logic tests in milliseconds.

What Prefect enforces and this keeps (`launch.process.ports`):
- a run waits at one place at a time; `suspend` ends the body (Prefect raises too) and the
  run is PAUSED at its key; resuming it schedules a replay of the body FROM THE TOP;
- a cached activity that finished loads its result on replay (a deep copy: Prefect gives a
  deserialised copy, never the same object); uncached activities run every time;
- a key the run already parked at returns at once on replay, with the input it was resumed
  with (None when there was none, or it was deleted);
- a run is started once per idempotency key; branch runs end with the same completion and
  failure hooks the Prefect flows have.
A crash can be injected right after any activity ran and before its result was kept (the
worst moment: the effect happened, the result is lost); `revive` then replays the run, as
the watcher's revive does with Prefect. Everything else (`drain`) is synchronous: a test
decides, drains, and reads the store.

It implements the orchestrator port too (`res.orchestrator` for the services: decisions,
the watcher, wake-ups), so a test drives the same services production uses.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from launch.domain.catalogue import Catalogue
from launch.orchestration.port import Revived, RunState
from launch.process.ports import ACTIVITIES

log = logging.getLogger("weapp_launch.memory")


class _Parked(BaseException):
    """Ends a body at a suspend (BaseException: a body's `except Exception` cannot swallow it)."""


class Crash(BaseException):
    """The process died (injected): the run is CRASHED until revived."""


class OneWaitPerRun(AssertionError):
    pass


@dataclass
class MemoryRun:
    id: str
    flow_name: str
    parameters: dict
    idempotency_key: str
    state: str = "SCHEDULED"  # SCHEDULED, RUNNING, PAUSED, COMPLETED, FAILED, CRASHED
    pause_key: str | None = None
    pause_form: Any = None
    parked_keys: set[str] = field(default_factory=set)  # every key this run has parked at
    inputs: dict[str, Any] = field(default_factory=dict)  # key -> resume input
    results: dict[tuple, Any] = field(default_factory=dict)  # (activity, args) -> kept result
    executions: int = 0  # how often the body ran (first run + replays)
    result: Any = None
    error: BaseException | None = None
    artifacts: dict[str, dict] = field(default_factory=dict)
    description: str = ""  # the Markdown of the form it waits at


@dataclass
class _CrashPlan:
    activity: str
    when: Callable[[tuple], bool]
    times: int = 1
    crashed: set = field(default_factory=set)  # each call (its arguments) crashes once at most


class MemorySteps:
    """The `Steps` port for one execution of a run's body."""

    def __init__(self, orch: InMemoryOrchestrator, run: MemoryRun, activities: Any) -> None:
        self._orch, self._run, self._activities = orch, run, activities
        self.catalogue: Catalogue = orch.catalogue
        self.gate_timeout_seconds = orch.gate_timeout_seconds
        self._waiting = False

    def suspend(self, key: str, *, form: Any = None, description: str = "") -> Any:
        run = self._run
        if self._waiting:
            raise OneWaitPerRun(f"run {run.id} suspended twice in one execution")
        if key in run.parked_keys:
            data = run.inputs.get(key)
            if form is None or data is None:
                return None
            return form.model_validate(data)
        self._waiting = True
        run.state, run.pause_key, run.pause_form = "PAUSED", key, form
        run.parked_keys.add(key)
        run.description = description
        raise _Parked()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        spec = ACTIVITIES.get(name)
        if spec is None:
            raise AttributeError(name)
        orch, run = self._orch, self._run
        fn = getattr(self._activities, name)

        def call(*args: Any) -> Any:
            key = (name, _frozen(args))
            if spec.cached and key in run.results:
                return copy.deepcopy(run.results[key])
            orch.calls.append((run.id, name, args))
            try:
                value = fn(*args)
            except Exception:
                if spec.tolerated:
                    log.warning("activity %s failed; the run carries on", name)
                    return None
                raise
            orch._maybe_crash(name, args)
            if spec.cached:
                run.results[key] = copy.deepcopy(value)
            return value

        return call


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if hasattr(value, "model_dump"):
        return (type(value).__name__, _frozen(value.model_dump()))
    return value


class InMemoryOrchestrator:
    """Runs flow bodies in-process with Prefect's rules; also the services' orchestrator port.

    `bodies`: flow name -> body(steps, **parameters). `make_activities(run_id)`: the
    activities for a run. `on_branch_end(launch_id, branch, ok)`: what the branch flows'
    completion/failure hooks do (wake the launch, mark a failed branch)."""

    def __init__(self, catalogue: Catalogue, gate_timeout_seconds: int = 30 * 86400) -> None:
        self.catalogue = catalogue
        self.gate_timeout_seconds = gate_timeout_seconds
        self.runs: dict[str, MemoryRun] = {}
        self._by_key: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._crashes: list[_CrashPlan] = []
        self.calls: list[tuple[str, str, tuple]] = []  # (run id, activity, args): every execution
        self.artifact_history: list[dict] = []  # every artifact version published, oldest first
        self.clock: Callable[[], Any] = lambda: None  # when an artifact was created (set by the test world)
        self.bodies: dict[str, Callable[..., Any]] = {}
        self.make_activities: Callable[[str], Any] | None = None
        self.on_branch_end: Callable[[str, str, bool], None] | None = None

    def install(self, bodies: dict[str, Callable[..., Any]], make_activities: Callable[[str], Any],
                on_branch_end: Callable[[str, str, bool], None] | None = None) -> InMemoryOrchestrator:
        self.bodies, self.make_activities, self.on_branch_end = bodies, make_activities, on_branch_end
        return self

    # --- the orchestrator port -------------------------------------------------------------
    def start_run(self, flow_name: str, parameters: dict, idempotency_key: str) -> str:
        if idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        run_id = f"run-{next(self._ids)}-{flow_name}"
        self.runs[run_id] = MemoryRun(run_id, flow_name, dict(parameters), idempotency_key)
        self._by_key[idempotency_key] = run_id
        return run_id

    def start_launch_run(self, launch_id: str) -> str:
        return self.start_run("launch", {"launch_id": launch_id}, f"launch-{launch_id}")

    def start_branch_run(self, launch_id: str, branch: str, flow_name: str, parameters: dict) -> str:
        return self.start_run(flow_name, parameters, f"{launch_id}-{branch}")

    def read_state(self, flow_run_id: str) -> RunState | None:
        run = self.runs.get(flow_run_id)
        if run is None:
            return None
        return RunState(run.id, run.state, run.state.title(), run.pause_key if run.state == "PAUSED" else None)

    def resume_if_parked(self, flow_run_id: str, key: str, run_input: dict | None = None,
                         wait_seconds: float = 0.0) -> bool:
        run = self.runs.get(flow_run_id)
        if run is None or run.state != "PAUSED" or run.pause_key != key:
            return False
        if run_input is not None and run.pause_form is not None:
            try:  # Prefect validates a resume input against the parked form and refuses a bad one
                run.pause_form.model_validate(run_input)
            except ValidationError:
                return False
        run.inputs[key] = run_input
        run.state, run.pause_key, run.pause_form = "SCHEDULED", None, None
        return True

    def replay_parked(self, flow_run_id: str, key: str) -> bool:
        run = self.runs.get(flow_run_id)
        if run is None or run.state != "PAUSED" or run.pause_key != key:
            return False
        run.state, run.pause_key, run.pause_form = "SCHEDULED", None, None
        return True

    def revive_dead_runs(self, flow_run_ids: list[str], silent_seconds: float, now=None) -> list[Revived]:
        revived = []
        for run_id in flow_run_ids:
            run = self.runs.get(run_id)
            if run is not None and run.state == "CRASHED":
                run.state = "SCHEDULED"
                revived.append(Revived(run.id, run.flow_name, silent_seconds))
        return revived

    def form_saved(self, flow_run_id: str) -> bool:
        return True

    def forget_form_answers(self, flow_run_id: str, gate_key: str) -> int:
        run = self.runs[flow_run_id]
        keys = [k for k in run.inputs if k == gate_key or k.startswith(f"{gate_key}-retry-")]
        for k in keys:
            run.inputs[k] = None
        return len(keys)

    def publish_artifacts(self, flow_run_id: str | None, artifacts: list[dict]) -> None:
        for artifact in artifacts:
            if flow_run_id is not None:
                self.runs[flow_run_id].artifacts[artifact["key"]] = artifact
            self.artifact_history.append({**artifact, "flow_run_id": flow_run_id, "created": self.clock()})

    def latest_artifact_at(self, key: str):
        return max((a["created"] for a in self.artifact_history if a["key"] == key), default=None)

    def ui_url(self, flow_run_id: str | None) -> str:
        return f"memory://runs/{flow_run_id}" if flow_run_id else ""

    # --- driving it from a test -------------------------------------------------------------
    def answer_form(self, flow_run_id: str, data: dict) -> bool:
        """Staff answer the parked run's Resume form in the UI (validated like Prefect does)."""
        run = self.runs[flow_run_id]
        return run.state == "PAUSED" and self.resume_if_parked(flow_run_id, run.pause_key, data)

    def crash_after(self, activity: str, when: Callable[[tuple], bool] = lambda args: True, times: int = 1) -> None:
        """The process dies right after `activity` ran (its effect done, its result not kept), up
        to `times` times, once per distinct call (the replay's call of it then succeeds)."""
        if activity not in ACTIVITIES:
            raise KeyError(activity)
        self._crashes.append(_CrashPlan(activity, when, times))

    def _maybe_crash(self, activity: str, args: tuple) -> None:
        for plan in self._crashes:
            if plan.activity == activity and plan.times > 0 and _frozen(args) not in plan.crashed and plan.when(args):
                plan.times -= 1
                plan.crashed.add(_frozen(args))
                raise Crash(f"injected crash after {activity}{args}")

    def revive(self) -> list[str]:
        """Reschedule every crashed run (the watcher's revive pass)."""
        return [r.flow_run_id for r in self.revive_dead_runs(list(self.runs), 0.0)]

    def drain(self, max_executions: int = 10_000) -> int:
        """Run scheduled runs until none is left (a worker that never sleeps). Returns how many
        body executions it took."""
        done = 0
        while True:
            scheduled = [r for r in self.runs.values() if r.state == "SCHEDULED"]
            if not scheduled:
                return done
            if done >= max_executions:
                raise RuntimeError("drain: too many executions (a run that never waits?)")
            self._execute(scheduled[0])
            done += 1

    def _execute(self, run: MemoryRun) -> None:
        body = self.bodies[run.flow_name]
        steps = MemorySteps(self, run, self.make_activities(run.id))
        run.state, run.executions = "RUNNING", run.executions + 1
        try:
            run.result = body(steps, **run.parameters)
        except _Parked:
            return
        except Crash as exc:
            run.state, run.error = "CRASHED", exc
            return
        except Exception as exc:  # noqa: BLE001 - a failed run, as Prefect marks it
            run.state, run.error = "FAILED", exc
            self._branch_end(run, ok=False)
            return
        run.state = "COMPLETED"
        self._branch_end(run, ok=True)

    def _branch_end(self, run: MemoryRun, ok: bool) -> None:
        if run.flow_name != "launch" and self.on_branch_end is not None:
            self.on_branch_end(run.parameters["launch_id"], run.parameters.get("branch") or run.flow_name, ok)

    # --- reading ----------------------------------------------------------------------------
    def launch_run(self, launch_id: str) -> MemoryRun:
        return self.runs[self._by_key[f"launch-{launch_id}"]]

    def branch_run(self, launch_id: str, branch: str) -> MemoryRun | None:
        run_id = self._by_key.get(f"{launch_id}-{branch}")
        return self.runs.get(run_id) if run_id else None

    def parked(self) -> dict[str, str]:
        """run id -> the key it waits at, for every parked run."""
        return {r.id: r.pause_key for r in self.runs.values() if r.state == "PAUSED"}
