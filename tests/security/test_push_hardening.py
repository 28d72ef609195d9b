"""Issue 9, item 1 and the push part of item 5: each hole as a hostile caller would try it,
against the real receiver over real HTTP. Every refusal carries its reason code and leaves
nothing behind (no inbox row, no decision, no burnt nonce)."""

from __future__ import annotations

import base64
import socket
import time

import pytest
from sqlalchemy import delete

from launch.store.models import Nonce
from launch.wechat.crypto import PushCrypto
from launch.wechat.events import to_xml
from tests.api.conftest import AES_KEY, COMPONENT_APPID, TOKEN, counts, current, hexid, wait_applied
from tests.api.conftest import make_launch, plain_receiver, receiver  # noqa: F401  (fixtures)


def now_ts() -> int:
    return int(time.time())


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert " / " in body["message"]  # Chinese / English
    return body


def fast_registration_for(appid: str) -> dict:
    """A fast-registration result: what an attacker would send to rebind a launch to another app."""
    return {"AppId": COMPONENT_APPID, "CreateTime": now_ts(), "InfoType": "notify_third_fasteregister",
            "appid": appid, "status": 0, "auth_code": "x", "msg": "OK",
            "info": {"name": "某公司", "code": "91440300MA5EXAMPLE", "code_type": 1,
                     "legal_persona_wechat": "wx", "legal_persona_name": "张三"}}


def face_passed(appid: str) -> dict:
    return {"AppId": COMPONENT_APPID, "CreateTime": now_ts(), "InfoType": "notify_icpfiling_verify_result",
            "task_id": "t-" + hexid(8), "verify_appid": appid, "result": 3}


# --- the downgrade -----------------------------------------------------------------------


def test_a_verification_signature_cannot_carry_a_plaintext_push(receiver, make_launch):
    """A signature seen once (here: a URL verification's) covers no body; re-used on a POST
    with a forged plaintext event it must get nowhere."""
    made = make_launch("reuse_official_account")
    ts, nonce = str(now_ts()), receiver.nonce()
    seen = {"signature": receiver.crypto.signature(ts, nonce), "timestamp": ts, "nonce": nonce}
    assert receiver.client.get(receiver.url + "/wechat/auth", params={**seen, "echostr": "42"}).text == "42"
    before = counts()
    forged = to_xml(fast_registration_for("wx" + hexid(16)))
    # the same signature with a new nonce, and the seen one: refused before any replay check
    for params in (seen, {**seen, "nonce": receiver.nonce()}):
        refused(receiver.client.post(receiver.url + "/wechat/auth", params=params, content=forged),
                400, "plaintext-refused")
    # on the message-event route too
    refused(receiver.client.post(receiver.url + f"/wechat/{made.appid}/events", params=seen, content=forged),
            400, "plaintext-refused")
    assert counts() == before
    assert current().store.get_launch(made.launch_id).appid == made.appid


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"encrypt_type": "raw"}, 400, "plaintext-refused"),  # any mode but aes
        ({"encrypt_type": "AES "}, 400, "plaintext-refused"),
        ({"encrypt_type": "aes"}, 401, "bad-signature"),  # safe mode without msg_signature
    ],
)
def test_safe_mode_needs_aes_and_msg_signature(receiver, make_launch, extra, status, code):
    made = make_launch()
    ts, nonce = str(now_ts()), receiver.nonce()
    env = receiver.crypto.envelope(to_xml(face_passed(made.appid)).decode(), COMPONENT_APPID, id_element="AppId",
                                   nonce=nonce, timestamp=ts)
    params = {"signature": receiver.crypto.signature(ts, nonce), "timestamp": ts, "nonce": nonce, **extra}
    before = counts()
    refused(receiver.client.post(receiver.url + "/wechat/auth", params=params, content=env.body), status, code)
    assert counts() == before


def test_plaintext_only_where_a_setting_allows_it(receiver, plain_receiver, make_launch):
    """WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT (off by default) is the only way plaintext lands."""
    assert current().settings.wechat_allow_plaintext is False
    made = make_launch(steps=[("face-verification", 1, "waiting")])
    message = face_passed(made.appid)
    refused(receiver.push(message, aes=False), 400, "plaintext-refused")
    r = plain_receiver.push(message, aes=False)
    assert r.status_code == 200 and r.text == "success"
    row = wait_applied()
    assert row is None  # every row applied
    assert [d.gate for d in current().store.history(made.launch_id)] == ["face-verification"]


