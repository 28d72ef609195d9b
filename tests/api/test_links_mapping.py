"""Pure parts: signed staff links and the push -> gate mapping."""

from __future__ import annotations

from launch.domain.catalogue import default_catalogue

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launch.app import FixedClock, Resources
from launch.app.links import (
    DEAD_LINK_TEXT,
    LinkClaims,
    LinkError,
    check_live,
    link_placeholder,
    make_token,
    render_links,
    staff_link,
    verify_token,
)
from launch.domain.link_keys import LinkKeys
from launch.wechat.events import (
    AuditDelay,
    AuditFail,
    AuditSuccess,
    FastRegisterResult,
    IcpFilingResult,
    IcpVerifyResult,
    NicknameAudit,
    UnknownEvent,
)
from launch.wechat.mapping import DECIDED_BY, decisions_for, note_for, plan_for

KEY = b"k" * 32
KEYS = LinkKeys([("k1", KEY)])
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
L = "l-0123456789"


def test_token_round_trip_and_refusals():
    token = make_token(L, "bureau-review", 2, NOW + timedelta(hours=72), KEYS)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert token.startswith("k1.") and token.count(".") == 2
    claims = verify_token(token, L, "bureau-review", NOW, KEYS)
    assert claims == LinkClaims(L, "bureau-review", 2, NOW + timedelta(hours=72), "k1")
    cases = [
        ((token, L, "bureau-review", NOW + timedelta(hours=72), KEYS), "expired-token"),
        ((token, "l-9999999999", "bureau-review", NOW, KEYS), "wrong-launch-or-gate"),
        ((token, L, "first-review", NOW, KEYS), "wrong-launch-or-gate"),
        ((token, L, "bureau-review", NOW, LinkKeys([("k1", b"x" * 32)])), "bad-token-signature"),
        ((token, L, "bureau-review", NOW, LinkKeys([("k2", KEY)])), "unknown-link-key"),
        ((token[:-2] + ("AA" if token[-2:] != "AA" else "BA"), L, "bureau-review", NOW, KEYS),
         "bad-token-signature"),
        (("", L, "bureau-review", NOW, KEYS), "malformed-token"),
        ((None, L, "bureau-review", NOW, KEYS), "malformed-token"),
        (("a.b", L, "bureau-review", NOW, KEYS), "malformed-token"),
        (("a.b.c.d", L, "bureau-review", NOW, KEYS), "malformed-token"),
    ]
    for args, reason in cases:
        with pytest.raises(LinkError) as err:
            verify_token(*args)
        assert err.value.reason == reason and " / " in err.value.message


def test_token_cannot_be_rebound():
    import base64

    token = make_token(L, "content", 1, NOW + timedelta(hours=1), KEYS)
    kid, body, sig = token.split(".")
    for forged in (f"{L}|release|1|9999999999", f"{L}|content|2|9999999999", f"{L}|content|1|9999999999"):
        forged_body = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode()
        gate = forged.split("|")[1]
        with pytest.raises(LinkError) as err:
            verify_token(f"{kid}.{forged_body}.{sig}", L, gate, NOW, KEYS)
        assert err.value.reason == "bad-token-signature"
    # the key id is signed too: the same signature under another listed key id fails
    two = LinkKeys([("k2", KEY), ("k1", KEY)])
    with pytest.raises(LinkError) as err:
        verify_token(f"k2.{body}.{sig}", L, "content", NOW, two)
    assert err.value.reason == "bad-token-signature"


def test_base64_is_decoded_strictly():
    token = make_token(L, "content", 1, NOW + timedelta(hours=1), KEYS)
    kid, body, sig = token.split(".")
    assert verify_token(token, L, "content", NOW, KEYS).attempt == 1
    # a canonical signature's last character carries spare bits; flipping only those keeps the bytes
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(sig[-1])
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    bad = [
        f"{kid}.{body}=.{sig}",  # padding
        f"{kid}.{body}.{sig}=",
        f"{kid}.{body}.{sig[:-1]}{sibling}",  # same bytes, non-canonical trailing bits
        f"{kid}.{body} .{sig}",  # stray characters
        f"{kid}.{body}.{sig[:10]}+{sig[11:]}",  # the other alphabet
        f"{kid}.{body}.{sig[:10]}/{sig[11:]}",
        f"{kid}.{body}\n.{sig}",
        f"{kid}.{body}A.{sig}",  # a length no base64 has (44 + 1 characters)
        f"k 1.{body}.{sig}",  # a key id outside its alphabet
    ]
    assert len(body) % 4 == 0
    for candidate in bad:
        with pytest.raises(LinkError) as err:
            verify_token(candidate, L, "content", NOW, KEYS)
        assert err.value.reason == "malformed-token", candidate


def test_rotation_newest_signs_older_listed_keys_verify():
    old = LinkKeys([("k1", b"o" * 32)])
    token_old = make_token(L, "content", 1, NOW + timedelta(hours=1), old)
    rotated = LinkKeys.parse("k2:" + "n" * 32 + ", k1:" + "o" * 32)
    assert rotated.signing_kid == "k2" and rotated.kids == ("k2", "k1")
    assert verify_token(token_old, L, "content", NOW, rotated).kid == "k1"  # still good
    token_new = make_token(L, "content", 1, NOW + timedelta(hours=1), rotated)
    assert token_new.startswith("k2.")
    dropped = LinkKeys.parse("k2:" + "n" * 32)
    assert verify_token(token_new, L, "content", NOW, dropped).kid == "k2"
    with pytest.raises(LinkError) as err:
        verify_token(token_old, L, "content", NOW, dropped)
    assert err.value.reason == "unknown-link-key"
    assert "n" * 32 not in repr(rotated)


