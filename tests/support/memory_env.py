"""A launch on the in-memory orchestrator: the real services, activities and store (SQLite in
a temp folder), the flow bodies run in-process with Prefect's rules (launch.process.memory)."""

from __future__ import annotations

import shutil
from functools import lru_cache
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devtools.simulator import PASSING
from launch.app import FixedClock, Resources
from launch.app.activities import Activities
from launch.app.branches import branch_ended
from launch.app.decisions import submit_decision
from launch.app.launches import start_launch
from launch.app.preflight import add_client
from launch.app.resources import catalogue_for
from launch.process import launch as launch_process
from launch.process.branches import BODIES
from launch.process.memory import InMemoryOrchestrator
from launch.domain.rules import RuleConfig
from launch.settings import Settings
from launch.store import Store
from tests.support.intakes import fresh_intake, platform_intake

T0 = datetime(2026, 10, 12, 2, 0, tzinfo=timezone.utc)  # a Monday, 10:00 in Beijing


_TEMPLATE: dict[str, Path] = {}


@lru_cache
def _catalogue(process_file: Path | None, trial_acceptance: bool):
    """Catalogues are immutable: one per distinct setting for the whole test session."""
    return catalogue_for(Settings(process_file=process_file, trial_acceptance=trial_acceptance))


@lru_cache
def _rules(rules_file: Path | None):
    return RuleConfig.load(rules_file)


def _copy_migrated_store(home: Path) -> None:
    """Migrating a new SQLite store takes about a second; each world copies one migrated once."""
    if "db" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="weapp-launch-template-"))
        Store.from_settings(Settings(home=folder)).close()
        _TEMPLATE["db"] = folder / "store.db"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE["db"], home / "store.db")


class _NoArtifacts(Activities):
    """Artifacts are the launch page's, not flow logic: their content has tests of its own."""

    def refresh_artifacts(self, launch_id: str, reason: str) -> None:
        return None


class World:
    """One test's world: `res` (real store, fixed clock, in-memory orchestrator), and helpers
    to start a launch, decide gates like staff or WeChat do, and read where runs wait."""

    def __init__(self, home: Path, *, artifacts: bool = False, **settings: Any) -> None:
        # A forecast per artifact refresh is real work; 200 samples keep the artifact honest and fast.
        s = Settings(home=home, **{"forecast_samples": 200, **settings})
        if s.database_url is None:
            _copy_migrated_store(home)
        self.clock = FixedClock(T0)
        catalogue = _catalogue(s.process_file, s.trial_acceptance)
        self.orch = InMemoryOrchestrator(catalogue, gate_timeout_seconds=s.gate_timeout_days * 86400)
        self.res = Resources(settings=s, clock=self.clock, _catalogue=catalogue, _orchestrator=self.orch,
                             _notifier=(None, None, None), _rules=_rules(s.rules_file))
        self.orch.clock = self.clock.now
        self.orch.install(
            bodies={"launch": launch_process.launch, **BODIES},
            make_activities=lambda run_id: (Activities if artifacts else _NoArtifacts)(self.res, lambda: run_id),
            on_branch_end=lambda launch_id, branch, ok: branch_ended(self.res, launch_id, branch, ok),
        )
        self._n = 0

    def new_launch(self, *, path: str = "standalone", subject_type: str = "enterprise") -> str:
        if path == "platform_fast_registration":
            intake, _ = platform_intake(seed=self._n)
        else:
            example = {"standalone": "client-acme.yaml", "reuse_official_account": "client-reuse.yaml"}[path]
            intake, _ = fresh_intake(example, seed=self._n)
        self._n += 1
        client_id, _ = add_client(self.res, intake, self.clock.now().date())
        launch_id = start_launch(self.res, client_id)["launch_id"]
        self.orch.drain()
        return launch_id

    def decide(self, launch_id: str, gate: str, data: dict | None = None, *, channel: str = "cli",
               drain: bool = True) -> Any:
        result = submit_decision(self.res, launch_id, gate, {"decided_by": "测试", **(data or PASSING[gate])}, channel)
        if drain:
            self.orch.drain()
        return result

    def waiting(self, launch_id: str) -> set[str]:
        """Gate keys the launch's runs are parked at (joins left out)."""
        return {k for k in self.orch.parked().values() if not k.startswith("join-")}

    def attempts(self, launch_id: str, gate: str) -> list[tuple[int, str, str | None]]:
        return [(s.attempt, s.status, s.outcome) for s in self.res.store.steps_for(launch_id) if s.step == gate]

    def run_through(self, launch_id: str, answers: dict[str, list[dict]] | None = None, limit: int = 200) -> None:
        """Answer whatever gate waits (scripted answers first, then passing ones) until nothing
        waits. The order gates are answered in is the order they opened."""
        answers = {k: list(v) for k, v in (answers or {}).items()}
        for _ in range(limit):
            waiting = sorted(self.waiting(launch_id))
            if not waiting:
                return
            key = waiting[0]
            gate = key.rsplit("-", 1)[0]
            scripted = answers.get(gate)
            self.decide(launch_id, gate, scripted.pop(0) if scripted else None)
        raise AssertionError(f"still waiting after {limit} decisions: {self.waiting(launch_id)}")