# --- replays ---------------------------------------------------------------------------


def test_a_url_verification_burns_its_nonce(receiver):
    ts, nonce = str(now_ts()), receiver.nonce()
    params = {"signature": receiver.crypto.signature(ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "abc"}
    assert receiver.client.get(receiver.url + "/wechat/auth", params=params).status_code == 200
    refused(receiver.client.get(receiver.url + "/wechat/auth", params=params), 409, "replayed-nonce")
    # the burnt nonce cannot carry a push either
    env = receiver.crypto.envelope("<xml><InfoType>component_verify_ticket</InfoType></xml>", COMPONENT_APPID,
                                   id_element="AppId", nonce=nonce, timestamp=ts)
    r = receiver.client.post(receiver.url + "/wechat/auth", content=env.body,
                             params={"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                                     "msg_signature": env.msg_signature})
    refused(r, 409, "replayed-nonce")


def test_replay_is_keyed_on_the_signature_too(receiver, make_launch):
    """Even when the nonce row is gone (purged, another scope), the msg_signature refuses it."""
    made = make_launch()
    ts, nonce = str(now_ts()), receiver.nonce()
    env = receiver.crypto.envelope(to_xml(face_passed(made.appid)).decode(), COMPONENT_APPID, id_element="AppId",
                                   nonce=nonce, timestamp=ts)
    params = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes", "msg_signature": env.msg_signature}
    assert receiver.client.post(receiver.url + "/wechat/auth", params=params, content=env.body).status_code == 200
    wait_applied()
    with current().store.session() as s:
        s.execute(delete(Nonce).where(Nonce.scope == "wechat", Nonce.nonce == nonce))
    before = counts()
    refused(receiver.client.post(receiver.url + "/wechat/auth", params=params, content=env.body),
            409, "replayed-nonce")
    assert counts() == before  # the refused replay took neither its nonce nor anything else


# --- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    ["+{ts}", "{a}_{b}", "0{ts}", " {ts}", "{ts} ", "{fullwidth}", "{ts}0", "{ts}.0", "0x{hex}"],
    ids=["plus", "underscore", "leading-zero", "space-before", "space-after", "fullwidth", "eleven-digits",
         "decimal-point", "hex"],
)
def test_only_plain_decimal_timestamps(receiver, make_launch, shape):
    """int() accepts most of these; the signature is computed over the odd text itself, so
    only the timestamp rule can refuse them."""
    ts = str(now_ts())
    text = shape.format(ts=ts, a=ts[:4], b=ts[4:], fullwidth="".join(chr(0xFF10 + int(c)) for c in ts),
                        hex=format(int(ts), "x"))
    made = make_launch()
    nonce = receiver.nonce()
    env = receiver.crypto.envelope(to_xml(face_passed(made.appid)).decode(), COMPONENT_APPID, id_element="AppId",
                                   nonce=nonce, timestamp=text)
    params = {"timestamp": text, "nonce": nonce, "encrypt_type": "aes", "msg_signature": env.msg_signature,
              "signature": receiver.crypto.signature(text, nonce)}
    before = counts()
    refused(receiver.client.post(receiver.url + "/wechat/auth", params=params, content=env.body),
            401, "stale-timestamp")
    refused(receiver.client.get(receiver.url + "/wechat/auth", params={**params, "echostr": "1"}),
            401, "stale-timestamp")
    assert counts() == before


# --- the app id in the path ----------------------------------------------------------------


def test_path_appid_must_match_the_app_the_message_names(receiver, make_launch):
    made, other = make_launch(), make_launch()
    before = counts()
    r = receiver.push(face_passed(made.appid), path=f"/wechat/{other.appid}/events",
                      envelope_id=COMPONENT_APPID, id_element="AppId")
    refused(r, 403, "appid-mismatch")
    assert counts() == before


def test_audit_result_posted_to_another_apps_url_decides_nothing(receiver, make_launch):
    """An audit push names the original id (gh_…), known only once the launch is found: the
    applier refuses it when that launch's app id is not the one in the path."""
    made = make_launch(steps=[("code-review", 1, "waiting")])
    other = make_launch(steps=[("code-review", 1, "waiting")])
    audit = {"ToUserName": made.original_id, "FromUserName": "od1", "CreateTime": now_ts(), "MsgType": "event",
             "Event": "weapp_audit_success", "SuccTime": now_ts()}
    r = receiver.push(audit, path=f"/wechat/{other.appid}/events", envelope_id=made.original_id)
    assert r.status_code == 200
    wait_applied()
    rows = [e for e in current().store.unapplied_events(limit=1)]
    assert rows == []
    assert current().store.history(made.launch_id) == []
    assert current().store.history(other.launch_id) == []
    # the same push on its own app's URL decides its own launch
    audit["CreateTime"] = now_ts() + 1
    assert receiver.push(audit, path=f"/wechat/{made.appid}/events", envelope_id=made.original_id).status_code == 200
    wait_applied()
    assert [d.gate for d in current().store.history(made.launch_id)] == ["code-review"]


# --- decryption: one answer for every failure ----------------------------------------------


def _encrypt_raw(key_b64: str, plain: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(key_b64 + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_every_decryption_failure_gets_one_answer(receiver):
    """Bad padding, a lying length field, another app id, another key, not base64, a short
    ciphertext: all signed correctly, all answered alike, so nothing can be probed."""
    msg = b"<xml><InfoType>component_verify_ticket</InfoType></xml>"
    frame = b"r" * 16 + len(msg).to_bytes(4, "big") + msg + COMPONENT_APPID.encode()
    pad = 32 - len(frame) % 32
    ciphertexts = {
        "bad-padding": _encrypt_raw(AES_KEY, frame + bytes([pad]) * (pad - 1) + b"\x00"),
        "bad-length": _encrypt_raw(AES_KEY, (b"r" * 16 + (10**6).to_bytes(4, "big") + msg
                                            + COMPONENT_APPID.encode() + bytes([pad]) * pad)),
        "other-appid": PushCrypto(TOKEN, AES_KEY, "wx00000000000bad00").encrypt(msg.decode()).encrypt,
        "other-key": PushCrypto(TOKEN, base64.b64encode(b"z" * 32).decode().rstrip("="),
                                COMPONENT_APPID).encrypt(msg.decode()).encrypt,
        "not-base64": "not*base64*at*all",
        "short": base64.b64encode(b"x" * 17).decode(),
    }
    before = counts()
    answers = {}
    for name, encrypt in ciphertexts.items():
        ts, nonce = str(now_ts()), receiver.nonce()
        body = f"<xml><AppId>{COMPONENT_APPID}</AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
        params = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                  "msg_signature": receiver.crypto.msg_signature(ts, nonce, encrypt)}
        r = receiver.client.post(receiver.url + "/wechat/auth", params=params, content=body)
        answers[name] = (r.status_code, r.content)
    assert len(set(answers.values())) == 1, answers
    status, content = next(iter(answers.values()))
    assert status == 400 and b"undecryptable" in content
    assert counts() == before


# --- Content-Length ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["+6", "0x6", "６", "²", "-6", "6_0"])
def test_content_length_must_be_ascii_digits(receiver, length):
    """Refused by uvicorn's parser or by the receiver's own check (str.isdigit() would take
    "６" and "²"); either way a 400 before anything is read. (Surrounding spaces are optional
    whitespace that HTTP parsers strip, not a different number.)"""
    host, port = receiver.url.removeprefix("http://").split(":")
    ts, nonce = str(now_ts()), receiver.nonce()
    before = counts()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /wechat/auth?timestamp=" + ts.encode() + b"&nonce=" + nonce.encode()
                     + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + length.encode("utf-8")
                     + b"\r\nConnection: close\r\n\r\n<xml/>")
        response = b""
        while chunk := sock.recv(4096):
            response += chunk
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"400", status_line
    if b"application/json" in response:
        assert b"bad-content-length" in response
    assert counts() == before
