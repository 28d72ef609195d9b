"""A real `weapp-launch up`, started as a user would (a subprocess with its own home), one per
module that asks: test_prefect_auth.py probes it, test_up_lifecycle.py SIGTERMs it. Module scope:
it is gone before the next module's stack starts (never two busy SQLite stacks at once)."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devtools.stack import ROOT, free_port
from launch.orchestration.connect import AUTH_FILE, auth_header

UP_TIMEOUT = 300  # server, five deployments READY, receiver: about a minute on two idle cores


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of "another shell": none of this test process's PREFECT_* / WEAPP_LAUNCH_*
    (the session stack may have put its own there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WEAPP_LAUNCH_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def processes_with(marker: bytes) -> list[int]:
    """Live processes (not zombies) whose environment holds `marker`, other than this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                continue
            if marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class UpProcess:
    proc: subprocess.Popen
    home: Path
    port: int
    receiver_port: int
    log: Path
    env: dict[str, str]
    stopped: bool = False
    children: list[int] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_file(self) -> Path:
        return self.home / AUTH_FILE

    @property
    def auth(self) -> dict[str, str]:
        return auth_header(self.auth_file.read_text().strip())

    def cli(self, *args: str, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess:
        """`weapp-launch …` in another shell: only WEAPP_LAUNCH_HOME and the port, no PREFECT_* export."""
        env = clean_env(WEAPP_LAUNCH_HOME=str(self.home), WEAPP_LAUNCH_PREFECT_PORT=str(self.port), **extra)
        return subprocess.run([sys.executable, "-m", "launch", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)

    def require_running(self) -> None:
        if self.stopped or self.proc.poll() is not None:
            pytest.fail("this module's `weapp-launch up` is no longer running (a test stopped it early?)",
                        pytrace=False)


def start_up(home: Path, port: int, receiver_port: int | None = None, **extra: str) -> tuple[subprocess.Popen, Path, dict]:
    env = clean_env(
        WEAPP_LAUNCH_HOME=str(home),
        WEAPP_LAUNCH_PREFECT_PORT=str(port),
        WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS="0",  # no scheduled watcher runs competing for the CPU
        **extra,
    )
    if receiver_port:
        env.update({
            "WEAPP_LAUNCH_WECHAT_TOKEN": secrets.token_hex(16),
            "WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode().rstrip("="),
            "WEAPP_LAUNCH_WECHAT_COMPONENT_APPID": "wx" + secrets.token_hex(8),
            "WEAPP_LAUNCH_API_PORT": str(receiver_port),
            "WEAPP_LAUNCH_PUBLIC_URL": f"http://127.0.0.1:{receiver_port}",
        })
    home.mkdir(parents=True, exist_ok=True)
    log = home.parent / f"up-{port}.log"
    proc = subprocess.Popen([sys.executable, "-m", "launch", "up"], env=env, cwd=ROOT, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log, env


def wait_ready(proc: subprocess.Popen, log: Path, timeout: float = UP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"`weapp-launch up` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if "Ctrl-C" in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"`weapp-launch up` not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def terminate(proc: subprocess.Popen, port: int) -> None:
    """Last resort for a failed test: the up process and anything still pointing at its port."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
    for pid in processes_with(f"PREFECT_API_URL=http://127.0.0.1:{port}/api".encode()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def up_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("up")
    port, receiver_port = free_port(), free_port()
    proc, log, env = start_up(base / "home", port, receiver_port)
    up = UpProcess(proc=proc, home=base / "home", port=port, receiver_port=receiver_port, log=log, env=env)
    try:
        wait_ready(proc, log)
        # the server, the runner and the receiver, each in its own process group
        up.children = descendants(proc.pid)
        assert httpx.get(f"{up.api_url}/admin/version", headers=up.auth, timeout=10).status_code == 200
        yield up
    finally:
        terminate(proc, port)
