"""Issue 14 at the notifier level, against real endpoints: the idempotency key on every
delivery (HTTP header, mail header) and the per-channel timeouts in the URL Apprise gets;
a slow gateway deduping on the key; channel kinds and the fallback's choice with a breaker
that holds down channels; the breaker and timeout settings of the file; the late notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifiers.config import Channel, NotifierConfigError, kind_of_scheme, parse_config
from notifiers.deliver import ChannelResult, deliver, delivery_url, idempotency_key
from notifiers.lateness import AlertMoment, format_span, late_note
from notifiers.outbox import deliver_alert

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 10, 10, 10, 30, tzinfo=SH)


def cfg(*channels: dict, **top) -> object:
    return parse_config({"channels": list(channels), **top})


# ------------------------------------------------------------------ kinds, timeouts, keys


@pytest.mark.parametrize(("scheme", "kind"), [
    ("mailto", "mail"), ("mailtos", "mail"), ("json", "phone"), ("jsons", "phone"), ("form", "phone"),
    ("xml", "phone"), ("twilio", "phone"), ("wecombot", "chat"), ("dingtalk", "chat"), ("feishu", "chat"),
    ("schan", "chat"), ("gotify", "other"),
])
def test_kind_of_scheme(scheme, kind):
    assert kind_of_scheme(scheme) == kind


def test_delivery_url_carries_timeouts_and_the_key_where_the_scheme_can():
    key = idempotency_key("l-1:sms-verification:1:left-4h", "ops-phone")
    assert key == idempotency_key("l-1:sms-verification:1:left-4h", "ops-phone")  # stable
    assert key != idempotency_key("l-1:sms-verification:1:left-4h", "ops-mail")
    assert key.startswith("wl-") and len(key) == 35
    phone = Channel("ops-phone", "json://127.0.0.1:9000/sms", ("ops",))
    assert delivery_url(phone, key) == f"json://127.0.0.1:9000/sms?cto=5&rto=15&+Idempotency-Key={key}"
    mail = Channel("ops-mail", "mailtos://u:p@smtp.example.com?to=a@example.com", ("ops",))
    assert delivery_url(mail, key) == (
        f"mailtos://u:p@smtp.example.com?to=a@example.com&cto=30&+X-Idempotency-Key={key}")
    chat = Channel("wecom", "wecombot://KEY", ("ops",), read_timeout=20)
    assert delivery_url(chat, key) == "wecombot://KEY?cto=5&rto=20"  # no way to carry a key
    own = Channel("gw", "json://h/sms?rto=60", ("ops",), connect_timeout=2)
    assert delivery_url(own) == "json://h/sms?rto=60&cto=2"  # the URL's own rto is kept


def test_channel_options_in_the_file():
    c = cfg({"name": "gw", "url": "json://127.0.0.1:9000/sms", "tags": ["ops"], "kind": "chat",
             "connect_timeout": 3, "read_timeout": 45},
            breaker={"failures": 4, "probe_seconds": 120}, delayed_after_seconds=600,
            retry={"attempts": 3})
    [ch] = c.channels
    assert (ch.kind, ch.connect_timeout, ch.read_timeout) == ("chat", 3.0, 45.0)
    assert "json://" not in repr(ch) and "kind='chat'" in repr(ch)
    assert (c.breaker.failures, c.breaker.probe_seconds, c.delayed_after_seconds) == (4, 120.0, 600.0)
    assert c.trip_after == 3  # never more than retry.attempts
    d = cfg()
    assert (d.breaker.failures, d.breaker.probe_seconds, d.delayed_after_seconds, d.trip_after) == (3, 300.0, 900.0, 3)


@pytest.mark.parametrize(("extra", "top", "rule"), [
    ({"kind": "pager"}, {}, "bad-kind"),
    ({"read_timeout": 0}, {}, "bad-timeout"),
    ({"connect_timeout": 601}, {}, "bad-timeout"),
    ({"url": "json://h/sms?rto=9", "read_timeout": 5}, {}, "timeout-twice"),
    ({}, {"breaker": {"failures": 0}}, "bad-failures"),
    ({}, {"breaker": {"probe_seconds": -1}}, "bad-probe"),
    ({}, {"breaker": {"tries": 2}}, "unknown-key"),
    ({}, {"breaker": 3}, "bad-breaker"),
    ({}, {"delayed_after_seconds": -5}, "bad-delay"),
])
def test_bad_options_are_refused_with_a_rule(extra, top, rule):
    with pytest.raises(NotifierConfigError) as ei:
        cfg({"name": "gw", "url": "json://127.0.0.1:9000/sms", "tags": ["ops"], **extra}, **top)
    assert ei.value.rule == rule


def test_the_http_gateway_gets_the_same_key_on_every_try_and_mail_carries_it(http_endpoint, smtp_server):
    c = cfg({"name": "ops-phone", "url": http_endpoint.url(), "tags": ["ops"]},
            {"name": "ops-mail", "url": smtp_server.url(), "tags": ["ops"]})
    alert = {"tags": ["ops"], "title": "t", "body": "b", "attempts": 1, "dedupe_key": "l-1:content:1:half"}
    deliver_alert(c, alert, T0)
    deliver_alert(c, alert, T0)  # a repeat (as after a lost answer): same keys
    assert http_endpoint.keys == [idempotency_key("l-1:content:1:half", "ops-phone")] * 2
    mails = smtp_server.inbox.messages
    assert [m["X-Idempotency-Key"] for m in mails] == [idempotency_key("l-1:content:1:half", "ops-mail")] * 2
    assert all(len(m.get_all("Message-ID")) == 1 for m in mails)  # Apprise's own, not doubled


def test_deduping_sinks_deliver_a_repeated_key_once(http_endpoint, smtp_server):
    http_endpoint.dedupe = smtp_server.inbox.dedupe = True
    c = cfg({"name": "ops-phone", "url": http_endpoint.url(), "tags": ["ops"]},
            {"name": "ops-mail", "url": smtp_server.url(), "tags": ["ops"]})
    alert = {"tags": ["ops"], "title": "t", "body": "b", "attempts": 1, "dedupe_key": "k"}
    assert deliver_alert(c, alert, T0).sent and deliver_alert(c, alert, T0).sent
    assert len(http_endpoint.received) == 1 and http_endpoint.duplicates == 1
    assert len(smtp_server.inbox.messages) == 1 and smtp_server.inbox.duplicates == 1


def test_a_gateway_slower_than_the_read_timeout_fails_the_try_then_dedupes_the_retry(http_endpoint):
    http_endpoint.slow_seconds = 2.0
    http_endpoint.dedupe = True
    c = cfg({"name": "ops-phone", "url": http_endpoint.url(), "tags": ["ops"], "read_timeout": 0.5})
    row = {"tags": ["ops"], "title": "t", "body": "b", "attempts": 1, "dedupe_key": "l-1:content:1:half"}
    first = deliver_alert(c, row, T0)
    assert first.sent is False and first.retry_at == T0 + timedelta(seconds=60)
    assert "timed out" in (first.error or "").lower() or "timeout" in (first.error or "").lower()
    assert len(http_endpoint.received) == 1  # the gateway has it all the same
    second = deliver_alert(c, {**row, "attempts": 2}, first.retry_at)
    assert second.sent is True
    assert len(http_endpoint.received) == 1 and http_endpoint.duplicates == 1 and http_endpoint.requests == 2


# ------------------------------------------------------------------ breaker and fallback


@dataclass
class MemBreaker:
    """The breaker as deliver_alert sees it, in memory: ``down`` channels are held."""

    down: set[str] = field(default_factory=set)
    trip_after: int = 99
    failures: dict[str, int] = field(default_factory=dict)
    reported: list[ChannelResult] = field(default_factory=list)

    def may_send(self, name: str) -> bool:
        return name not in self.down

    def is_down(self, name: str) -> bool:
        return name in self.down

    def report(self, result: ChannelResult) -> None:
        self.reported.append(result)
        n = 0 if result.ok else self.failures.get(result.name, 0) + 1
        self.failures[result.name] = n
        if n >= self.trip_after:
            self.down.add(result.name)


def test_down_channels_are_held_and_the_alert_waits_without_a_fallback_when_someone_has_it(
        smtp_server, http_endpoint):
    c = cfg({"name": "ops-mail", "url": smtp_server.url(), "tags": ["ops"]},
            {"name": "ops-phone", "url": http_endpoint.url(), "tags": ["ops"]},
            {"name": "duty", "url": http_endpoint.url("/duty"), "tags": ["duty"]}, fallback_tag="duty")
    br = MemBreaker(down={"ops-phone"})
    out = deliver_alert(c, {"tags": ["ops"], "title": "t", "body": "b", "attempts": 5}, T0, breaker=br)
    assert out.waiting and out.waiting_for == ("ops-phone",) and out.retry_at is None and not out.fallback
    assert [(r.name, r.ok) for r in out.results] == [("ops-mail", True)]
    assert http_endpoint.received == []  # held: not even tried


def test_a_channel_tripping_in_this_try_makes_the_alert_wait_not_fail(free_port, smtp_server):
    down = f"json://127.0.0.1:{free_port()}/sms"
    c = cfg({"name": "ops-phone", "url": down, "tags": ["manager"]},
            {"name": "ops-mail", "url": smtp_server.url(), "tags": ["ops"]}, fallback_tag="ops",
            retry={"attempts": 2})
    br = MemBreaker(trip_after=2)
    row = {"tags": ["manager"], "title": "t", "body": "b", "dedupe_key": "k"}
    first = deliver_alert(c, {**row, "attempts": 1}, T0, breaker=br)
    assert first.retry_at is not None and smtp_server.inbox.messages == []
    last = deliver_alert(c, {**row, "attempts": 2}, first.retry_at, breaker=br)  # the 2nd failure trips it
    assert last.waiting and last.waiting_for == ("ops-phone",) and last.fallback_channels == ("ops-mail",)
    [mail] = smtp_server.inbox.messages
    assert mail["Subject"] == "【转发 fallback】t" and "ops-phone" in smtp_server.inbox.text_of(mail)


def test_fallback_prefers_an_up_channel_of_another_kind(smtp_server, http_endpoint):
    c = cfg({"name": "manager-mail", "url": smtp_server.url("boss@example.com"), "tags": ["manager"]},
            {"name": "ops-mail", "url": smtp_server.url("ops@example.com"), "tags": ["ops"]},
            {"name": "ops-phone", "url": http_endpoint.url(), "tags": ["ops"]},
            {"name": "ops-wecom", "url": http_endpoint.url("/chat"), "tags": ["ops"], "kind": "chat"},
            fallback_tag="ops")
    br = MemBreaker(down={"manager-mail", "ops-phone"})
    out = deliver_alert(c, {"tags": ["manager"], "title": "t", "body": "b", "attempts": 1}, T0, breaker=br)
    # ops-mail is mail like the dead channel, ops-phone is down: the chat channel gets it
    assert out.fallback_channels == ("ops-wecom",) and out.waiting_for[0] == "manager-mail"
    assert [p for p, _ in http_endpoint.received] == ["/chat"] and smtp_server.inbox.messages == []
    # forwarded once: the next try (still down) sends nothing more
    again = deliver_alert(c, {"tags": ["manager"], "title": "t", "body": "b", "attempts": 1}, T0,
                          delivered={"ops-wecom"}, breaker=br)
    assert again.results == () and again.waiting_for == ("manager-mail",)


def test_with_every_fallback_channel_down_the_alert_waits_for_them_too(http_endpoint, free_port):
    c = cfg({"name": "dev-phone", "url": f"json://127.0.0.1:{free_port()}/x", "tags": ["dev"]},
            {"name": "ops-phone", "url": http_endpoint.url(), "tags": ["ops"]}, fallback_tag="ops")
    br = MemBreaker(down={"dev-phone", "ops-phone"})
    out = deliver_alert(c, {"tags": ["dev"], "title": "t", "body": "b", "attempts": 1}, T0, breaker=br)
    assert out.waiting_for == ("dev-phone", "ops-phone") and out.results == ()


# ------------------------------------------------------------------ late notes


def test_format_span():
    assert format_span(30) == ("不到 1 分钟", "under a minute")
    assert format_span(3600 * 2 + 300) == ("2 小时 5 分钟", "2 h 5 min")
    assert format_span(86400 + 3 * 3600 + 120) == ("1 天 3 小时", "1 d 3 h")


def test_late_notes_per_rung_kind():
    fire = datetime(2026, 10, 4, 8, 0, tzinfo=SH)
    due = datetime(2026, 10, 4, 20, 0, tzinfo=SH)
    assert late_note(fire, fire + timedelta(minutes=10), AlertMoment(due, True, True)) is None  # on time
    title, body = late_note(fire, fire + timedelta(hours=2), AlertMoment(due, True, True))
    assert title == "【延迟 2 小时 delayed by 2 h】"
    assert "延迟 2 小时 送达" in body and "delayed by 2 h: this alert was due at 2026-10-04 08:00 Beijing time" in body
    title, body = late_note(fire, due + timedelta(hours=3), AlertMoment(due, True, True))
    assert title == "【短信核验窗口已关闭 SMS window closed】"
    assert "短信核验窗口已于 2026-10-04 20:00 北京时间 关闭" in body
    assert "The SMS window closed at 2026-10-04 20:00 Beijing time" in body and "delayed by 15 h" in body
    title, body = late_note(fire, due + timedelta(hours=3), AlertMoment(due, True, False))
    assert title == "【已过截止时间 deadline passed】" and "The deadline 2026-10-04 20:00" in body
    # a rung at or after the deadline stays true: only late
    title, _ = late_note(due, due + timedelta(hours=3), AlertMoment(due, False, True))
    assert title == "【延迟 3 小时 delayed by 3 h】"
    # the step was closed meanwhile: out of date, whatever the rung
    closed = datetime(2026, 10, 4, 8, 2, tzinfo=SH)
    title, body = late_note(fire, fire + timedelta(minutes=5), AlertMoment(due, True, True, closed))
    assert title == "【已过时 out of date】" and "The step was already closed at 2026-10-04 08:02" in body
    assert "delayed by" not in body  # 5 minutes is not late
    with pytest.raises(ValueError):
        late_note(fire, datetime(2026, 10, 4, 9))


def test_the_note_leads_title_and_body_of_what_is_sent(http_endpoint):
    c = cfg({"name": "p", "url": http_endpoint.url(), "tags": ["ops"]}, delayed_after_seconds=60)
    fire = datetime(2026, 10, 4, 8, 0, tzinfo=SH)
    row = {"tags": ["ops"], "title": "【提醒 reminder】x：剩余 12 小时", "body": "剩余 12 小时：工信部短信核验",
           "attempts": 1, "send_after": fire}
    out = deliver_alert(c, row, fire + timedelta(hours=13), moment=AlertMoment(fire + timedelta(hours=12), True, True))
    assert out.sent
    [(_, payload)] = http_endpoint.received
    assert payload["title"] == "【短信核验窗口已关闭 SMS window closed】【提醒 reminder】x：剩余 12 小时"
    assert payload["message"].startswith("（此提醒原定 2026-10-04 08:00 北京时间 发出，延迟 13 小时 送达。）")
    assert payload["message"].endswith("剩余 12 小时：工信部短信核验")
