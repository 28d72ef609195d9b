"""WeChat pushes over real HTTP against a running receiver and a real store."""

from __future__ import annotations

import base64
import random
import socket
import time
from datetime import timedelta

import pytest

from launch.wechat.crypto import PushCrypto
from launch.wechat.events import parse_event, to_json, to_xml
from launch.wechat.mapping import DECIDED_BY
from tests.api.conftest import AES_KEY, COMPONENT_APPID, TOKEN, counts, current, wait_applied
from tests.support.intakes import fresh_credit_code


def now_ts() -> int:
    return int(time.time())


# --- URL verification -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/wechat/auth", "/wechat/wx0123456789abcdef/events"])
def test_url_verification_echoes(receiver, path):
    ts, nonce = str(now_ts()), receiver.nonce()
    params = {"signature": receiver.crypto.signature(ts, nonce), "timestamp": ts, "nonce": nonce,
              "echostr": "4815162342"}
    r = receiver.client.get(receiver.url + path, params=params)
    assert r.status_code == 200
    assert r.text == "4815162342"
    assert r.headers["content-type"].startswith("text/plain")
    r = receiver.client.get(receiver.url + path, params={**params, "signature": "0" * 40})
    assert r.status_code == 401 and r.json()["error"] == "bad-signature"
    r = receiver.client.get(receiver.url + path, params={**params, "timestamp": str(now_ts() - 3600)})
    assert r.status_code == 401 and r.json()["error"] == "stale-timestamp"
    # the verification burnt its nonce: the same request again is a replay
    r = receiver.client.get(receiver.url + path, params=params)
    assert r.status_code == 409 and r.json()["error"] == "replayed-nonce"


# --- every kind, XML and JSON, plaintext and AES -----------------------------------------


def audit_success(made):
    return {"ToUserName": made.original_id, "FromUserName": "od1P50M", "CreateTime": now_ts(), "MsgType": "event",
            "Event": "weapp_audit_success", "SuccTime": now_ts()}


def audit_fail(made):
    return {"ToUserName": made.original_id, "FromUserName": "od1P50M", "CreateTime": now_ts(), "MsgType": "event",
            "Event": "weapp_audit_fail", "Reason": "1:账号信息不符合规范:<br>(1):包含色情因素<br>",
            "FailTime": now_ts(), "ScreenShot": "media1|media2"}


def audit_delay(made):
    return {"ToUserName": made.original_id, "CreateTime": now_ts(), "MsgType": "event",
            "Event": "weapp_audit_delay", "DelayTime": now_ts()}


def fast_ok(made):
    return {"AppId": COMPONENT_APPID, "CreateTime": now_ts(), "InfoType": "notify_third_fasteregister",
            "appid": made.appid, "status": 0, "auth_code": "secret-auth-code", "msg": "OK",
            "info": {"name": "测试公司", "code": made.credit_code, "code_type": 1,
                     "legal_persona_wechat": "zhangsan_wx", "legal_persona_name": "张三"}}


def fast_fail(made):
    return {**fast_ok(made), "appid": "", "status": 89249, "msg": "该主体已有任务执行中，距上次任务24h后再试"}


def icp_verify(result):
    def build(made):
        return {"AppId": COMPONENT_APPID, "CreateTime": now_ts(), "InfoType": "notify_icpfiling_verify_result",
                "task_id": f"task-{made.launch_id}", "verify_appid": made.appid, "result": result}
    return build


def icp_filing(status, sms=None):
    def build(made):
        fields = {"AppId": COMPONENT_APPID, "CreateTime": now_ts(), "InfoType": "notify_apply_icpfiling_result",
                  "authorizer_appid": made.appid, "beian_status": status}
        if sms is not None:
            fields["sms_verify_status"] = sms
        return fields
    return build


def unknown(made):
    return {"AppId": COMPONENT_APPID, "CreateTime": now_ts(), "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": f"ticket@@@{made.launch_id}"}


