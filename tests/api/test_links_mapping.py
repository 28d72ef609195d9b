"""Pure parts: signed staff links and the push -> gate mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launch.domain.forms import validate_form
from launch.links import LinkError, make_token, staff_link, verify_token
from launch.wechat.events import (
    AuditDelay,
    AuditFail,
    AuditSuccess,
    FastRegisterResult,
    IcpFilingResult,
    IcpVerifyResult,
    UnknownEvent,
)
from launch.wechat.mapping import DECIDED_BY, decisions_for, note_for, plan_for

KEY = b"k" * 32
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_token_round_trip_and_refusals():
    token = make_token("l-0123456789", "bureau-review", NOW + timedelta(hours=72), KEY)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert verify_token(token, "l-0123456789", "bureau-review", NOW, KEY) == NOW + timedelta(hours=72)
    cases = [
        ((token, "l-0123456789", "bureau-review", NOW + timedelta(hours=72), KEY), "expired-token"),
        ((token, "l-9999999999", "bureau-review", NOW, KEY), "wrong-launch-or-gate"),
        ((token, "l-0123456789", "first-review", NOW, KEY), "wrong-launch-or-gate"),
        ((token, "l-0123456789", "bureau-review", NOW, b"x" * 32), "bad-token-signature"),
        ((token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "l-0123456789", "bureau-review", NOW, KEY),
         "bad-token-signature"),
        (("", "l-0123456789", "bureau-review", NOW, KEY), "malformed-token"),
        ((None, "l-0123456789", "bureau-review", NOW, KEY), "malformed-token"),
        (("a.b.c", "l-0123456789", "bureau-review", NOW, KEY), "malformed-token"),
    ]
    for args, reason in cases:
        with pytest.raises(LinkError) as err:
            verify_token(*args)
        assert err.value.reason == reason and " / " in err.value.message


def test_token_cannot_be_rebound():
    token = make_token("l-0123456789", "content", NOW + timedelta(hours=1), KEY)
    import base64

    body, sig = token.split(".")
    forged_body = base64.urlsafe_b64encode(b"l-0123456789|release|9999999999").rstrip(b"=").decode()
    with pytest.raises(LinkError) as err:
        verify_token(f"{forged_body}.{sig}", "l-0123456789", "release", NOW, KEY)
    assert err.value.reason == "bad-token-signature"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_verify_token_only_raises_link_error(garbage):
    with pytest.raises(LinkError):
        verify_token(garbage, "l-0123456789", "content", NOW, KEY)


def test_staff_link():
    class S:
        public_url = "https://receiver.example.com/"
        link_ttl_hours = 72

        @staticmethod
        def link_key():
            return KEY

    link = staff_link("l-0123456789", "content", S, NOW)
    assert link.startswith("https://receiver.example.com/gates/l-0123456789/content?token=")
    token = link.split("token=", 1)[1]
    assert verify_token(token, "l-0123456789", "content", NOW + timedelta(hours=71), KEY)
    with pytest.raises(LinkError):
        verify_token(token, "l-0123456789", "content", NOW + timedelta(hours=72), KEY)


# --- mapping --------------------------------------------------------------------------

GH = "gh_fb9688c2a4b2"
WX = "wx0123456789abcdef"


def audit_fail(reason="", shots="a|b"):
    return AuditFail.from_fields({"ToUserName": GH, "FailTime": "1", "Reason": reason, "ScreenShot": shots})


def filing(status, sms=None):
    f = {"authorizer_appid": WX, "beian_status": status}
    if sms is not None:
        f["sms_verify_status"] = sms
    return IcpFilingResult.from_fields(f)


def fast(status, appid=WX, msg=None):
    return FastRegisterResult.from_fields({"appid": appid, "status": status, "msg": msg, "info": {"code": "X"}})


CASES = [
    (AuditSuccess.from_fields({"ToUserName": GH, "SuccTime": "1"}), [("code-review", "passed")]),
    (audit_fail("不符合规范"), [("code-review", "failed")]),
    (AuditDelay.from_fields({"ToUserName": GH, "DelayTime": "1"}), []),
    (fast(0), [("fast-registration", "succeeded")]),
    (fast(89249, appid=None, msg="任务执行中"), [("fast-registration", "failed")]),
    (IcpVerifyResult.from_fields({"task_id": "t", "verify_appid": WX, "result": 3}), [("face-verification", "passed")]),
    (IcpVerifyResult.from_fields({"task_id": "t", "verify_appid": WX, "result": 2}), [("face-verification", "failed")]),
    (filing(2), []),
    (filing(3), [("first-review", "rejected")]),
    (filing(4), [("first-review", "passed")]),
    (filing(4, 1), [("first-review", "passed")]),
    (filing(4, 2), [("first-review", "passed"), ("sms-verification", "verified")]),
    (filing(4, 3), [("first-review", "passed"), ("sms-verification", "timed_out")]),
    (filing(5), [("bureau-review", "rejected")]),
    (filing(6), []),
    (filing(1024), []),
    (filing(1030), []),
    (UnknownEvent(raw_type="component_verify_ticket", fields={}), []),
]


@pytest.mark.parametrize("event,expected", CASES, ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(CASES)])
def test_mapping(event, expected):
    got = decisions_for(event)
    assert [(g, d["outcome"]) for g, d in got] == expected
    for gate, data in got:
        assert data["decided_by"] == DECIDED_BY
        validate_form(gate, data)  # every mapped decision passes its gate's form
    if not expected and not isinstance(event, UnknownEvent):
        assert note_for(event)
    if isinstance(event, UnknownEvent):
        assert plan_for(event).acted_on is False


def test_mapping_details():
    (gate, data), = decisions_for(audit_fail("", "m1|m2"))
    assert data["reason"] and data["screenshots"] == ["m1", "m2"]  # no reason from WeChat still passes the form
    (gate, data), = decisions_for(audit_fail("长" * 3000))
    validate_form(gate, data)
    (gate, data), = decisions_for(fast(89249, appid=None, msg="任务执行中"))
    assert data["reason"] == "任务执行中"
    (gate, data), = decisions_for(fast(0))
    assert data["appid"] == WX
    (gate, data), = decisions_for(filing(5))
    assert data["reason"] == "管局驳回，详见备案平台 / rejected by the bureau, see the filing platform"
    assert "备案号" in note_for(filing(6)) and decisions_for(filing(6)) == []
    assert [lk.by for lk in plan_for(fast(0)).lookups][0] == "credit_code"
