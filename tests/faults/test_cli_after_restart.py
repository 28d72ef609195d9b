"""Issue 14 items 3 and 4: the CLI after a restart, and `health` as a monitor.

- A restarted `up` keeps its port (a port in TIME_WAIT is free; a live listener is not) and
  records its URLs in <home>/stack.json, which every CLI in another shell reads.
- No command starts Prefect's ephemeral server: without a stack they say what is missing.
- `approve` while the Prefect API is down records the decision, says so in both languages and
  exits 0 without a traceback; approving again retries the resume; and the runner applies the
  decision within seconds of the API answering again, without a watcher pass.
- `health --json` exits 1 when a check fails and 0 on a healthy stack.

The CLI runs as a user runs it, in "another shell": a subprocess with only WEAPP_LAUNCH_HOME.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.stack import PortBusy, Stack, ensure_port_free, free_port
from launch.orchestration.connect import (
    STACK_FILE,
    ensure_auth_string,
    mark_stack_stopped,
    read_stack_file,
    stack_note,
    use_local_stack_auth,
    write_stack_file,
)
from tests.security.conftest import clean_env
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "examples" / "client-acme.yaml"


def cli(home: Path, *args: str, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess:
    """`weapp-launch …` in another shell: WEAPP_LAUNCH_HOME only, no PREFECT_* at all."""
    env = clean_env(WEAPP_LAUNCH_HOME=str(home), **extra)
    return subprocess.run([sys.executable, "-m", "launch", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def no_traceback(*results: subprocess.CompletedProcess) -> None:
    for r in results:
        text = r.stdout + r.stderr
        assert "Traceback" not in text and "database is locked" not in text, text[-3000:]


# --------------------------------------------------------------------------- port and stack file


def test_a_port_in_time_wait_is_free_and_a_listener_is_busy():
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    conn.close()  # the server's end closes first: its socket (local port `port`) goes to TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    with socket.socket() as plain:
        try:
            plain.bind(("127.0.0.1", port))
        except OSError:
            pass  # what the old plain-bind probe saw after a restart: "busy"
        else:
            pytest.skip("this kernel left no TIME_WAIT socket to test against")
    ensure_port_free(port, "WEAPP_LAUNCH_PREFECT_PORT")  # the restarted `up` keeps its port

    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        with pytest.raises(PortBusy, match="WEAPP_LAUNCH_PREFECT_PORT"):
            ensure_port_free(live.getsockname()[1], "WEAPP_LAUNCH_PREFECT_PORT")


def test_the_stack_file_is_private_and_every_cli_reads_it(tmp_path, monkeypatch):
    from launch.orchestration import connect as stack_mod
    from launch.settings import get_settings

    monkeypatch.setattr(stack_mod, "refresh_in_process_settings", lambda: None)
    for key in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "WEAPP_LAUNCH_PREFECT_UI_URL", "WEAPP_LAUNCH_PREFECT_PORT"):
        monkeypatch.setenv(key, "")  # recorded, so whatever the hook sets is undone after the test
        monkeypatch.delenv(key)
    monkeypatch.setenv("WEAPP_LAUNCH_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        secret = ensure_auth_string(tmp_path / "prefect-auth")
        path = write_stack_file(tmp_path, api_url="http://127.0.0.1:4321/api", ui_url="http://127.0.0.1:4321",
                                receiver_url="http://127.0.0.1:8781")
        assert path == tmp_path / STACK_FILE and path.stat().st_mode & 0o777 == 0o600
        data = json.loads(path.read_text())
        assert data["status"] == "running" and data["pid"] == os.getpid() and data["started_at"]
        assert secret not in path.read_text() and data["auth_file"] == str(tmp_path / "prefect-auth")
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary file left behind"

        # The stack's own port, not WEAPP_LAUNCH_PREFECT_PORT's default: `up` ran elsewhere than 4200.
        assert use_local_stack_auth()
        assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4321/api"
        assert os.environ["WEAPP_LAUNCH_PREFECT_UI_URL"] == "http://127.0.0.1:4321"
        assert os.environ["PREFECT_API_AUTH_STRING"] == secret
        # An explicit PREFECT_API_URL wins (and a remote one never gets the local string).
        monkeypatch.setenv("PREFECT_API_URL", "https://prefect.elsewhere.example/api")
        monkeypatch.delenv("PREFECT_API_AUTH_STRING")
        use_local_stack_auth()
        assert os.environ["PREFECT_API_URL"] == "https://prefect.elsewhere.example/api"
        assert "PREFECT_API_AUTH_STRING" not in os.environ

        assert stack_note(read_stack_file(tmp_path)) == ""  # running: this process
        mark_stack_stopped(tmp_path, pid=os.getpid() + 1)  # another `up`'s exit leaves ours alone
        assert read_stack_file(tmp_path)["status"] == "running"
        mark_stack_stopped(tmp_path)
        stopped = read_stack_file(tmp_path)
        assert stopped["status"] == "stopped" and stopped["prefect_api_url"] == "http://127.0.0.1:4321/api"
        assert "stopped" in stack_note(stopped) and "停止" in stack_note(stopped)
    finally:
        get_settings.cache_clear()


# --------------------------------------------------------------------------- no stack at all


def test_without_a_stack_commands_say_what_is_missing_and_never_start_a_server(tmp_path):
    home = tmp_path / "home"
    started = time.monotonic()
    health = cli(home, "health", "--json")
    assert health.returncode == 1, health.stdout + health.stderr
    body = json.loads(health.stdout)
    checks = {c["part"]: c for c in body["checks"]}
    assert body["ok"] is False and not checks["server"]["ok"]
    assert "weapp-launch up" in checks["server"]["detail"] and "PREFECT_API_URL" in checks["server"]["detail"]
    assert not checks["workers"]["ok"] and "not checked" in checks["workers"]["detail"]
    assert checks["store"]["ok"], checks["store"]
    plain = cli(home, "health")
    assert plain.returncode == 1 and "✘ server" in plain.stdout
    # An ephemeral server takes ~10 s to start and leaves its database behind.
    assert time.monotonic() - started < 60
    assert not list(home.rglob("prefect.db*")) and not (home / "prefect-home").exists()

    # Store-only commands work without Prefect.
    assert cli(home, "check", str(ACME), "--today", "2026-11-21").returncode == 0
    added = cli(home, "client", "add", str(ACME), "--json")
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client_id"]
    assert cli(home, "plan", client_id, "--start", "2026-09-24").returncode == 0
    assert cli(home, "workdays", "add", "2026-09-30", "3").stdout.strip() == "2026-10-10"
    assert cli(home, "status", "--json").returncode == 0

    # Commands that need Prefect: what is missing, exit 3, no traceback.
    start = cli(home, "start", client_id, "--json")
    assert start.returncode == 3, start.stdout + start.stderr
    error = json.loads(start.stdout)
    assert error["reason"] == "prefect-not-configured" and "weapp-launch up" in error["error"]
    assert "PREFECT_API_URL" in error["error"] and "没有可用的 Prefect API" in error["error"]
    serve = cli(home, "serve", timeout=60)
    assert serve.returncode == 3 and "weapp-launch up" in serve.stderr
    no_traceback(health, plain, start, serve)


def test_approve_without_prefect_records_and_says_it_will_be_applied(tmp_path):
    """A gate waiting in a run (as the store saw it last) and no Prefect: the decision is recorded,
    the CLI says it will be applied when Prefect answers, and approving again retries."""
    home = tmp_path / "home"
    added = cli(home, "client", "add", str(ACME), "--json")
    client_id = json.loads(added.stdout)["client_id"]
    env = {"WEAPP_LAUNCH_HOME": str(home)}
    code = (
        "from datetime import datetime, timezone\n"
        "from launch.app import Resources\n"
        "s = Resources.from_settings().store\n"
        f"l = s.create_launch({client_id!r})\n"
        "s.set_launch_flow_run(l.id, '00000000-0000-4000-8000-000000000001')\n"
        "s.open_step(l.id, 'email-activation', 1, started_at=datetime.now(timezone.utc),\n"
        "            flow_run_id='00000000-0000-4000-8000-000000000001', gate_key='email-activation-1')\n"
        "print(l.id)\n"
    )
    made = subprocess.run([sys.executable, "-c", code], env=clean_env(**env), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    launch_id = made.stdout.strip().splitlines()[-1]

    first = cli(home, "approve", launch_id, "email-activation", "--by", "王经理", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    body = json.loads(first.stdout)
    assert (body["status"], body["attempt"], body["resumed"], body["resume_pending"]) == ("recorded", 1, False, True)
    assert "as soon as the Prefect API answers" in body["message"] and "Prefect 恢复后将自动继续" in body["message"]
    assert "weapp-launch up" in body["hint"]

    again = cli(home, "approve", launch_id, "email-activation", "--by", "王经理")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "duplicate" in again.stdout and "already" in again.stdout and "as soon as" in again.stdout
    assert "已记录，Prefect 恢复后将自动继续" in again.stderr and "weapp-launch up" in again.stderr
    status = json.loads(cli(home, "status", launch_id, "--json").stdout)
    assert [(d["gate"], d["actor"]) for d in status["decisions"]] == [("email-activation", "王经理")]
    no_traceback(first, again)


# --------------------------------------------------------------------------- a real stack, its server restarted


def _flow_run(stack: Stack, run_id: str) -> dict:
    try:
        return httpx.get(f"{stack.api_url}/flow_runs/{run_id}", headers=stack.auth_headers, timeout=10).json()
    except httpx.HTTPError:
        return {}


def _pause_key(run: dict) -> str | None:
    state = run.get("state") or {}
    return (state.get("state_details") or {}).get("pause_key") if state.get("type") == "PAUSED" else None


@pytest.fixture(scope="module")
def restartable(tmp_path_factory):
    """A stack whose Prefect server a test may kill and start again on the same port. The runner
    and receiver keep running meanwhile (with `up`, a dead server stops everything)."""
    base = tmp_path_factory.mktemp("restart")
    saved = dict(os.environ)
    for key in list(os.environ):  # nothing of the session stack leaks into this one
        if key.startswith(("PREFECT_", "WEAPP_LAUNCH_")):
            del os.environ[key]
    try:
        stack = Stack(base / "stack", weapp_home=base / "home", poll_seconds=1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    stack.env["WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS"] = "0"  # no scheduled watcher pass: none repairs anything
    stack.enable_wechat()
    try:
        stack.start_server()
        stack.start_runner()
        receiver = stack.start_api()
        stack.record(receiver)
        yield stack
    finally:
        stack.stop()
        stack.mark_stopped()


@pytest.mark.server
@pytest.mark.faults
def test_health_passes_on_a_running_stack(restartable, tmp_path):
    stack = restartable
    notifiers = tmp_path / "notifiers.yaml"
    notifiers.write_text("channels:\n  - name: ops\n    url: json://127.0.0.1:9/alerts\n    tags: [ops, manager]\n"
                         "fallback_tag: ops\n", encoding="utf-8")
    with stack.http() as api:  # one watcher pass, as its schedule would run it
        watcher = api.get("deployments/name/deadline-watcher/default").json()
        run = api.post(f"deployments/{watcher['id']}/create_flow_run", json={}).json()
    wait_for(lambda: (_flow_run(stack, run["id"]).get("state") or {}).get("type") == "COMPLETED", 180,
          "the watcher pass to complete")
    health = cli(stack.home, "health", "--json", WEAPP_LAUNCH_NOTIFIERS_FILE=str(notifiers))
    body = json.loads(health.stdout)
    assert health.returncode == 0 and body["ok"], body
    details = {c["part"]: c["detail"] for c in body["checks"]}
    assert stack.api_url in details["server"] and stack.env["WEAPP_LAUNCH_PUBLIC_URL"] in details["receiver"]
    no_traceback(health)
    assert stack.auth_string not in health.stdout + health.stderr


@pytest.mark.server
@pytest.mark.faults
def test_a_decision_made_while_prefect_is_down_is_applied_as_soon_as_it_is_back(restartable):
    stack = restartable
    home = stack.home
    client_id = json.loads(cli(home, "client", "add", str(ACME), "--json").stdout)["client_id"]
    started = cli(home, "start", client_id, "--json")
    assert started.returncode == 0, started.stdout + started.stderr
    started = json.loads(started.stdout)
    run_id, launch_id = started["flow_run_id"], started["launch_id"]
    assert started["url"].startswith(stack.ui_url)  # the UI URL came from stack.json too
    wait_for(lambda: _pause_key(_flow_run(stack, run_id)) == "email-activation-1", 300, "the run to park")
    time.sleep(2)  # its Resume form is saved just after it parks

    watcher_runs_before = _watcher_runs(stack)
    os.killpg(stack.server.pid, signal.SIGKILL)
    stack.server.wait(30)
    down = cli(home, "approve", launch_id, "email-activation", "--by", "王经理", "--json")
    assert down.returncode == 0, down.stdout + down.stderr
    body = json.loads(down.stdout)
    assert (body["status"], body["resumed"], body["resume_pending"]) == ("recorded", False, True), body
    assert "无法连接" in body["resume_error"] and "as soon as the Prefect API answers" in body["message"]
    assert stack.api_url in body["hint"] and "does not answer" in body["hint"]
    again = cli(home, "approve", launch_id, "email-activation", "--by", "王经理")
    assert again.returncode == 0 and "already" in again.stdout and "as soon as" in again.stdout, again.stdout
    status = cli(home, "status", launch_id, "--json")  # the store alone: works with Prefect down
    assert status.returncode == 0
    assert [d["gate"] for d in json.loads(status.stdout)["decisions"]] == ["email-activation"]
    health = cli(home, "health", "--json")
    checks = {c["part"]: c for c in json.loads(health.stdout)["checks"]}
    assert health.returncode == 1 and "unreachable" in checks["server"]["detail"]
    no_traceback(down, again, status, health)

    stack.start_server()  # the same port, straight away: its connections' TIME_WAIT does not matter
    back = time.monotonic()
    assert stack.runner.poll() is None, "the runner must outlive a short server outage"
    wait_for(lambda: _pause_key(_flow_run(stack, run_id)) != "email-activation-1" and _flow_run(stack, run_id), 30,
          "the recorded decision to resume the run (no watcher pass runs here)")
    resumed_after = time.monotonic() - back
    wait_for(lambda: (_pause_key(_flow_run(stack, run_id)) or "email-activation-1") != "email-activation-1", 300,
          "the launch to park at its next gate")
    runner_log = stack.runner_log.read_text(errors="replace")
    assert "delivered a recorded decision" in runner_log, "the runner's retry loop resumed it"
    assert _watcher_runs(stack) == watcher_runs_before, "no watcher pass ran meanwhile"
    print(f"resumed {resumed_after:.1f}s after the server came back")


def _watcher_runs(stack: Stack) -> set[str]:
    with stack.http() as api:
        flows = {f["id"]: f["name"] for f in api.post("flows/filter", json={}).json()}
        runs = api.post("flow_runs/filter", json={}).json()
    return {r["id"] for r in runs if flows.get(r["flow_id"]) == "deadline-watcher"}
