"""Known-answer and hostile-input tests of launch.wechat.crypto.

Vectors, copied verbatim (never computed here):
- wechatpy/wechatpy tests/test_utils.py: plain `signature` (token "test") and the sorted
  signer ("789", "456", "123").
- wechatpy/wechatpy tests/test_crypto.py: token "123456", EncodingAESKey kWxPEV…aR, id
  wx49f0ab532d5d035a — check_signature (echo_str), encrypt_message with the random
  string mocked to "1234567890123456" (exact ciphertext + msg_signature), decrypt_message.
- Tencent's official WXBizMsgCrypt sample (Sample.py; token "spamtest", key abcdef…EFG,
  appid wx2c2769f8efd9abc2), reproduced in many SDKs' tests together with its plaintext.
"""

from __future__ import annotations

import base64
import struct
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from launch.wechat.crypto import (
    AppIdMismatch,
    BadPayload,
    BadSignature,
    PushCrypto,
    PushRejected,
    check_timestamp,
    msg_signature,
    signature,
    verify_msg_signature,
    verify_signature,
)
from launch.wechat.errors import REASON_CODES
from launch.wechat.events import extract_encrypt

# --- wechatpy tests/test_crypto.py ---------------------------------------------------
WP_TOKEN = "123456"
WP_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WP_ID = "wx49f0ab532d5d035a"

WP_ECHO_SIGNATURE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
WP_ECHO_TIMESTAMP = "1411443780"
WP_ECHO_NONCE = "437374425"
WP_ECHO_STR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="

WP_ENC_NONCE = "461056294"
WP_ENC_TIMESTAMP = "1411525903"
WP_ENC_RANDOM = b"1234567890123456"
WP_ENC_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
WP_ENC_EXPECTED = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5"
    "nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03o"
    "xI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE"
    "8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
WP_ENC_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"

WP_DEC_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
WP_DEC_TIMESTAMP = "1411525903"
WP_DEC_NONCE = "461056294"
WP_DEC_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJ"
    "RvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZB"
    "tDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxu"
    "GhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
WP_DEC_ENVELOPE = (
    "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n"
    f"<Encrypt><![CDATA[{WP_DEC_ENCRYPT}]]></Encrypt>\n"
    "<AgentID><![CDATA[1]]></AgentID>\n</xml>"
).encode()

# --- Tencent's official sample -------------------------------------------------------
TX_TOKEN = "spamtest"
TX_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TX_APPID = "wx2c2769f8efd9abc2"
TX_TIMESTAMP = "1409735669"
TX_NONCE = "1320562132"
TX_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
TX_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbU"
    "Ah0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6N"
    "PhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C"
    "0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
TX_PLAINTEXT = """<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>
<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>
<CreateTime>1409735668</CreateTime>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[abcdteT]]></Content>
<MsgId>6054768590064713728</MsgId>
</xml>"""


@pytest.fixture
def wp() -> PushCrypto:
    return PushCrypto(WP_TOKEN, WP_KEY, WP_ID)


@pytest.fixture
def tx() -> PushCrypto:
    return PushCrypto(TX_TOKEN, TX_KEY, TX_APPID)


# --- signatures ----------------------------------------------------------------------


