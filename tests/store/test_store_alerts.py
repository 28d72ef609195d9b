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


# ------------------------------------------------------------------ channel breakers, waiting alerts (issue 14)


def test_breaker_trips_after_consecutive_failures_and_one_probe_wins(store, make_store):
    for i in range(2):
        state, change, _ = store.record_channel_result("ops-phone", False, at=T0, error="HTTP 503", trip_after=3,
                                                       probe_seconds=300)
        assert state.state == "up" and change is None and state.consecutive_failures == i + 1
    store.record_channel_result("ops-phone", True, at=T0)  # a success in between resets the count
    for _ in range(2):
        store.record_channel_result("ops-phone", False, at=T0, error="x", trip_after=3, probe_seconds=300)
    state, change, _ = store.record_channel_result("ops-phone", False, at=T0, error="token=abc.def err",
                                                   trip_after=3, probe_seconds=300)
    assert (state.state, change, state.down_since, state.next_probe_at) == (
        "down", "down", T0, T0 + timedelta(seconds=300))
    assert "abc.def" not in state.last_error
    assert store.claim_channel_probe("ops-phone", T0 + timedelta(seconds=299)) is False  # not due
    other = make_store()
    due = T0 + timedelta(seconds=300)
    assert [store.claim_channel_probe("ops-phone", due), other.claim_channel_probe("ops-phone", due)] == [True, False]
    assert store.channel_states()["ops-phone"].next_probe_at == due + timedelta(seconds=300)
    assert store.claim_channel_probe("ops-mail", due) is False  # never seen: up


def test_waiting_alerts_spend_no_try_and_a_channel_back_releases_them_oldest_first(store, launch_id):
    alerts = [enqueue(store, launch_id, 1, send_after=T0 + timedelta(minutes=m), prefix=f"p{m}")[0]
              for m in (20, 0, 10)]
    store.record_channel_result("ops-phone", False, at=T0, trip_after=1, probe_seconds=600)
    claimed = store.claim_due_alerts(T0 + timedelta(minutes=30), "w1")
    assert len(claimed) == 3 and all(a.attempts == 1 for a in claimed)
    for a in claimed:
        assert store.mark_alert_waiting(a.id, ["ops-phone"], None, at=T0 + timedelta(minutes=30),
                                        next_check_at=T0 + timedelta(minutes=10), worker_id="w1") == "waiting"
    waiting = store.list_alerts("waiting")
    assert all(a.attempts == 0 and a.waiting_for == ("ops-phone",) for a in waiting)
    assert store.waiting_counts() == {"ops-phone": 3}
    assert store.claim_due_alerts(T0 + timedelta(hours=5), "w1") == []  # waiting is not claimable
    # the probe: the oldest waiting alert (by due time)
    probe = store.claim_waiting_alert("ops-phone", T0 + timedelta(minutes=40), "w1")
    assert probe.id == alerts[1].id and probe.status == "sending"
    _, change, released = store.record_channel_result("ops-phone", True, at=T0 + timedelta(minutes=40))
    assert (change, released) == ("up", 2)
    again = store.claim_due_alerts(T0 + timedelta(minutes=41), "w1")
    assert [a.id for a in again] == [alerts[2].id, alerts[0].id]  # oldest first
    assert store.waiting_counts() == {}


def test_waiting_for_a_channel_that_is_up_again_is_pending(store, launch_id):
    (a,) = enqueue(store, launch_id, 1)
    store.claim_due_alerts(T0, "w1")
    # a stale view thought ops-mail was down; the store knows better
    assert store.mark_alert_waiting(a.id, ["ops-mail"], "x", at=T0, worker_id="w1") == "pending"
    assert store.get_alert(a.id).status == "pending" and store.get_alert(a.id).attempts == 0
    store.claim_due_alerts(T0, "w1")
    assert store.mark_alert_waiting(a.id, ["ops-mail"], "x", at=T0, worker_id="other") is None  # not its claim


def test_release_stranded_and_requeue(store, launch_id):
    a, b, c = enqueue(store, launch_id, 3)
    store.record_channel_result("gone", False, at=T0, trip_after=1)
    store.record_channel_result("ops-phone", False, at=T0, trip_after=1, probe_seconds=3600)
    store.claim_due_alerts(T0, "w1")
    store.mark_alert_waiting(a.id, ["gone"], None, at=T0, worker_id="w1")
    store.mark_alert_waiting(b.id, ["ops-phone", "gone"], None, at=T0, worker_id="w1")
    store.mark_alert_failed(c.id, "nobody", worker_id="w1")
    assert store.release_stranded(["ops-phone"]) == 1  # "gone" left the file: a is released, b still waits
    assert store.get_alert(a.id).status == "pending" and store.get_alert(b.id).status == "waiting"
    now = T0 + timedelta(minutes=5)
    assert store.requeue_alerts(status="waiting", now=now) == [(b.id, "waiting", "pending")]
    assert store.channel_states()["ops-phone"].next_probe_at == now  # probed at the next pass
    assert store.requeue_alerts([c.id, 424242], now=now) == [(c.id, "failed", "pending"), (424242, "unknown", None)]
    assert store.get_alert(c.id).attempts == 0 and store.get_alert(c.id).next_attempt_at == T0
    with pytest.raises(ValueError):
        store.requeue_alerts(status="sent", now=now)


def test_concurrent_results_on_one_breaker_count_every_one(store, make_store):
    stores = [store, make_store(), make_store()]

    def fail(i):
        return stores[i % 3].record_channel_result("ops-phone", False, at=T0, trip_after=30, probe_seconds=60)[1]

    with ThreadPoolExecutor(6) as pool:
        changes = list(pool.map(fail, range(30)))
    assert changes.count("down") == 1  # tripped once, by the 30th
    assert store.channel_states()["ops-phone"].consecutive_failures == 30
