"""Issue 14: delivery survives any outage, and a slow gateway gets each alert once.

Real endpoints only (aiosmtpd and a loopback HTTP server; tests/notifiers/conftest.py): both
go down for longer than the whole retry budget (the default policy: 5 tries over ~81
minutes), the SMS window opens and closes meanwhile; once they are back every alert
reaches every channel exactly once, oldest first, saying how late it is, and the SMS-window
alerts say that the window has closed. A gateway that answers after the read timeout is
retried with the same idempotency key and, deduping on it, delivers each alert once.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import typer
from typer.testing import CliRunner

from launch.cli.alerts import register
from launch.app.watcher import watch_once
from notifiers.breaker import channel_health
from tests.support.watchers import LATE_NOTE, passes_side_by_side
from tests.watcher.conftest import at, new_client, open_gate, use_notifiers

MINUTE = timedelta(minutes=1)


def _both(smtp_server, http_endpoint, extra: str = "") -> str:
    return f"""
channels:
  - name: ops-mail
    url: "{smtp_server.url()}"
    tags: [ops, manager]
  - name: ops-phone
    url: "{http_endpoint.url('/sms')}"
    tags: [ops, manager]
{extra}"""


def test_both_channels_down_longer_than_the_retry_budget_lose_nothing(watch_env, smtp_server, http_endpoint,
                                                                      monkeypatch, tmp_path):
    res = use_notifiers(watch_env, tmp_path, _both(smtp_server, http_endpoint))  # default retry and breaker
    smtp_server.inbox.dedupe = http_endpoint.dedupe = True
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    smtp_server.go_down()
    http_endpoint.go_down()
    # the 12381 SMS goes out at 20:00 during the outage: its whole 24-hour window passes unseen
    open_gate(res, launch.id, "sms-verification", at(2026, 10, 3, 20))
    t = at(2026, 10, 3, 20, 1)
    end = at(2026, 10, 4, 23, 0)
    events = []
    while t < end:  # a pass every 20 minutes for 27 hours, both channels refusing connections
        p = watch_once(res, t, repair_runs=False)
        assert p.ok, p.errors
        assert p.failed == [] and p.sent == []
        events += [(e.channel, e.change) for e in p.channel_events]
        t += 20 * MINUTE
    assert sorted(events) == [("ops-mail", "down"), ("ops-phone", "down")]  # each marked down once
    alerts = store.list_alerts(launch_id=launch.id)
    assert {a.rung for a in alerts} == {"notice", "left-12h", "left-4h", "left-1h", "expired", "expired-2h"}
    assert all(a.status == "waiting" and set(a.waiting_for) == {"ops-mail", "ops-phone"} for a in alerts)
    assert max(a.attempts for a in alerts) < 5  # nobody ran out of tries
    health = {h.channel: h for h in channel_health(store, _config(res))}
    assert health["ops-mail"].state == "down" and health["ops-mail"].waiting == len(alerts)
    assert not health["ops-phone"].ok and "DOWN" in health["ops-phone"].detail
    assert smtp_server.inbox.messages == [] and http_endpoint.received == []

    smtp_server.come_back()
    http_endpoint.come_back()
    back = watch_once(res, end + MINUTE, repair_runs=False)
    assert back.ok, back.errors
    assert sorted((e.channel, e.change) for e in back.channel_events) == [("ops-mail", "up"), ("ops-phone", "up")]
    assert len(back.sent) == len(alerts) and back.waiting == [] and back.failed == []
    again = watch_once(res, end + 10 * MINUTE, repair_runs=False)
    assert again.sent == again.waiting == []

    # every alert reached every channel exactly once, oldest first
    by_due = [a.title for a in sorted(store.list_alerts(launch_id=launch.id), key=lambda a: (a.send_after, a.id))]
    mails = [m["Subject"] for m in smtp_server.inbox.messages]
    sms = [p["title"] for p in http_endpoint.messages]
    assert [LATE_NOTE.sub("", x) for x in mails] == by_due
    assert [LATE_NOTE.sub("", x) for x in sms] == by_due
    assert smtp_server.inbox.duplicates == 0 and http_endpoint.duplicates == 0
    for a in store.list_alerts(launch_id=launch.id):
        assert a.status == "sent"
        assert Counter(d.channel for d in store.deliveries_for(a.id) if d.ok) == {"ops-mail": 1, "ops-phone": 1}
    texts = {LATE_NOTE.sub("", p["title"]): p["message"] for p in http_endpoint.messages}
    rungs = {a.rung: a for a in store.list_alerts(launch_id=launch.id)}
    for rung in ("notice", "left-12h", "left-4h", "left-1h"):  # they speak of time left in the window
        text = texts[rungs[rung].title]
        assert "短信核验窗口已于 2026-10-04 20:00 北京时间 关闭" in text
        assert "The SMS window closed at 2026-10-04 20:00 Beijing time" in text
        assert "delayed by" in text
    for rung in ("expired", "expired-2h"):  # still true: only late
        text = texts[rungs[rung].title]
        assert "delayed by" in text and "window closed" not in text
    assert "delayed by 1 d 3 h" in texts[rungs["notice"].title]
    sms_titles = [p["title"] for p in http_endpoint.messages]
    assert sms_titles[0].startswith("【短信核验窗口已关闭 SMS window closed】")
    assert any(x.startswith("【延迟 ") and "delayed by" in x for x in sms_titles)
    mail_text = smtp_server.inbox.text_of(smtp_server.inbox.messages[0])
    assert "The SMS window closed at" in mail_text


def _config(res):
    config, _, error = res.notifier
    assert error is None
    return config


def test_a_slow_gateway_gets_each_alert_once_and_the_alert_is_not_lost(watch_env, smtp_server, http_endpoint,
                                                                         monkeypatch, tmp_path):
    res = watch_env
    # the gateway keeps the message, then answers after our 1-second read timeout
    res = use_notifiers(res, tmp_path, f"""
