"""The outbox's decisions: retry policy, an outage of the phone gateway, fallback after
the last try, nothing lost and nothing twice — against real SMTP and HTTP endpoints.

The store is simulated by a few lines here (attempt counter + names of channels that
already have the alert), exactly what the watcher reads from its delivery records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from launch.domain.alerts import Rung, render_alert
from notifiers.config import NotifierConfig, RetryPolicy, parse_config
from notifiers.deliver import NO_CHANNEL
from notifiers.outbox import DeliveryOutcome, deliver_alert, next_attempt

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 10, 10, 10, 30, tzinfo=SH)
POLICY = RetryPolicy(5, (60, 300, 900, 3600))
ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


@dataclass
class FakeRow:
    """What the watcher holds of an outbox row (the store's AlertRecord has these)."""

    tags: tuple[str, ...]
    title: str
    body: str
    attempts: int = 0
    delivered: set[str] = field(default_factory=set)
    status: str = "pending"

    def attempt(self, cfg: NotifierConfig, now: datetime) -> DeliveryOutcome:
        self.attempts += 1  # the store's claim counts the try before sending
        out = deliver_alert(cfg, self, now, self.delivered)
        self.delivered.update(out.delivered_now)
        self.status = "sent" if out.sent else ("pending" if out.retry_at else "failed")
        return out


# ------------------------------------------------------------------ pure retry policy


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(0, timedelta(0)), (1, timedelta(seconds=60)), (2, timedelta(seconds=300)), (3, timedelta(seconds=900)),
     (4, timedelta(seconds=3600)), (5, None), (9, None)],
)
def test_next_attempt_follows_the_backoff_then_gives_up(attempts, expected):
    got = next_attempt(attempts, T0, POLICY)
    assert got == (None if expected is None else T0 + expected)


def test_backoff_last_value_repeats_and_naive_now_is_refused():
    policy = RetryPolicy(10, (30, 120))
    assert [next_attempt(k, T0, policy) - T0 for k in (1, 2, 3, 9)] == [timedelta(seconds=s) for s in (30, 120, 120, 120)]
    assert next_attempt(10, T0, policy) is None
    with pytest.raises(ValueError):
        next_attempt(1, datetime(2026, 10, 10, 10, 30), policy)


# ------------------------------------------------------------------ end to end


def make_config(smtp_url: str, phone_url: str, *, attempts: int = 5, fallback_url: str | None = None) -> NotifierConfig:
    channels = [
        {"name": "ops-mail", "url": smtp_url, "tags": ["ops"]},
        {"name": "ops-phone", "url": phone_url, "tags": ["ops", "manager"]},
    ]
    if fallback_url:
        channels.append({"name": "duty-desk", "url": fallback_url, "tags": ["duty"]})
    return parse_config(
        {
            "channels": channels,
            "fallback_tag": "duty" if fallback_url else "ops",
            "retry": {"attempts": attempts, "backoff_seconds": [60, 300, 900, 3600]},
        }
    )


def sample_alert() -> tuple[str, str]:
    rung = Rung(
        "left-4h", datetime(2026, 10, 10, 10, 30, tzinfo=SH), "urgent", ("ops", "client"), False,
        label_zh="剩余 4 小时", label_en="4 hours left", ladder="sms",
    )
    return render_alert(
        rung,
        client_name="广州某某科技有限公司",
        mini_program_name="某某小店",
        gate_name_zh="工信部短信核验",
        gate_name_en="MIIT 12381 SMS verification",
        todo_zh="请联系负责人 13812345678（身份证 440106199001011234）在 24 小时内完成核验。",
        attempt=1,
        due_at=datetime(2026, 10, 10, 14, 30, tzinfo=SH),
        provisional=False,
        launch_url="http://127.0.0.1:4200/runs/flow-run/6f1c2d3e-0000-4000-8000-abcdefabcdef",
        action_url="http://127.0.0.1:8780/staff/act?token=eyJhbGciOi.sig-AbC_123",
        reason="客户说手机号 13987654321 收不到短信",
    )