# name -> (builder, launch path, route kind, expected result, {gate: outcome})
CASES = {
    "audit_success": (audit_success, "standalone", "message", "applied", {"code-review": "passed"}),
    "audit_fail": (audit_fail, "standalone", "message", "applied", {"code-review": "failed"}),
    "audit_delay": (audit_delay, "standalone", "message", "noted", {}),
    # notify_third_fasteregister answers the legal person's face-check registration (the
    # standalone platform path), never the reuse path's fast-registration gate
    "fast_ok": (fast_ok, "standalone", "auth", "applied", {"subject-info": "submitted"}),
    "fast_fail": (fast_fail, "reuse_official_account", "auth", "noted", {}),
    "icp_verify_passed": (icp_verify(3), "standalone", "auth", "applied", {"face-verification": "passed"}),
    "icp_verify_failed": (icp_verify(2), "standalone", "auth", "applied", {"face-verification": "failed"}),
    "filing_platform_rejected": (icp_filing(3), "standalone", "auth", "applied", {"first-review": "rejected"}),
    "filing_bureau_review": (icp_filing(4, 1), "standalone", "auth", "applied", {"first-review": "passed"}),
    "filing_sms_done": (icp_filing(4, 2), "standalone", "auth", "applied",
                        {"first-review": "passed", "sms-verification": "verified"}),
    "filing_sms_timeout": (icp_filing(4, 3), "standalone", "auth", "applied",
                           {"first-review": "passed", "sms-verification": "timed_out"}),
    "filing_bureau_rejected": (icp_filing(5), "standalone", "auth", "applied", {"bureau-review": "rejected"}),
    "filing_filed": (icp_filing(6), "standalone", "auth", "noted", {}),
    "filing_platform_review": (icp_filing(2), "standalone", "auth", "noted", {}),
    "filing_not_filed": (icp_filing(1024), "standalone", "auth", "noted", {}),
    "unknown": (unknown, "standalone", "auth", "ignored", {}),
}


@pytest.mark.parametrize("aes", [True, False], ids=["aes", "plain-test-platform"])
@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_event_lands_and_decides(receiver, plain_receiver, make_launch, case, fmt, aes):
    """Plaintext only through the receiver whose settings allow it (a test platform)."""
    builder, path, route, expected, gates = CASES[case]
    sender = receiver if aes else plain_receiver
    with_code = path != "standalone" or case.startswith("fast")
    made = make_launch(path, credit_code=fresh_credit_code(random.Random()) if with_code else None,
                       with_ids=path == "standalone")
    message = builder(made)
    url = f"/wechat/{made.appid}/events" if route == "message" else "/wechat/auth"
    envelope_id = made.original_id if route == "message" else COMPONENT_APPID
    r = sender.push(message, path=url, aes=aes, fmt=fmt, envelope_id=envelope_id,
                    id_element="ToUserName" if route == "message" else "AppId")
    assert r.status_code == 200, r.text
    assert r.text == "success" and r.headers["content-type"].startswith("text/plain")

    store = current().store
    plaintext = to_xml(message) if fmt == "xml" else to_json(message)
    row = wait_applied(parse_event(plaintext).event_key)
    assert row.result == expected, row.error
    assert row.launch_id == (None if expected == "ignored" else made.launch_id)
    history = store.history(made.launch_id)
    assert {d.gate: d.outcome for d in history} == gates
    for d in history:
        assert d.channel == "wechat" and d.actor == DECIDED_BY and d.attempt == 1 and d.inbox_id is not None
        row = store.get_event(d.inbox_id)
        assert row.result == expected and row.launch_id == made.launch_id
    if expected == "noted":
        (row,) = store.events_for(made.launch_id)
        assert row.result == "noted" and row.error
    if case == "audit_fail":
        (d,) = history
        assert d.payload["screenshots"] == ["media1", "media2"] and "色情" in d.payload["reason"]
    if case == "fast_ok":
        (d,) = history
        assert d.payload["appid"] == made.appid
    if case.startswith("fast"):
        # the credit code, legal person and auth code are never stored in the clear
        (row,) = store.events_for(made.launch_id)
        flat = str(row.payload)
        assert made.credit_code not in flat and "张三" not in flat and "secret-auth-code" not in flat
    if case == "unknown":
        assert history == [] and row.kind == "unknown"
        assert f"ticket@@@{made.launch_id}" not in str(row.payload)


def test_audit_found_by_path_appid_when_original_id_unknown(receiver, make_launch):
    made = make_launch()
    store = current().store
    # a launch that knows its appid only (fast registration gives no original id)
    made2 = make_launch(with_ids=False)
    store.set_app_ids(made2.launch_id, appid=made2.appid)
    msg = audit_success(made2)
    r = receiver.push(msg, path=f"/wechat/{made2.appid}/events", envelope_id=made2.original_id)
    assert r.status_code == 200
    wait_applied()
    assert [(d.gate, d.outcome) for d in store.history(made2.launch_id)] == [("code-review", "passed")]
    assert store.history(made.launch_id) == []


