"""Issue 9 item 2: Prefect's API behind `weapp-launch up` is locked.

Each hole as a scenario against the real `up` (tests/security/conftest.py): an anonymous caller,
a foreign web page (CORS), a cross-site write without a CSRF token, a process without the
string; and the ones who must get in — the CLI in another shell, the runner, the receiver —
still do, starting a launch and resuming its gate with CSRF on.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

from devtools.stack import ROOT

from .conftest import cmdline

pytestmark = pytest.mark.server

EVIL = "https://evil.example"


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_the_auth_string_is_private_and_never_printed(up_stack):
    up_stack.require_running()
    secret = up_stack.auth_file.read_text().strip()
    assert len(secret) >= 40
    assert up_stack.auth_file.stat().st_mode & 0o777 == 0o600
    out = up_stack.log.read_text()
    assert str(up_stack.auth_file) in out, "up says where the string is"
    for text in [out, *(p.read_text(errors="replace") for p in (up_stack.home / "stack").glob("*.log"))]:
        assert secret not in text


def test_anonymous_callers_get_401(up_stack):
    up_stack.require_running()
    api = up_stack.api_url
    assert httpx.get(f"{api}/admin/version", timeout=10).status_code == 401
    assert httpx.get(f"{api}/csrf-token", params={"client": "x"}, timeout=10).status_code == 401
    # Listing runs and resuming one: refused (the CSRF check answers writes first, with 403).
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).status_code in (401, 403)
    run = uuid.uuid4()
    assert httpx.post(f"{api}/flow_runs/{run}/resume", json={}, timeout=10).status_code in (401, 403)
    # A wrong string is no better than none.
    wrong = {"Authorization": "Basic d2VhcHA6bm8="}
    assert httpx.get(f"{api}/admin/version", headers=wrong, timeout=10).status_code == 401
    # The string gets in; the health probe stays open for load balancers.
    assert httpx.get(f"{api}/admin/version", headers=up_stack.auth, timeout=10).status_code == 200
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200


def test_a_foreign_origin_is_refused_and_the_ui_origin_allowed(up_stack):
    up_stack.require_running()
    url = f"{up_stack.api_url}/flow_runs/filter"
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    foreign = httpx.options(url, headers={"Origin": EVIL, **ask}, timeout=10)
    assert foreign.status_code >= 400 and "access-control-allow-origin" not in foreign.headers
    # Even a simple request from that page (the browser sends it, reading is what CORS guards) gets no grant.
    sent = httpx.post(url, json={}, headers={"Origin": EVIL, **up_stack.auth}, timeout=10)
    assert sent.headers.get("access-control-allow-origin") in (None, "*") and sent.status_code == 403
    own = httpx.options(url, headers={"Origin": up_stack.ui_url, **ask}, timeout=10)
    assert own.status_code == 200 and own.headers["access-control-allow-origin"] == up_stack.ui_url


def test_writes_need_a_csrf_token_even_with_the_string(up_stack):
    up_stack.require_running()
    api = up_stack.api_url
    bare = httpx.post(f"{api}/flow_runs/filter", json={}, headers=up_stack.auth, timeout=10)
    assert bare.status_code == 403 and "CSRF" in bare.text
    client = str(uuid.uuid4())
    token = httpx.get(f"{api}/csrf-token", params={"client": client}, headers=up_stack.auth, timeout=10).json()["token"]
    headers = {**up_stack.auth, "Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client}
    assert httpx.post(f"{api}/flow_runs/filter", json={}, headers=headers, timeout=10).status_code == 200
    ui = httpx.get(f"{up_stack.ui_url}/ui-settings", timeout=10).json()
    assert ui["auth"] == "BASIC" and ui["csrf_enabled"] is True


def test_only_the_server_holds_the_server_secret(up_stack):
    up_stack.require_running()
    secret = up_stack.auth_file.read_text().strip()
    roles = {}
    for pid in up_stack.children:
        line = cmdline(pid)
        role = ("server" if "prefect server start" in line else "runner" if "deployments.serve" in line
                else "receiver" if "launch api" in line else None)
        if role and role not in roles:
            roles[role] = environ(pid)
    assert set(roles) == {"server", "runner", "receiver"}, [cmdline(p) for p in up_stack.children]
    server = roles["server"]
    assert server["PREFECT_SERVER_API_AUTH_STRING"] == secret
    assert server["PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED"] == "true"
    assert EVIL not in server["PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS"]
    assert up_stack.ui_url in server["PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS"].split(",")
    for role in ("runner", "receiver"):
        assert roles[role]["PREFECT_API_AUTH_STRING"] == secret
        assert "PREFECT_SERVER_API_AUTH_STRING" not in roles[role]
    runner_log = (up_stack.home / "stack" / "runner.log").read_text(errors="replace")
    assert "Unable to connect to the events WebSocket" not in runner_log


def _flow_run(up_stack, run_id: str) -> dict:
    return httpx.get(f"{up_stack.api_url}/flow_runs/{run_id}", headers=up_stack.auth, timeout=10).json()


def _wait_parked(up_stack, run_id: str, key: str | None, timeout: float = 240) -> dict:
    """Paused at `key`, or (key None) paused anywhere else than where it was."""
    deadline, run = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        run = _flow_run(up_stack, run_id)
        state = run.get("state") or {}
        pause_key = (state.get("state_details") or {}).get("pause_key")
        if state.get("type") == "PAUSED" and (pause_key == key if key else pause_key != "email-activation-1"):
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} not parked ({key or 'at the next gate'}): {run.get('state')}")


def test_the_cli_in_another_shell_starts_and_approves_without_an_export(up_stack):
    """No PREFECT_API_URL, no PREFECT_API_AUTH_STRING: the CLI finds both through WEAPP_LAUNCH_HOME,
    and Prefect's client fetches CSRF tokens for run_deployment and resume_flow_run."""
    up_stack.require_running()
    added = up_stack.cli("client", "add", str(ROOT / "examples" / "client-acme.yaml"), "--json")
    assert added.returncode == 0, added.stderr[-2000:]
    client_id = json.loads(added.stdout)["client_id"]

    refused = up_stack.cli("start", client_id, "--json", PREFECT_API_AUTH_STRING="weapp:wrong")
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr

    started = up_stack.cli("start", client_id, "--json")
    assert started.returncode == 0, started.stderr[-2000:]
    started = json.loads(started.stdout)
    assert started["url"].startswith(up_stack.ui_url)
    _wait_parked(up_stack, started["flow_run_id"], "email-activation-1")

    approved = up_stack.cli("approve", started["launch_id"], "email-activation", "--by", "王经理", "--json")
    assert approved.returncode == 0, approved.stdout + approved.stderr[-2000:]
    _wait_parked(up_stack, started["flow_run_id"], None)  # resumed, replayed, parked at the next gate

    status = up_stack.cli("status", started["launch_id"], "--json")
    decisions = json.loads(status.stdout)["decisions"]
    assert [(d["gate"], d["actor"], d["channel"]) for d in decisions][:1] == [("email-activation", "王经理", "cli")]

    health = up_stack.cli("health", "--json", WEAPP_LAUNCH_PUBLIC_URL=f"http://127.0.0.1:{up_stack.receiver_port}")
    checks = {c["part"]: c for c in json.loads(health.stdout)["checks"]}
    assert checks["server"]["ok"] and "authenticated" in checks["server"]["detail"], checks["server"]
    assert checks["workers"]["ok"] and checks["receiver"]["ok"], checks
    secret = up_stack.auth_file.read_text().strip()
    for result in (added, refused, approved, status, health):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("server_auth, our_auth, verdict", [
    (None, None, "NOT authenticated"),
    ("weapp:right", None, "PREFECT_API_AUTH_STRING is not set"),
    ("weapp:right", "weapp:wrong", "refused our"),
    ("weapp:right", "weapp:right", "authenticated"),
])
def test_health_fails_an_open_prefect(monkeypatch, server_auth, our_auth, verdict):
    """`health`'s server line: an API that answers anyone is a failure, and so is a string it refuses."""
    from launch.app import health
    from launch.orchestration.connect import auth_header

    def get(url, headers=None, **kw):
        granted = server_auth is None or (headers or {}).get("Authorization") == auth_header(server_auth)["Authorization"]
        status = 200 if url.endswith("/health") or granted else 401
        return httpx.Response(status, json="3.8.8", request=httpx.Request("GET", url))

    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.test:4200/api")
    if our_auth:
        monkeypatch.setenv("PREFECT_API_AUTH_STRING", our_auth)
    else:
        monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
        monkeypatch.setattr(health, "_auth_string", lambda: None)  # nor from a Prefect profile
    monkeypatch.setattr(health.httpx, "get", get)
    check = health._server()
    assert check.ok == (verdict == "authenticated") and verdict in check.detail, check