def test_outage_is_retried_then_delivered_once_to_every_channel(smtp_server, http_endpoint):
    cfg = make_config(smtp_server.url(), http_endpoint.url("/sms"))
    title, body = sample_alert()
    row = FakeRow(("ops",), title, body)

    http_endpoint.stop()  # the SMS gateway is down
    first = row.attempt(cfg, T0)
    assert first.sent is False and first.fallback is False
    assert first.retry_at == T0 + timedelta(seconds=60)
    assert [(r.name, r.ok) for r in first.results] == [("ops-mail", True), ("ops-phone", False)]
    assert "Connection" in first.error

    second = row.attempt(cfg, first.retry_at)  # still down: only the phone is tried again
    assert [(r.name, r.ok) for r in second.results] == [("ops-phone", False)]
    assert second.retry_at == first.retry_at + timedelta(seconds=300)

    http_endpoint.start()  # the gateway is back
    third = row.attempt(cfg, second.retry_at)
    assert third.sent is True and third.retry_at is None
    assert [(r.name, r.ok) for r in third.results] == [("ops-phone", True)]
    assert row.status == "sent"

    # none lost, none twice
    assert len(smtp_server.inbox.messages) == 1
    assert len(http_endpoint.messages) == 1
    mail = smtp_server.inbox.messages[0]
    assert mail["Subject"] == title
    text = smtp_server.inbox.text_of(mail)
    assert "剩余 4 小时：工信部短信核验" in text and "4 hours left" in text
    sms = http_endpoint.messages[0]
    assert sms["title"] == title and "剩余 4 小时" in sms["message"]

    # a further attempt after success sends nothing
    again = deliver_alert(cfg, row, third.retry_at or T0, row.delivered)
    assert again.sent is True and again.results == ()
    assert len(smtp_server.inbox.messages) == 1 and len(http_endpoint.messages) == 1


def test_no_raw_id_number_or_phone_reaches_any_channel(smtp_server, http_endpoint):
    cfg = make_config(smtp_server.url(), http_endpoint.url())
    title, body = sample_alert()
    row = FakeRow(("ops",), title, body)
    assert row.attempt(cfg, T0).sent
    received = [title, body]
    for m in smtp_server.inbox.messages:
        received += [m["Subject"], smtp_server.inbox.text_of(m)]
    for p in http_endpoint.messages:
        received += [p["title"], p["message"]]
    for text in received:
        assert not ID_RE.search(text), text
        assert not PHONE_RE.search(text), text
    joined = "\n".join(received)
    assert "138****5678" in joined and "440106********1234" in joined and "139****4321" in joined
    assert "token=eyJhbGciOi.sig-AbC_123" in joined  # the signed link itself is intact


def test_fallback_after_the_last_failed_try(smtp_server, http_endpoint, free_port):
    down = f"json://127.0.0.1:{free_port()}/sms"
    cfg = make_config(smtp_server.url(), down, attempts=2, fallback_url=http_endpoint.url("/duty"))
    row = FakeRow(("manager",), "【逾期 overdue】t", "overdue body")  # only ops-phone carries manager

    first = row.attempt(cfg, T0)
    assert (first.sent, first.fallback, first.retry_at) == (False, False, T0 + timedelta(seconds=60))
    assert http_endpoint.received == []

    last = row.attempt(cfg, first.retry_at)
    assert last.retry_at is None
    assert last.fallback is True and last.fallback_channels == ("duty-desk",)
    assert last.sent is False  # the intended people were not reached: the caller marks it failed
    assert last.reached_anyone is True
    assert [(r.name, r.ok) for r in last.results] == [("ops-phone", False), ("duty-desk", True)]
    [(path, payload)] = http_endpoint.received
    assert path == "/duty"
    assert payload["title"].startswith("【转发 fallback】")
    assert "manager" in payload["message"] and "overdue body" in payload["message"]
    assert smtp_server.inbox.messages == []  # the mail channel does not carry manager or duty


def test_partial_delivery_at_the_last_try_counts_as_sent_without_fallback(smtp_server, http_endpoint, free_port):
    down = f"json://127.0.0.1:{free_port()}/sms"
    cfg = make_config(smtp_server.url(), down, attempts=1, fallback_url=http_endpoint.url("/duty"))
    row = FakeRow(("ops",), "t", "b")
    out = row.attempt(cfg, T0)
    assert (out.sent, out.fallback, out.retry_at) == (True, False, None)
    assert [(r.name, r.ok) for r in out.results] == [("ops-mail", True), ("ops-phone", False)]
    assert http_endpoint.received == [] and len(smtp_server.inbox.messages) == 1


def test_fallback_never_duplicates_to_a_channel_that_already_has_it(smtp_server, free_port):
    # fallback tag "ops" is carried by the mail channel, which already got the alert
    down = f"json://127.0.0.1:{free_port()}/sms"
    cfg = parse_config({
        "channels": [
            {"name": "ops-mail", "url": smtp_server.url(), "tags": ["ops"]},
            {"name": "ops-phone", "url": down, "tags": ["manager"]},
        ],
        "fallback_tag": "ops",
        "retry": {"attempts": 1},
    })
    row = FakeRow(("manager",), "t", "b", delivered={"ops-mail"})
    out = row.attempt(cfg, T0)
    assert out.fallback is False and out.sent is False and out.retry_at is None
    assert smtp_server.inbox.messages == []