def test_push_for_no_launch_is_kept_and_marked(receiver):
    msg = {"ToUserName": "gh_000000000000", "CreateTime": now_ts(), "MsgType": "event",
           "Event": "weapp_audit_success", "SuccTime": now_ts()}
    before = counts()
    r = receiver.push(msg, path="/wechat/wx00000000000000ff/events", envelope_id="gh_000000000000")
    assert r.status_code == 200
    wait_applied()
    after = counts()
    assert after["inbox"] == before["inbox"] + 1 and after["decisions"] == before["decisions"]
    row = current().store.find_event(f"audit_success:gh_000000000000:{msg['SuccTime']}:{msg['CreateTime']}")
    assert row.result == "no-launch" and row.launch_id is None


# --- early pushes, open gates ----------------------------------------------------------


def test_early_push_is_taken_when_the_gate_is_reached(receiver, make_launch):
    made = make_launch()  # no step opened yet
    r = receiver.push(icp_filing(4, 2)(made))
    assert r.status_code == 200
    wait_applied()
    store = current().store
    for gate, outcome in (("first-review", "passed"), ("sms-verification", "verified")):
        decision = store.get_decision(made.launch_id, gate, 1)
        assert decision is not None and decision.outcome == outcome and decision.consumed_at is None
    # the flow reaches the gate later: attempt 1 opens and finds the decision waiting for it
    store.open_step(made.launch_id, "first-review", 1, started_at=current().now())
    from launch.domain.decisions import target_attempt

    assert store.get_decision(made.launch_id, "first-review", 1).channel == "wechat"
    assert target_attempt("first-review", store.steps_for(made.launch_id), store.history(made.launch_id)).attempt is None


def test_push_decides_the_waiting_attempt(receiver, make_launch):
    made = make_launch(steps=[("code-review", 1, "rejected"), ("code-review", 2, "waiting")])
    current().store.record_decision(made.launch_id, "code-review", 1, "failed", "x", "cli", {"reason": "r"})
    current().store.mark_decision_consumed(current().store.get_decision(made.launch_id, "code-review", 1).id)
    r = receiver.push(audit_success(made), path=f"/wechat/{made.appid}/events", envelope_id=made.original_id)
    assert r.status_code == 200
    wait_applied()
    d = current().store.get_decision(made.launch_id, "code-review", 2)
    assert d is not None and d.outcome == "passed" and d.channel == "wechat"


def test_refused_decision_is_recorded_on_the_row(receiver, make_launch):
    # the legal person's face-check registration answers the standalone path's subject-info;
    # on a reuse launch that gate is not on its path -> refused, not raised
    made = make_launch("reuse_official_account", credit_code=fresh_credit_code(random.Random()))
    r = receiver.push(fast_ok(made))
    assert r.status_code == 200
    wait_applied()
    (row,) = current().store.events_for(made.launch_id)
    assert row.result == "refused" and "gate" in row.error
    assert current().store.history(made.launch_id) == []


# --- duplicates and replays ----------------------------------------------------------


def test_duplicate_push_is_a_no_op(receiver, make_launch):
    made = make_launch()
    msg = audit_fail(made)
    path = f"/wechat/{made.appid}/events"
    assert receiver.push(msg, path=path, envelope_id=made.original_id).status_code == 200
    wait_applied()
    before = counts()
    # WeChat retries with a new nonce (and a new ciphertext): acknowledged, nothing new
    assert receiver.push(msg, path=path, envelope_id=made.original_id).text == "success"
    assert receiver.push(msg, path=path, fmt="json", envelope_id=made.original_id).text == "success"
    wait_applied()
    after = counts()
    assert after["inbox"] == before["inbox"] and after["decisions"] == before["decisions"]
    assert len(current().store.history(made.launch_id)) == 1


def test_replayed_nonce_is_refused(receiver, make_launch):
    made = make_launch()
    nonce = receiver.nonce()
    assert receiver.push(icp_verify(3)(made), nonce=nonce).status_code == 200
    wait_applied()
    before = counts()
    other = icp_filing(3)(made)  # another, valid message under the same nonce
    r = receiver.push(other, nonce=nonce)
    assert r.status_code == 409 and r.json()["error"] == "replayed-nonce"
    assert counts() == before
    assert [d.gate for d in current().store.history(made.launch_id)] == ["face-verification"]


# --- refusals change nothing -----------------------------------------------------------


