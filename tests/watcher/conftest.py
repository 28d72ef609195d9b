"""Fixtures of the watcher tests: a store on SQLite and on PostgreSQL (a fresh schema per
test, as in tests/store), the process settings pointed at it, and helpers that open steps
with the catalogue's real deadlines on the real working-day calendar."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from launch import runtime
from launch.domain.deadlines import gate_due
from tests.notifiers.conftest import http_endpoint, smtp_server  # noqa: F401  (real local SMTP and HTTP)
from tests.store.conftest import db_url, pg_admin  # noqa: F401  (fixtures: each backend, schema per test)

SH = ZoneInfo("Asia/Shanghai")


def at(y, mo, d, h=0, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


@pytest.fixture
def watch_env(db_url, tmp_path, monkeypatch):  # noqa: F811
    """The process settings (runtime.store(), calendar, catalogue) on this test's database."""
    for name in ("WEAPP_LAUNCH_NOTIFIERS_FILE", "WEAPP_LAUNCH_LADDERS_FILE", "WEAPP_LAUNCH_PROCESS_FILE",
                 "WEAPP_LAUNCH_CALENDAR_FILE", "WEAPP_LAUNCH_ENCRYPTION_KEY", "WEAPP_LAUNCH_LINK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEAPP_LAUNCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WEAPP_LAUNCH_DATABASE_URL", db_url)
    monkeypatch.setenv("WEAPP_LAUNCH_PREFECT_UI_URL", "http://127.0.0.1:4200")
    monkeypatch.setenv("WEAPP_LAUNCH_PUBLIC_URL", "https://launch.example.com")
    runtime.reset()
    yield db_url
    runtime.store().close()
    runtime.reset()


def use_notifiers(monkeypatch, tmp_path, yaml_text: str) -> None:
    path = tmp_path / "notifiers.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    monkeypatch.setenv("WEAPP_LAUNCH_NOTIFIERS_FILE", str(path))
    from launch.settings import get_settings

    get_settings.cache_clear()  # the store singleton stays; the next pass reads the new file


def new_client(example: str = "client-acme.yaml") -> tuple[str, dict]:
    """A registered client from a fresh intake (new ID numbers and phones); returns (id, raw values)."""
    from launch.app.preflight import add_client
    from tests.support.intakes import fresh_intake

    intake, raw = fresh_intake(example)
    client_id, _ = add_client(runtime.resources(), intake, date(2026, 9, 1))
    return client_id, raw


def open_gate(store, launch_id: str, gate_id: str, opened_at: datetime, attempt: int = 1, flow_run_id=None):
    """Open a gate's step as tasks/gates.open_gate does: the deadline from the catalogue and the calendar."""
    gate = runtime.catalogue().gate(gate_id)
    due = gate_due(gate, opened_at, runtime.calendar())
    return store.open_step(
        launch_id, gate_id, attempt, started_at=opened_at, due_at=due.at, provisional=due.provisional,
        flow_run_id=flow_run_id, gate_key=gate.key(attempt),
    )
