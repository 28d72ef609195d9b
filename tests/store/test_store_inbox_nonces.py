from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def race(n, fn):
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def test_put_event_once_per_event_key(store, launch_id):
    row, created = store.put_event(
        "wechat", "wechat:gh_x:weapp_audit_fail:1700000000", "weapp_audit_fail", {"reason": "类目不符"}, launch_id, "code-review", T0
    )
    assert created and row.applied_at is None and row.payload == {"reason": "类目不符"}
    dup, created = store.put_event("wechat", row.event_key, "weapp_audit_fail", {"other": 1}, received_at=T0 + timedelta(seconds=3))
    assert not created and dup == row
    with pytest.raises(ValueError):
        store.put_event("mail", "k", "x", {})


def test_put_event_race(store, make_store):
    stores = [store, make_store()]
    results = race(8, lambda i: stores[i % 2].put_event("staff", "link:abc", "decision", {"i": i}, received_at=T0))
    assert sum(created for _, created in results) == 1
    assert len({row.id for row, _ in results}) == 1


def test_unapplied_events_and_mark_applied(store, launch_id):
    a, _ = store.put_event("wechat", "e-a", "k", {}, received_at=T0 + timedelta(seconds=2))
    b, _ = store.put_event("system", "e-b", "k", {}, received_at=T0)
    c, _ = store.put_event("staff", "e-c", "k", {}, launch_id=launch_id, received_at=T0 + timedelta(seconds=1))
    assert [e.event_key for e in store.unapplied_events()] == ["e-b", "e-c", "e-a"]
    assert [e.event_key for e in store.unapplied_events(limit=1)] == ["e-b"]
    applied = store.mark_applied(b.id, "no-launch", at=T0 + timedelta(minutes=1))
    assert applied.result == "no-launch" and applied.applied_at == T0 + timedelta(minutes=1)
    store.mark_applied(c.id, "error", "launch is cancelled")
    assert [e.event_key for e in store.unapplied_events()] == ["e-a"]
    assert store.get_event(c.id).error == "launch is cancelled"
    assert [e.event_key for e in store.events_for(launch_id)] == ["e-c"]
    with pytest.raises(ValueError):
        store.mark_applied(a.id, "done")


def test_nonce_replay(store):
    assert store.remember_nonce("wechat", "n1", T0, 300) is True
    assert store.remember_nonce("wechat", "n1", T0 + timedelta(seconds=299), 300) is False
    assert store.remember_nonce("links", "n1", T0, 300) is True  # scopes are separate
    # Outside the window the nonce may be used again (the timestamp check refuses old pushes).
    assert store.remember_nonce("wechat", "n1", T0 + timedelta(seconds=301), 300) is True
    assert store.remember_nonce("wechat", "n1", T0 + timedelta(seconds=302), 300) is False


def test_nonce_race_and_purge(store, make_store):
    stores = [store, make_store()]
    results = race(8, lambda i: stores[i % 2].remember_nonce("wechat", "same", T0, 300))
    assert results.count(True) == 1
    later = T0 + timedelta(hours=1)
    results = race(8, lambda i: stores[i % 2].remember_nonce("wechat", "same", later, 300))
    assert results.count(True) == 1  # the take-over of an expired nonce is race-safe too
    store.remember_nonce("wechat", "old", T0 - timedelta(days=1), 300)
    assert store.purge_nonces(T0 - timedelta(hours=1)) == 1
    assert store.remember_nonce("wechat", "old", T0, 10**9) is True


def test_the_receivers_nonce_check_sees_a_first_sighting_on_each_backend(store):
    """The receiver's own nonce write (launch.inbox): on PostgreSQL psycopg 3 reports rowcount
    -1 for INSERT … ON CONFLICT DO NOTHING, which once made every push look like a replay."""
    from launch.inbox import _take_nonce

    cutoff = T0 - timedelta(seconds=60)
    with store.session() as s:
        assert _take_nonce(s, store, "wechat", "n-first", T0, cutoff) is True
    with store.session() as s:
        assert _take_nonce(s, store, "wechat", "n-first", T0 + timedelta(seconds=1), cutoff) is False
        assert _take_nonce(s, store, "wechat-signature", "n-first", T0, cutoff) is True  # scopes apart
    later = T0 + timedelta(seconds=120)  # past the TTL it may be used again
    with store.session() as s:
        assert _take_nonce(s, store, "wechat", "n-first", later, later - timedelta(seconds=60)) is True
