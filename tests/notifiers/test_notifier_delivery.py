"""deliver() and send_test() end to end: a real SMTP server (aiosmtpd) and a real HTTP
endpoint behind Apprise's json:// — no patching of Apprise."""

from __future__ import annotations

import logging
import threading

import pytest

from notifiers.config import NotifierConfig, parse_config
from notifiers.deliver import NO_CHANNEL, ChannelResult, deliver, mask_secrets, send_test


TITLE = "【紧急 urgent】广州某某科技 · 某某小店 · 工信部短信核验：剩余 4 小时"
BODY = "剩余 4 小时：工信部短信核验（第 1 轮）\n截止：2026-10-10 14:30 北京时间\n\n4 hours left: MIIT 12381 SMS verification"


def config(*channels: tuple[str, str, list[str]], fallback: str | None = None) -> NotifierConfig:
    return parse_config(
        {"channels": [{"name": n, "url": u, "tags": t} for n, u, t in channels], "fallback_tag": fallback}
    )


def test_email_arrives_at_a_real_smtp_server_with_chinese_intact(smtp_server):
    cfg = config(("ops-mail", smtp_server.url(), ["ops"]))
    results = deliver(cfg, ["ops"], TITLE, BODY)
    assert results == [ChannelResult("ops-mail", True, None)]
    [msg] = smtp_server.inbox.messages
    assert msg["Subject"] == TITLE
    assert msg["To"] == "ops@example.com"
    assert msg.get_content_type() == "text/plain"
    text = smtp_server.inbox.text_of(msg).replace("\r\n", "\n")
    assert "剩余 4 小时：工信部短信核验（第 1 轮）" in text
    assert "2026-10-10 14:30 北京时间" in text
    assert "4 hours left: MIIT 12381 SMS verification" in text
    assert smtp_server.inbox.envelopes[0].rcpt_tos == ["ops@example.com"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_with_login_works_and_a_wrong_password_fails_without_leaking_it(smtp_auth_server):
    srv = smtp_auth_server
    good = srv.url(user=srv.user, password=srv.password)
    bad = srv.url(user=srv.user, password="wrong-Pa55-guess")
    cfg = config(("mail-good", good, ["ops"]), ("mail-bad", bad, ["ops"]))
    results = {r.name: r for r in deliver(cfg, ["ops"], TITLE, BODY)}
    assert results["mail-good"].ok is True
    assert results["mail-bad"].ok is False
    err = results["mail-bad"].error
    assert err and "wrong-Pa55-guess" not in err and srv.password not in err
    assert "127.0.0.1" in err  # the reason is still useful
    assert len(smtp_auth_server.inbox.messages) == 1


def test_json_endpoint_receives_the_payload(http_endpoint):
    cfg = config(("ops-phone", http_endpoint.url("/sms"), ["ops", "manager"]))
    results = deliver(cfg, ["manager"], TITLE, BODY, notify_type="urgent")
    assert results == [ChannelResult("ops-phone", True, None)]
    [(path, payload)] = http_endpoint.received
    assert path == "/sms"
    assert payload["title"] == TITLE
    assert payload["message"] == BODY
    assert payload["type"] == "failure"  # urgent -> Apprise's failure type
    assert payload["version"] == "1.0"


def test_each_channel_has_its_own_result_and_one_failure_does_not_stop_the_others(smtp_server, http_endpoint, free_port):
    down = f"json://127.0.0.1:{free_port()}/sms"  # nothing listens there
    cfg = config(
        ("ops-mail", smtp_server.url(), ["ops"]),
        ("ops-phone-down", down, ["ops"]),
        ("ops-phone", http_endpoint.url(), ["ops"]),
        ("designers", http_endpoint.url("/design"), ["design"]),
    )
    results = deliver(cfg, ["ops"], TITLE, BODY)
    assert [(r.name, r.ok) for r in results] == [("ops-mail", True), ("ops-phone-down", False), ("ops-phone", True)]
    assert "Connection" in results[1].error  # Apprise's own log text, captured
    assert len(smtp_server.inbox.messages) == 1
    assert [p for p, _ in http_endpoint.received] == ["/sms"]  # the design channel was not for these tags


def test_http_error_status_is_a_failure_with_the_status_in_the_error(http_endpoint):
    http_endpoint.status = 503
    cfg = config(("ops-phone", http_endpoint.url(), ["ops"]))
    [result] = deliver(cfg, ["ops"], TITLE, BODY)
    assert result.ok is False
    assert "503" in result.error


def test_skip_leaves_out_channels_that_already_have_the_message(smtp_server, http_endpoint):
    cfg = config(("ops-mail", smtp_server.url(), ["ops"]), ("ops-phone", http_endpoint.url(), ["ops"]))
    results = deliver(cfg, ["ops"], TITLE, BODY, skip={"ops-mail"})
    assert [r.name for r in results] == ["ops-phone"]
    assert smtp_server.inbox.messages == []


def test_no_channel_for_the_tags_is_a_clear_result_not_silence(http_endpoint):
    cfg = config(("ops-phone", http_endpoint.url(), ["ops"]))
    [result] = deliver(cfg, ["client-c-42"], TITLE, BODY)
    assert result.name == NO_CHANNEL and result.ok is False
    assert "client-c-42" in result.error and "没有任何渠道" in result.error and "no channel" in result.error
    assert http_endpoint.received == []


def test_send_test_reaches_each_channel_and_reports_each(smtp_server, http_endpoint, free_port):
    down = f"json://127.0.0.1:{free_port()}/sms"
    cfg = config(
        ("ops-mail", smtp_server.url(), ["ops"]),
        ("ops-phone", http_endpoint.url(), ["ops", "manager"]),
        ("backup-phone", down, ["manager"]),
    )
    results = send_test(cfg)
    assert [(r.name, r.ok) for r in results] == [("ops-mail", True), ("ops-phone", True), ("backup-phone", False)]
    assert "测试消息" in smtp_server.inbox.messages[0]["Subject"]
    assert "ops-phone" in http_endpoint.messages[0]["title"]

    only_manager = send_test(cfg, tag="manager")
    assert [r.name for r in only_manager] == ["ops-phone", "backup-phone"]
    [none] = send_test(cfg, tag="nobody")
    assert none.name == NO_CHANNEL and not none.ok


def test_capture_does_not_change_the_apprise_logger_for_others(http_endpoint):
    logger = logging.getLogger("apprise")
    before = (logger.level, list(logger.filters))
    cfg = config(("ops-phone", http_endpoint.url(), ["ops"]))
    deliver(cfg, ["ops"], TITLE, BODY)
    assert (logger.level, list(logger.filters)) == before


def test_concurrent_deliveries_keep_their_own_errors(http_endpoint, free_port):
    down_port = free_port()
    cfg_ok = config(("ok-phone", http_endpoint.url(), ["ops"]))
    cfg_down = config(("down-phone", f"json://127.0.0.1:{down_port}/sms", ["ops"]))
    out: dict[str, list[ChannelResult]] = {}

    def run(key, cfg):
        out[key] = [r for _ in range(5) for r in deliver(cfg, ["ops"], TITLE, BODY)]

    threads = [threading.Thread(target=run, args=("ok", cfg_ok)), threading.Thread(target=run, args=("down", cfg_down))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok and r.error is None for r in out["ok"])
    assert all(not r.ok and str(down_port) in r.error for r in out["down"])
    assert len(http_endpoint.received) == 5


def test_mask_secrets_removes_tokens_credentials_and_personal_data():
    from notifiers.config import Channel

    ch = Channel("wecom", "wecombot://AbCdEf0123456789TOKEN", ("ops",))
    text = "failed for wecombot://AbCdEf0123456789TOKEN key=abc123 mailto://u:pw@h phone 13812345678"
    masked = mask_secrets(text, ch)
    assert "AbCdEf0123456789TOKEN" not in masked
    assert "abc123" not in masked and "u:pw@" not in masked
    assert "13812345678" not in masked and "138****5678" in masked
