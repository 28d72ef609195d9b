from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from launch.store import NotFound

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def enqueue(store, launch_id, n, *, send_after=T0, prefix="k"):
    return [
        store.enqueue_alert(
            launch_id=launch_id,
            dedupe_key=f"{launch_id}:{prefix}:{i}",
            rung="rung-12h",
            tags=["ops", "filing"],
            title=f"alert {i}",
            body="SMS verification due in 12 hours",
            send_after=send_after,
            created_at=T0,
        )[0]
        for i in range(n)
    ]


def test_enqueue_alert_is_idempotent_on_dedupe_key(store, launch_id):
    step = store.open_step(launch_id, "sms-verification", 1, started_at=T0, due_at=T0 + timedelta(hours=24), provisional=False)
    key = f"{launch_id}:sms-verification:1:rung-12h"
    a, created = store.enqueue_alert(
        launch_id=launch_id, step_row_id=step.id, dedupe_key=key, rung="rung-12h", tags="ops, filing,ops",
        title="SMS", body="verify", send_after=T0 + timedelta(hours=12), created_at=T0,
    )
    assert created and a.status == "pending" and a.attempts == 0 and a.tags == ("ops", "filing")
    assert a.next_attempt_at == a.send_after == T0 + timedelta(hours=12)
    b, created = store.enqueue_alert(launch_id=launch_id, dedupe_key=key, rung="rung-12h", title="other", body="x")
    assert not created and b == a
    assert store.list_alerts() == [a] and store.list_alerts("sent") == []
    assert store.list_alerts(launch_id=launch_id) == [a]
    # A system alert needs no launch.
    sys_alert, _ = store.enqueue_alert(dedupe_key="watcher-behind", rung="now", title="t", body="b")
    assert sys_alert.launch_id is None


def test_claim_sends_only_due_rows(store, launch_id):
    enqueue(store, launch_id, 2, send_after=T0)
    enqueue(store, launch_id, 1, send_after=T0 + timedelta(hours=1), prefix="later")
    claimed = store.claim_due_alerts(T0, "w1", limit=10, lease_seconds=60)
    assert len(claimed) == 2
    assert all(a.status == "sending" and a.claimed_by == "w1" and a.attempts == 1 for a in claimed)
    assert all(a.claimed_until == T0 + timedelta(seconds=60) for a in claimed)
    assert store.claim_due_alerts(T0 + timedelta(seconds=30), "w2") == []  # leased to w1, later one not due


def test_lease_expiry_reclaim(store, launch_id):
    (alert,) = enqueue(store, launch_id, 1)
    (first,) = store.claim_due_alerts(T0, "w1", lease_seconds=60)
    assert store.claim_due_alerts(T0 + timedelta(seconds=59), "w2", lease_seconds=60) == []
    (second,) = store.claim_due_alerts(T0 + timedelta(seconds=61), "w2", lease_seconds=60)
    assert second.id == alert.id and second.claimed_by == "w2" and second.attempts == 2
    # The first worker lost its claim: it cannot mark the alert any more.
    assert store.mark_alert_sent(alert.id, T0 + timedelta(seconds=62), worker_id="w1") is False
    assert store.mark_alert_sent(alert.id, T0 + timedelta(seconds=62), worker_id="w2") is True
    sent = store.get_alert(alert.id)
    assert sent.status == "sent" and sent.sent_at == T0 + timedelta(seconds=62)
    assert store.claim_due_alerts(T0 + timedelta(days=1), "w3") == []
    assert store.mark_alert_sent(alert.id) is False  # not sending any more


def test_retry_failed_and_deliveries(store, launch_id):
    a, b = enqueue(store, launch_id, 2)
    store.claim_due_alerts(T0, "w1", lease_seconds=3600)
    d1 = store.record_delivery(a.id, "json://token:secret@hooks.example.com/p?key=abc", False, "HTTP 500", T0)
    assert d1.channel == "json://hooks.example.com" and not d1.ok
    store.record_delivery(a.id, "email:ops", True, None, T0 + timedelta(seconds=1))
    assert [d.channel for d in store.deliveries_for(a.id)] == ["json://hooks.example.com", "email:ops"]
    assert store.mark_alert_retry(a.id, T0 + timedelta(minutes=5), "HTTP 500", worker_id="w1")
    retried = store.get_alert(a.id)
    assert retried.status == "pending" and retried.claimed_by is None and retried.last_error == "HTTP 500"
    assert store.claim_due_alerts(T0 + timedelta(minutes=4), "w1") == []
    (again,) = store.claim_due_alerts(T0 + timedelta(minutes=5), "w1")
    assert again.id == a.id and again.attempts == 2
    assert store.mark_alert_failed(b.id, "no channel accepts it", worker_id="w1")
    assert store.get_alert(b.id).status == "failed"
    assert [x.id for x in store.list_alerts("failed")] == [b.id]
    with pytest.raises(NotFound):
        store.record_delivery(999999, "email:ops", True)


def test_concurrent_claimers_never_share_an_alert(store, make_store, launch_id):
    alerts = enqueue(store, launch_id, 60)
    workers = [store, make_store(), make_store()]
    barrier = threading.Barrier(6)

    def work(i):
        mine = []
        barrier.wait()
        while True:
            got = workers[i % 3].claim_due_alerts(T0, f"w{i}", limit=3, lease_seconds=600)
            if not got:
                return mine
            mine.extend(a.id for a in got)

    with ThreadPoolExecutor(6) as pool:
        claimed = list(pool.map(work, range(6)))
    everything = [x for per_worker in claimed for x in per_worker]
    assert len(everything) == len(set(everything)) == len(alerts)
    by_id = {a.id: a for a in store.list_alerts("sending")}
    for i, ids in enumerate(claimed):
        assert all(by_id[x].claimed_by == f"w{i}" for x in ids)


def test_second_claimer_skips_rows_locked_by_an_open_claim(store, make_store, launch_id):
    """PostgreSQL: a claimer does not wait for, nor take, rows another claimer holds
    (FOR UPDATE SKIP LOCKED). SQLite: the second claimer waits for the first transaction
    (BEGIN IMMEDIATE) and then sees its rows as claimed. Either way: disjoint claims."""
    enqueue(store, launch_id, 8)
    other = make_store()
    result: dict[str, object] = {}
    with store.session() as s:
        held = store.claim_due_alerts(T0, "holder", limit=5, session=s)
        assert len(held) == 5

        def second():
            result["ids"] = [a.id for a in other.claim_due_alerts(T0, "second", limit=10)]
            result["at"] = time.monotonic()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.5)
        committed_at = time.monotonic()
        if store.dialect == "postgresql":
            assert not thread.is_alive(), "the second claimer waited for the first one's locks"
    thread.join(timeout=30)
    assert not thread.is_alive()
    if store.dialect == "sqlite":
        assert result["at"] >= committed_at  # serialised behind the holder's transaction
    assert len(result["ids"]) == 3
    assert not set(result["ids"]) & {a.id for a in held}
    assert {a.claimed_by for a in store.list_alerts("sending")} == {"holder", "second"}
