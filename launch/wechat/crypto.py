"""Signatures and AES "safe mode" of the WeChat (third-party platform) message push.

Protocol, as in WeChat's WXBizMsgCrypt samples and cross-checked against wechatpy
(`wechatpy/crypto/__init__.py`, `wechatpy/crypto/base.py`):

- signature     = hex SHA1 of the sorted concatenation of [token, timestamp, nonce]
- msg_signature = hex SHA1 of the sorted concatenation of [token, timestamp, nonce, Encrypt]
- AES key       = base64-decode(EncodingAESKey + "="), 43 characters -> 32 bytes
- AES-256-CBC, IV = key[:16];
  plaintext = random(16) || uint32 big-endian len(message) || message || appid,
  PKCS#7-padded to a multiple of 32 (pad 1..32).

Pure functions and one class; no I/O, no web framework.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from launch.wechat.errors import (
    BAD_BASE64,
    BAD_CIPHERTEXT,
    BAD_ENCODING,
    BAD_LENGTH,
    BAD_PADDING,
    BAD_SIGNATURE,
    STALE_TIMESTAMP,
    UNDECRYPTABLE,
    AppIdMismatch,
    BadPayload,
    BadSignature,
    PushRejected,
)

__all__ = [
    "AppIdMismatch",
    "BadPayload",
    "BadSignature",
    "EncryptedMessage",
    "PushCrypto",
    "PushRejected",
    "SignedEnvelope",
    "check_timestamp",
    "msg_signature",
    "signature",
    "verify_msg_signature",
    "verify_signature",
]

BLOCK = 32  # WeChat pads to 32 bytes, not to the AES block size
RANDOM_LEN = 16
ENCODING_AES_KEY_SETTING = "WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY"
TOKEN_SETTING = "WEAPP_LAUNCH_WECHAT_TOKEN"
APPID_SETTING = "WEAPP_LAUNCH_WECHAT_COMPONENT_APPID"


def _sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(str(p) for p in parts)).encode("utf-8")).hexdigest()


def _same(expected: str, given: str | None) -> bool:
    # compare_digest on str refuses non-ASCII with TypeError; compare bytes instead.
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))


def signature(token: str, timestamp: str, nonce: str) -> str:
    """The `signature` query parameter: lowercase hex SHA1 of sorted [token, timestamp, nonce]."""
    return _sha1_sorted(token, timestamp, nonce)


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The `msg_signature` query parameter of safe mode: SHA1 of sorted [token, timestamp, nonce, Encrypt]."""
    return _sha1_sorted(token, timestamp, nonce, encrypt)


def verify_signature(token: str, timestamp: str, nonce: str, given: str | None) -> bool:
    return _same(signature(token, timestamp, nonce), given)


def verify_msg_signature(token: str, timestamp: str, nonce: str, encrypt: str, given: str | None) -> bool:
    return _same(msg_signature(token, timestamp, nonce, encrypt), given)


# WeChat's timestamp is Unix seconds in ASCII decimal: no sign, no "_", no leading zero, no
# full-width digits, no spaces, at most 10 digits. int() would take all of those.
_TIMESTAMP = re.compile(r"[1-9][0-9]{0,9}")


def check_timestamp(timestamp: str | int | None, *, window_seconds: int, now: float | None = None) -> int:
    """Refuse a push whose timestamp is missing, not plain decimal Unix seconds (at most 10
    ASCII digits, no leading zero), or further than `window_seconds` from now.

    Returns the timestamp as an int. (Setting: WEAPP_LAUNCH_TIMESTAMP_WINDOW_SECONDS.)
    """
    text = str(timestamp) if isinstance(timestamp, (str, int)) and not isinstance(timestamp, bool) else ""
    if not _TIMESTAMP.fullmatch(text):
        raise BadSignature(
            STALE_TIMESTAMP, "时间戳无效：须为至多 10 位的十进制数字 / timestamp missing or not plain decimal "
            "Unix seconds (at most 10 ASCII digits, no sign or leading zero)"
        )
    ts = int(text)
    current = time.time() if now is None else now
    if abs(current - ts) > window_seconds:
        raise BadSignature(STALE_TIMESTAMP, "时间戳超出允许范围 / timestamp outside the accepted window")
    return ts


