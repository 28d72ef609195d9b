"""No usable component_verify_ticket — a new install, or the receiver missed WeChat's pushes for
longer than a ticket lives (12 h) — and the platform asks WeChat to start pushing them again
(api_start_push_ticket, WeChat's startPushTicket), at most once per 10-minute window across
processes. Against the stand-in over real HTTP, its ticket pushed (signed, AES-encrypted) to a
real receiver on uvicorn, which keeps it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from launch.wechat.platform.errors import WeChatApiError
from launch.wechat.platform.tokens import NoVerifyTicket, PlatformTokens, remember_ticket
from tests.support.standin import COMPONENT_APPID, SECRET, standin_receiver  # noqa: F401  (fixture)

START = "/cgi-bin/component/api_start_push_ticket"


@pytest.fixture
def tokens(standin_receiver):
    http = httpx.Client(timeout=10)
    t = PlatformTokens(standin_receiver.res.store, component_appid=COMPONENT_APPID, component_secret=SECRET,
                       base_url=standin_receiver.standin.url, http=http, poll_seconds=0.02)
    yield t
    http.close()


def wait_for_ticket(store, *, other_than: str | None = None, seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = store.component_state()
        if state is not None and state.ticket and state.ticket != other_than:
            return state.ticket
        time.sleep(0.05)
    raise AssertionError("no (new) ticket reached the receiver")


def test_no_ticket_asks_wechat_to_push_and_the_pushed_one_works(standin_receiver, tokens):
    standin = standin_receiver.standin
    with pytest.raises(NoVerifyTicket):
        tokens.component_token()
    assert standin.calls(START) == 1
    wait_for_ticket(standin_receiver.res.store)  # WeChat's push, through the receiver
    assert tokens.component_token()
    # asked once: a second caller in the same window does not ask again
    assert tokens.ask_for_tickets() is False
    assert standin.calls(START) == 1


def test_a_ticket_wechat_no_longer_takes_asks_for_new_ones(standin_receiver, tokens):
    """The receiver missed WeChat's pushes (down for hours): the ticket it kept is refused (61006,
    or 61005 once 12 h old); the platform asks WeChat to push again, once, and the next ticket
    that reaches the receiver works."""
    standin, store = standin_receiver.standin, standin_receiver.res.store
    stale = "ticket@@@kept-before-the-outage"
    remember_ticket(store, stale, datetime.now(UTC), component_appid=COMPONENT_APPID)
    with pytest.raises(WeChatApiError) as refused:
        tokens.component_token()
    assert refused.value.errcode == 61006
    assert standin.calls(START) == 1
    wait_for_ticket(store, other_than=stale)
    assert tokens.component_token()
    assert standin.calls(START) == 1


def test_a_refused_request_is_logged_by_type_and_asked_again_next_window(standin_receiver, caplog):
    standin = standin_receiver.standin
    clock = [datetime(2026, 12, 2, 9, 0, tzinfo=UTC)]
    with httpx.Client(timeout=10) as http:
        wrong = PlatformTokens(standin_receiver.res.store, component_appid=COMPONENT_APPID,
                               component_secret="not-the-secret", base_url=standin.url, http=http,
                               now=lambda: clock[0])
        assert wrong.ask_for_tickets() is False  # 40125: WeChat refused the secret
        assert standin.calls(START) == 1
        assert "not-the-secret" not in caplog.text
        assert wrong.ask_for_tickets() is False  # same window: not asked again
        clock[0] += timedelta(minutes=10)
        wrong.ask_for_tickets()
        assert standin.calls(START) == 2
