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
    try:  # the CLI builds its Resources from the environment, as in another shell
        result = CliRunner().invoke(app, ["health", "--json"])
    finally:
        monkeypatch.undo()
    assert result.exit_code == 1
    checks = {c["part"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["server"]["ok"] and stack.api_url in checks["server"]["detail"]
    assert checks["workers"]["ok"], checks["workers"]
    from launch.store.migrations import head_revision

    assert checks["store"]["ok"] and f"migration {head_revision()}" in checks["store"]["detail"]
    assert not checks["receiver"]["ok"] and "weapp-launch api" in checks["receiver"]["detail"]
    assert not checks["alerts"]["ok"] and "WEAPP_LAUNCH_NOTIFIERS_FILE" in checks["alerts"]["detail"]
    assert checks["wechat"]["ok"] and "encrypted pushes only" in checks["wechat"]["detail"]
    assert set(checks) == {"server", "workers", "receiver", "watcher", "store", "wechat", "alerts"}


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
        watcher = client.read_deployment_by_name("deadline-watcher/default")
    assert len(named) == 1 and named[0].enabled
    # It never changes a run's state itself: it asks the watcher for a revive-only pass, which checks first.
    (action,) = named[0].actions
    assert (action.type, action.deployment_id, action.parameters) == ("run-deployment", watcher.id, {"revive_only": True})


def test_automation_command_replaces_an_older_state_changing_automation(stack):
    """Earlier versions rescheduled runs straight from the automation; `automation` replaces that."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture

    from deployments.serve import ZOMBIE_AUTOMATION

    Automation.read(name=ZOMBIE_AUTOMATION).delete()
    Automation(
        name=ZOMBIE_AUTOMATION,
        trigger=EventTrigger(after={"prefect.flow-run.heartbeat"}, expect={"prefect.flow-run.heartbeat"},
                             posture=Posture.Proactive, threshold=1, within=timedelta(seconds=90)),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED)],
    ).create()
    result = CliRunner().invoke(app, ["automation"])
    assert result.exit_code == 0, result.output
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        named = [a for a in client.read_automations() if a.name == ZOMBIE_AUTOMATION]
    assert len(named) == 1 and [a.type for a in named[0].actions] == ["run-deployment"]
