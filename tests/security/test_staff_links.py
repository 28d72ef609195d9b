"""Issue 9, item 3 and the staff part of item 5: each hole in the signed staff links, tried
as a hostile (or merely stale) caller would, against the real receiver over real HTTP.
Every refusal carries its reason code and a "中文 / English" message, and records nothing.

The receiver is tests/api's (uvicorn in a thread, a real SQLite store, real HTTP)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from launch.app.links import make_token
from launch.domain.link_keys import LinkKeys
from tests.api.conftest import API_KEY, counts, current, make_launch, receiver  # noqa: F401  (fixtures)

FORM = {"decided_by": "李四", "outcome": "confirmed"}
GATE = "design-confirmation"


def url(receiver, launch_id, gate=GATE):
    return f"{receiver.url}/gates/{launch_id}/{gate}"


def token(launch_id, gate=GATE, attempt=1, hours=1, keys=None):
    keys = keys or current().settings.link_keys()
    return make_token(launch_id, gate, attempt, current().now() + timedelta(hours=hours), keys)


def post(receiver, launch_id, *, tok=None, query=None, content_type="application/json", body=None, headers=None):
    h = dict(headers or {})
    if tok is not None:
        h["X-Weapp-Token"] = tok
    if content_type is not None:
        h["Content-Type"] = content_type
    import json

    data = json.dumps(FORM if body is None else body, ensure_ascii=False).encode()
    return receiver.client.post(url(receiver, launch_id), content=data, headers=h,
                                params={"token": query} if query is not None else None)


def refused(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    zh, sep, en = body["message"].partition(" / ")
    assert sep and zh and en, body["message"]
    return body


def test_a_good_link_works_once(receiver, make_launch):
    made = make_launch(steps=[(GATE, 1, "waiting")])
    tok = token(made.launch_id)
    r = post(receiver, made.launch_id, tok=tok)
    assert r.status_code == 200 and r.json()["status"] == "recorded" and r.json()["attempt"] == 1
    assert current().store.get_decision(made.launch_id, GATE, 1).channel == "link"
    before = counts()
    refused(post(receiver, made.launch_id, tok=tok), 410, "link-used")  # the decision killed it
    r = receiver.client.get(url(receiver, made.launch_id), params={"token": tok})  # the page too
    assert r.status_code == 410 and "gate-form" not in r.text
    assert counts() == before


def test_a_decision_by_another_channel_kills_the_link(receiver, make_launch):
    made = make_launch(steps=[(GATE, 1, "waiting")])
    tok = token(made.launch_id)
    r = receiver.client.post(url(receiver, made.launch_id), json=FORM, headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200 and r.json()["status"] == "recorded"
    before = counts()
    refused(post(receiver, made.launch_id, tok=tok), 410, "link-used")
    assert counts() == before


def test_a_link_to_an_older_attempt_is_stale(receiver, make_launch):
    made = make_launch(steps=[("code-review", 1, "rejected"), ("code-review", 2, "waiting")])
    before = counts()
    body = {"decided_by": "x", "outcome": "passed"}
    r = receiver.client.post(url(receiver, made.launch_id, "code-review"), json=body,
                             headers={"X-Weapp-Token": token(made.launch_id, "code-review", attempt=1)})
    refused(r, 410, "stale-attempt")
    # a token for an attempt that has not started, and one for a closed step, are stale too
    for attempt in (3, 1):
        r = receiver.client.post(url(receiver, made.launch_id, "code-review"), json=body,
                                 headers={"X-Weapp-Token": token(made.launch_id, "code-review", attempt=attempt)})
        refused(r, 410, "stale-attempt")
    assert counts() == before
    # the current attempt's link decides that attempt and no other
    r = receiver.client.post(url(receiver, made.launch_id, "code-review"), json=body,
                             headers={"X-Weapp-Token": token(made.launch_id, "code-review", attempt=2)})
    assert r.status_code == 200 and r.json()["attempt"] == 2
    assert current().store.get_decision(made.launch_id, "code-review", 1) is None


def test_a_link_for_a_gate_not_opened_yet_is_stale(receiver, make_launch):
    made = make_launch()
    refused(post(receiver, made.launch_id, tok=token(made.launch_id)), 410, "stale-attempt")


def test_token_in_the_url_of_a_post_is_refused(receiver, make_launch):
    made = make_launch(steps=[(GATE, 1, "waiting")])
    tok = token(made.launch_id)
    before = counts()
    refused(post(receiver, made.launch_id, query=tok), 401, "token-in-query")
    refused(post(receiver, made.launch_id, query=tok, tok=tok), 401, "token-in-query")
    refused(post(receiver, made.launch_id, query=tok, headers={"Authorization": f"Bearer {API_KEY}"}),
            401, "token-in-query")
    assert counts() == before
    # the GET page the link opens takes it from the URL
    r = receiver.client.get(url(receiver, made.launch_id), params={"token": tok})
    assert r.status_code == 200 and 'id="gate-form"' in r.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/json-patch+json",
                                          "application/json; charset=latin-1", "text/json"])
def test_a_post_that_is_not_json_is_415(receiver, make_launch, content_type):
    made = make_launch(steps=[(GATE, 1, "waiting")])
    before = counts()
    refused(post(receiver, made.launch_id, tok=token(made.launch_id), content_type=content_type),
            415, "unsupported-media-type")
    refused(post(receiver, made.launch_id, headers={"Authorization": f"Bearer {API_KEY}"},
                 content_type=content_type), 415, "unsupported-media-type")
    assert counts() == before


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8",
                                          'application/json;charset="UTF-8"'])
def test_json_content_types_are_taken(receiver, make_launch, content_type):
    made = make_launch(steps=[(GATE, 1, "waiting")])
    r = post(receiver, made.launch_id, tok=token(made.launch_id), content_type=content_type)
    assert r.status_code == 200, r.text


def _with(tok, part, value):
    pieces = tok.split(".")
    pieces[part] = value
    return ".".join(pieces)


def test_token_encoding_is_strict(receiver, make_launch):
    made = make_launch(steps=[(GATE, 1, "waiting")])
    tok = token(made.launch_id)
    kid, body, sig = tok.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(sig[-1]) ^ 1]  # same bytes, non-canonical spare bits
    std_sig = base64.b64encode(base64.urlsafe_b64decode(sig + "=")).decode()  # '+/' alphabet, padded
    holes = {
        "padding": _with(tok, 2, sig + "="),
        "non-canonical bits": _with(tok, 2, sig[:-1] + sibling),
        "standard alphabet": _with(tok, 2, std_sig),
        "stray character": _with(tok, 1, body[:5] + "!" + body[5:]),
        "a fourth part": tok + ".AAAA",
        "an old two-part token": f"{body}.{sig}",
        "a key id outside its alphabet": _with(tok, 0, "k%1"),
        "two tokens": tok + "," + tok,
    }
    before = counts()
    for name, bad in holes.items():
        r = post(receiver, made.launch_id, tok=bad)
        assert r.status_code == 401, (name, r.text)
        assert r.json()["error"] == "malformed-token", (name, r.json())
    # two X-Weapp-Token headers
    r = receiver.client.post(url(receiver, made.launch_id), json=FORM,
                             headers=[("X-Weapp-Token", tok), ("X-Weapp-Token", tok)])
    refused(r, 401, "malformed-token")
    assert counts() == before
    assert post(receiver, made.launch_id, tok=tok).status_code == 200  # the untouched token was fine


def test_signature_key_and_target_holes(receiver, make_launch):
    made = make_launch(steps=[(GATE, 1, "waiting"), ("content", 1, "waiting")])
    other = make_launch(steps=[(GATE, 1, "waiting")])
    keys = current().settings.link_keys()
    settings = current().settings
    # the key the links were once derived from (the at-rest key) signs nothing any more
    derived = hashlib.sha256(b"staff-links\x00" + settings.fernet_key()).digest()
    holes = {
        "bad-token-signature": token(made.launch_id, keys=LinkKeys([(keys.signing_kid, b"z" * 32)])),
        "unknown-link-key": token(made.launch_id, keys=LinkKeys([("retired", b"z" * 32)])),
        "wrong-launch-or-gate": token(other.launch_id),
        "expired-token": token(made.launch_id, hours=-1),
    }
    before = counts()
    for code, bad in holes.items():
        refused(post(receiver, made.launch_id, tok=bad), 401, code)
    refused(post(receiver, made.launch_id, tok=token(made.launch_id, "content")), 401, "wrong-launch-or-gate")
    refused(post(receiver, made.launch_id, tok=token(made.launch_id, keys=LinkKeys([(keys.signing_kid, derived)]))),
            401, "bad-token-signature")
    refused(post(receiver, made.launch_id, content_type="application/json"), 401, "missing-credentials")
    assert counts() == before


def test_rotation_against_the_running_receiver(receiver, make_launch, monkeypatch):
    """The receiver verifies with every listed key; the newest signs. Swap its key list as a
    restart with WEAPP_LAUNCH_LINK_SECRETS="new:…,<old kid>:<old secret>" would."""
    made = make_launch(steps=[(GATE, 1, "waiting")])
    old = current().settings.link_keys()
    old_token = token(made.launch_id, keys=old)
    rotated = LinkKeys([("new", b"n" * 40), (old.signing_kid, old.secret())])
    monkeypatch.setattr(receiver.app.state.receiver, "_link_keys", rotated)
    new_token = token(made.launch_id, keys=rotated)
    assert new_token.startswith("new.")
    r = receiver.client.get(url(receiver, made.launch_id), params={"token": old_token})
    assert r.status_code == 200  # still listed: still good
    monkeypatch.setattr(receiver.app.state.receiver, "_link_keys", LinkKeys([("new", b"n" * 40)]))
    refused(post(receiver, made.launch_id, tok=old_token), 401, "unknown-link-key")
    assert post(receiver, made.launch_id, tok=new_token).status_code == 200
