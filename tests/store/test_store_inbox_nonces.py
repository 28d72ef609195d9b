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


def test_land_event_once_per_event_key(store, make_store):
    event_id, created = store.land_event("wechat", "wechat:gh_x:1", "weapp_audit_success", {"a": 1},
                                         gate="code-review", received_at=T0)
    assert created
    again, created = store.land_event("wechat", "wechat:gh_x:1", "weapp_audit_success", {"b": 2}, received_at=T0)
    assert (again, created) == (event_id, False)
    row = store.get_event(event_id)
    assert row.payload == {"a": 1} and row.gate == "code-review" and row.launch_id is None
    with pytest.raises(ValueError, match="inbox source"):
        store.land_event("mail", "k", "x", {})
    stores = [store, make_store()]
    results = race(8, lambda i: stores[i % 2].land_event("wechat", "raced", "k", {"i": i}, received_at=T0))
    assert sum(created for _, created in results) == 1 and len({i for i, _ in results}) == 1


def test_unapplied_events_and_finish_event(store, launch_id):
    a, _ = store.put_event("wechat", "e-a", "k", {}, received_at=T0 + timedelta(seconds=2))
    b, _ = store.put_event("system", "e-b", "k", {}, received_at=T0)
    c, _ = store.put_event("staff", "e-c", "k", {}, launch_id=launch_id, received_at=T0 + timedelta(seconds=1))
    assert [e.event_key for e in store.unapplied_events()] == ["e-b", "e-c", "e-a"]
    assert [e.event_key for e in store.unapplied_events(limit=1)] == ["e-b"]
    assert store.finish_event(b.id, "no-launch", at=T0 + timedelta(minutes=1)) is True
    applied = store.get_event(b.id)
    assert applied.result == "no-launch" and applied.applied_at == T0 + timedelta(minutes=1)
    store.finish_event(c.id, "error", "launch is cancelled")
    assert [e.event_key for e in store.unapplied_events()] == ["e-a"]
    assert store.get_event(c.id).error == "launch is cancelled"
    assert [e.event_key for e in store.events_for(launch_id)] == ["e-c"]
    with pytest.raises(ValueError, match="inbox result"):
        store.finish_event(a.id, "done")


def test_finish_event_first_writer_wins_and_sets_the_launch_found(store, launch_id):
    row, _ = store.put_event("wechat", "e-1", "k", {}, received_at=T0)
    store.note_event_error(row.id, "applying failed, will retry")
    assert store.get_event(row.id).error == "applying failed, will retry"
    assert store.finish_event(row.id, "noted", "审核延期 / review delayed", launch_id=launch_id, at=T0) is True
    assert store.finish_event(row.id, "refused", "late", at=T0 + timedelta(seconds=1)) is False
    store.note_event_error(row.id, "too late to note")  # an applied row keeps its detail
    done = store.get_event(row.id)
    assert (done.result, done.error, done.launch_id, done.applied_at) == ("noted", "审核延期 / review delayed", launch_id, T0)
    assert [e.id for e in store.events_for(launch_id)] == [row.id]


def test_nonce_replay(store):
    assert store.take_nonce("wechat", "n1", T0, 300) is True
    assert store.take_nonce("wechat", "n1", T0 + timedelta(seconds=299), 300) is False
    assert store.take_nonce("links", "n1", T0, 300) is True  # scopes are separate
    # Outside the window the nonce may be used again (the timestamp check refuses old pushes).
    assert store.take_nonce("wechat", "n1", T0 + timedelta(seconds=301), 300) is True
    assert store.take_nonce("wechat", "n1", T0 + timedelta(seconds=302), 300) is False


def test_nonce_race_and_purge(store, make_store):
    stores = [store, make_store()]
    results = race(8, lambda i: stores[i % 2].take_nonce("wechat", "same", T0, 300))
    assert results.count(True) == 1
    later = T0 + timedelta(hours=1)
    results = race(8, lambda i: stores[i % 2].take_nonce("wechat", "same", later, 300))
    assert results.count(True) == 1  # the take-over of an expired nonce is race-safe too
    store.take_nonce("wechat", "old", T0 - timedelta(days=1), 300)
    assert store.purge_nonces(T0 - timedelta(hours=1)) == 1
    assert store.take_nonce("wechat", "old", T0, 10**9) is True


def test_take_nonces_all_or_none_inside_a_larger_transaction(store):
    """The receiver takes a push's nonce and signature together, inside its group commit: a
    replay of either keeps neither (so a refused replay burns no key) and does not spoil the
    transaction the other pushes of the batch are in."""
    assert store.take_nonces([("wechat", "n1"), ("wechat-signature", None)], T0, 300) is True  # None: skipped
    with store.session() as s:
        assert store.take_nonces([("wechat", "n2"), ("wechat-signature", "sig-2")], T0, 300, session=s) is True
        assert store.take_nonces([("wechat", "n3"), ("wechat", "n1")], T0, 300, session=s) is False  # n1 replayed
        store.land_event("wechat", "after-a-refused-replay", "k", {}, received_at=T0, session=s)
    assert store.find_event("after-a-refused-replay") is not None
    assert store.take_nonce("wechat", "n3", T0, 300) is True  # the refused batch kept nothing
    assert store.take_nonce("wechat-signature", "sig-2", T0, 300) is False


def test_the_receivers_nonce_check_sees_a_first_sighting_on_each_backend(store):
    """On PostgreSQL psycopg 3 reports rowcount -1 for INSERT … ON CONFLICT DO NOTHING, which
    once made every push look like a replay: a first sighting is True on each backend."""
    with store.session() as s:
        assert store.take_nonce("wechat", "n-first", T0, 60, session=s) is True
    with store.session() as s:
        assert store.take_nonce("wechat", "n-first", T0 + timedelta(seconds=1), 60, session=s) is False
        assert store.take_nonce("wechat-signature", "n-first", T0, 60, session=s) is True  # scopes apart
    later = T0 + timedelta(seconds=120)  # past the TTL it may be used again
    with store.session() as s:
        assert store.take_nonce("wechat", "n-first", later, 60, session=s) is True


def test_nonce_lifetime_covers_both_sides_of_the_timestamp_window():
    from launch.store import nonce_ttl_seconds

    assert nonce_ttl_seconds(300) == 2 * 300 + 60
