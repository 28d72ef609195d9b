"""`weapp-launch health` against a running stack: one line per part, saying what is wrong."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from launch.cli import app

pytestmark = pytest.mark.server


def test_health_names_what_runs_and_what_is_missing(stack, monkeypatch):
    # No receiver is running at this address, and no alert channels are configured.
    monkeypatch.setenv("WEAPP_LAUNCH_PUBLIC_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("WEAPP_LAUNCH_NOTIFIERS_FILE", raising=False)
    from launch import runtime

    runtime.reset()
    try:
        result = CliRunner().invoke(app, ["health", "--json"])
    finally:
        monkeypatch.undo()
        runtime.reset()
    assert result.exit_code == 1
    checks = {c["part"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["server"]["ok"] and stack.api_url in checks["server"]["detail"]
    assert checks["workers"]["ok"], checks["workers"]
    assert checks["store"]["ok"] and "0002" in checks["store"]["detail"]
    assert not checks["receiver"]["ok"] and "weapp-launch api" in checks["receiver"]["detail"]
    assert not checks["alerts"]["ok"] and "WEAPP_LAUNCH_NOTIFIERS_FILE" in checks["alerts"]["detail"]
    assert set(checks) == {"server", "workers", "receiver", "watcher", "store", "alerts"}


def test_automation_command_recreates_the_heartbeat_automation_once(stack):
    from prefect.automations import Automation

    from deployments.serve import ZOMBIE_AUTOMATION

    Automation.read(name=ZOMBIE_AUTOMATION).delete()  # `serve` made it; a worker setup would not have it
    for _ in range(2):
        result = CliRunner().invoke(app, ["automation"])
        assert result.exit_code == 0, result.output
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        named = [a for a in client.read_automations() if a.name == ZOMBIE_AUTOMATION]
    assert len(named) == 1 and named[0].enabled