def test_signature_known_answer():
    assert signature("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    assert verify_signature("test", "1410685589", "test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff")
    assert not verify_signature("test", "1410685589", "test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe")


def test_signature_sorts_before_hashing():
    assert signature("789", "456", "123") == "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
    assert signature("123", "789", "456") == signature("789", "456", "123")


@pytest.mark.parametrize(
    "token,timestamp,nonce,encrypt,expected",
    [
        (WP_TOKEN, WP_ECHO_TIMESTAMP, WP_ECHO_NONCE, WP_ECHO_STR, WP_ECHO_SIGNATURE),
        (WP_TOKEN, WP_DEC_TIMESTAMP, WP_DEC_NONCE, WP_DEC_ENCRYPT, WP_DEC_SIGNATURE),
        (WP_TOKEN, WP_ENC_TIMESTAMP, WP_ENC_NONCE, WP_ENC_EXPECTED, WP_ENC_SIGNATURE),
        (TX_TOKEN, TX_TIMESTAMP, TX_NONCE, TX_ENCRYPT, TX_MSG_SIGNATURE),
    ],
)
def test_msg_signature_known_answers(token, timestamp, nonce, encrypt, expected):
    assert msg_signature(token, timestamp, nonce, encrypt) == expected
    assert verify_msg_signature(token, timestamp, nonce, encrypt, expected)


def test_msg_signature_wrong_nonce_fails():
    # wechatpy test_check_signature_should_fail: nonce 437374424 instead of …425
    assert not verify_msg_signature(WP_TOKEN, WP_ECHO_TIMESTAMP, "437374424", WP_ECHO_STR, WP_ECHO_SIGNATURE)


@pytest.mark.parametrize("given", [None, "", "签名", "x" * 40, WP_ECHO_SIGNATURE[:-1], 12345])
def test_verify_refuses_odd_inputs_without_raising(given):
    assert not verify_msg_signature(WP_TOKEN, WP_ECHO_TIMESTAMP, WP_ECHO_NONCE, WP_ECHO_STR, given)
    assert not verify_signature("test", "1410685589", "test", given)


def test_verify_accepts_uppercase_hex():
    assert verify_signature("test", "1410685589", "test", "F21891DE399B4E33A1A93C9A7B8A8FFFB5A443FF")


# --- decryption known answers ------------------------------------------------------------


def test_decrypt_tencent_sample(tx):
    assert tx.decrypt_verified(TX_MSG_SIGNATURE, TX_TIMESTAMP, TX_NONCE, TX_ENCRYPT) == TX_PLAINTEXT


def test_decrypt_wechatpy_vector(wp):
    to, encrypt = extract_encrypt(WP_DEC_ENVELOPE)
    assert to == "wx49f0ab532d5d035a" and encrypt == WP_DEC_ENCRYPT
    message = wp.decrypt_verified(WP_DEC_SIGNATURE, WP_DEC_TIMESTAMP, WP_DEC_NONCE, encrypt)
    root = ElementTree.fromstring(message)
    assert root.findtext("Content") == "test"
    assert root.findtext("FromUserName") == "messense"


def test_decrypt_wechatpy_echo_str(wp):
    assert isinstance(wp.decrypt_verified(WP_ECHO_SIGNATURE, WP_ECHO_TIMESTAMP, WP_ECHO_NONCE, WP_ECHO_STR), str)


def test_decrypt_verified_checks_signature_first(wp):
    with pytest.raises(BadSignature) as exc:
        wp.decrypt_verified(WP_DEC_SIGNATURE, WP_DEC_TIMESTAMP, "1", WP_DEC_ENCRYPT)
    assert exc.value.reason_code == "bad-signature"
    assert "签名" in exc.value.message and "signature" in exc.value.message


# --- encryption known answer and round trips ---------------------------------------------


def test_encrypt_reproduces_wechatpy_ciphertext(wp):
    out = wp.encrypt(WP_ENC_REPLY, nonce=WP_ENC_NONCE, timestamp=WP_ENC_TIMESTAMP, random_bytes=WP_ENC_RANDOM)
    assert out.encrypt == WP_ENC_EXPECTED
    assert out.msg_signature == WP_ENC_SIGNATURE
    assert (out.timestamp, out.nonce) == (WP_ENC_TIMESTAMP, WP_ENC_NONCE)
    encrypt_b64, sig, ts, nonce = out  # a plain 4-tuple too
    assert wp.decrypt_verified(sig, ts, nonce, encrypt_b64) == WP_ENC_REPLY


def test_encrypt_defaults_are_fresh(wp):
    a = wp.encrypt("hello")
    b = wp.encrypt("hello")
    assert a.encrypt != b.encrypt  # random prefix
    assert a.timestamp.isdigit() and a.nonce.isdigit()
    assert wp.decrypt_verified(a.msg_signature, a.timestamp, a.nonce, a.encrypt) == "hello"


@pytest.mark.parametrize("extra", range(0, 33))
def test_padding_boundaries_round_trip(tx, extra):
    # plaintext before padding = 16 + 4 + len(msg) + len(appid); cover every pad 1..32
    message = "m" * extra
    out = tx.encrypt(message, random_bytes=b"\x00" * 16)
    raw = base64.b64decode(out.encrypt)
    assert len(raw) % 32 == 0
    assert tx.decrypt(out.encrypt) == message


def test_envelope_xml_and_json(tx):
    for fmt in ("xml", "json"):
        env = tx.envelope("<xml><a>1</a></xml>", "gh_10f6c3c3ac5a", fmt=fmt)
        to, encrypt = extract_encrypt(env.body)
        assert to == "gh_10f6c3c3ac5a"
        assert tx.decrypt_verified(env.msg_signature, env.timestamp, env.nonce, encrypt) == "<xml><a>1</a></xml>"
    env = tx.envelope("x", "wxplatform", id_element="AppId")
    assert b"<AppId><![CDATA[wxplatform]]></AppId>" in env.body
    assert extract_encrypt(env.body)[0] == "wxplatform"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.binary(min_size=16, max_size=16))
