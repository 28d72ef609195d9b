"""A portfolio of open launches written straight into a store, for the report's tests and its
benchmark: clients (enterprises and individuals, both registration paths), launches started
over the last weeks, and their steps as far as each has come — done gates with their dates,
the gate each branch waits at now (some past their deadline).

Deterministic for a seed. Nothing here talks to Prefect.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert

from launch.domain.deadlines import gate_due
from launch.store.models import Step

# Personal data the page must never show (tests look for them in the HTML).
INDIVIDUAL_NAME = "张三丰"
PHONE = "13812345678"
ID_NUMBER = "440106199001011234"
CREDIT_CODE = "91440101MA59ABCD1X"

SHOPS = ["鲜花小铺", "云端咖啡", "书香阁", "宠物之家", "健身工坊", "甜品时光", "家政帮", "茶语", "旅行日记", "花园餐厅"]


def seed_portfolio(store, n: int, *, now: datetime, catalogue, calendar, seed: int = 13,
                   individuals_every: int = 5, overdue_every: int = 4,
                   bulk: bool = True) -> list[str]:
    """``n`` running launches; returns their ids. Every ``individuals_every``-th client is an
    individual named INDIVIDUAL_NAME whose mini-program carries the name too; every
    ``overdue_every``-th launch (from the middle) waits past a deadline."""
    rng = random.Random(seed)
    launch_ids: list[str] = []
    rows: list[dict] = []
    for i in range(n):
        individual = individuals_every and i % individuals_every == individuals_every - 1
        path = "reuse_official_account" if (i % 3 == 1 and not individual) else "standalone"
        subject = "individual" if individual else "enterprise"
        shop = SHOPS[i % len(SHOPS)]
        display = INDIVIDUAL_NAME if individual else f"广州{shop}有限公司"
        mini = f"{INDIVIDUAL_NAME}的{shop}" if individual else f"{shop}{i:03d}"
        identifiers = {"phone": [PHONE], "id_number": [ID_NUMBER]}
        if not individual:
            identifiers["credit_code"] = [CREDIT_CODE]
        intake = {"contact_phone": PHONE, "id_number": ID_NUMBER, "email": "zhang.san@example.com"}
        started = now - timedelta(days=rng.uniform(0.5, 38), hours=rng.uniform(0, 8))
        client_id = store.add_client(f"p-{uuid.uuid4().hex[:12]}", display, mini, "广东", subject, path, intake,
                                     identifiers, created_at=started)
        launch = store.create_launch(client_id, created_at=started)
        launch_ids.append(launch.id)
        mine = _steps(launch.id, path, subject, started, now, rng, catalogue, calendar)
        if overdue_every and i % overdue_every == overdue_every // 2:
            for r in mine:  # a stuck launch: what it waits for is past its deadline
                if r["status"] == "waiting" and r["due_at"] > now:
                    r["due_at"] = now - timedelta(hours=rng.uniform(3, 72))
                    r["started_at"] = min(r["started_at"], r["due_at"] - timedelta(days=1))
        rows += mine
    if bulk:
        with store.engine.begin() as conn:
            for k in range(0, len(rows), 5000):
                conn.execute(insert(Step), rows[k:k + 5000])
    else:
        for r in rows:
            store.open_step(r["launch_id"], r["step"], r["attempt"], started_at=r["started_at"],
                            due_at=r["due_at"], status="waiting")
            if r["status"] != "waiting":
                store.finish_step(r["launch_id"], r["step"], r["attempt"], status=r["status"],
                                  outcome=r["outcome"], at=r["finished_at"])
    return launch_ids


def _steps(launch_id, path, subject, started, now, rng, catalogue, calendar) -> list[dict]:
    """Walk the phases in dependency order: a phase starts when the ones it follows are done;
    its gates one after another, each taking a random share of its deadline (now and then
    longer: those are the overdue ones); the first gate that would end after ``now`` is
    left waiting and its phase stops there."""
    finished: dict[str, datetime | None] = {}
    rows = []
    slow = rng.random() < 0.12  # a launch that drags: its gates tend to overrun
    for phase in catalogue.phase_order():
        deps = [finished.get(a) for a in phase.after]
        if any(d is None for d in deps):
            finished[phase.id] = None
            continue
        t = max(deps, default=started) + timedelta(minutes=rng.uniform(5, 90))
        end: datetime | None = t
        for gate in catalogue.gates_of(phase.id, path, subject):
            if gate.id == "filing-resubmission" and rng.random() > 0.2:
                continue  # only after the SMS check timed out
            if t > now:
                end = None
                break
            if gate.id == "release":  # staff release within hours of the review passing
                t = max(t, now - timedelta(hours=rng.uniform(1, 20)))
            due = gate_due(gate, t, calendar)
            span = (due.at - t).total_seconds()
            share = rng.uniform(0.7, 1.9) if slow else rng.uniform(0.15, 0.9)
            done_at = t + timedelta(seconds=max(span * share, 600))
            attempt = 1
            if done_at <= now and gate.id != "release":  # released launches are not open: release waits
                rows.append(_row(launch_id, gate.id, attempt, "done", t, due, done_at))
                t = done_at + timedelta(minutes=rng.uniform(2, 240))
            else:
                rows.append(_row(launch_id, gate.id, attempt, "waiting", t, due, None))
                end = None
                break
            end = t
        finished[phase.id] = end
    return rows


def _row(launch_id, gate, attempt, status, opened, due, done_at) -> dict:
    return {
        "launch_id": launch_id, "step": gate, "attempt": attempt, "status": status,
        "started_at": opened, "due_at": due.at, "provisional": due.provisional,
        "gate_key": f"{gate}-{attempt}", "finished_at": done_at,
        "outcome": "approved" if status == "done" else None,
        "next_alert_at": None,
    }
