"""`weapp-launch health` lines that need no Prefect: the push mode and each alert channel."""

from __future__ import annotations

import pytest

from launch.app.health import _channels, _wechat_push
from tests.support.resources import make_resources


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("WEAPP_LAUNCH_NOTIFIERS_FILE", raising=False)
    monkeypatch.delenv("WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT", raising=False)
    return tmp_path


def _res(home, **settings):
    return make_resources(home / "home", database_url=f"sqlite:///{home / 'store.db'}", **settings)


def test_plaintext_pushes_are_flagged(home):
    assert _wechat_push(_res(home)).ok
    line = _wechat_push(_res(home, wechat_allow_plaintext=True))
    assert not line.ok and "WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT" in line.detail and " / " in line.detail


def test_a_dead_channel_and_its_waiting_alerts_fail_health(home):
    notifiers = home / "notifiers.yaml"
    notifiers.write_text(
        "channels:\n"
        "  - {name: ops-mail, url: 'mailto://alerts:pw@example.com?smtp=127.0.0.1&port=9&to=ops@example.com', tags: [ops]}\n"
        "  - {name: manager-phone, url: 'json://127.0.0.1:9/send', tags: [manager]}\n"
    )
    res = _res(home, notifiers_file=notifiers)
    try:
        lines = {c.part: c for c in _channels(res)}
        assert lines["alerts"].ok and all(c.ok for c in lines.values()), lines
        assert {"alerts:ops-mail", "alerts:manager-phone"} <= set(lines)

        store = res.store
        now = res.now()
        for _ in range(3):  # the default breaker: three failures in a row take the channel down
            store.record_channel_result("ops-mail", False, at=now, error="connection refused", trip_after=3,
                                        probe_seconds=300)
        lines = {c.part: c for c in _channels(res)}
        assert not lines["alerts:ops-mail"].ok and lines["alerts:manager-phone"].ok
    finally:
        res.close()