def _refused(receiver, response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message"} and " / " in body["message"]
    if code:
        assert body["error"] == code
    return body


def test_refusals_leave_no_trace(receiver, make_launch):
    made = make_launch(steps=[("code-review", 1, "waiting")])
    path = f"/wechat/{made.appid}/events"
    good = audit_success(made)
    before = counts()
    c = receiver

    # forged signatures
    _refused(c, c.push(good, path=path, tamper={"msg_signature": "f" * 40}), 401, "bad-signature")
    _refused(c, c.push(good, path=path, tamper={"signature": "f" * 40}), 401, "bad-signature")
    _refused(c, c.push(good, path=path, aes=False), 400, "plaintext-refused")
    _refused(c, c.push(good, path=path, tamper={"msg_signature": None}), 401, "bad-signature")
    forger = PushCrypto("another-token", AES_KEY, COMPONENT_APPID)
    _refused(c, c.push(good, path=path, crypto=forger), 401, "bad-signature")
    # stale and future timestamps, missing nonce
    _refused(c, c.push(good, path=path, timestamp=now_ts() - 301), 401, "stale-timestamp")
    _refused(c, c.push(good, path=path, timestamp=now_ts() + 3600), 401, "stale-timestamp")
    _refused(c, c.push(good, path=path, tamper={"timestamp": "soon"}), 401, "stale-timestamp")
    _refused(c, c.push(good, path=path, tamper={"nonce": ""}), 400, "bad-nonce")
    # encrypted for another app id (same token and key, so signature and padding are fine)
    other_app = PushCrypto(TOKEN, AES_KEY, "wx00000000000bad00")
    wrong_app = _refused(c, c.push(good, path=path, crypto=other_app), 400, "undecryptable")
    # a different key: the signature matches, the plaintext does not decrypt; the same answer
    other_key = PushCrypto(TOKEN, base64.b64encode(b"z" * 32).decode().rstrip("="), COMPONENT_APPID)
    assert _refused(c, c.push(good, path=path, crypto=other_key), 400, "undecryptable") == wrong_app
    # the envelope names another mini-program than the message inside
    _refused(c, c.push(good, path=path, envelope_id="gh_999999999999"), 400, "envelope-mismatch")
    # a bad app id in the path
    _refused(c, c.push(good, path="/wechat/not-an-app/events"), 404, "unknown-app")

    assert counts() == before
    assert current().store.history(made.launch_id) == []


MALFORMED = [
    ("<xml><ToUserName>gh_", "malformed-xml"),
    ("<xml><a></b></xml>", "malformed-xml"),
    ('{"Event": "weapp_audit_success", ', "malformed-json"),
    ("[1, 2, 3]", "unsupported-format"),
    ("{\"a\": NaN}", "malformed-json"),
    ("hello", "unsupported-format"),
    ("", "empty-body"),
    ("<xml><MsgType>event</MsgType><Event>weapp_audit_success</Event></xml>", "missing-field"),
    ('{"InfoType": "notify_apply_icpfiling_result", "authorizer_appid": "wx1", "beian_status": "six"}', "bad-field"),
]

XML_BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>&lol3;</ToUserName><Event>weapp_audit_success</Event><MsgType>event</MsgType>
<SuccTime>1</SuccTime></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>&xxe;</ToUserName><Event>weapp_audit_success</Event><MsgType>event</MsgType>
<SuccTime>1</SuccTime></xml>"""

DTD_ONLY = """<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml><Event>x</Event></xml>"""


@pytest.mark.parametrize("aes", [True, False], ids=["aes", "plain-test-platform"])
def test_malformed_and_hostile_bodies_are_refused(receiver, plain_receiver, make_launch, aes):
    made = make_launch()
    sender = receiver if aes else plain_receiver
    before = counts()
    for text, code in MALFORMED:
        if aes and text == "":
            continue  # an empty plaintext cannot be framed; covered in plain mode
        _refused(sender, sender.push(text.encode(), aes=aes, envelope_id=COMPONENT_APPID, id_element="AppId"),
                 400, code)
    for hostile in (XML_BOMB, XXE, DTD_ONLY):
        _refused(sender, sender.push(hostile.encode(), aes=aes, envelope_id=COMPONENT_APPID,
                                     id_element="AppId"), 400, "xml-entities")
    assert counts() == before
    assert current().store.history(made.launch_id) == []


def test_hostile_envelopes_are_refused(receiver):
    before = counts()
    ts, nonce = str(now_ts()), receiver.nonce()
    params = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes", "msg_signature": "0" * 40}
    for body in (XML_BOMB, XXE, "<xml><Encrypt>not base64!</Encrypt></xml>", '{"Encrypt": 5}', "<xml/>"):
        r = receiver.client.post(receiver.url + "/wechat/auth", params=params, content=body.encode())
        assert 400 <= r.status_code < 500, (body, r.status_code)
    assert counts() == before


def test_oversized_bodies_are_refused(receiver):
    before = counts()
    limit = current().settings.max_body_bytes
    big = {"AppId": COMPONENT_APPID, "CreateTime": now_ts(), "InfoType": "component_verify_ticket",
           "ComponentVerifyTicket": "x" * (limit + 10)}
    # by Content-Length
    r = receiver.push(big)
    _refused(receiver, r, 413, "too-large")
    r = receiver.push(big, aes=False)
    _refused(receiver, r, 413, "too-large")
    # chunked, without Content-Length: the bytes actually read count
    ts, nonce = str(now_ts()), receiver.nonce()
    params = {"signature": receiver.crypto.signature(ts, nonce), "timestamp": ts, "nonce": nonce}

    def chunks():
        yield b"<xml><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>"
        for _ in range(limit // 1024 + 4):
            yield b"y" * 1024
        yield b"</ComponentVerifyTicket></xml>"

    r = receiver.client.post(receiver.url + "/wechat/auth", params=params, content=chunks())
    assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
    _refused(receiver, r, 413, "too-large")
    # a Content-Length that is not a number, and one larger than the limit with a short body
    host, port = receiver.url.removeprefix("http://").split(":")
    for length in (b"abc", str(limit + 1).encode()):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /wechat/auth?timestamp=" + ts.encode() + b"&nonce=" + nonce.encode()
                         + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\nConnection: close\r\n\r\n<xml/>")
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
        assert status_line.split()[1].startswith(b"4"), status_line
    assert counts() == before


def test_unconfigured_or_unknown_routes_are_4xx(receiver):
    r = receiver.client.get(receiver.url + "/nope")
    assert r.status_code == 404 and r.json()["error"] == "not-found"
    r = receiver.client.put(receiver.url + "/wechat/auth")
    assert r.status_code == 405
    r = receiver.client.get(receiver.url + "/healthz")
    assert r.status_code == 200 and r.json()["ok"] is True


def test_nonce_window_outlives_the_timestamp_window():
    from launch.app.inbox import nonce_lifetime
    from launch.settings import Settings

    ttl = nonce_lifetime(Settings(timestamp_window_seconds=300))
    assert ttl > 2 * 300 - 1
    assert timedelta(seconds=ttl) > timedelta(minutes=10)


def test_concurrent_pushes_group_commit(receiver, make_launch):
    """Many pushes at once (batched into shared transactions): each lands exactly once, a
    replayed nonce inside the same burst is refused, the same event many times is one row."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    made = make_launch()
    same = icp_filing(5)(made)
    distinct = [{"ToUserName": f"gh_{i:012x}", "CreateTime": now_ts(), "MsgType": "event",
                 "Event": "weapp_audit_delay", "DelayTime": now_ts() + i} for i in range(40)]
    shared_nonce = receiver.nonce()
    before = counts()

    def send(job):
        kind, msg, nonce = job
        with httpx.Client(timeout=30) as client:
            rec = type(receiver)(receiver.url, receiver.crypto, receiver.app, client, receiver.server)
            return kind, rec.push(msg, nonce=nonce)

    jobs = [("distinct", m, None) for m in distinct] + [("same", same, None) for _ in range(10)]
    jobs += [("nonce", {**distinct[0], "DelayTime": 1}, shared_nonce), ("nonce", {**distinct[1], "DelayTime": 2},
                                                                        shared_nonce)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, jobs))
    assert all(r.status_code == 200 for k, r in results if k != "nonce")
    nonce_codes = sorted(r.status_code for k, r in results if k == "nonce")
    assert nonce_codes == [200, 409]
    wait_applied()
    after = counts()
    assert after["inbox"] == before["inbox"] + 40 + 1 + 1
    assert [(d.gate, d.outcome) for d in current().store.history(made.launch_id)] == [("bureau-review", "rejected")]


def test_land_batch_in_one_transaction(receiver, make_launch):
    from launch.app.inbox import Landing, land_batch

    made = make_launch()
    ev = parse_event(to_xml(icp_filing(3)(made)))
    other = parse_event(to_xml(icp_filing(2)(made)))
    receiver.app.state.applier.stop()
    try:
        got = land_batch(receiver.res, [Landing(ev, "n-batch-1"), Landing(ev, "n-batch-2"), Landing(other, "n-batch-1"),
                          Landing(other, None)])
        assert [(g.created, g.replayed) for g in got] == [(True, False), (False, False), (False, True), (True, False)]
        assert got[0].inbox_id == got[1].inbox_id and got[2].inbox_id is None
        again = land_batch(receiver.res, [Landing(ev, "n-batch-1")])
        assert again[0].replayed
    finally:
        receiver.app.state.applier.start()
