"""Deliveries end to end through watch_once: a real SMTP server (aiosmtpd) whose mail is read
back, a real local HTTP endpoint standing in for the SMS gateway (``json://``), an outage
of that endpoint with retries on an injected clock, the fallback after the last try, no
channels configured at all, and no raw ID number or phone in anything sent."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from launch.domain.masking import mask_id_number, mask_phone
from launch.app.watcher import watch_once
from tests.support.intakes import fresh_intake
from tests.watcher.conftest import at, new_client, open_gate, use_notifiers

SECOND = timedelta(seconds=1)


def _channels(smtp_server, http_endpoint, *, attempts=4, backoff=(60, 300), phone_tags=("ops", "manager"),
              mail_tags=("ops", "manager"), fallback=None) -> str:
    text = f"""
channels:
  - name: ops-mail
    url: "{smtp_server.url()}"
    tags: [{', '.join(mail_tags)}]
  - name: ops-phone
    url: "{http_endpoint.url('/sms')}"
    tags: [{', '.join(phone_tags)}]
retry: {{attempts: {attempts}, backoff_seconds: [{', '.join(str(b) for b in backoff)}]}}
"""
    if fallback:
        text += f"fallback_tag: {fallback}\n"
    return text


def _deliveries(store, alert_id):
    return [(d.channel, d.ok) for d in store.deliveries_for(alert_id)]


def test_outage_of_the_phone_gateway_retried_then_delivered_once(watch_env, smtp_server, http_endpoint,
                                                                  monkeypatch, tmp_path):
    res = use_notifiers(watch_env, tmp_path, _channels(smtp_server, http_endpoint))
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    # the 12381 SMS went out Sat 10-03 20:00 (National Day): the 24-hour window runs anyway
    open_gate(res, launch.id, "sms-verification", at(2026, 10, 3, 20))

    p1 = watch_once(res, at(2026, 10, 3, 20, 1), repair_runs=False)
    assert [e.rung for e in p1.enqueued] == ["notice"] and len(p1.sent) == 1
    assert set(p1.sent[0].channels) == {"ops-mail", "ops-phone"}
    assert len(smtp_server.inbox.messages) == 1 and len(http_endpoint.messages) == 1

    http_endpoint.stop()  # the SMS gateway goes down
    t = at(2026, 10, 4, 8, 0, 30)  # 12 hours left at 08:00
    p2 = watch_once(res, t, repair_runs=False)
    assert [e.rung for e in p2.enqueued] == ["left-12h"]
    [r] = p2.retried
    assert r.channels == ("ops-mail",) and r.failed_channels == ("ops-phone",) and r.retry_at == t + 60 * SECOND
    assert len(smtp_server.inbox.messages) == 2

    p3 = watch_once(res, t + 30 * SECOND, repair_runs=False)  # before the backoff: left alone
    assert p3.sent == p3.retried == p3.failed == []
    p4 = watch_once(res, t + 61 * SECOND, repair_runs=False)  # still down: the next wait is 300 s
    [r] = p4.retried
    assert r.channels == () and r.failed_channels == ("ops-phone",) and r.retry_at == t + 361 * SECOND

    http_endpoint.start()  # back, on the same port
    p5 = watch_once(res, t + 361 * SECOND, repair_runs=False)
    [s] = p5.sent
    assert s.channels == ("ops-phone",)  # only the channel that lacked it
    p6 = watch_once(res, t + 2 * 3600 * SECOND, repair_runs=False)
    assert p6.sent == p6.retried == []

    # None lost, none twice: each channel got each alert exactly once.
    alerts = {a.rung: a for a in store.list_alerts(launch_id=launch.id)}
    assert set(alerts) == {"notice", "left-12h"}
    assert all(a.status == "sent" for a in alerts.values())
    mails = smtp_server.inbox.messages
    sms = http_endpoint.messages
    assert Counter(m["Subject"] for m in mails) == Counter(a.title for a in alerts.values())
    assert Counter(p["title"] for p in sms) == Counter(a.title for a in alerts.values())
    left = alerts["left-12h"]
    assert left.attempts == 3 and left.sent_at == t + 361 * SECOND
    assert _deliveries(store, left.id) == [
        ("ops-mail", True), ("ops-phone", False), ("ops-phone", False), ("ops-phone", True)
    ]
    # The mail as received: the SMS ladder's wording, the deadline in Beijing time, what to do.
    mail = next(m for m in mails if m["Subject"] == left.title)
    text = smtp_server.inbox.text_of(mail)
    assert "剩余 12 小时" in left.title and "工信部短信核验" in text
    assert "截止：2026-10-04 20:00 北京时间" in text and "12381" in text and "12 hours left" in text
    assert "token=" in text  # the client's gate carries the signed link
    payload = next(p for p in sms if p["title"] == left.title)
    assert "剩余 12 小时" in payload["message"]


def test_a_dead_channel_forwards_at_once_then_waits_and_gets_it_when_back(watch_env, smtp_server, http_endpoint,
                                                                          monkeypatch, tmp_path):
    res = watch_env
    # developers are reached by phone only; the gateway answers 503 until it is fixed. Before
    # issue 14 the alert was marked failed after its 2 tries and never reached the phone.
    res = use_notifiers(res, tmp_path, _channels(
        smtp_server, http_endpoint, attempts=2, backoff=(60,), phone_tags=("dev",), mail_tags=("ops",),
        fallback="ops",
    ))
    http_endpoint.status = 503
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "implementation", at(2026, 10, 16, 16))
    p1 = watch_once(res, at(2026, 10, 16, 16, 1), repair_runs=False)
    assert len(p1.retried) == 1 and smtp_server.inbox.messages == []
    # 2nd consecutive failure = min(breaker.failures 3, retry.attempts 2): the phone is down
    p2 = watch_once(res, at(2026, 10, 16, 16, 2, 1), repair_runs=False)
    assert p2.failed == [] and p2.retried == []
    [w] = p2.waiting
    assert w.waiting_for == ("ops-phone",) and w.fallback_channels == ("ops-mail",)  # forwarded at once, by mail
    assert [(e.channel, e.change) for e in p2.channel_events] == [("ops-phone", "down")]
    [alert] = store.list_alerts(launch_id=launch.id)
    assert alert.status == "waiting" and alert.waiting_for == ("ops-phone",)
    assert alert.attempts == 1  # the try that met a dead channel is given back
    assert _deliveries(store, alert.id) == [("ops-phone", False), ("ops-phone", False), ("ops-mail", True)]
    [mail] = smtp_server.inbox.messages
    assert mail["Subject"] == f"【转发 fallback】{alert.title}"
    text = smtp_server.inbox.text_of(mail)
    assert "dev" in text and "ops-phone" in text and "are down" in text
    assert http_endpoint.received == []
    assert store.channel_states()["ops-phone"].state == "down"

    # next morning: the probe (the oldest waiting alert) still meets 503; nothing is forwarded twice
    p3 = watch_once(res, at(2026, 10, 17, 9), repair_runs=False)
    assert p3.sent == p3.retried == p3.failed == [] and [x.alert_id for x in p3.waiting] == [alert.id]
    assert len(smtp_server.inbox.messages) == 1
    assert store.get_alert(alert.id).status == "waiting"

    http_endpoint.status = 200  # fixed
    p4 = watch_once(res, at(2026, 10, 17, 9, 1), repair_runs=False)  # before the next probe: left waiting
    assert p4.sent == [] and http_endpoint.received == []
    p5 = watch_once(res, at(2026, 10, 17, 9, 5, 30), repair_runs=False)
    [s] = p5.sent
    assert s.channels == ("ops-phone",)
    assert [(e.channel, e.change) for e in p5.channel_events] == [("ops-phone", "up")]
    [(_, payload)] = http_endpoint.received
    assert payload["title"].endswith(alert.title) and "delayed by 17 h" in payload["message"]
    assert store.get_alert(alert.id).status == "sent"
    p6 = watch_once(res, at(2026, 10, 18, 9), repair_runs=False)
    assert p6.sent == p6.waiting == [] and len(http_endpoint.received) == 1 and len(smtp_server.inbox.messages) == 1


def test_no_channels_configured_keeps_alerts_pending_until_they_are(watch_env, smtp_server, http_endpoint,
                                                                     monkeypatch, tmp_path):
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "subject-info", at(2026, 10, 12, 9))
    p1 = watch_once(res, at(2026, 10, 12, 9, 1), repair_runs=False)
    assert len(p1.enqueued) == 1 and p1.sent == [] and p1.ok
    assert any("WEAPP_LAUNCH_NOTIFIERS_FILE" in n for n in p1.notes)
    [alert] = store.list_alerts()
    assert alert.status == "pending" and alert.attempts == 0  # not even tried: nothing to give up on

    res = use_notifiers(res, tmp_path, _channels(smtp_server, http_endpoint))
    p2 = watch_once(res, at(2026, 10, 12, 10), repair_runs=False)
    assert [s.alert_id for s in p2.sent] == [alert.id]
    assert len(smtp_server.inbox.messages) == 1 and len(http_endpoint.messages) == 1


def test_a_broken_notifiers_file_is_an_error_and_loses_nothing(watch_env, monkeypatch, tmp_path):
    res = use_notifiers(watch_env, tmp_path, "channels: [{name: x}]\n")
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "subject-info", at(2026, 10, 12, 9))
    p = watch_once(res, at(2026, 10, 12, 9, 1), repair_runs=False)
    assert len(p.enqueued) == 1 and not p.ok and "notifiers" in p.errors[0]
    assert [a.status for a in store.list_alerts()] == ["pending"]


def test_no_alert_carries_a_raw_id_number_or_phone(watch_env, smtp_server, http_endpoint, monkeypatch, tmp_path):
    res = use_notifiers(watch_env, tmp_path, _channels(smtp_server, http_endpoint))
    store = res.store
    intake, raw = fresh_intake()
    raw_id, raw_phone = raw["id_number"][0], raw["phone"][0]
    # the worst case: personal numbers typed into the names that every alert shows
    client_id = store.add_client(
        intake.client_code, f"{intake.subject.name}（法人证件 {raw_id}）", f"商城 客服 {raw_phone}",
        intake.subject.province, "enterprise", intake.registration.path, intake.model_dump(mode="json"),
        intake.identifiers(),
    )
    launch = store.create_launch(client_id)
    store.set_launch_flow_run(launch.id, "6f1e2d3c-0000-4000-8000-000000000001")
    open_gate(res, launch.id, "sms-verification", at(2026, 10, 3, 20), flow_run_id="6f1e2d3c-0000-4000-8000-0000000000aa")
    open_gate(res, launch.id, "design-confirmation", at(2026, 9, 30, 10))
    open_gate(res, launch.id, "bureau-review", at(2026, 9, 30, 10))
    reports = [watch_once(res, now, repair_runs=False)
               for now in (at(2026, 10, 3, 20, 5), at(2026, 10, 4, 23), at(2026, 10, 20))]

    texts = [json.dumps(r.to_json(), ensure_ascii=False) for r in reports]
    for a in store.list_alerts():
        texts += [a.title, a.body, a.last_error or ""]
        texts += [d.error or "" for d in store.deliveries_for(a.id)]
    for m in smtp_server.inbox.messages:
        texts += [m["Subject"], smtp_server.inbox.text_of(m), m.as_string()]
    for p in http_endpoint.messages:
        texts += [p["title"], p["message"], json.dumps(p)]
    assert len(smtp_server.inbox.messages) >= 10 and len(http_endpoint.messages) >= 10
    blob = "\n".join(texts)
    for value in raw["id_number"] + raw["phone"] + raw["credit_code"]:
        assert value not in blob, "a raw personal number reached an alert"
    assert mask_id_number(raw_id) in blob and mask_phone(raw_phone) in blob  # shown masked instead


def test_a_notifiers_file_without_channels_keeps_alerts_pending(watch_env, monkeypatch, tmp_path):
    res = use_notifiers(watch_env, tmp_path, "channels: []\n")
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "subject-info", at(2026, 10, 12, 9))
    for hours in (0, 1, 48):
        p = watch_once(res, at(2026, 10, 12, 9, 1) + timedelta(hours=hours), repair_runs=False)
        assert p.ok and p.sent == p.failed == [] and "no enabled channel" in p.notes[0]
    assert [(a.status, a.attempts) for a in store.list_alerts()][0] == ("pending", 0)
