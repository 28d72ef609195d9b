"""Signed staff links: an expiring HMAC token bound to one launch and one gate.

An alert carries `{public_url}/gates/{launch_id}/{gate}?token=…`; whoever opens it may
record a decision for that gate of that launch, and nothing else, until it expires.

Token = base64url("launch|gate|expiry") "." base64url(HMAC-SHA256(key, "launch|gate|expiry")),
expiry in Unix seconds. The token carries what it is bound to, so a refusal can say why
(expired, another launch or gate, a bad signature) — the signature is checked first, in
constant time, so nothing about a forged token is believed. Tokens are credentials: never
log them (the receiver masks `token=` in anything it logs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

__all__ = ["LinkError", "make_token", "staff_link", "verify_token"]

MAX_TOKEN_LENGTH = 512

# Reason codes of LinkError (stable strings for logs, metrics and tests).
MALFORMED = "malformed-token"
BAD_SIGNATURE = "bad-token-signature"
WRONG_TARGET = "wrong-launch-or-gate"
EXPIRED = "expired-token"


class LinkError(ValueError):
    """A staff-link token was refused. `reason` is a stable code; the message is "中文 / English"."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value


def _key_bytes(key: bytes | str) -> bytes:
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not data:
        raise ValueError("the link key is empty")
    return data


def _message(launch_id: str, gate: str, expiry: int) -> bytes:
    return f"{launch_id}|{gate}|{expiry}".encode()


def _sign(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def make_token(launch_id: str, gate: str, expires_at: datetime, key: bytes | str) -> str:
    """A token that lets its bearer decide `gate` of `launch_id` until `expires_at`."""
    for name, value in (("launch_id", launch_id), ("gate", gate)):
        if not value or "|" in value:
            raise ValueError(f"{name} must be non-empty and contain no '|'")
    expiry = int(_aware(expires_at, "expires_at").timestamp())
    message = _message(launch_id, gate, expiry)
    return f"{_b64(message)}.{_b64(_sign(_key_bytes(key), message))}"


def verify_token(token: str | None, launch_id: str, gate: str, now: datetime, key: bytes | str) -> datetime:
    """Check a token for (launch_id, gate) at `now`; returns its expiry. Raises LinkError."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise LinkError(MALFORMED, "链接令牌缺失或格式错误 / link token missing or malformed")
    body, sig = token.split(".")
    try:
        message = _unb64(body)
        given = _unb64(sig)
    except (binascii.Error, ValueError):
        raise LinkError(MALFORMED, "链接令牌格式错误 / link token malformed") from None
    expected = _sign(_key_bytes(key), message)
    if not hmac.compare_digest(expected, given):
        raise LinkError(BAD_SIGNATURE, "链接令牌签名无效 / link token signature is not valid")
    try:
        t_launch, t_gate, t_expiry = message.decode("utf-8").split("|")
        expiry = int(t_expiry)
    except (UnicodeDecodeError, ValueError):
        raise LinkError(MALFORMED, "链接令牌内容错误 / link token content malformed") from None
    same_launch = hmac.compare_digest(t_launch.encode(), str(launch_id).encode("utf-8", "replace"))
    same_gate = hmac.compare_digest(t_gate.encode(), str(gate).encode("utf-8", "replace"))
    if not (same_launch and same_gate):
        raise LinkError(
            WRONG_TARGET, "链接不属于该上线任务或关卡 / this link is for another launch or gate"
        )
    if int(_aware(now, "now").timestamp()) >= expiry:
        raise LinkError(EXPIRED, "链接已过期，请向运营索取新链接 / this link has expired; ask for a new one")
    return datetime.fromtimestamp(expiry, UTC)


def staff_link(launch_id: str, gate: str, settings, now: datetime) -> str:
    """`{public_url}/gates/{launch_id}/{gate}?token=…`, valid `settings.link_ttl_hours` from `now`."""
    expires = _aware(now, "now") + timedelta(hours=settings.link_ttl_hours)
    token = make_token(launch_id, gate, expires, settings.link_key())
    base = str(settings.public_url).rstrip("/")
    return f"{base}/gates/{quote(launch_id, safe='')}/{quote(gate, safe='')}?token={token}"