channels:
  - name: ops-phone
    url: "{http_endpoint.url('/sms')}"
    tags: [ops, manager]
    read_timeout: 1
retry: {{attempts: 5, backoff_seconds: [60]}}
""")
    http_endpoint.slow_seconds = 2.5
    http_endpoint.dedupe = True  # as a real idempotent gateway: a key it has seen -> 200, not delivered again
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "subject-info", at(2026, 10, 12, 9))
    p1 = watch_once(res, at(2026, 10, 12, 9, 1), repair_runs=False)
    [r] = p1.retried  # our side saw a read timeout
    assert "ops-phone" in r.failed_channels
    assert len(http_endpoint.received) == 1  # ... but the gateway had it
    p2 = watch_once(res, at(2026, 10, 12, 9, 2, 1), repair_runs=False)
    [s] = p2.sent
    assert s.channels == ("ops-phone",)
    assert len(http_endpoint.received) == 1 and http_endpoint.duplicates == 1  # once, as the gateway sees it
    assert http_endpoint.requests == 2
    [key] = http_endpoint.keys
    assert key and key.startswith("wl-")
    [alert] = store.list_alerts(launch_id=launch.id)
    assert alert.status == "sent"
    assert [(d.channel, d.ok) for d in store.deliveries_for(alert.id)] == [("ops-phone", False), ("ops-phone", True)]
    assert store.channel_states()["ops-phone"].state == "up"


def test_fallback_goes_to_an_up_channel_of_another_kind(watch_env, smtp_server, http_endpoint, monkeypatch, tmp_path):
    res = watch_env
    # the manager is reached by mail only; the ops tag has a mail box on the same dead server and a phone
    res = use_notifiers(res, tmp_path, f"""
channels:
  - name: manager-mail
    url: "{smtp_server.url('boss@example.com')}"
    tags: [manager]
  - name: ops-mail
    url: "{smtp_server.url('ops@example.com')}"
    tags: [ops]
  - name: ops-phone
    url: "{http_endpoint.url('/sms')}"
    tags: [ops]
fallback_tag: ops
breaker: {{failures: 1, probe_seconds: 600}}
""")
    smtp_server.go_down()
    store = res.store
    alert, _ = store.enqueue_alert(dedupe_key="sys:mail-down:1", rung="now", title="【紧急 urgent】测试",
                                   body="body", tags=["manager"], send_after=at(2026, 10, 12, 9))
    p = watch_once(res, at(2026, 10, 12, 9, 1), repair_runs=False, enqueue=False)
    [w] = p.waiting
    assert w.waiting_for == ("manager-mail",) and w.fallback_channels == ("ops-phone",)  # not ops-mail
    [(_, payload)] = http_endpoint.received
    assert payload["title"].startswith("【转发 fallback】")
    smtp_server.come_back()
    p2 = watch_once(res, at(2026, 10, 12, 9, 12), repair_runs=False, enqueue=False)
    [s] = p2.sent
    assert s.channels == ("manager-mail",)
    [mail] = smtp_server.inbox.messages
    assert mail["To"] == "boss@example.com" and mail["X-Idempotency-Key"].startswith("wl-")
    assert len(http_endpoint.received) == 1  # forwarded once


app = typer.Typer()
register(app)
runner = CliRunner()


def test_alerts_retry_and_channels_commands(watch_env, http_endpoint, monkeypatch, tmp_path):
    res = watch_env
    import json

    def channels(tags: str, extra: str = "") -> str:
        return f"""
channels:
  - name: ops-phone
    url: "{http_endpoint.url('/sms')}"
    tags: [{tags}]
