"""Issue 9 item 6: `weapp-launch up` leaves no orphans and never moves to another port.
Issue 14 item 3: it records where it runs in <home>/stack.json.

SIGTERM (a service manager, `kill`) and SIGINT (Ctrl-C) stop every process `up` started —
server, runner, receiver, each in its own process group — and free the port; a busy port is
a clear error naming the port and the setting, not a silent move to another one.

<home>/stack.json (0600) says where `up` runs; every CLI in another shell finds the stack
there — not from WEAPP_LAUNCH_PREFECT_PORT — and after `up` stops, the file says so and the
CLI says what is wrong instead of a traceback. (One `up` for the module: the stack file is
read while it runs, then SIGTERM stops it.)
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from devtools.stack import ROOT, ensure_port_free, free_port
from launch.orchestration.connect import STACK_FILE

from .conftest import alive, clean_env, descendants, processes_with, start_up, terminate

pytestmark = pytest.mark.server


def _port_free(port: int) -> bool:
    try:
        ensure_port_free(port, "WEAPP_LAUNCH_PREFECT_PORT")
        return True
    except RuntimeError:
        return False


def _assert_all_gone(pids: list[int], port: int, timeout: float = 30) -> None:
    marker = f"PREFECT_API_URL=http://127.0.0.1:{port}/api".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)] + processes_with(marker)
        if not left and _port_free(port):
            return
        time.sleep(0.5)
    raise AssertionError(f"left behind: {left}; port {port} free: {_port_free(port)}")


def _cli(home, *args: str) -> subprocess.CompletedProcess:
    # only the home: the port comes from stack.json (4200 would be the default)
    return subprocess.run([sys.executable, "-m", "launch", *args], env=clean_env(WEAPP_LAUNCH_HOME=str(home)),
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_up_records_its_urls_in_a_private_stack_file(up_stack):
    up_stack.require_running()
    path = up_stack.home / STACK_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    assert data["status"] == "running" and data["pid"] == up_stack.proc.pid
    assert data["prefect_api_url"] == up_stack.api_url and data["prefect_ui_url"] == up_stack.ui_url
    assert data["receiver_url"] == f"http://127.0.0.1:{up_stack.receiver_port}"
    secret = up_stack.auth_file.read_text().strip()
    assert secret not in path.read_text()
    assert str(path) in up_stack.log.read_text()

    health = _cli(up_stack.home, "health", "--json")
    checks = {c["part"]: c for c in json.loads(health.stdout)["checks"]}
    assert checks["server"]["ok"] and f":{up_stack.port}/api" in checks["server"]["detail"], checks["server"]
    assert checks["workers"]["ok"], checks["workers"]
    assert health.returncode == 1  # no alert channels here: a monitor must say so
    assert "Traceback" not in health.stdout + health.stderr and secret not in health.stdout + health.stderr


def test_sigterm_stops_every_child_and_frees_the_port(up_stack):
    up_stack.require_running()
    children = sorted(set(up_stack.children) | set(descendants(up_stack.proc.pid)))
    assert len(children) >= 3, children  # server, runner, receiver (and their own children)
    up_stack.proc.send_signal(signal.SIGTERM)
    up_stack.stopped = True
    assert up_stack.proc.wait(120) == 0
    _assert_all_gone(children, up_stack.port)
    assert _port_free(up_stack.receiver_port)
    assert "正在停止 / stopping" in up_stack.log.read_text()

    # stack.json says it stopped; a CLI in another shell says what is wrong, no traceback
    stopped = json.loads((up_stack.home / STACK_FILE).read_text())
    assert stopped["status"] == "stopped" and stopped["stopped_at"]
    home, secret = up_stack.home, up_stack.auth_file.read_text().strip()
    client_id = json.loads(_cli(home, "client", "add", str(ROOT / "examples" / "client-acme.yaml"),
                                "--json").stdout)["client_id"]
    start = _cli(home, "start", client_id, "--json")
    assert start.returncode == 3, start.stdout + start.stderr
    error = json.loads(start.stdout)["error"]
    assert f":{up_stack.port}/api" in error and "does not answer" in error and "stopped" in error
    assert "Traceback" not in start.stdout + start.stderr and secret not in start.stdout + start.stderr


def test_a_busy_port_is_a_clear_error_not_a_move(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc, log, _ = start_up(tmp_path / "home", port)
        try:
            code = proc.wait(120)
        finally:
            terminate(proc, port)
    out = log.read_text()
    assert code == 1, out
    assert str(port) in out and "WEAPP_LAUNCH_PREFECT_PORT" in out and "已被占用" in out and "in use" in out
    assert not processes_with(f"WEAPP_LAUNCH_PREFECT_PORT={port}".encode()), "it started something anyway"
    assert "prefect server start" not in out


def test_sigint_while_starting_stops_what_started_and_reuses_the_auth_string(tmp_path):
    """Ctrl-C halfway through start-up (server up, runner starting) leaves nothing behind; the
    next `up` in the same home keeps the auth string the first one generated."""
    home, port = tmp_path / "home", free_port()
    for attempt in range(2):
        proc, log, _ = start_up(home, port)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            assert proc.poll() is None, log.read_text()[-3000:]
            secret = (home / "prefect-auth").read_text()
            if attempt:
                assert secret == first, "a second `up` must reuse the home's auth string"
            first = secret
            children = descendants(proc.pid)
            assert children
            proc.send_signal(signal.SIGINT)
            assert proc.wait(120) == 0, log.read_text()[-3000:]
            _assert_all_gone(children, port)
        finally:
            terminate(proc, port)
