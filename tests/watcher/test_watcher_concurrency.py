"""Two watchers over one store, passes running at the same moment, each with its own Store
object (its own engine and connections): every alert is enqueued once and delivered once
to each channel. On PostgreSQL claims use SELECT … FOR UPDATE SKIP LOCKED; on SQLite
the write lock serialises them (run too, as a baseline). The endpoint counts what arrives."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import timedelta

from launch.store import Store
from launch.app.watcher import watch_once
from notifiers.config import parse_config
from tests.watcher.conftest import at, new_client, open_gate, with_store

GATES = ("design-confirmation", "subject-info", "content", "sms-verification", "implementation")
# The passes jump hours ahead, so many alerts go out late and say so in front of the title
# (notifiers.lateness): strip that note to compare with the stored title.
LATE_NOTE = re.compile(r"^【(?:延迟|已过截止时间|短信核验窗口已关闭|已过时)[^】]*】")


def test_two_watchers_send_each_alert_exactly_once(watch_env, http_endpoint):
    res = watch_env
    settings = res.settings
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
    watchers = [Store(settings.store_url, settings.fernet_key(), settings.derived_secret("blind-index"))
                for _ in range(2)]
    moments = [opened + timedelta(hours=h) for h in (1, 12, 30, 60, 100, 200)]
    reports: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    try:
        for now in moments:
            barrier = threading.Barrier(2)

            def one_pass(i: int, now=now, barrier=barrier) -> None:
                try:
                    barrier.wait(30)
                    r = watch_once(with_store(res, watchers[i], config), now, worker_id=f"watcher-{i}",
                                   repair_runs=False)
                    with lock:
                        reports.append(r)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            threads = [threading.Thread(target=one_pass, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
    finally:
        for w in watchers:
            w.close()
    assert not errors, errors
    assert all(r.ok for r in reports), [r.errors for r in reports]

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