retry: {{attempts: 1}}
breaker: {{failures: 1, probe_seconds: 3600}}
{extra}"""

    res = use_notifiers(res, tmp_path, channels("ops"))
    store = res.store
    t0 = res.now() - timedelta(minutes=30)  # the CLI works on the real clock
    a, _ = store.enqueue_alert(dedupe_key="sys:a", rung="now", title="A", body="a", tags=["dev"], send_after=t0)
    b, _ = store.enqueue_alert(dedupe_key="sys:b", rung="now", title="B", body="b", tags=["dev"],
                               send_after=t0 + MINUTE)
    # nobody carries "dev" and there is no fallback: the one try allowed fails for good
    p = watch_once(res, t0 + 2 * MINUTE, repair_runs=False, enqueue=False)
    assert sorted(f.alert_id for f in p.failed) == [a.id, b.id]
    result = runner.invoke(app, ["alerts", "--status", "failed", "--json"], obj=res)
    assert result.exit_code == 0 and len(json.loads(result.output)["alerts"]) == 2

    res = use_notifiers(res, tmp_path, channels("ops, dev"))  # the contact is added
    result = runner.invoke(app, ["alerts", "retry", str(b.id), "999999", "--json"], obj=res)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {(r["id"], r["before"], r["after"]) for r in out["results"]} == {
        (b.id, "failed", "pending"), (999999, "unknown", None)}
    assert store.get_alert(b.id).status == "pending" and store.get_alert(b.id).attempts == 0
    result = runner.invoke(app, ["alerts", "retry", "--state", "failed"], obj=res)
    assert result.exit_code == 0, result.output
    assert "重新排队 / re-queued: 1" in result.output
    p = watch_once(res, t0 + 3 * MINUTE, repair_runs=False, enqueue=False)
    assert [s.alert_id for s in p.sent] == [a.id, b.id]  # oldest first
    assert [m["title"] for m in http_endpoint.messages] == ["A", "B"]
    result = runner.invoke(app, ["alerts", "retry", str(a.id)], obj=res)
    assert result.exit_code == 0 and "already sent" in result.output

    # the gateway fails once: down (failures: 1), the alert waits, the next probe is an hour away
    http_endpoint.status = 503
    c, _ = store.enqueue_alert(dedupe_key="sys:c", rung="now", title="C", body="c", tags=["ops"], send_after=t0)
    p = watch_once(res, t0 + 4 * MINUTE, repair_runs=False, enqueue=False)
    assert [w.alert_id for w in p.waiting] == [c.id]
    result = runner.invoke(app, ["alerts", "channels", "--json"], obj=res)
    assert result.exit_code == 1, result.output
    [row] = json.loads(result.output)["channels"]
    assert (row["channel"], row["state"], row["waiting"], row["kind"]) == ("ops-phone", "down", 1, "phone")
    assert http_endpoint.url() not in result.output
    result = runner.invoke(app, ["alerts", "--status", "waiting"], obj=res)
    assert result.exit_code == 0 and "waiting" in result.output and "ops-phone" in result.output

    http_endpoint.status = 200  # fixed; someone re-queues the waiting alerts instead of waiting an hour
    result = runner.invoke(app, ["alerts", "retry", "--state", "waiting", "--json"], obj=res)
    assert json.loads(result.output)["requeued"] == 1
    p = watch_once(res, res.now(), repair_runs=False, enqueue=False)
    assert [s.alert_id for s in p.sent] == [c.id]
    assert [m["title"] for m in http_endpoint.messages][-1].endswith("C")
    result = runner.invoke(app, ["alerts", "channels"], obj=res)
    assert result.exit_code == 0 and "ops-phone" in result.output

    result = runner.invoke(app, ["alerts", "retry"], obj=res)
    assert result.exit_code == 2  # nothing named: says how to use it


def test_two_watchers_through_an_outage_send_each_alert_once(watch_env, http_endpoint):
    """Two watchers (own Store objects, passes at the same moment) while the gateway is down
    and after: they agree on the breaker (one probe each interval) and each alert reaches the
    gateway once — counted without any dedupe at the gateway."""
    from notifiers.config import parse_config

    res = watch_env
    store = res.store
    opened = at(2026, 10, 8, 9)
    for i in range(3):
        client_id, _ = new_client(res)
        launch = store.create_launch(client_id)
        for j, gate in enumerate(("design-confirmation", "subject-info", "sms-verification")):
            open_gate(res, launch.id, gate, opened + timedelta(minutes=7 * i + j))
    config = parse_config({
        "channels": [{"name": "ops-phone", "url": http_endpoint.url("/sms"), "tags": ["ops", "dev", "manager"]}],
        "breaker": {"failures": 2, "probe_seconds": 600},
    })
    http_endpoint.go_down()
    moments = [opened + timedelta(minutes=m) for m in range(1, 30 * 60, 60)]  # 30 hours of outage
    moments += [opened + timedelta(hours=30, minutes=m) for m in (1, 12, 30)]  # back

    def back_after_30_hours(now) -> None:
        if now >= opened + timedelta(hours=30) and not http_endpoint._server:
            http_endpoint.come_back()

    reports = passes_side_by_side(res, config, moments, before=back_after_30_hours)
    alerts = store.list_alerts()
    assert len(alerts) >= 20
    assert all(a.status == "sent" for a in alerts), Counter(a.status for a in alerts)
    for a in alerts:
        assert [d.channel for d in store.deliveries_for(a.id) if d.ok] == ["ops-phone"]
    assert len(http_endpoint.messages) == len(alerts)  # once each, as the gateway sees it
    assert Counter(LATE_NOTE.sub("", m["title"]) for m in http_endpoint.messages) == Counter(a.title for a in alerts)
    ups = [e for r in reports for e in r.channel_events if e.change == "up"]
    assert len(ups) == 1  # one watcher's probe brought it back
