"""A watcher pass over 100,000 open steps: the indexed cursor query against a naive full scan.

    .venv/bin/python bench/bench_watcher.py [--steps 100000] [--launches 2000]

Builds a throw-away SQLite store (a temp dir) holding N open steps of the catalogue's gates,
opened over the last 30 days, each with the alert cursor a watcher pass five minutes
earlier would have left (bulk insert). Then, in the same run:

  indexed   launch.app.watcher.enqueue_due: ONE range query on ix_steps_next_alert_at returns the
            steps whose next rung has come; only those are planned, rendered and enqueued.
  naive     what a watcher without the cursor must do every pass: load every open step and
            plan its ladder in Python to find what is due (before even rendering anything).

Prints both times, the ratio, and the pass against the schedule interval. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from launch.domain.alerts import default_ladders, due_rungs, planned_rungs  # noqa: E402
from launch.domain.calendar import DeadlineAnswer, WorkCalendar  # noqa: E402
from launch.domain.catalogue import default_catalogue  # noqa: E402
from launch.domain.deadlines import gate_due  # noqa: E402
from launch.store import Store  # noqa: E402
from launch.store.models import Launch, Step  # noqa: E402
from launch.store.vocab import STEP_OPEN_STATUSES  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=SH)
INTERVAL = timedelta(seconds=300)


def build(store: Store, n_steps: int, n_launches: int) -> float:
    """Bulk-insert launches and open steps with the cursor a pass at NOW - 5 min would leave."""
    t0 = time.perf_counter()
    cal, cat, ladders = WorkCalendar(), default_catalogue(), default_ladders()
    client_id = store.add_client("bench", "Bench Ltd", "Bench Shop", "广东", "enterprise", "standalone", {}, {})
    created = NOW - timedelta(days=40)
    launch_ids = [f"l-{i:010x}" for i in range(n_launches)]
    with store.engine.begin() as conn:
        conn.execute(insert(Launch), [
            {"id": lid, "client_id": client_id, "status": "running", "registration_path": "standalone",
             "created_at": created, "updated_at": created} for lid in launch_ids
        ])
    gates = list(cat.gates.values())
    prev = NOW - INTERVAL
    span = 30 * 24 * 3600
    rows = []
    for i in range(n_steps):
        gate = gates[i % len(gates)]
        launch_id = launch_ids[i % n_launches]
        attempt = i // n_launches + 1  # unique (launch, step, attempt)
        opened = NOW - timedelta(seconds=(i * 7919) % span)  # spread over the last 30 days
        due = gate_due(gate, opened, cal)
        later = [r.fire_at for r in planned_rungs(gate, opened, due, cal, None, prev, catalogue=cat,
                                                   ladders=ladders, client_id=client_id)
                 if r.fire_at > prev]
        rows.append({
            "launch_id": launch_id, "step": gate.id, "attempt": attempt, "status": "waiting",
            "started_at": opened, "due_at": due.at, "provisional": due.provisional,
            "gate_key": gate.key(attempt), "next_alert_at": min(later) if later else None,
        })
        if len(rows) == 10_000:
            with store.engine.begin() as conn:
                conn.execute(insert(Step), rows)
            rows = []
    if rows:
        with store.engine.begin() as conn:
            conn.execute(insert(Step), rows)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


def naive_selection(store: Store) -> tuple[float, int]:
    """Without a cursor: load every open step, plan every ladder, keep what came due since
    the last pass (before anything is rendered or enqueued)."""
    cal, cat, ladders = WorkCalendar(), default_catalogue(), default_ladders()
    t0 = time.perf_counter()
    with store.engine.connect() as conn:
        steps = conn.execute(select(Step).where(Step.status.in_(STEP_OPEN_STATUSES))).all()
    prev = (NOW - INTERVAL).astimezone(UTC)
    new = 0
    for s in steps:
        due = DeadlineAnswer(s.due_at.astimezone(SH), s.provisional)
        for r in due_rungs(cat.gates[s.step], s.started_at, due, cal, None, NOW, catalogue=cat, ladders=ladders,
                           client_id="bench"):
            if r.fire_at.astimezone(UTC) > prev:
                new += 1
    return time.perf_counter() - t0, new


def indexed_selection(store: Store) -> tuple[float, int, int]:
    """With the cursor: one range query on ix_steps_next_alert_at, then plan only those steps
    and keep the rungs in [cursor, now] (what enqueue_due does before rendering)."""
    cal, cat, ladders = WorkCalendar(), default_catalogue(), default_ladders()
    t0 = time.perf_counter()
    candidates = store.steps_with_alerts_due(NOW, 100_000)
    now_u = NOW.astimezone(UTC)
    new = 0
    for step, cursor in candidates:
        due = DeadlineAnswer(step.due_at.astimezone(SH), step.provisional)
        for r in planned_rungs(cat.gates[step.step], step.started_at, due, cal, None, NOW, catalogue=cat,
                               ladders=ladders, client_id="bench"):
            if cursor <= r.fire_at.astimezone(UTC) <= now_u:
                new += 1
    return time.perf_counter() - t0, len(candidates), new


def indexed_pass(store: Store, home: str) -> tuple[float, int]:
    """The real enqueue phase of a watcher pass: query, plan, render, enqueue, move cursors."""
    import launch.app.links  # noqa: F401  (imports outside the timing)
    import launch.orchestration.prefect  # noqa: F401
    from launch.app import FixedClock, Resources
    from launch.app.watcher import enqueue_due
    from launch.settings import Settings

    # signed links need a key: kept in the temp home
    res = Resources(settings=Settings(home=home, prefect_ui_url="http://127.0.0.1:4200"), clock=FixedClock(NOW),
                    _store=store, _calendar=WorkCalendar(), _catalogue=default_catalogue())
    res.orchestrator  # noqa: B018  (built outside the timing)
    t0 = time.perf_counter()
    report = enqueue_due(res, NOW, 100_000, worker_id="bench")
    return time.perf_counter() - t0, len(report.enqueued)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--launches", type=int, default=2_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-watcher-") as tmp:
        store = Store(f"sqlite:///{tmp}/store.db", Fernet.generate_key(), os.urandom(32))
        try:
            setup = build(store, args.steps, args.launches)
            naive_s, naive_new = naive_selection(store)
            sel_s, candidates, sel_new = indexed_selection(store)
            pass_s, enqueued = indexed_pass(store, tmp)
        finally:
            store.close()
    print(f"open steps                        {args.steps:>10,}   (SQLite, setup {setup:.1f} s)")
    print(f"naive full scan (load + plan all) {naive_s * 1000:>10.1f} ms   {naive_new} rungs came due since the last pass")
    print(f"indexed selection (query + plan)  {sel_s * 1000:>10.1f} ms   {candidates} steps read, {sel_new} rungs due")
    print(f"ratio naive / indexed selection   {naive_s / sel_s:>10.1f} x")
    print(f"indexed pass, rendered + enqueued {pass_s * 1000:>10.1f} ms   {enqueued} alerts enqueued "
          f"({pass_s / INTERVAL.total_seconds() * 100:.2f} % of the {INTERVAL.total_seconds():.0f} s schedule)")

if __name__ == "__main__":
    main()
