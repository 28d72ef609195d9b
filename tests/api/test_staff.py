"""Staff and system callbacks: API key, signed links, the form page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from launch.app.links import make_token, staff_link
from launch.domain.link_keys import LinkKeys
from tests.api.conftest import API_KEY, counts, current


def post(receiver, made, gate, data, *, key=None, token=None, query_token=None, launch_id=None):
    """A staff POST: the API key as a Bearer header, a link token in X-Weapp-Token (as the
    page's script sends it); `query_token` puts one in the URL, which a POST must not do."""
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if token is not None:
        headers["X-Weapp-Token"] = token
    params = {"token": query_token} if query_token is not None else None
    return receiver.client.post(f"{receiver.url}/gates/{launch_id or made.launch_id}/{gate}",
                                json=data, headers=headers, params=params)


def token_for(launch_id, gate, attempt=1, hours=1):
    return make_token(launch_id, gate, attempt, current().now() + timedelta(hours=hours), current().settings.link_keys())


def test_api_key_records_a_decision(receiver, make_launch):
    made = make_launch(steps=[("design-confirmation", 1, "waiting")])
    r = post(receiver, made, "design-confirmation", {"decided_by": "王五", "outcome": "confirmed"}, key=API_KEY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "recorded" and body["attempt"] == 1 and body["resumed"] is False
    d = current().store.get_decision(made.launch_id, "design-confirmation", 1)
    assert d.channel == "api" and d.actor == "王五" and d.outcome == "confirmed"
    # the same again: a duplicate, nothing changes
    before = counts()
    r = post(receiver, made, "design-confirmation", {"decided_by": "王五", "outcome": "confirmed"}, key=API_KEY)
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert counts() == before


def test_signed_link_records_a_decision(receiver, make_launch):
    made = make_launch(steps=[("bureau-review", 1, "waiting")])
    token = token_for(made.launch_id, "bureau-review")
    data = {"decided_by": "李四", "outcome": "approved", "filing_number": "粤B2-20090059-1626X"}
    # in the URL of a POST the token is refused, and nothing is recorded
    r = post(receiver, made, "bureau-review", data, query_token=token)
    assert r.status_code == 401 and r.json()["error"] == "token-in-query"
    assert current().store.get_decision(made.launch_id, "bureau-review", 1) is None
    r = post(receiver, made, "bureau-review", data, token=token)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "recorded" and r.json()["attempt"] == 1
    d = current().store.get_decision(made.launch_id, "bureau-review", 1)
    assert d.channel == "link" and d.payload["filing_number"] == "粤B2-20090059-1626X"
    # the decision made the link dead
    r = post(receiver, made, "bureau-review", data, token=token)
    assert r.status_code == 410 and r.json()["error"] == "link-used"


def test_staff_link_url(receiver, make_launch):
    made = make_launch(steps=[("content", 1, "waiting")])
    link = staff_link(receiver.res, made.launch_id, "content", 1)
    assert link.startswith(f"{current().settings.public_url}/gates/{made.launch_id}/content?token=")
    # the link opens the page against the receiver (path and token), whatever public_url says
    path_and_query = link.split("/gates/", 1)[1]
    r = receiver.client.get(f"{receiver.url}/gates/{path_and_query}")
    assert r.status_code == 200 and 'id="gate-form"' in r.text
    # and the page's script posts the token in its header
    token = link.split("token=", 1)[1]
    r = post(receiver, made, "content", {"decided_by": "赵六"}, token=token)
    assert r.status_code == 200 and r.json()["status"] == "recorded"


def test_bad_credentials_are_refused_and_change_nothing(receiver, make_launch):
    gate = "face-verification"
    made = make_launch(steps=[(gate, 1, "waiting")])
    other = make_launch(steps=[(gate, 1, "waiting")])
    data = {"decided_by": "李四", "outcome": "passed"}
    before = counts()
    keys = current().settings.link_keys()
    cases = {
        "missing-credentials": {},
        "bad-api-key": {"key": "wrong"},
        "wrong-launch-or-gate": {"token": token_for(other.launch_id, gate)},
        "expired-token": {"token": token_for(made.launch_id, gate, hours=-1)},
        "bad-token-signature": {"token": make_token(made.launch_id, gate, 1, current().now() + timedelta(hours=1),
                                                    LinkKeys([(keys.signing_kid, b"another-key" * 3)]))},
        "unknown-link-key": {"token": make_token(made.launch_id, gate, 1, current().now() + timedelta(hours=1),
                                                 LinkKeys([("gone", b"another-key" * 3)]))},
        "malformed-token": {"token": "not-a-token"},
        "token-in-query": {"query_token": token_for(made.launch_id, gate)},
    }
    for code, creds in cases.items():
        r = post(receiver, made, gate, data, **creds)
        assert r.status_code == 401, (code, r.text)
        assert r.json()["error"] == code and " / " in r.json()["message"]
    # a token for another gate of the same launch
    r = post(receiver, made, gate, data, token=token_for(made.launch_id, "first-review"))
    assert r.status_code == 401 and r.json()["error"] == "wrong-launch-or-gate"
    r = receiver.client.post(f"{receiver.url}/gates/{made.launch_id}/{gate}", json=data,
                             headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    assert counts() == before


def test_bad_form_is_422_with_field_names(receiver, make_launch):
    made = make_launch()
    before = counts()
    r = post(receiver, made, "code-review", {"outcome": "failed"}, key=API_KEY)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid-form"
    assert {p["field"] for p in body["problems"]} == {"decided_by"}
    r = post(receiver, made, "code-review", {"decided_by": "x", "outcome": "failed"}, key=API_KEY)
    assert r.status_code == 422 and [p["field"] for p in r.json()["problems"]] == ["reason"]
    assert all(" / " in p["message"] and p["rule"] for p in r.json()["problems"])
    r = post(receiver, made, "code-review", {"decided_by": "x", "outcome": "maybe", "colour": "red"}, key=API_KEY)
    assert r.status_code == 422 and {p["field"] for p in r.json()["problems"]} == {"outcome", "colour"}
    r = post(receiver, made, "bureau-review", {"decided_by": "x", "outcome": "approved", "filing_number": "123"},
             key=API_KEY)
    assert r.status_code == 422 and r.json()["problems"][0]["rule"] == "filing-number-format"
    r = post(receiver, made, "release", {"decided_by": "x"}, key=API_KEY)
    assert r.status_code == 422 and {p["rule"] for p in r.json()["problems"]} >= {"release-needs-filing"}
    r = post(receiver, made, "code-review", ["not", "an", "object"], key=API_KEY)
    assert r.status_code == 422
    r = receiver.client.post(f"{receiver.url}/gates/{made.launch_id}/code-review", content=b"{nope",
                             headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed-json"
    assert counts() == before


def test_unknown_launch_or_gate_is_404(receiver, make_launch):
    made = make_launch()
    r = post(receiver, made, "content", {"decided_by": "x"}, key=API_KEY, launch_id="l-0000000000")
    assert r.status_code == 404 and r.json()["error"] == "unknown-launch"
    r = post(receiver, made, "no-such-gate", {"decided_by": "x"}, key=API_KEY)
    assert r.status_code == 404 and r.json()["error"] == "unknown-gate"
    # a standalone launch has no fast-registration gate
    r = post(receiver, made, "fast-registration", {"decided_by": "x", "outcome": "failed", "reason": "r"},
             key=API_KEY)
    assert r.status_code == 422 and r.json()["problems"][0]["rule"] == "gate-not-on-path"


def test_form_page_is_refused_for_a_dead_link(receiver, make_launch):
    made = make_launch(steps=[("code-review", 1, "rejected"), ("code-review", 2, "waiting")])
    r = receiver.client.get(f"{receiver.url}/gates/{made.launch_id}/code-review",
                            params={"token": token_for(made.launch_id, "code-review", attempt=1)})
    assert r.status_code == 410 and "gate-form" not in r.text
    assert "Cannot open" in r.text and "attempt 1" in r.text


def test_form_page(receiver, make_launch):
    made = make_launch(steps=[("code-review", 1, "waiting")])
    token = token_for(made.launch_id, "code-review")
    r = receiver.client.get(f"{receiver.url}/gates/{made.launch_id}/code-review", params={"token": token})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "微信代码审核" in page and 'name="outcome"' in page and 'value="failed"' in page
    assert 'name="decided_by"' in page and 'name="screenshots"' in page and made.launch_id in page
    assert token not in page  # the script reads it from the address bar
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp
    assert r.headers["referrer-policy"] == "no-referrer"
    # bad or other-gate tokens get an error page, not the form
    r = receiver.client.get(f"{receiver.url}/gates/{made.launch_id}/release", params={"token": token})
    assert r.status_code == 401 and "gate-form" not in r.text
    r = receiver.client.get(f"{receiver.url}/gates/{made.launch_id}/code-review")
    assert r.status_code == 401


def test_form_page_escapes(receiver, make_launch, monkeypatch):
    made = make_launch()
    from launch.receiver.pages import render_gate_form

    cat = current().catalogue
    gate = cat.gate("content")
    evil = gate.model_copy(update={"name_zh": "<script>alert(1)</script>", "todo_zh": '"><img src=x onerror=1>'})
    monkeypatch.setattr(type(cat), "gate", lambda self, g: evil)
    html = render_gate_form(receiver.res, current().store.get_launch(made.launch_id), "content", None, "n0nce")
    assert "<script>alert(1)</script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_tokens_signatures_and_bodies_are_never_logged(receiver, make_launch, caplog):
    import logging

    made = make_launch(steps=[("content", 1, "waiting")])
    token = token_for(made.launch_id, "content")
    with caplog.at_level(logging.DEBUG):
        r = receiver.client.get(f"{receiver.url}/gates/{made.launch_id}/content", params={"token": token})
        assert r.status_code == 200
        r = post(receiver, made, "content", {"decided_by": "秘密人", "note": "body-secret-text"}, token=token)
        assert r.status_code == 200
        post(receiver, made, "content", {"decided_by": "x"}, token=token + "x")
        post(receiver, made, "content", {"decided_by": "x"}, query_token=token)
        ts, nonce = "1", "2"
        sig = receiver.crypto.signature(ts, nonce)
        receiver.client.post(receiver.url + "/wechat/auth", params={"signature": sig, "timestamp": ts,
                                                                    "nonce": nonce}, content=b"<xml>secret</xml>")
    # what the server side logs (the test's own httpx client logs its URLs; that is not the receiver)
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore", "hpack")))
    assert f"/gates/{made.launch_id}/content" in text  # the receiver's own line is there
    for secret in (token, sig, "body-secret-text", "秘密人", "token=", "<xml>secret"):
        assert secret not in text