def test_the_local_string_goes_only_to_the_local_stack(tmp_path, monkeypatch):
    """The CLI start-up hook: it fills PREFECT_API_URL / PREFECT_API_AUTH_STRING from the home's
    `up` stack, but never sends that string to a PREFECT_API_URL on another machine."""
    from launch.orchestration import connect as stack_mod
    from launch.orchestration.connect import ensure_auth_string, use_local_stack_auth

    monkeypatch.setattr(stack_mod, "refresh_in_process_settings", lambda: None)
    for key in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "WEAPP_LAUNCH_PREFECT_UI_URL"):
        monkeypatch.setenv(key, "")  # recorded, so whatever the hook sets is undone after the test
        monkeypatch.delenv(key)
    monkeypatch.setenv("WEAPP_LAUNCH_HOME", str(tmp_path))
    monkeypatch.setenv("WEAPP_LAUNCH_PREFECT_PORT", "4311")
    from launch.settings import get_settings

    get_settings.cache_clear()
    try:
        assert not use_local_stack_auth()  # no `up` stack in this home: nothing changes
        secret = ensure_auth_string(tmp_path / "prefect-auth")
        assert ensure_auth_string(tmp_path / "prefect-auth") == secret  # generated once, then reused
        assert (tmp_path / "prefect-auth").stat().st_mode & 0o777 == 0o600
        monkeypatch.setenv("PREFECT_API_URL", "https://prefect.elsewhere.example/api")
        use_local_stack_auth()
        assert "PREFECT_API_AUTH_STRING" not in os.environ
        monkeypatch.delenv("PREFECT_API_URL")
        assert use_local_stack_auth()
        assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4311/api"
        assert os.environ["PREFECT_API_AUTH_STRING"] == secret
        assert os.environ["WEAPP_LAUNCH_PREFECT_UI_URL"] == "http://127.0.0.1:4311"
    finally:
        get_settings.cache_clear()
