"""The `Steps` port over Prefect: activities are tasks, a wait is `suspend_flow_run`.

A suspended run holds no process; resuming it replays the flow body from the top, where the
finished tasks load their persisted results and a pause key that already fired returns its
input at once (launch/process/ports.py says why the bodies are written for that).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prefect import Task
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput

from launch.domain.catalogue import Catalogue
from launch.domain.forms import GateForm
from launch.process.ports import ACTIVITIES


@lru_cache
def run_input_for(form: type[GateForm]) -> type[RunInput]:
    """The Prefect Resume form of a gate: the domain form, as a RunInput."""
    return type(f"{form.__name__}Input", (RunInput, form), {"__module__": __name__})


class PrefectSteps:
    def __init__(self, tasks: dict[str, Task], catalogue: Catalogue, gate_timeout_seconds: int) -> None:
        self._tasks = tasks
        self.catalogue = catalogue
        self.gate_timeout_seconds = gate_timeout_seconds

    def suspend(self, key: str, *, form: type[GateForm] | None = None, description: str = "") -> Any:
        if form is None:
            return suspend_flow_run(key=key, timeout=self.gate_timeout_seconds)
        wait_for = run_input_for(form).with_initial_data(description=description)
        return suspend_flow_run(wait_for_input=wait_for, key=key, timeout=self.gate_timeout_seconds)

    def __getattr__(self, name: str) -> Any:
        spec = ACTIVITIES.get(name)
        if spec is None:
            raise AttributeError(name)
        task = self._tasks[name]
        if not spec.tolerated:
            return task

        def tolerated(*args: Any) -> Any:
            # A failure (the server briefly away) does not stop the launch; it is not cached,
            # so the next replay tries again.
            state = task(*args, return_state=True)
            return state.result() if state.is_completed() else None

        return tolerated