@pytest.mark.parametrize("text", ["", "k1", "k1:short", "k 1:" + "x" * 32, "k1:" + "x" * 32 + ",k1:" + "y" * 32,
                                  "averyveryverylongkid:" + "x" * 32])
def test_bad_link_secrets_are_refused(text):
    with pytest.raises(ValueError):
        LinkKeys.parse(text)


def test_link_secrets_file_format():
    keys = LinkKeys.parse("# rotated 2026-03\nk2:" + "n" * 32 + "\n\nk1:" + "o" * 32 + "\n")
    assert keys.kids == ("k2", "k1")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_verify_token_only_raises_link_error(garbage):
    with pytest.raises(LinkError):
        verify_token(garbage, L, "content", NOW, KEYS)


class S:
    public_url = "https://receiver.example.com/"
    link_ttl_hours = 72

    @staticmethod
    def link_keys():
        return KEYS


def res(store=None, at=NOW) -> Resources:
    """Resources with these link settings, a clock at `at` and (for liveness) `store`."""
    return Resources(settings=S, clock=FixedClock(at), _store=store)


def test_staff_link():
    link = staff_link(res(), L, "content", 3)
    assert link == staff_link(res(at=NOW - timedelta(days=1)), L, "content", 3, NOW)  # `now` given wins
    assert link.startswith("https://receiver.example.com/gates/l-0123456789/content?token=")
    token = link.split("token=", 1)[1]
    assert verify_token(token, L, "content", NOW + timedelta(hours=71), KEYS).attempt == 3
    with pytest.raises(LinkError):
        verify_token(token, L, "content", NOW + timedelta(hours=72), KEYS)


def test_placeholder_is_rendered_fresh_at_each_send():
    text = f"处理链接（已签名）：{link_placeholder(L, 'content', 2)}\nAction link (signed): {link_placeholder(L, 'content', 2)}"
    assert "token=" not in text
    first = render_links(res(), text, live=False)
    later = render_links(res(), text, NOW + timedelta(hours=5), live=False)
    assert first.count("?token=") == 2 and first != later
    token = later.splitlines()[0].split("token=", 1)[1]
    claims = verify_token(token, L, "content", NOW + timedelta(hours=76), KEYS)
    assert claims.attempt == 2 and claims.expires_at == NOW + timedelta(hours=77)


def test_legacy_link_is_reissued_for_the_attempt_of_its_alert():
    old = "处理链接（已签名）：https://r.example.com/gates/l-0123456789/content?token=bC0xMjM.c2ln\nend"
    out = render_links(res(), old, NOW, live=False, dedupe_key=f"{L}:content:2:notice")
    token = out.splitlines()[0].split("token=", 1)[1]
    assert verify_token(token, L, "content", NOW, KEYS).attempt == 2 and out.endswith("\nend")
    assert "token=" not in render_links(res(), old, NOW, live=False, dedupe_key="something-else")


def test_dead_attempt_renders_a_note_not_a_link():
    class Step:
        def __init__(self, attempt, is_open):
            self.attempt, self.is_open = attempt, is_open

    class Store:
        def __init__(self, decided=None, latest=None):
            self.decided, self.latest = decided, latest

        def get_decision(self, launch_id, gate, attempt):
            return self.decided if attempt == 1 else None

        def latest_step(self, launch_id, gate):
            return self.latest

    text = link_placeholder(L, "content", 1)
    assert "token=" in render_links(res(Store(latest=Step(1, True))), text, NOW)
    for store, reason in ((Store(decided=object(), latest=Step(1, True)), "link-used"),
                          (Store(latest=Step(2, True)), "stale-attempt"),
                          (Store(latest=Step(1, False)), "stale-attempt"),
                          (Store(latest=None), "stale-attempt")):
        assert render_links(res(store), text, NOW) == DEAD_LINK_TEXT
        with pytest.raises(LinkError) as err:
            check_live(store, L, "content", 1)
        assert err.value.reason == reason and " / " in err.value.message


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
    (NicknameAudit.from_fields({"ToUserName": GH, "ret": "3"}), []),  # the profile action decides (inbox)
    (fast(0), [("subject-info", "submitted")]),  # the legal person's face-check path, not reuse
    (fast(89249, appid=None, msg="任务执行中"), []),
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
    assert plan_for(event).name_reviewed == isinstance(event, NicknameAudit)
    for gate, data in got:
        assert data["decided_by"] == DECIDED_BY
        default_catalogue().validate_form(gate, data)  # every mapped decision passes its gate's form
    if not expected and not isinstance(event, UnknownEvent):
        assert note_for(event)
    if isinstance(event, UnknownEvent):
        assert plan_for(event).acted_on is False


def test_mapping_details():
    (gate, data), = decisions_for(audit_fail("", "m1|m2"))
    assert data["reason"] and data["screenshots"] == ["m1", "m2"]  # no reason from WeChat still passes the form
    (gate, data), = decisions_for(audit_fail("长" * 3000))
    default_catalogue().validate_form(gate, data)
    assert decisions_for(fast(89249, appid=None, msg="任务执行中")) == []
    assert "任务执行中" in note_for(fast(89249, appid=None, msg="任务执行中"))
    (gate, data), = decisions_for(fast(0))
    assert gate == "subject-info" and data["appid"] == WX
    default_catalogue().validate_form(gate, data)
    (gate, data), = decisions_for(filing(5))
    assert data["reason"] == "管局驳回，详见备案平台 / rejected by the bureau, see the filing platform"
    assert "备案号" in note_for(filing(6)) and decisions_for(filing(6)) == []
    assert [lk.by for lk in plan_for(fast(0)).lookups][0] == "credit_code"