def test_round_trip_any_text(message, rnd):
    crypto = PushCrypto(TX_TOKEN, TX_KEY, TX_APPID)
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be sent at all
    out = crypto.encrypt(message, random_bytes=rnd)
    assert crypto.decrypt_verified(out.msg_signature, out.timestamp, out.nonce, out.encrypt) == message


# --- hostile ciphertexts ---------------------------------------------------------------


def _raw_encrypt(key_b64: str, plain: bytes) -> str:
    key = base64.b64decode(key_b64 + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_wrong_appid(tx):
    other = PushCrypto(TX_TOKEN, TX_KEY, "wx0000000000000000")
    with pytest.raises(AppIdMismatch) as exc:
        other.decrypt(TX_ENCRYPT)
    assert exc.value.reason_code == "bad-appid"
    # what a caller is told does not say which check failed
    with pytest.raises(BadPayload) as exc:
        other.decrypt_verified(TX_MSG_SIGNATURE, TX_TIMESTAMP, TX_NONCE, TX_ENCRYPT)
    assert exc.value.reason_code == "undecryptable"
    # and the appid is compared whole, not as a prefix
    longer = PushCrypto(TX_TOKEN, TX_KEY, TX_APPID + "x")
    with pytest.raises(AppIdMismatch):
        longer.decrypt(TX_ENCRYPT)


def test_wrong_key(tx):
    other = PushCrypto(TX_TOKEN, WP_KEY, TX_APPID)
    with pytest.raises(PushRejected):
        other.decrypt(TX_ENCRYPT)


@pytest.mark.parametrize("pad_byte", [0, 33, 200])
def test_bad_padding_value(tx, pad_byte):
    body = b"r" * 16 + struct.pack(">I", 3) + b"abc" + TX_APPID.encode()
    body += b"\x00" * (31 - len(body) % 32) + bytes([pad_byte])
    assert len(body) % 32 == 0
    with pytest.raises(BadPayload) as exc:
        tx.decrypt(_raw_encrypt(TX_KEY, body))
    assert exc.value.reason_code == "bad-padding"


def test_inconsistent_padding(tx):
    body = b"r" * 16 + struct.pack(">I", 3) + b"abc" + TX_APPID.encode()
    pad = 32 - len(body) % 32
    body += bytes([pad - 1 if pad > 1 else 7]) * (pad - 1) + bytes([pad])
    with pytest.raises(BadPayload) as exc:
        tx.decrypt(_raw_encrypt(TX_KEY, body))
    assert exc.value.reason_code == "bad-padding"


def test_length_field_out_of_bounds(tx):
    body = b"r" * 16 + struct.pack(">I", 10_000) + b"abc" + TX_APPID.encode()
    pad = 32 - len(body) % 32
    body += bytes([pad]) * pad
    with pytest.raises(BadPayload) as exc:
        tx.decrypt(_raw_encrypt(TX_KEY, body))
    assert exc.value.reason_code == "bad-length"


def test_plaintext_too_short_for_length(tx):
    body = b"r" * 16 + b"\x00\x00"
    body += bytes([14]) * 14
    with pytest.raises(BadPayload) as exc:
        tx.decrypt(_raw_encrypt(TX_KEY, body))
    assert exc.value.reason_code == "bad-length"


def test_tampered_ciphertext(tx):
    raw = bytearray(base64.b64decode(TX_ENCRYPT))
    raw[0] ^= 0x80  # flips the top bit of the length field in the next block
    tampered = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(BadSignature):
        tx.decrypt_verified(TX_MSG_SIGNATURE, TX_TIMESTAMP, TX_NONCE, tampered)
    with pytest.raises(BadPayload) as exc:
        tx.decrypt(tampered)
    assert exc.value.reason_code == "bad-length"
    raw = bytearray(base64.b64decode(TX_ENCRYPT))
    raw[-1] ^= 0x01  # garbles the final block
    with pytest.raises(PushRejected):
        tx.decrypt(base64.b64encode(bytes(raw)).decode())


@pytest.mark.parametrize(
    "encrypt,code",
    [
        ("", "bad-base64"),
        ("   ", "bad-base64"),
        ("not base64!", "bad-base64"),
        ("AAAA", "bad-ciphertext"),  # 3 bytes
        (base64.b64encode(b"x" * 17).decode(), "bad-ciphertext"),
    ],
)
def test_malformed_ciphertexts(tx, encrypt, code):
    with pytest.raises(BadPayload) as exc:
        tx.decrypt(encrypt)
    assert exc.value.reason_code == code


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())))
def test_decrypt_garbage_only_raises_push_rejected(garbage):
    crypto = PushCrypto(TX_TOKEN, TX_KEY, TX_APPID)
    try:
        crypto.decrypt(garbage)
    except PushRejected as exc:
        assert exc.reason_code in REASON_CODES


