"""The local stack: `prefect server start` on SQLite and a `serve()` runner, in one folder.

Used by `weapp-launch demo` / `up` and by the end-to-end tests. Everything lives
under one base folder (Prefect's home, its database, results, our store), never
in the user's global Prefect profile. Processes get their own process groups so
stop() (or a test's SIGKILL) takes their children with them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log.read_text()[-3000:] if log else ''}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {timeout}s: {log.read_text()[-3000:] if log else ''}")


def refresh_in_process_settings() -> None:
    """Make this process follow the PREFECT_* and WEAPP_LAUNCH_* now in os.environ.

    Prefect freezes its settings when it is first imported; a test process that imported
    it before a stack existed would otherwise talk to an ephemeral server of its own.
    """
    import sys

    from launch import runtime

    runtime.reset()
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


class Stack:
    """Env, server and runner processes of one local stack."""

    def __init__(self, base: Path, store_url: str | None = None, port: int | None = None, poll_seconds: int = 1,
                 weapp_home: Path | None = None):
        self.base = Path(base).resolve()
        base = self.base
        base.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.prefect_db = base / "prefect.db"
        self.env = dict(os.environ)
        self.env.update(
            {
                "PREFECT_HOME": str(base / "prefect-home"),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_UI_URL": f"http://127.0.0.1:{self.port}",
                "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.prefect_db}",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_RUNNER_POLL_FREQUENCY": str(poll_seconds),
                "PREFECT_LOGGING_LEVEL": "INFO",
                "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
                "PREFECT_LOCAL_STORAGE_PATH": str(base / "results"),
                "WEAPP_LAUNCH_HOME": str(Path(weapp_home).resolve() if weapp_home else base / "weapp"),
                "WEAPP_LAUNCH_PREFECT_UI_URL": f"http://127.0.0.1:{self.port}",
                "PYTHONPATH": str(ROOT),
            }
        )
        if store_url:
            self.env["WEAPP_LAUNCH_DATABASE_URL"] = store_url
        self.server: subprocess.Popen | None = None
        self.runner: subprocess.Popen | None = None
        self.api: subprocess.Popen | None = None
        self.runner_log = base / "runner.log"

    def apply_env(self) -> None:
        """Point this (test) process at the stack too: it plays CLI, receiver and the outside world."""
        for key, value in self.env.items():
            if key.startswith(("PREFECT_", "WEAPP_LAUNCH_")):
                os.environ[key] = value
        refresh_in_process_settings()

    def start_server(self) -> None:
        log = self.base / "server.log"
        self.server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_http(f"{self.api_url}/health", 90, self.server, log)

    def start_runner(self) -> None:
        self.runner = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve"],
            env=self.env, cwd=ROOT, stdout=self.runner_log.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill_runner() takes its flow-run children too
        )
        self._wait_deployments()

    def _wait_deployments(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.runner.poll() is not None:
                raise RuntimeError(f"runner exited: {self.runner_log.read_text()[-3000:]}")
            try:
                r = httpx.post(f"{self.api_url}/deployments/filter", json={}, timeout=5)
                # READY once the runner has polled them: only then will a run start
                if len(r.json()) >= 5 and all(d.get("status") == "READY" for d in r.json()):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"deployments not served: {self.runner_log.read_text()[-3000:]}")

    def enable_wechat(self) -> dict[str, str]:
        """Give the stack a receiver identity (token, AES key, component app id) and a port."""
        import base64
        import secrets

        port = free_port()
        wechat = {
            "WEAPP_LAUNCH_WECHAT_TOKEN": secrets.token_hex(16),
            "WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode().rstrip("="),
            "WEAPP_LAUNCH_WECHAT_COMPONENT_APPID": "wx" + secrets.token_hex(8),
            "WEAPP_LAUNCH_API_PORT": str(port),
            "WEAPP_LAUNCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        self.env.update(wechat)
        return wechat

    def start_api(self) -> str:
        """The callback receiver (`weapp-launch api`) as its own process."""
        log = self.base / "api.log"
        self.api = subprocess.Popen(
            [sys.executable, "-m", "launch", "api"],
            env=self.env, cwd=ROOT, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = self.env.get("WEAPP_LAUNCH_PUBLIC_URL", "http://127.0.0.1:8780")
        wait_http(f"{url}/healthz", 60, self.api, log)
        return url

    def kill_runner(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL the runner and every flow-run process it started (its whole process group)."""
        if self.runner and self.runner.poll() is None:
            os.killpg(self.runner.pid, sig)
            self.runner.wait(30)

    def stop(self) -> None:
        for proc in (self.api, self.runner, self.server):
            if proc and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
