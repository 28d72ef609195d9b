from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from launch.store import NotFound

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def race(n: int, fn):
    """Run fn(i) in n threads released at the same instant."""
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def test_record_decision_once_per_gate_attempt(store, launch_id):
    d, created = store.record_decision(
        launch_id, "bureau-review", 1, "approved", "wang", "ui", {"filing_number": "粤B2-20090059-1626X"}, T0
    )
    assert created and d.outcome == "approved" and d.channel == "ui" and d.decided_at == T0
    assert d.payload == {"filing_number": "粤B2-20090059-1626X"}
    again, created = store.record_decision(launch_id, "bureau-review", 1, "rejected", "li", "cli", {}, T0)
    assert not created and again == d
    other, created = store.record_decision(launch_id, "bureau-review", 2, "rejected", "li", "cli", {}, T0)
    assert created and other.id != d.id
    assert store.get_decision(launch_id, "bureau-review", 1) == d
    assert store.get_decision(launch_id, "bureau-review", 3) is None
    with pytest.raises(ValueError, match="channel"):
        store.record_decision(launch_id, "design", 1, "ok", "x", "email", {}, T0)
    with pytest.raises(NotFound):
        store.record_decision("l-0000000000", "design", 1, "ok", "x", "cli", {}, T0)


def test_record_decision_race_creates_exactly_one(store, make_store, launch_id):
    other_process = make_store()
    stores = [store, other_process]

    def decide(i):
        return stores[i % 2].record_decision(
            launch_id, "design-approval", 1, f"outcome-{i}", f"actor-{i}", "link", {"i": i}, T0 + timedelta(seconds=i)
        )

    results = race(8, decide)
    created = [d for d, c in results if c]
    assert len(created) == 1
    assert {d.id for d, _ in results} == {created[0].id}
    assert len(store.history(launch_id)) == 1


def test_history_in_decided_order_and_consumed(store, launch_id):
    store.record_decision(launch_id, "c", 1, "ok", "x", "cli", {}, T0 + timedelta(hours=2))
    store.record_decision(launch_id, "a", 1, "ok", "x", "wechat", {}, T0)
    store.record_decision(launch_id, "b", 1, "ok", "x", "simulator", {}, T0 + timedelta(hours=1))
    history = store.history(launch_id)
    assert [d.gate for d in history] == ["a", "b", "c"]
    consumed = store.mark_decision_consumed(history[0].id, T0 + timedelta(hours=3))
    assert consumed.consumed_at == T0 + timedelta(hours=3)
    assert store.mark_decision_consumed(history[0].id, T0 + timedelta(hours=9)).consumed_at == T0 + timedelta(hours=3)
    with pytest.raises(NotFound):
        store.mark_decision_consumed(999999)


def test_decision_from_inbox_atomically(store, launch_id):
    """A callback's decision and the inbox bookkeeping commit together, or not at all."""
    with pytest.raises(RuntimeError):
        with store.session() as s:
            event, _ = store.put_event("wechat", "audit:gh_x:1", "weapp_audit_success", {}, launch_id, "code-review", T0, session=s)
            store.record_decision(launch_id, "code-review", 1, "passed", "wechat", "wechat", {}, T0, event.id, session=s)
            raise RuntimeError("crash before commit")
    assert store.history(launch_id) == [] and store.find_event("audit:gh_x:1") is None

    with store.session() as s:
        event, _ = store.put_event("wechat", "audit:gh_x:1", "weapp_audit_success", {}, launch_id, "code-review", T0, session=s)
        decision, created = store.record_decision(
            launch_id, "code-review", 1, "passed", "wechat", "wechat", {}, T0, event.id, session=s
        )
        # A duplicate inside the same transaction is still a no-op (savepoint), not a failed transaction.
        _, again = store.record_decision(launch_id, "code-review", 1, "failed", "x", "cli", {}, T0, session=s)
        assert store.finish_event(event.id, "applied", at=T0, session=s)
    assert created and not again
    assert store.history(launch_id)[0].inbox_id == event.id
    assert store.get_event(event.id).result == "applied"


def test_branches(store, launch_id):
    b = store.start_branch(launch_id, "filing", "run-f1", started_at=T0)
    assert b.status == "started" and b.flow_run_id == "run-f1"
    assert store.start_branch(launch_id, "filing", "run-f2", started_at=T0 + timedelta(hours=1)) == b
    store.start_branch(launch_id, "design", None, started_at=T0 + timedelta(minutes=1))
    assert store.start_branch(launch_id, "design", "run-d1").flow_run_id == "run-d1"
    done = store.finish_branch(launch_id, "filing", "done", at=T0 + timedelta(days=9))
    assert done.status == "done" and done.finished_at == T0 + timedelta(days=9)
    assert store.finish_branch(launch_id, "filing", "failed") == done
    failed = store.finish_branch(launch_id, "design", "failed", at=T0)
    restarted = store.start_branch(launch_id, "design", "run-d2", started_at=T0 + timedelta(days=1))
    assert failed.status == "failed" and restarted.status == "started" and restarted.flow_run_id == "run-d2"
    assert restarted.finished_at is None
    assert [x.branch for x in store.branches_for(launch_id)] == ["filing", "design"]
    assert store.get_branch(launch_id, "implementation-1") is None
    with pytest.raises(NotFound):
        store.finish_branch(launch_id, "implementation-1", "done")


def test_one_push_decides_a_gate_once_even_when_applied_twice(store, make_store, launch_id):
    """The receiver's applier and the watcher's repair pass may apply the same inbox row at
    once. The second must not become an early decision for the next attempt (it once turned
    one failed code review into two)."""
    row, _ = store.put_event("wechat", "wechat:gh_x:weapp_audit_fail:1", "weapp_audit_fail", {}, launch_id,
                             "code-review", T0)
    other_process = make_store()

    def apply(i):
        target = store if i % 2 == 0 else other_process
        # the second applier, finding attempt 1 decided, aims at attempt 2
        return target.record_decision(launch_id, "code-review", 1 + i % 2, "failed", "微信推送", "wechat",
                                      {"reason": "类目不符"}, T0, inbox_id=row.id)

    results = race(4, apply)
    assert sum(created for _, created in results) == 1
    assert len({d.id for d, _ in results}) == 1  # every applier was handed the one decision
    decided = [store.get_decision(launch_id, "code-review", n) for n in (1, 2)]
    assert len([d for d in decided if d is not None]) == 1
    # another push may still decide the next attempt
    row2, _ = store.put_event("wechat", "wechat:gh_x:weapp_audit_success:2", "weapp_audit_success", {}, launch_id,
                              "code-review", T0)
    free = 2 if decided[0] is not None else 1
    d2, created = store.record_decision(launch_id, "code-review", free, "passed", "微信推送", "wechat", {}, T0,
                                        inbox_id=row2.id)
    assert created and d2.attempt == free