class EncryptedMessage(NamedTuple):
    encrypt: str  # base64 ciphertext, the <Encrypt> value
    msg_signature: str
    timestamp: str
    nonce: str


class SignedEnvelope(NamedTuple):
    body: bytes  # what WeChat POSTs
    msg_signature: str  # query parameters that go with it
    timestamp: str
    nonce: str


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class PushCrypto:
    """Encrypts and decrypts push messages for one (token, EncodingAESKey, appid).

    `appid` is the third-party platform's component appid (the id WeChat appends to
    every plaintext it encrypts for the platform).
    """

    def __init__(self, token: str, encoding_aes_key: str, appid: str):
        if not isinstance(token, str) or not token:
            raise ValueError(f"{TOKEN_SETTING} is empty: the push token is required")
        if not isinstance(appid, str) or not appid:
            raise ValueError(f"{APPID_SETTING} is empty: the component appid is required")
        if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
            raise ValueError(
                f"{ENCODING_AES_KEY_SETTING} must be exactly 43 characters "
                f"(got {len(encoding_aes_key) if isinstance(encoding_aes_key, str) else 'none'})"
            )
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{ENCODING_AES_KEY_SETTING} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"{ENCODING_AES_KEY_SETTING} must decode to 32 bytes (got {len(key)})")
        self._token = token
        self._key = key
        self._appid = appid
        self._appid_bytes = appid.encode("utf-8")

    @classmethod
    def from_settings(cls, settings) -> PushCrypto:
        """Build from launch.settings.Settings (wechat_token, wechat_encoding_aes_key, wechat_component_appid)."""

        def secret(value, name: str) -> str:
            if value is None:
                raise ValueError(f"{name} is not set")
            return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)

        return cls(
            secret(settings.wechat_token, TOKEN_SETTING),
            secret(settings.wechat_encoding_aes_key, ENCODING_AES_KEY_SETTING),
            secret(settings.wechat_component_appid, APPID_SETTING),
        )

    def __repr__(self) -> str:  # never print the token or key
        return f"PushCrypto(appid={self._appid!r})"

    @property
    def appid(self) -> str:
        return self._appid

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    # --- signatures bound to this token -------------------------------------------

    def signature(self, timestamp: str, nonce: str) -> str:
        return signature(self._token, timestamp, nonce)

    def msg_signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return msg_signature(self._token, timestamp, nonce, encrypt)

    def verify_signature(self, given: str | None, timestamp: str, nonce: str) -> None:
        """Raise BadSignature unless `given` is the plain-mode signature."""
        if not verify_signature(self._token, timestamp, nonce, given):
            raise BadSignature(BAD_SIGNATURE, "签名错误 / signature mismatch")

    def verify_msg_signature(self, given: str | None, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise BadSignature unless `given` is the msg_signature of `encrypt`."""
        if not verify_msg_signature(self._token, timestamp, nonce, encrypt, given):
            raise BadSignature(BAD_SIGNATURE, "消息签名错误 / msg_signature mismatch")

    # --- encryption ---------------------------------------------------------------

    def encrypt(
        self,
        message: str,
        nonce: str | None = None,
        timestamp: str | int | None = None,
        random_bytes: bytes | None = None,
    ) -> EncryptedMessage:
        """Encrypt `message` as WeChat would; returns (encrypt_b64, msg_signature, timestamp, nonce)."""
        if random_bytes is None:
            random_bytes = secrets.token_bytes(RANDOM_LEN)
        if isinstance(random_bytes, str):
            random_bytes = random_bytes.encode("utf-8")
        if len(random_bytes) != RANDOM_LEN:
            raise ValueError(f"random_bytes must be {RANDOM_LEN} bytes")
        nonce = str(nonce) if nonce is not None else str(secrets.randbelow(10**10))
        timestamp = str(timestamp) if timestamp is not None else str(int(time.time()))
        body = message.encode("utf-8")
        plain = random_bytes + struct.pack(">I", len(body)) + body + self._appid_bytes
        pad = BLOCK - len(plain) % BLOCK  # 1..32, a full block when already aligned
        plain += bytes([pad]) * pad
        enc = self._cipher().encryptor()
        encrypt_b64 = base64.b64encode(enc.update(plain) + enc.finalize()).decode("ascii")
        return EncryptedMessage(encrypt_b64, self.msg_signature(timestamp, nonce, encrypt_b64), timestamp, nonce)

    def envelope(
        self,
        message: str,
        to_user_name: str | None = None,
        *,
        id_element: str = "ToUserName",
        fmt: str = "xml",
        nonce: str | None = None,
        timestamp: str | int | None = None,
        random_bytes: bytes | None = None,
    ) -> SignedEnvelope:
        """The full encrypted body WeChat POSTs, with its query parameters (for a simulator and tests).

        Message pushes carry `<ToUserName>` (the mini-program's original id); authorisation
        events carry `<AppId>` instead: pass id_element="AppId". fmt "json" gives
        {"ToUserName": ..., "Encrypt": ...}.
        """
        encrypted = self.encrypt(message, nonce=nonce, timestamp=timestamp, random_bytes=random_bytes)
        if fmt == "xml":
            parts = ["<xml>"]
            if to_user_name is not None:
                parts.append(f"<{id_element}>{_cdata(to_user_name)}</{id_element}>")
            parts.append(f"<Encrypt>{_cdata(encrypted.encrypt)}</Encrypt></xml>")
            body = "".join(parts).encode("utf-8")
        elif fmt == "json":
            import json

            doc = {} if to_user_name is None else {id_element: to_user_name}
            doc["Encrypt"] = encrypted.encrypt
            body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        else:
            raise ValueError("fmt must be 'xml' or 'json'")
        return SignedEnvelope(body, encrypted.msg_signature, encrypted.timestamp, encrypted.nonce)

    # --- decryption ---------------------------------------------------------------

    def decrypt(self, encrypt_b64: str) -> str:
        """Decrypt an <Encrypt> value; checks padding, the length field and the trailing appid.

        Call `decrypt_verified` on anything received: it checks msg_signature first, so a
        forger never reaches the padding checks.
        """
        if not isinstance(encrypt_b64, str) or not encrypt_b64.strip():
            raise BadPayload(BAD_BASE64, "Encrypt 为空 / Encrypt is empty")
        try:
            raw = base64.b64decode(encrypt_b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadPayload(BAD_BASE64, "Encrypt 不是 base64 / Encrypt is not base64") from None
        if not raw or len(raw) % 16:
            raise BadPayload(BAD_CIPHERTEXT, "密文长度错误 / ciphertext length is not a multiple of 16")
        dec = self._cipher().decryptor()
        plain = dec.update(raw) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
            raise BadPayload(BAD_PADDING, "填充错误 / bad PKCS#7 padding")
        content = plain[RANDOM_LEN:-pad]
        if len(content) < 4:
            raise BadPayload(BAD_LENGTH, "明文过短 / plaintext too short for its length field")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise BadPayload(BAD_LENGTH, "长度字段越界 / message length field out of bounds")
        message = content[4 : 4 + length]
        from_appid = content[4 + length :]
        if not hmac.compare_digest(from_appid, self._appid_bytes):
            raise AppIdMismatch()
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise BadPayload(BAD_ENCODING, "消息不是 UTF-8 / message is not UTF-8") from None

    def decrypt_verified(self, msg_signature: str | None, timestamp: str, nonce: str, encrypt_b64: str) -> str:
        """Check msg_signature over the ciphertext, then decrypt.

        Every failure after the signature (base64, length, padding, the length field, UTF-8,
        the app id) is raised as one UNDECRYPTABLE error with one message: what a caller is
        told must not say which check failed (a padding oracle). `decrypt` keeps the detail
        for unit tests and local debugging.
        """
        if not isinstance(encrypt_b64, str):
            raise BadPayload(BAD_BASE64, "Encrypt 缺失 / Encrypt is missing")
        self.verify_msg_signature(msg_signature, timestamp, nonce, encrypt_b64)
        try:
            return self.decrypt(encrypt_b64)
        except PushRejected:
            raise BadPayload(UNDECRYPTABLE, "消息无法解密 / the message cannot be decrypted") from None