# --- configuration --------------------------------------------------------------------


@pytest.mark.parametrize("key", [TX_KEY[:-1], TX_KEY + "A", "", "!" * 43, "abc"])
def test_bad_encoding_aes_key(key):
    with pytest.raises(ValueError) as exc:
        PushCrypto(TX_TOKEN, key, TX_APPID)
    assert "WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY" in str(exc.value)


def test_empty_token_or_appid():
    with pytest.raises(ValueError, match="WEAPP_LAUNCH_WECHAT_TOKEN"):
        PushCrypto("", TX_KEY, TX_APPID)
    with pytest.raises(ValueError, match="WEAPP_LAUNCH_WECHAT_COMPONENT_APPID"):
        PushCrypto(TX_TOKEN, TX_KEY, "")


def test_from_settings_and_repr_hides_secrets():
    s = SimpleNamespace(
        wechat_token=SecretStr(TX_TOKEN),
        wechat_encoding_aes_key=SecretStr(TX_KEY),
        wechat_component_appid=TX_APPID,
    )
    crypto = PushCrypto.from_settings(s)
    assert crypto.decrypt(TX_ENCRYPT) == TX_PLAINTEXT
    assert TX_TOKEN not in repr(crypto) and TX_KEY not in repr(crypto)
    with pytest.raises(ValueError, match="WEAPP_LAUNCH_WECHAT_TOKEN"):
        PushCrypto.from_settings(SimpleNamespace(**{**vars(s), "wechat_token": None}))


def test_check_timestamp():
    assert check_timestamp("1409735669", window_seconds=300, now=1409735669 + 299) == 1409735669
    # only plain ASCII decimal Unix seconds: int() would take every one of these
    for bad in ("1409735669x", None, "", "+1409735669", "1409_735_669", "01409735669", " 1409735669",
                "1409735669 ", "１４０９７３５６６９", "14097356690", "-1", "0", True, 1.5):
        with pytest.raises(BadSignature) as exc:
            check_timestamp(bad, window_seconds=300, now=1409735669)
        assert exc.value.reason_code == "stale-timestamp"
    with pytest.raises(BadSignature):
        check_timestamp(1409735669, window_seconds=300, now=1409735669 + 301)
    with pytest.raises(BadSignature):
        check_timestamp(1409735669, window_seconds=300, now=1409735669 - 301)


def test_reason_codes_are_short_stable_strings():
    for code in REASON_CODES:
        assert code == code.lower() and " " not in code and len(code) <= 24
    exc = PushRejected("bad-signature", "签名错误 / signature mismatch")
    assert exc.reason_code == "bad-signature" and exc.message.endswith("signature mismatch")
    assert issubclass(BadSignature, PushRejected) and issubclass(AppIdMismatch, PushRejected)