def test_no_channel_for_the_tags_goes_straight_to_the_fallback(http_endpoint, smtp_server):
    cfg = make_config(smtp_server.url(), http_endpoint.url("/sms"), fallback_url=http_endpoint.url("/duty"))
    row = FakeRow(("client-c-42",), "client alert", "body for the client")
    out = row.attempt(cfg, T0)
    assert out.fallback is True and out.retry_at is None and out.sent is False
    assert out.results[0].name == NO_CHANNEL and not out.results[0].ok
    assert "client-c-42" in out.results[0].error
    assert [p for p, _ in http_endpoint.received] == ["/duty"]


def test_no_channel_and_no_fallback_is_retried_so_a_fixed_config_still_sends(http_endpoint, smtp_server):
    cfg = parse_config({"channels": [{"name": "ops-mail", "url": smtp_server.url(), "tags": ["ops"]}]})
    row = FakeRow(("client-c-42",), "client alert", "body")
    out = row.attempt(cfg, T0)
    assert (out.sent, out.fallback, out.retry_at) == (False, False, T0 + timedelta(seconds=60))
    assert out.results[0].name == NO_CHANNEL

    cfg.add_channel("client-c-42-phone", http_endpoint.url("/client"), ["client-c-42"])  # contact added
    out = row.attempt(cfg, out.retry_at)
    assert out.sent is True
    assert [p for p, _ in http_endpoint.received] == ["/client"]
    assert smtp_server.inbox.messages == []


def test_mapping_rows_and_comma_tags_are_accepted(http_endpoint):
    cfg = parse_config({"channels": [{"name": "p", "url": http_endpoint.url(), "tags": ["ops"]}]})
    out = deliver_alert(cfg, {"tags": "ops,manager", "title": "t", "body": "b", "attempts": 1}, T0)
    assert out.sent is True and out.delivered_now == ("p",)


def test_every_try_and_the_fallback_render_the_links_afresh(smtp_server, http_endpoint, free_port):
    """The stored body holds a placeholder; each attempt renders it (a newly signed link
    each time), the fallback sends the rendered text, and nothing rendered is returned."""
    down = f"json://127.0.0.1:{free_port()}/sms"
    cfg = make_config(smtp_server.url(), down, attempts=2, fallback_url=http_endpoint.url("/duty"))
    stored = "处理链接（已签名）：[[staff-link:l-0123456789:content:1]]"
    row = FakeRow(("manager",), "【逾期 overdue】t", stored)
    calls: list[datetime] = []

    def attempt(now):
        row.attempts += 1

        def render(text):
            calls.append(now)
            link = f"https://r/gates/l-0123456789/content?token=T{len(calls)}"
            return text.replace("[[staff-link:l-0123456789:content:1]]", link)

        out = deliver_alert(cfg, row, now, row.delivered, render=render)
        row.delivered.update(out.delivered_now)
        return out

    first = attempt(T0)
    last = attempt(first.retry_at)
    assert calls == [T0, first.retry_at] and row.body == stored
    assert last.fallback is True
    [(_, payload)] = http_endpoint.received
    assert "token=T2" in payload["message"] and "[[staff-link:" not in payload["message"]
    assert "token=" not in repr(first) + repr(last)  # the outcome the store records carries no link


def test_links_are_signed_with_the_given_resources_link_keys(tmp_path, http_endpoint):
    """The notifiers sign nothing themselves: the caller's ``render`` (the watcher binds
    ``launch.app.links.render_links`` to its Resources) fills each placeholder with a link
    signed by those resources' keys; without one the text goes as stored."""
    from launch.app.links import render_links, verify_token
    from launch.domain.link_keys import LinkKeys
    from tests.support.resources import make_resources

    res = make_resources(tmp_path / "home", link_secrets="k9:" + "s" * 32)
    try:
        cfg = parse_config({"channels": [{"name": "p", "url": http_endpoint.url("/p"), "tags": ["ops"]}]})
        row = FakeRow(("ops",), "t", "link: [[staff-link:l-0123456789:content:2]]")
        row.attempts += 1
        out = deliver_alert(cfg, row, T0, row.delivered,
                            render=lambda text: render_links(res, text, T0, live=False))
        assert out.sent
        [(_, payload)] = http_endpoint.received
        token = payload["message"].split("token=", 1)[1].strip()
        assert verify_token(token, "l-0123456789", "content", T0, LinkKeys([("k9", "s" * 32)])).attempt == 2
        plain = FakeRow(("ops",), "t", "link: [[staff-link:l-0123456789:content:3]]")
        assert plain.attempt(cfg, T0).sent
        assert "[[staff-link:l-0123456789:content:3]]" in http_endpoint.received[-1][1]["message"]
    finally:
        res.close()
