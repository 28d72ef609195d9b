"""Where this process finds Prefect's API and how it authenticates to it.

A `weapp-launch up` stack records itself in <WEAPP_LAUNCH_HOME>/stack.json (URLs, pid) and
keeps the Prefect API's basic-auth string in <WEAPP_LAUNCH_HOME>/prefect-auth (mode 0600).
Every CLI command and `weapp-launch health` read them here, so a shell with the same home
reaches the stack without exporting anything; the local stack itself (devtools/stack.py)
writes them. Messages for a Prefect API that is missing, down or refusing us live here too.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

AUTH_FILE = "prefect-auth"  # in WEAPP_LAUNCH_HOME: the Prefect API's basic-auth string, mode 0600
STACK_FILE = "stack.json"  # in WEAPP_LAUNCH_HOME: where `up` runs (URLs, pid, since when), mode 0600
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EPHEMERAL_SETTING = "PREFECT_SERVER_EPHEMERAL_ENABLED"  # alias: PREFECT_SERVER_ALLOW_EPHEMERAL_MODE


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


def refresh_in_process_settings() -> None:
    """Make this process follow the PREFECT_* and WEAPP_LAUNCH_* now in os.environ.

    Prefect freezes its settings when it is first imported; a test process that imported
    it before a stack existed would otherwise talk to an ephemeral server of its own.
    """
    from launch.settings import get_settings

    get_settings.cache_clear()
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
