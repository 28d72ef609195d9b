"""The local stack: `prefect server start` on SQLite and a `serve()` runner, in one folder.

Used by `weapp-launch demo` / `up` and by the end-to-end tests. Everything lives
under one base folder (Prefect's home, its database, results, our store), never
in the user's global Prefect profile. Processes get their own process groups so
stop() (or a test's SIGKILL) takes their children with them.

Every stack runs Prefect's API locked: a basic-auth string generated once into
<WEAPP_LAUNCH_HOME>/prefect-auth (mode 0600), CORS limited to the UI's own origin and
Prefect's CSRF protection on. The server gets PREFECT_SERVER_API_AUTH_STRING; the
runner, the receiver and this process get PREFECT_API_AUTH_STRING.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import httpx

from launch.orchestration.connect import (
    AUTH_FILE,
    auth_header,
    ensure_auth_string,
    mark_stack_stopped,
    refresh_in_process_settings,
    write_stack_file,
)

ROOT = Path(__file__).resolve().parents[1]


class PortBusy(RuntimeError):
    """A port the stack must use is taken; the message names the port and the setting."""


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_port_free(port: int, setting: str, host: str = "127.0.0.1") -> None:
    """Refuse a busy port with a message saying which and how to change it: never move silently."""
    with closing(socket.socket()) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is not "busy"
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortBusy(
                f"端口 {host}:{port} 已被占用（另一个 `weapp-launch up` 还在运行？）。请先停止占用它的进程，或设置 {setting} "
                f"换一个端口 / port {host}:{port} is already in use (is another `weapp-launch up` running?). Stop "
                f"whatever holds it, or set {setting} to another port"
            ) from exc


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None,
              headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log.read_text()[-3000:] if log else ''}")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {timeout}s: {log.read_text()[-3000:] if log else ''}")


def _group_alive(pgid: int) -> bool:
    """Is any live (not zombie) process left in process group `pgid`?"""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, …
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_group(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM a process group and wait until every process in it is gone; SIGKILL what is left
    after `timeout`. The group is signalled even if its leader already exited: its children may not have."""
    if proc is None:
        return
    pgid = proc.pid  # started with start_new_session: its pid is its group's id
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not _group_alive(pgid):
                break
            time.sleep(0.1)
        else:
            continue
        break
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


class Stack:
    """Env, server and runner processes of one local stack."""

    def __init__(self, base: Path, store_url: str | None = None, port: int | None = None, poll_seconds: int = 1,
                 weapp_home: Path | None = None):
        self.base = Path(base).resolve()
        base = self.base
        base.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self.prefect_db = base / "prefect.db"
        self.home = Path(weapp_home).resolve() if weapp_home else base / "weapp"
        self.auth_file = self.home / AUTH_FILE
        self.auth_string = ensure_auth_string(self.auth_file)
        self.env = dict(os.environ)
        self.env.pop("PREFECT_SERVER_API_AUTH_STRING", None)  # the server's secret goes to the server only
        self.env.update(
            {
                "PREFECT_HOME": str(base / "prefect-home"),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_API_AUTH_STRING": self.auth_string,
                "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true",
                "PREFECT_UI_URL": self.ui_url,
                "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.prefect_db}",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_RUNNER_POLL_FREQUENCY": str(poll_seconds),
                "PREFECT_LOGGING_LEVEL": "INFO",
                "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
                "PREFECT_LOCAL_STORAGE_PATH": str(base / "results"),
                "WEAPP_LAUNCH_HOME": str(self.home),
                "WEAPP_LAUNCH_PREFECT_UI_URL": self.ui_url,
                "WEAPP_LAUNCH_PREFECT_PORT": str(self.port),
                "PYTHONPATH": str(ROOT),
            }
        )
        # The server alone: its auth string, CORS for the UI's own origin only, CSRF tokens on writes.
        self.server_env = {
            "PREFECT_SERVER_API_AUTH_STRING": self.auth_string,
            "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": f"{self.ui_url},http://localhost:{self.port}",
            "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        }
        if store_url:
            self.env["WEAPP_LAUNCH_DATABASE_URL"] = store_url
        self.server: subprocess.Popen | None = None
        self.runner: subprocess.Popen | None = None
        self.api: subprocess.Popen | None = None
        self.runner_log = base / "runner.log"

    @property
    def auth_headers(self) -> dict[str, str]:
        return auth_header(self.auth_string)

    def http(self, timeout: float = 10) -> httpx.Client:
        """A client for Prefect's REST API as Prefect's own clients talk to it: basic auth and,
        for writes (and POST …/filter reads), a CSRF token. Paths are relative: `c.post("flows/filter", json={})`."""
        headers = dict(self.auth_headers)
        csrf_client = str(uuid.uuid4())
        r = httpx.get(f"{self.api_url}/csrf-token", params={"client": csrf_client}, headers=headers, timeout=timeout)
        if r.status_code == 200:
            headers.update({"Prefect-Csrf-Token": r.json()["token"], "Prefect-Csrf-Client": csrf_client})
        return httpx.Client(base_url=self.api_url + "/", headers=headers, timeout=timeout)

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
            env={**self.env, **self.server_env}, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.api_url}/health", 90, self.server, log, headers=self.auth_headers)

    def start_runner(self) -> None:
        self.runner = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve"],
            env=self.env, cwd=ROOT, stdout=self.runner_log.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill_runner() takes its flow-run children too
        )
        self._wait_deployments()

    def _wait_deployments(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        client = None
        try:
            while time.monotonic() < deadline:
                if self.runner.poll() is not None:
                    raise RuntimeError(f"runner exited: {self.runner_log.read_text()[-3000:]}")
                try:
                    client = client or self.http(timeout=5)
                    r = client.post("deployments/filter", json={})
                    # READY once the runner has polled them: only then will a run start
                    if r.status_code == 200 and len(r.json()) >= 5 and all(d.get("status") == "READY" for d in r.json()):
                        return
                    if r.status_code == 403:  # CSRF token expired or refused: fetch a new one
                        client.close()
                        client = None
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        finally:
            if client is not None:
                client.close()
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

    def record(self, receiver_url: str | None = None) -> Path:
        """Write <home>/stack.json for this stack (see write_stack_file): CLIs in other shells find it."""
        return write_stack_file(self.home, api_url=self.api_url, ui_url=self.ui_url, receiver_url=receiver_url)

    def mark_stopped(self) -> None:
        mark_stack_stopped(self.home)

    def kill_runner(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL the runner and every flow-run process it started (its whole process group)."""
        if self.runner and self.runner.poll() is None:
            os.killpg(self.runner.pid, sig)
            self.runner.wait(30)

    def stop(self) -> None:
        """Stop receiver, runner and server, each with every process of its group; a signal
        arriving meanwhile (a second Ctrl-C) cannot cut this short and leave orphans."""
        shielded = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                shielded[sig] = signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread: signals cannot reach us here anyway
            pass
        try:
            for proc in (self.api, self.runner, self.server):
                stop_group(proc)
        finally:
            for sig, handler in shielded.items():
                if handler is not None:
                    signal.signal(sig, handler)
