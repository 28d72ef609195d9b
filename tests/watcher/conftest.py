"""Fixtures of the watcher tests: a store on SQLite and on PostgreSQL (a fresh schema per
test, as in tests/store), the test's Resources over it (explicit settings, the real clock:
each pass is given its `now`), and helpers that open steps with the catalogue's real
deadlines on the real working-day calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from launch.app import Resources, SystemClock
from launch.domain.deadlines import gate_due
from tests.notifiers.conftest import http_endpoint, smtp_server  # noqa: F401  (real local SMTP and HTTP)
from tests.store.conftest import db_url, pg_admin  # noqa: F401  (fixtures: each backend, schema per test)
from tests.support.resources import make_resources

SH = ZoneInfo("Asia/Shanghai")


def at(y, mo, d, h=0, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


@pytest.fixture
def watch_env(db_url, tmp_path, monkeypatch):  # noqa: F811
    """The test's Resources on this test's database (settings given here, none from a file)."""
    for name in ("WEAPP_LAUNCH_NOTIFIERS_FILE", "WEAPP_LAUNCH_LADDERS_FILE", "WEAPP_LAUNCH_PROCESS_FILE",
                 "WEAPP_LAUNCH_CALENDAR_FILE", "WEAPP_LAUNCH_ENCRYPTION_KEY", "WEAPP_LAUNCH_LINK_SECRET",
                 "WEAPP_LAUNCH_LINK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    res = make_resources(tmp_path / "home", clock=SystemClock(), database_url=db_url,
                         prefect_ui_url="http://127.0.0.1:4200", public_url="https://launch.example.com")
    yield res
    res.close()


def use_notifiers(res: Resources, tmp_path, yaml_text: str) -> Resources:
    """The same environment with this notifiers file (as the next pass of a watcher started
    after the file was written reads it): same store, calendar and catalogue."""
    path = tmp_path / "notifiers.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    return replace(res, settings=res.settings.model_copy(update={"notifiers_file": path}),
                   _store=res.store, _calendar=res.calendar, _catalogue=res.catalogue, _notifier=None)


def with_store(res: Resources, store, config=None) -> Resources:
    """A second watcher: the same settings and clock over its own Store object (and these
    channels, a NotifierConfig, when given)."""
    return replace(res, _store=store, _calendar=res.calendar, _catalogue=res.catalogue,
                   _notifier=(config, None, None) if config is not None else res._notifier)


def new_client(res: Resources, example: str = "client-acme.yaml") -> tuple[str, dict]:
    """A registered client from a fresh intake (new ID numbers and phones); returns (id, raw values)."""
    from launch.app.preflight import add_client
    from tests.support.intakes import fresh_intake

    intake, raw = fresh_intake(example)
    client_id, _ = add_client(res, intake, date(2026, 9, 1))
    return client_id, raw


def open_gate(res: Resources, launch_id: str, gate_id: str, opened_at: datetime, attempt: int = 1,
              flow_run_id=None):
    """Open a gate's step as tasks/gates.open_gate does: the deadline from the catalogue and the calendar."""
    gate = res.catalogue.gate(gate_id)
    due = gate_due(gate, opened_at, res.calendar)
    return res.store.open_step(
        launch_id, gate_id, attempt, started_at=opened_at, due_at=due.at, provisional=due.provisional,
        flow_run_id=flow_run_id, gate_key=gate.key(attempt),
    )
