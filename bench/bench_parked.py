"""Launches parked at gates hold nothing but rows: N launches parked on PostgreSQL against an
idle stack, in one run.

    .venv/bin/python bench/bench_parked.py [--launches 200] [--window 6] [--pg-url URL]

Starts a local stack (tests/support's Stack: a Prefect server and a `serve()` runner) with
Prefect's database and the store each in a fresh PostgreSQL database (dropped at the end;
PostgreSQL at WEAPP_LAUNCH_TEST_POSTGRES_URL, default 127.0.0.1:5432/test). Measures the idle
stack first (the baseline), then starts N launches — at most `--window` on their way to
their first gate at a time, since the runner starts a process per run — waits until every
one is parked at email-activation-1, and measures again:

  processes held       live flow-run processes (`python -m prefect.engine`) while parked (0 expected)
  server memory        RSS of the Prefect server process (with its children)
  store size           pg_database_size of the store
  watcher pass         one `launch.app.watcher.watch_once` (enqueue + repair; no channels) — the
                       first over N parked launches enqueues their notices, the next is steady
  `weapp-launch status` the CLI as a user runs it (a process, --json) listing every launch;
                       beside it the same listing in-process and a bare `SELECT` of the launches

Each figure is printed beside its baseline. Asserts nothing; not run in CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.stack import Stack  # noqa: E402
from tests.support.processes import flow_run_processes, rss_bytes  # noqa: E402
from tests.support.postgres import pg_admin, pg_url  # noqa: E402

GATE = "email-activation"






def db_size(database: str) -> int:
    with pg_admin() as conn:
        return conn.execute("SELECT pg_database_size(%s)", (database,)).fetchone()[0]


def status_cli(stack: Stack) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "launch", "status", "--json"], env=stack.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"weapp-launch status exited {done.returncode}: {done.stderr[-2000:]}")
    import json

    return elapsed, len(json.loads(done.stdout))


def in_process(fn, repeat: int = 3) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def bare_query() -> int:
    from sqlalchemy import text

    from tests.support.stack import stack_resources

    with stack_resources().store.engine.connect() as conn:
        return len(conn.execute(text("SELECT id, client_id, status FROM launches")).all())


def watcher_pass() -> tuple[float, int]:
    from dataclasses import replace

    from launch.app.watcher import watch_once
    from tests.support.stack import stack_resources

    res = stack_resources()
    res = replace(res, _store=res.store, _notifier=(None, None, None))  # no channels
    t0 = time.perf_counter()
    report = watch_once(res)
    return time.perf_counter() - t0, len(report.enqueued)


def measure(stack: Stack, store_db: str) -> dict:
    from launch.app.launches import launches_overview
    from tests.support.stack import stack_resources

    out = {"processes": len(flow_run_processes(stack.api_url)),
           "server_rss": rss_bytes(stack.server.pid), "runner_rss": rss_bytes(stack.runner.pid, with_children=False)}
    out["watch_first"], out["enqueued_first"] = watcher_pass()
    out["watch_steady"], out["enqueued_steady"] = watcher_pass()
    out["store_size"] = db_size(store_db)
    out["status_cli"], out["status_rows"] = status_cli(stack)
    out["overview"], _ = in_process(lambda: launches_overview(stack_resources()))
    out["bare"], _ = in_process(bare_query)
    return out


def park(n: int, window: int, timeout: float) -> tuple[float, int, list[str]]:
    """Start n launches, at most `window` not yet parked at once; wait until all are parked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from launch.app.launches import start_launch
    from launch.app.preflight import add_client
    from tests.support.intakes import fresh_intake
    from tests.support.stack import stack_resources

    res = stack_resources()
    store = res.store
    clients = []
    for _ in range(n):
        intake, _ = fresh_intake()
        clients.append(add_client(res, intake, res.now().date())[0])

    def waiting() -> int:
        return sum(1 for launch in store.list_launches()
                   for s in store.steps_for(launch.id) if s.step == GATE and s.status == "waiting")

    def paused() -> int:
        with get_client(sync_client=True) as client:
            return client.count_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))

    t0 = time.perf_counter()
    started, peak = [], 0
    deadline = time.monotonic() + timeout
    for client_id in clients:
        while len(started) - paused() >= window:
            peak = max(peak, len(flow_run_processes(os.environ["PREFECT_API_URL"])))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{paused()}/{len(started)} parked after {timeout}s")
            time.sleep(0.5)
        started.append(start_launch(res, client_id)["launch_id"])
        if len(started) % 20 == 0:
            print(f"  started {len(started)}/{n}, parked {paused()}", flush=True)
    while paused() < n:
        peak = max(peak, len(flow_run_processes(os.environ["PREFECT_API_URL"])))
        if time.monotonic() > deadline:
            raise TimeoutError(f"{paused()}/{n} parked after {timeout}s")
        time.sleep(0.5)
    assert waiting() == n
    return time.perf_counter() - t0, peak, started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launches", type=int, default=200)
    ap.add_argument("--window", type=int, default=6, help="launches on their way to a gate at a time")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()

    suffix = uuid.uuid4().hex[:8]
    prefect_db, store_db = f"bench_prefect_{suffix}", f"bench_store_{suffix}"
    with pg_admin() as conn:
        for db in (prefect_db, store_db):
            conn.execute(f'CREATE DATABASE "{db}"')
    stack = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-parked-") as tmp:
            stack = Stack(Path(tmp), store_url=pg_url(store_db, "postgresql+psycopg"))
            stack.env.update({
                "PREFECT_API_DATABASE_CONNECTION_URL": pg_url(prefect_db, "postgresql+asyncpg"),
                "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "10",
                "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "20",
                "WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS": "0",  # only the passes measured here
                "PREFECT_LOGGING_LEVEL": "WARNING",
            })
            t0 = time.perf_counter()
            stack.start_server()
            stack.apply_env()
            from tests.support.stack import stack_resources

            stack_resources().store  # migrate before the runner's processes open it
            stack.start_runner()
            setup = time.perf_counter() - t0
            time.sleep(5)  # let the server settle after start-up before measuring it idle
            idle = measure(stack, store_db)
            park_s, peak, _ = park(args.launches, args.window, args.timeout)
            time.sleep(5)  # the last parked processes exit
            parked = measure(stack, store_db)
            stack.stop()
    finally:
        if stack is not None:
            stack.stop()
        from tests.support.stack import close_resources

        close_resources()
        with pg_admin() as conn:
            for db in (prefect_db, store_db):
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    n = args.launches
    mb = 1024 * 1024

    def ratio(a: float, b: float) -> str:
        return f"{a / b:6.2f} x" if b else "     - "

    print()
    print(f"{n} launches parked at {GATE}-1 on PostgreSQL (server and store); setup {setup:.1f} s, "
          f"parking {park_s:.1f} s (window {args.window}, peak {peak} flow-run processes)")
    print(f"{'':34s} {'idle stack':>14s} {f'{n} parked':>14s}   ratio")
    print(f"{'processes held (flow runs)':34s} {idle['processes']:>14d} {parked['processes']:>14d}   "
          f"{'(0 expected)'}")
    print(f"{'Prefect server RSS':34s} {idle['server_rss'] / mb:>11.1f} MB {parked['server_rss'] / mb:>11.1f} MB   "
          f"{ratio(parked['server_rss'], idle['server_rss'])}")
    print(f"{'runner RSS':34s} {idle['runner_rss'] / mb:>11.1f} MB {parked['runner_rss'] / mb:>11.1f} MB   "
          f"{ratio(parked['runner_rss'], idle['runner_rss'])}")
    print(f"{'store database size':34s} {idle['store_size'] / mb:>11.1f} MB {parked['store_size'] / mb:>11.1f} MB   "
          f"{ratio(parked['store_size'], idle['store_size'])}   "
          f"(+{(parked['store_size'] - idle['store_size']) / max(n, 1) / 1024:.1f} KB per launch)")
    print(f"{'watcher pass, first':34s} {idle['watch_first'] * 1000:>11.1f} ms {parked['watch_first'] * 1000:>11.1f} ms   "
          f"{ratio(parked['watch_first'], idle['watch_first'])}   ({parked['enqueued_first']} notices enqueued)")
    print(f"{'watcher pass, steady':34s} {idle['watch_steady'] * 1000:>11.1f} ms "
          f"{parked['watch_steady'] * 1000:>11.1f} ms   {ratio(parked['watch_steady'], idle['watch_steady'])}")
    print(f"{'`weapp-launch status --json`':34s} {idle['status_cli'] * 1000:>11.1f} ms "
          f"{parked['status_cli'] * 1000:>11.1f} ms   {ratio(parked['status_cli'], idle['status_cli'])}   "
          f"({parked['status_rows']} rows)")
    print(f"{'  the listing in-process':34s} {idle['overview'] * 1000:>11.1f} ms {parked['overview'] * 1000:>11.1f} ms   "
          f"{ratio(parked['overview'], parked['bare'])} a bare SELECT of the launches "
          f"({parked['bare'] * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
