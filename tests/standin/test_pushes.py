"""The stand-in's pushes reach a running receiver (signed, AES-encrypted, in its inbox); a
dropped one does not; an unanswered one is retried like WeChat."""

from __future__ import annotations

import pytest

from tests.support.standin import start_standin


def kinds(inbox) -> list[str]:
    return [row.kind for row in inbox]


def test_ticket_and_authorisation_pushes_land_in_the_inbox(standin_receiver):
    s = standin_receiver.standin
    s.ticket()
    app = s.authorized("wx0123456789abcdef")
    pushes = s.pushes()
    assert [p["status"] for p in pushes] == ["sent"] * len(pushes) and len(pushes) >= 3
    assert all(p["http_status"] == 200 and p["attempts"] == 1 for p in pushes)
    rows = standin_receiver.inbox()
    assert len(rows) == len(pushes)  # every ticket and the `authorized` push, each once
    payloads = " ".join(str(r.payload) for r in rows)
    assert "component_verify_ticket" in payloads and "authorized" in payloads
    assert app.appid in payloads


def test_review_and_filing_pushes_reach_their_urls(standin_receiver):
    s = standin_receiver.standin
    app = s.authorized("wx00000000000000aa")
    s.call("/wxa/commit", app.token, {"template_id": 1, "ext_json": "{}", "user_version": "1.0.0", "user_desc": ""})
    s.call("/wxa/submit_audit", app.token, {})
    s.call("/wxa/icp/create_icp_verifytask", app.token, content=b"")
    s.advance()
    sent = {p["kind"]: p for p in s.pushes()}
    assert sent["weapp_audit_success"]["path"] == f"/wechat/{app.appid}/events"
    assert sent["notify_icpfiling_verify_result"]["path"] == "/wechat/auth"
    assert all(p["status"] == "sent" for p in sent.values())
    got = kinds(standin_receiver.inbox())
    assert "audit_success" in got and "icp_verify_result" in got


def test_a_dropped_push_never_arrives(standin_receiver):
    s = standin_receiver.standin
    app = s.authorized("wx00000000000000bb")
    s.control("drop", kind="weapp_audit_success", appid=app.appid)
    s.call("/wxa/commit", app.token, {"template_id": 1, "ext_json": "{}", "user_version": "1.0.0", "user_desc": ""})
    s.call("/wxa/submit_audit", app.token, {})
    s.advance()
    dropped = s.pushes("weapp_audit_success")
    assert [p["status"] for p in dropped] == ["dropped"] and dropped[0]["attempts"] == 0
    assert "audit_success" not in kinds(standin_receiver.inbox())
    # WeChat's state moved on all the same: only a poll finds out
    assert s.call("/wxa/get_latest_auditstatus", app.token)["status"] == 0
    before = len(standin_receiver.inbox())
    s.control("drop")  # the next push of any kind
    s.ticket()
    assert len(standin_receiver.inbox()) == before


def test_pushes_are_retried_when_the_receiver_does_not_answer_success():
    client = start_standin(receiver_url="http://127.0.0.1:9", push_attempts=3, push_retry_delay=0.01,
                           push_timeout=1.0)
    try:
        client.ticket()
        [push] = client.pushes("component_verify_ticket")
        assert push["status"] == "failed" and push["attempts"] == 3
    finally:
        client.close()


@pytest.mark.parametrize("standin_config", [{"ticket_every": 0.3}], indirect=True)
def test_tickets_every_n_seconds(standin_receiver):
    import time

    deadline = time.monotonic() + 10
    while len(standin_receiver.standin.pushes("component_verify_ticket")) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    standin_receiver.standin.control("flush")
    assert len(standin_receiver.inbox()) >= 3
