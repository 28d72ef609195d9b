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

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
AUTH_FILE = "prefect-auth"  # in WEAPP_LAUNCH_HOME: the Prefect API's basic-auth string, mode 0600
STACK_FILE = "stack.json"  # in WEAPP_LAUNCH_HOME: where `up` runs (URLs, pid, since when), mode 0600
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EPHEMERAL_SETTING = "PREFECT_SERVER_EPHEMERAL_ENABLED"  # alias: PREFECT_SERVER_ALLOW_EPHEMERAL_MODE


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


def auth_header(auth_string: str) -> dict[str, str]:
    """The Authorization header Prefect's clients send for PREFECT_API_AUTH_STRING."""
    return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}


def ensure_auth_string(path: Path) -> str:
    """The auth string in `path`, generated there once if missing — created and checked like
    every other secret file of the home (launch.settings.load_or_create_secret_file: atomic,
    mode 0600, owner and mode checked on load), so racing starters share one string."""
    from launch.settings import load_or_create_secret_file

    # user:password, so `curl -u "$(cat prefect-auth)"` works too
    raw = load_or_create_secret_file(Path(path), lambda: f"weapp:{secrets.token_urlsafe(32)}\n".encode())
    return raw.decode().strip()


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, mode 0600: a private temporary file renamed into place."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_stack_file(home: Path, *, api_url: str, ui_url: str, receiver_url: str | None, pid: int | None = None,
                     started_at: str | None = None) -> Path:
    """Record in <home>/stack.json where the stack `up` runs, so every CLI in another shell finds it.

    URLs, the `up` process id and its start time; the credentials stay in <home>/prefect-auth,
    named here. Mode 0600, replaced atomically (a reader never sees half a file)."""
    from datetime import datetime, timezone

    home = Path(home)
    data = {
        "status": "running",
        "prefect_api_url": api_url,
        "prefect_ui_url": ui_url,
        "receiver_url": receiver_url,
        "auth_file": str(home / AUTH_FILE),
        "pid": pid or os.getpid(),
        "started_at": started_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = home / STACK_FILE
    _write_private(path, json.dumps(data, indent=2) + "\n")
    return path


def read_stack_file(home: Path | None = None) -> dict | None:
    """<home>/stack.json as written by `up`, or None (no stack here, or an unreadable file)."""
    if home is None:
        from launch.settings import get_settings

        home = get_settings().home
    try:
        data = json.loads(Path(home).joinpath(STACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("prefect_api_url") else None


def mark_stack_stopped(home: Path, pid: int | None = None) -> None:
    """`up` is ending: mark its stack.json stopped (URLs kept, so a CLI can say where the stack was).
    Left alone if another `up` has written it since (its pid differs)."""
    from datetime import datetime, timezone

    data = read_stack_file(home)
    if data is None or data.get("pid") != (pid or os.getpid()):
        return
    data.update(status="stopped", stopped_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _write_private(Path(home) / STACK_FILE, json.dumps(data, indent=2) + "\n")


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def stack_note(info: dict | None) -> str:
    """What stack.json says about the home's `up`, for an error message ("" if it is running)."""
    if info is None:
        return ""
    if info.get("status") == "stopped":
        return (f"本目录的 `weapp-launch up` 已于 {info.get('stopped_at', '?')} 停止 / this home's `weapp-launch up` "
                f"stopped at {info.get('stopped_at', '?')}")
    if not _pid_alive(info.get("pid")):
        return (f"本目录的 `weapp-launch up`（进程 {info.get('pid')}）已不在运行 / this home's `weapp-launch up` "
                f"(pid {info.get('pid')}) is no longer running")
    return ""


def use_local_stack_auth(home: Path | None = None) -> bool:
    """Let a CLI in another shell reach the `up` stack of its home without exporting anything.

    Only where an `up` stack lives (<home>/stack.json or <home>/prefect-auth): an unset
    PREFECT_API_URL becomes the stack's (from stack.json; without one, the port of
    WEAPP_LAUNCH_PREFECT_PORT), its UI URL too unless WEAPP_LAUNCH_PREFECT_UI_URL is set, and an
    unset PREFECT_API_AUTH_STRING is read from <home>/prefect-auth — unless PREFECT_API_URL names
    another machine, which never gets the local string. An explicit PREFECT_API_URL always wins.
    Called once at CLI start-up; True if it changed anything.
    """
    from launch.settings import get_settings

    settings = get_settings()
    home = Path(home) if home else settings.home
    info = read_stack_file(home)
    try:
        auth = home.joinpath(AUTH_FILE).read_text().strip()
    except OSError:
        auth = ""
    if not auth and info is None:
        return False
    changed = False
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        if info is not None:
            url, ui = info["prefect_api_url"], info.get("prefect_ui_url")
        else:
            url, ui = f"http://127.0.0.1:{settings.prefect_port}/api", f"http://127.0.0.1:{settings.prefect_port}"
        os.environ["PREFECT_API_URL"] = url
        if ui and "prefect_ui_url" not in settings.model_fields_set:
            os.environ["WEAPP_LAUNCH_PREFECT_UI_URL"] = ui
        changed = True
    if auth and not os.environ.get("PREFECT_API_AUTH_STRING") and urlsplit(url).hostname in LOOPBACK:
        os.environ["PREFECT_API_AUTH_STRING"] = auth
        changed = True
    if changed:
        refresh_in_process_settings()
    return changed


def forbid_ephemeral_prefect() -> None:
    """No command starts Prefect's throw-away ephemeral server (Prefect's default profile would,
    whenever no API URL is set): it answers every question from an empty database and prints its
    own errors. Set before Prefect is used; this process follows it from here on."""
    if os.environ.get(EPHEMERAL_SETTING) != "false":
        os.environ[EPHEMERAL_SETTING] = "false"
        if "prefect.context" in sys.modules:
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()


def prefect_api_url() -> str | None:
    """The Prefect API this process would talk to: PREFECT_API_URL, or the active Prefect profile's."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    try:
        from prefect.settings import get_current_settings

        return get_current_settings().api.url or None
    except Exception:  # noqa: BLE001 - a broken profile: as good as none
        return None


def missing_prefect_message() -> str:
    from launch.settings import get_settings

    home = get_settings().home
    return (f"没有可用的 Prefect API：请运行 `weapp-launch up`（或在另一个终端使用同一 WEAPP_LAUNCH_HOME），或设置 "
            f"PREFECT_API_URL（{home} 中没有 {STACK_FILE}）/ no Prefect API known: run `weapp-launch up` (or use "
            f"the WEAPP_LAUNCH_HOME of a running one), or set PREFECT_API_URL (no {STACK_FILE} in {home})")


def unreachable_message(url: str | None = None) -> str:
    url = url or prefect_api_url() or "?"
    note = stack_note(read_stack_file())
    return f"Prefect API {url} 无法连接 / does not answer" + (f"（{note}）" if note else "")


def prefect_problem(exc: BaseException) -> str | None:
    """A bilingual sentence if `exc` (or what caused it) means Prefect's API is missing, down or
    refusing us; None for anything else. Never includes the auth string."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        seen += 1
        if isinstance(current, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                                httpx.ReadError, ConnectionRefusedError)):
            return unreachable_message()
        if isinstance(current, ValueError) and "No Prefect API URL" in str(current):
            return missing_prefect_message()
        response = getattr(current, "response", None)
        status = getattr(response, "status_code", None)
        if status in (401, 403) and isinstance(current, httpx.HTTPStatusError):
            return (f"Prefect API {prefect_api_url()} 拒绝访问（HTTP {status}）：请检查 PREFECT_API_AUTH_STRING"
                    f"（`weapp-launch up` 写在 <home>/{AUTH_FILE}）/ the Prefect API refused us (HTTP {status}): check "
                    f"PREFECT_API_AUTH_STRING (`weapp-launch up` keeps it in <home>/{AUTH_FILE})")
        current = current.__cause__ or current.__context__
    return None


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
