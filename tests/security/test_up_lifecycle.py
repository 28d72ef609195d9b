"""Issue 9 item 6: `weapp-launch up` leaves no orphans and never moves to another port.

SIGTERM (a service manager, `kill`) and SIGINT (Ctrl-C) stop every process `up` started —
server, runner, receiver, each in its own process group — and free the port; a busy port is
a clear error naming the port and the setting, not a silent move to another one.
"""

from __future__ import annotations

import signal
import socket
import time

import httpx
import pytest

from devtools.stack import ensure_port_free, free_port

from .conftest import alive, descendants, processes_with, start_up, terminate

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
