"""Arbitrary bodies, query strings, paths and headers to every route: never a 5xx, and a
launch never changes (its steps and decisions stay as they were) unless an authenticated
staff callback was answered 200."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.api.conftest import API_KEY, COMPONENT_APPID, counts, current

ROUTES = [
    ("GET", "/wechat/auth"),
    ("POST", "/wechat/auth"),
    ("GET", "/wechat/{appid}/events"),
    ("POST", "/wechat/{appid}/events"),
    ("POST", "/gates/{launch}/{gate}"),
    ("GET", "/gates/{launch}/{gate}"),
    ("GET", "/healthz"),
    ("PUT", "/gates/{launch}/{gate}"),
]
PARAM_NAMES = ["signature", "timestamp", "nonce", "echostr", "encrypt_type", "msg_signature", "token"]
GATES = ["code-review", "bureau-review", "content", "release", "fast-registration", "nope"]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
header_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60)
segment = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).map(
    lambda s: s if s not in (".", "..") else s + "x"
)

xmlish = st.builds(
    lambda tag, body, ev: f"<xml><{tag}>{body}</{tag}><Event>{ev}</Event><Encrypt>{body}</Encrypt></xml>",
    st.sampled_from(["ToUserName", "InfoType", "a", "MsgType"]),
    text,
    st.sampled_from(["weapp_audit_success", "weapp_audit_fail", "x", ""]),
)
jsonish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
).map(lambda v: __import__("json").dumps(v, ensure_ascii=False))
form_like = st.fixed_dictionaries(
    {},
    optional={
        "outcome": st.sampled_from(["passed", "failed", "maybe", ""]) | text,
        "reason": text,
        "filing_number": text,
        "screenshots": st.lists(text, max_size=3) | text,
        "extra": text,
    },
).map(lambda d: __import__("json").dumps(d, ensure_ascii=False))
bodies = st.one_of(st.binary(max_size=400), text.map(str.encode), xmlish.map(str.encode),
                   jsonish.map(str.encode), form_like.map(str.encode))


@pytest.fixture(scope="module")
def target(receiver):
    store = current().store
    client_id = store.add_client("prop-client", "属性测试", "小程序", "广东", "enterprise", "standalone", {}, {})
    launch = store.create_launch(client_id)
    store.set_app_ids(launch.id, "wx00000000000000ab", "gh_0000000000ab")
    now = current().now()
    store.open_step(launch.id, "code-review", 1, started_at=now - timedelta(minutes=1), status="waiting")
    return launch.id


@st.composite
def requests(draw, launch_id):
    method, template = draw(st.sampled_from(ROUTES))
    path = template.format(
        appid=draw(st.sampled_from(["wx00000000000000ab", "wx0123"]) | segment.map(lambda s: quote(s, safe=""))),
        launch=draw(st.sampled_from([launch_id, "l-0000000000"]) | segment.map(lambda s: quote(s, safe=""))),
        gate=draw(st.sampled_from(GATES) | segment.map(lambda s: quote(s, safe=""))),
    )
    params = draw(st.dictionaries(st.sampled_from(PARAM_NAMES) | text, text, max_size=6))
    if draw(st.booleans()):  # a valid timestamp, nonce and signature: gets past the gatekeeping
        ts, nonce = str(int(time.time())), str(draw(st.integers(0, 10**12)))
        params.update({"timestamp": ts, "nonce": nonce})
        from tests.api.conftest import AES_KEY, TOKEN
        from launch.wechat.crypto import PushCrypto

        params["signature"] = PushCrypto(TOKEN, AES_KEY, COMPONENT_APPID).signature(ts, nonce)
    headers = {}
    auth = draw(st.sampled_from([None, "key", "junk"]))
    if auth == "key":
        headers["Authorization"] = f"Bearer {API_KEY}"
    elif auth == "junk":
        headers["Authorization"] = draw(header_text | header_text.map(lambda s: "Bearer " + s))
    if draw(st.booleans()):
        headers["X-Weapp-Token"] = draw(header_text)
    raw_query = draw(st.booleans())
    return method, path, params, headers, draw(bodies), raw_query


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_never_5xx_and_launches_unchanged(receiver, target, data):
    method, path, params, headers, body, raw_query = data.draw(requests(target))
    store = current().store
    before = counts()
    steps_before = store.steps_for(target)
    url = receiver.url + path
    if raw_query:
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='=&%')}" for k, v in params.items())
        r = receiver.client.request(method, url + ("?" + query if query else ""), content=body, headers=headers)
    else:
        r = receiver.client.request(method, url, params=params, content=body, headers=headers)
    assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
    reason = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else r.text[:7]
    event(f"{method} {path.split('/')[1]} {r.status_code} {reason}")
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        assert set(r.json()) >= {"error", "message"}
    after = counts()
    staff_ok = path.startswith("/gates/") and method == "POST" and r.status_code == 200
    if not staff_ok:
        assert after["decisions"] == before["decisions"]
        assert after["steps"] == before["steps"]
        assert store.steps_for(target) == steps_before
    if r.status_code >= 400:
        assert after["inbox"] == before["inbox"] and after["nonces"] == before["nonces"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(
    gate=st.sampled_from(GATES[:-1]),
    body=st.one_of(form_like, jsonish, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))),
    decided_by=st.one_of(st.none(), st.just(""), text, st.just("x" * 41)),
)
def test_authenticated_forms_never_5xx(receiver, target, gate, body, decided_by):
    """Staff callbacks with a valid API key and arbitrary forms: 200 or a 4xx naming the problem."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and decided_by is not None:
        data["decided_by"] = decided_by
        body = json.dumps(data, ensure_ascii=False)
    before = counts()
    r = receiver.client.post(f"{receiver.url}/gates/{target}/{gate}", content=body.encode("utf-8", "surrogatepass"),
                             headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert r.status_code < 500, r.text[:300]
    event(f"{gate} {r.status_code} {r.json().get('error', r.json().get('status'))}")
    if r.status_code == 422:
        assert r.json()["problems"] and all(p["field"] and p["message"] for p in r.json()["problems"])
    if r.status_code != 200 or r.json()["status"] == "duplicate":
        assert counts()["decisions"] == before["decisions"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=st.one_of(xmlish, jsonish, text), aes=st.booleans(), fmt=st.sampled_from(["xml", "json"]))
def test_signed_arbitrary_pushes_never_5xx(receiver, target, body, aes, fmt):
    """Correctly signed (and encrypted) pushes whose message is anything at all."""
    store = current().store
    before = counts()
    steps_before = store.steps_for(target)
    r = receiver.push(body, aes=aes, fmt=fmt, envelope_id=COMPONENT_APPID, id_element="AppId")
    assert r.status_code < 500, r.text[:300]
    event(f"aes={aes} {r.status_code} {r.text if r.status_code == 200 else r.json()['error']}")
    after = counts()
    assert after["decisions"] == before["decisions"] and store.steps_for(target) == steps_before
    if r.status_code >= 400:
        assert after["inbox"] == before["inbox"] and after["nonces"] == before["nonces"]
