"""The orchestrator port: what services need from whatever runs the flows.

`prefect.PrefectOrchestrator` implements it over Prefect's API; the flow-logic tests use
`launch.process.memory.InMemoryOrchestrator`, which keeps Prefect's rules in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RunState:
    flow_run_id: str
    state_type: str  # PAUSED, RUNNING, COMPLETED, ...
    state_name: str
    pause_key: str | None

    @property
    def parked(self) -> bool:
        return self.state_type == "PAUSED"


@dataclass(frozen=True)
class Revived:
    flow_run_id: str
    flow_run_name: str
    silent_seconds: float



class Orchestrator(Protocol):
    def start_launch_run(self, launch_id: str) -> str: ...
    def start_branch_run(self, launch_id: str, branch: str, flow_name: str, parameters: dict) -> str: ...
    def read_state(self, flow_run_id: str) -> RunState | None: ...
    def resume_if_parked(self, flow_run_id: str, key: str, run_input: dict | None = None,
                         wait_seconds: float = 0.0) -> bool: ...
    def replay_parked(self, flow_run_id: str, key: str) -> bool: ...
    def revive_dead_runs(self, flow_run_ids: list[str], silent_seconds: float, now=None) -> list[Revived]: ...
    def form_saved(self, flow_run_id: str) -> bool: ...
    def forget_form_answers(self, flow_run_id: str, gate_key: str) -> int: ...
    def publish_artifacts(self, flow_run_id: str | None, artifacts: list[dict]) -> None: ...
    def latest_artifact_at(self, key: str) -> datetime | None: ...
    def ui_url(self, flow_run_id: str | None) -> str: ...
