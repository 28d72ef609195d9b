"""The deadline watcher runs on its schedule, started by the Prefect server's scheduler alone.

Regression: with SQLAlchemy 2.1, Prefect 3.8.8's scheduler fails every loop ("Can't evaluate
bulk DML statement") and creates no scheduled runs, so the watcher never ran on its own.
Nobody here calls run_deployment: only the server can have started the run this test waits for.
"""

from __future__ import annotations

import shutil
import time

import pytest

from deployments.serve import WATCHER
from tests.support.stack import Stack

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def scheduled_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("schedule-stack")
    s = Stack(base)
    s.env["WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS"] = "10"
    try:
        s.start_server()
        s.start_runner()
        yield s
    finally:
        s.stop()
        shutil.rmtree(base / "results", ignore_errors=True)


def watcher_runs(s: Stack) -> list[dict]:
    with s.http() as c:  # Prefect's API asks for basic auth and a CSRF token
        deployments = c.post("deployments/filter", json={}).json()
        [watcher] = [d for d in deployments if d["name"] and d["flow_id"] and d.get("schedules") and
                     any(sch["active"] for sch in d["schedules"])]
        flows = {f["id"]: f["name"] for f in c.post("flows/filter", json={}).json()}
        assert flows[watcher["flow_id"]] == WATCHER, "only the deadline watcher is scheduled"
        assert watcher["schedules"][0]["schedule"]["interval"] == 10.0
        body = {"flow_runs": {"deployment_id": {"any_": [watcher["id"]]}}}
        return c.post("flow_runs/filter", json=body).json()


def test_the_server_starts_the_watcher_on_its_schedule(scheduled_stack):
    deadline = time.monotonic() + 150
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = watcher_runs(scheduled_stack)
        if any(r["state_type"] == "COMPLETED" for r in runs):
            break
        time.sleep(1)
    log = (scheduled_stack.base / "server.log").read_text(errors="replace")
    assert "bulk DML" not in log, "the scheduler failed: SQLAlchemy 2.1 is installed?"
    completed = [r for r in runs if r["state_type"] == "COMPLETED"]
    assert completed, f"no scheduled watcher run completed; states: {sorted({r['state_type'] for r in runs})}"
    assert all(r["auto_scheduled"] for r in completed), "a run the scheduler did not create"
