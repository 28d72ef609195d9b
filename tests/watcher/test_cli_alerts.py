"""The watcher's commands, mounted on a Typer app as the main CLI mounts them."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from launch.cli.alerts import register
from tests.watcher.conftest import new_client, open_gate, use_notifiers

app = typer.Typer()
register(app)
runner = CliRunner()


def test_watch_once_alerts_and_alerts_test(watch_env, smtp_server, http_endpoint, monkeypatch, tmp_path):
    res = watch_env
    store = res.store
    client_id, raw = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "subject-info", res.now())

    # no channels yet: the pass enqueues, says why nothing went out, exits 0
    result = runner.invoke(app, ["watch", "--once", "--json"], obj=res)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["enqueued"] == 1 and report["counts"]["sent"] == 0
    assert "WEAPP_LAUNCH_NOTIFIERS_FILE" in report["notes"][0]

    res = use_notifiers(res, tmp_path, f"""
channels:
  - {{name: ops-mail, url: "{smtp_server.url()}", tags: [ops]}}
  - {{name: ops-phone, url: "{http_endpoint.url('/sms')}", tags: [ops]}}
""")
    result = runner.invoke(app, ["watch", "--once"], obj=res)
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output and "ops-mail" in result.output

    result = runner.invoke(app, ["alerts", "--json"], obj=res)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["alerts"]
    assert row["status"] == "sent" and row["gate"] == "subject-info" and row["rung"] == "notice"
    assert sorted((d["channel"], d["ok"]) for d in row["deliveries"]) == [("ops-mail", True), ("ops-phone", True)]
    assert "body" not in row and "token=" not in result.output  # signed links are credentials
    for value in raw["id_number"] + raw["phone"]:
        assert value not in result.output
    table = runner.invoke(app, ["alerts", "--status", "sent"], obj=res)
    assert table.exit_code == 0 and "ops-mail ✔" in table.output

    result = runner.invoke(app, ["alerts", "test", "--json"], obj=res)
    assert result.exit_code == 0, result.output
    assert {(r["channel"], r["ok"]) for r in json.loads(result.output)["results"]} == {
        ("ops-mail", True), ("ops-phone", True)
    }
    http_endpoint.stop()
    result = runner.invoke(app, ["alerts", "test", "--tag", "ops"], obj=res)
    assert result.exit_code == 1 and "ops-phone" in result.output and "failed" in result.output
    assert smtp_server.url() not in result.output  # channel URLs are secrets
