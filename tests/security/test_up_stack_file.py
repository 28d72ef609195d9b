"""Issue 14 item 3: `weapp-launch up` records where it runs in <home>/stack.json (0600), every CLI
in another shell finds the stack there — not from WEAPP_LAUNCH_PREFECT_PORT — and after `up`
stops, the file says so and the CLI says what is wrong instead of a traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from devtools.stack import ROOT, free_port
from launch.orchestration.connect import STACK_FILE

from .conftest import clean_env, start_up, terminate, wait_ready

pytestmark = pytest.mark.server


def test_up_records_its_urls_and_marks_them_stopped(tmp_path):
    home, port = tmp_path / "home", free_port()
    proc, log, _ = start_up(home, port)

    def cli(*args: str) -> subprocess.CompletedProcess:
        # only the home: the port comes from stack.json (4200 would be the default)
        return subprocess.run([sys.executable, "-m", "launch", *args], env=clean_env(WEAPP_LAUNCH_HOME=str(home)),
                              cwd=ROOT, capture_output=True, text=True, timeout=180)

    try:
        wait_ready(proc, log)
        path = home / STACK_FILE
        assert path.stat().st_mode & 0o777 == 0o600
        data = json.loads(path.read_text())
        assert data["status"] == "running" and data["pid"] == proc.pid
        assert data["prefect_api_url"] == f"http://127.0.0.1:{port}/api"
        assert data["prefect_ui_url"] == f"http://127.0.0.1:{port}" and data["receiver_url"] is None
        secret = (home / "prefect-auth").read_text().strip()
        assert secret not in path.read_text()
        assert str(path) in log.read_text()

        health = cli("health", "--json")
        checks = {c["part"]: c for c in json.loads(health.stdout)["checks"]}
        assert checks["server"]["ok"] and f":{port}/api" in checks["server"]["detail"], checks["server"]
        assert checks["workers"]["ok"], checks["workers"]
        assert health.returncode == 1  # no receiver, no alert channels here: a monitor must say so

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0
        stopped = json.loads(path.read_text())
        assert stopped["status"] == "stopped" and stopped["stopped_at"]

        client_id = json.loads(cli("client", "add", str(ROOT / "examples" / "client-acme.yaml"), "--json").stdout)["client_id"]
        start = cli("start", client_id, "--json")
        assert start.returncode == 3, start.stdout + start.stderr
        error = json.loads(start.stdout)["error"]
        assert f":{port}/api" in error and "does not answer" in error and "stopped" in error
        for result in (health, start):
            assert "Traceback" not in result.stdout + result.stderr
            assert secret not in result.stdout + result.stderr
    finally:
        terminate(proc, port)
