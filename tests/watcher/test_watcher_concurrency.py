"""Two watchers over one store, passes running at the same moment, each with its own Store
object (its own engine and connections): every alert is enqueued once and delivered once
to each channel. On PostgreSQL claims use SELECT … FOR UPDATE SKIP LOCKED; on SQLite
the write lock serialises them (run too, as a baseline). The endpoint counts what arrives."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from notifiers.config import parse_config
from tests.support.watchers import LATE_NOTE, passes_side_by_side
from tests.watcher.conftest import at, new_client, open_gate

GATES = ("design-confirmation", "subject-info", "content", "sms-verification", "implementation")
# The passes jump hours ahead, so many alerts go out late and say so in front of the title.


def test_two_watchers_send_each_alert_exactly_once(watch_env, http_endpoint):
    res = watch_env
    store = res.store
    opened = at(2026, 10, 8, 9)
    for i in range(6):
        client_id, _ = new_client(res)
        launch = store.create_launch(client_id)
        for j, gate in enumerate(GATES):
            open_gate(res, launch.id, gate, opened + timedelta(minutes=7 * i + j))
    config = parse_config({
        "channels": [{"name": "ops-phone", "url": http_endpoint.url("/sms"), "tags": ["ops", "dev", "manager"]}],
        "retry": {"attempts": 3, "backoff_seconds": [60]},
    })
    moments = [opened + timedelta(hours=h) for h in (1, 12, 30, 60, 100, 200)]
    reports = passes_side_by_side(res, config, moments)

    alerts = store.list_alerts()
    assert len(alerts) > 100  # enough to race over
    assert all(a.status == "sent" for a in alerts)
    # enqueued once: the two watchers' "created" reports add up to the outbox exactly
    enqueued = Counter(e.dedupe_key for r in reports for e in r.enqueued)
    assert set(enqueued) == {a.dedupe_key for a in alerts} and set(enqueued.values()) == {1}
    # sent once: one ok delivery per alert, one message per alert at the endpoint
    sent = Counter(s.alert_id for r in reports for s in r.sent)
    assert set(sent.values()) == {1} and len(sent) == len(alerts)
    for a in alerts:
        assert [(d.channel, d.ok) for d in store.deliveries_for(a.id)] == [("ops-phone", True)]
    received = Counter((m["title"], m["message"]) for m in http_endpoint.messages)
    assert len(http_endpoint.messages) == len(alerts)
    assert set(received.values()) == {1}
    assert Counter(LATE_NOTE.sub("", title) for title, _ in received.elements()) == Counter(a.title for a in alerts)
    # on PostgreSQL both watchers delivered (SKIP LOCKED shares the claims, nobody waits)
    by_worker = Counter(r.worker_id for r in reports for _ in r.sent)
    if store.dialect == "postgresql":
        assert len(by_worker) == 2, by_worker
