"""Signed staff links: an expiring HMAC token bound to one launch, one gate and one attempt.

An alert carries `{public_url}/gates/{launch_id}/{gate}?token=…`; whoever opens it may
record a decision for that attempt of that gate of that launch, and nothing else, until
it expires or the attempt is decided (then the link is dead: ``link-used``) or a newer
attempt has started (``stale-attempt``). Liveness is read from the store — the step rows
and the decision rows — so a decision needs no revocation list to kill its links.

Token::

    kid "." base64url("launch|gate|attempt|expiry") "." base64url(HMAC-SHA256(secret[kid], DOMAIN kid NUL payload))

``kid`` names the link secret that signed it (settings ``link_secrets``: newest first; the
newest signs, every listed key verifies until it is removed, so a key can be rotated
without touching anything encrypted at rest). Base64url is unpadded and decoded strictly:
no stray characters, no padding, no non-canonical trailing bits. The key is looked up
first, then the signature is checked in constant time, and only then is anything in the
payload believed, so a refusal can say why (expired, another launch or gate) without a
forged token learning anything.

Tokens are credentials: never stored and never logged. The outbox holds a placeholder
(:func:`link_placeholder`) that :func:`render_links` turns into a fresh link when the
alert is delivered; the rendered text goes to the channels only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from launch.domain.link_keys import KID, LinkKeys

if TYPE_CHECKING:
    from launch.app.resources import Resources

__all__ = [
    "LinkClaims",
    "LinkError",
    "check_live",
    "link_placeholder",
    "make_token",
    "render_links",
    "staff_link",
    "verify_token",
]

MAX_TOKEN_LENGTH = 512
MAX_ATTEMPT = 9999
_DOMAIN = b"weapp-launch/staff-link/v2"

# Reason codes of LinkError (stable strings for logs, metrics and tests).
MALFORMED = "malformed-token"
UNKNOWN_KEY = "unknown-link-key"
BAD_SIGNATURE = "bad-token-signature"
WRONG_TARGET = "wrong-launch-or-gate"
EXPIRED = "expired-token"
LINK_USED = "link-used"
STALE_ATTEMPT = "stale-attempt"

_B64 = re.compile(r"[A-Za-z0-9_-]*")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_NUMBER = re.compile(r"0|[1-9][0-9]{0,11}")

# What the outbox stores instead of a link: rendered into a fresh link at delivery.
PLACEHOLDER = re.compile(
    r"\[\[staff-link:([a-z0-9][a-z0-9-]{0,63}):([a-z0-9][a-z0-9-]{0,63}):([1-9][0-9]{0,3})\]\]"
)
# A link as alerts carried it before tokens were bound to an attempt (dead since: other format).
_LEGACY_LINK = re.compile(
    r"https?://[^\s]*?/gates/([a-z0-9][a-z0-9-]{0,63})/([a-z0-9][a-z0-9-]{0,63})"
    r"\?token=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?![A-Za-z0-9_.-])"
)

DEAD_LINK_TEXT = "（链接已失效：该关卡本轮已处理或已重新开始 / link no longer valid: this attempt was decided or superseded）"


class LinkError(ValueError):
    """A staff-link token was refused. `reason` is a stable code; the message is "中文 / English"."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a verified token is good for."""

    launch_id: str
    gate: str
    attempt: int
    expires_at: datetime
    kid: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict unpadded base64url: only the alphabet, no padding, canonical trailing bits."""
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value


def _sign(secret: bytes, kid: str, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + b"\x00" + kid.encode("ascii") + b"\x00" + payload, hashlib.sha256).digest()


def _check_target(launch_id: str, gate: str, attempt: int) -> None:
    for name, value in (("launch_id", launch_id), ("gate", gate)):
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise ValueError(f"{name} must be lower-case letters, digits and '-'")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be an int in 1..{MAX_ATTEMPT}")


def make_token(launch_id: str, gate: str, attempt: int, expires_at: datetime, keys: LinkKeys) -> str:
    """A token that lets its bearer decide `attempt` of `gate` of `launch_id` until `expires_at`."""
    _check_target(launch_id, gate, attempt)
    expiry = int(_aware(expires_at, "expires_at").timestamp())
    payload = f"{launch_id}|{gate}|{attempt}|{expiry}".encode("ascii")
    kid = keys.signing_kid
    return f"{kid}.{_b64(payload)}.{_b64(_sign(keys.secret(), kid, payload))}"


def _malformed(message: str = "链接令牌缺失或格式错误 / link token missing or malformed") -> LinkError:
    return LinkError(MALFORMED, message)


def verify_token(token: str | None, launch_id: str, gate: str, now: datetime, keys: LinkKeys) -> LinkClaims:
    """Check a token for (launch_id, gate) at `now`: format, key id, signature, target, expiry.
    Whether its attempt is still open is the store's to say: :func:`check_live`. Raises LinkError."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise _malformed()
    kid, body, sig = token.split(".")
    try:
        payload = _unb64(body)
        given = _unb64(sig)
    except ValueError:
        raise _malformed("链接令牌编码错误 / link token is not strict base64url") from None
    if not KID.fullmatch(kid) or len(given) != hashlib.sha256().digest_size:
        raise _malformed()
    secret = keys.secret(kid)
    if secret is None:
        raise LinkError(UNKNOWN_KEY, "签发此链接的密钥已停用，请向运营索取新链接 / the key that signed this link is "
                                     "no longer in use; ask for a new link")
    if not hmac.compare_digest(_sign(secret, kid, payload), given):
        raise LinkError(BAD_SIGNATURE, "链接令牌签名无效 / link token signature is not valid")
    try:
        t_launch, t_gate, t_attempt, t_expiry = payload.decode("ascii").split("|")
    except (UnicodeDecodeError, ValueError):
        raise _malformed("链接令牌内容错误 / link token content malformed") from None
    if not (_ID.fullmatch(t_launch) and _ID.fullmatch(t_gate) and _NUMBER.fullmatch(t_attempt)
            and _NUMBER.fullmatch(t_expiry) and 1 <= int(t_attempt) <= MAX_ATTEMPT):
        raise _malformed("链接令牌内容错误 / link token content malformed")
    same_launch = hmac.compare_digest(t_launch.encode(), str(launch_id).encode("utf-8", "replace"))
    same_gate = hmac.compare_digest(t_gate.encode(), str(gate).encode("utf-8", "replace"))
    if not (same_launch and same_gate):
        raise LinkError(WRONG_TARGET, "链接不属于该上线任务或关卡 / this link is for another launch or gate")
    expiry = int(t_expiry)
    if int(_aware(now, "now").timestamp()) >= expiry:
        raise LinkError(EXPIRED, "链接已过期，请向运营索取新链接 / this link has expired; ask for a new one")
    return LinkClaims(t_launch, t_gate, int(t_attempt), datetime.fromtimestamp(expiry, UTC), kid)


def check_live(store: Any, launch_id: str, gate: str, attempt: int) -> None:
    """Refuse a link whose attempt is decided (``link-used``) or is not the gate's current,
    open attempt (``stale-attempt``), read from the store's decision and step rows."""
    decided = store.get_decision(launch_id, gate, attempt)
    if decided is not None:
        raise LinkError(LINK_USED, f"该关卡第 {attempt} 轮已有决定，此链接已失效 / attempt {attempt} of this gate "
                                   "has been decided; this link no longer works")
    latest = store.latest_step(launch_id, gate)
    if latest is None or latest.attempt != attempt or not latest.is_open:
        raise LinkError(STALE_ATTEMPT, f"此链接针对第 {attempt} 轮，该轮已结束或已有新一轮 / this link is for attempt "
                                       f"{attempt}, which has ended or been superseded; use the newest link")


def staff_link(res: Resources, launch_id: str, gate: str, attempt: int, now: datetime | None = None) -> str:
    """`{public_url}/gates/{launch_id}/{gate}?token=…`, valid `settings.link_ttl_hours` from `now`
    (default: the resources' clock), signed with the newest of `settings.link_keys()`."""
    settings = res.settings
    expires = _aware(res.now() if now is None else now, "now") + timedelta(hours=settings.link_ttl_hours)
    token = make_token(launch_id, gate, attempt, expires, settings.link_keys())
    base = str(settings.public_url).rstrip("/")
    return f"{base}/gates/{quote(launch_id, safe='')}/{quote(gate, safe='')}?token={token}"


def link_placeholder(launch_id: str, gate: str, attempt: int) -> str:
    """What an outbox body holds where the signed link goes: no token, only what to sign."""
    _check_target(launch_id, gate, attempt)
    return f"[[staff-link:{launch_id}:{gate}:{attempt}]]"


def _legacy_attempt(dedupe_key: str | None, launch_id: str, gate: str) -> int | None:
    parts = (dedupe_key or "").split(":")
    if len(parts) >= 3 and parts[0] == launch_id and parts[1] == gate and _NUMBER.fullmatch(parts[2]):
        attempt = int(parts[2])
        return attempt if 1 <= attempt <= MAX_ATTEMPT else None
    return None


def render_links(res: Resources, text: str, now: datetime | None = None, *, live: bool = True,
                 dedupe_key: str | None = None) -> str:
    """`text` with each placeholder replaced by a fresh signed link (each link signed `now`,
    default the resources' clock, for the attempt it names). With `live` (the default), an
    attempt that `res.store` says is already decided or superseded gets a note instead of a
    link that would be refused. A link in the old
    format (outbox rows written before tokens named their attempt) is re-issued for the
    attempt in the alert's `dedupe_key`, or dropped. The result is for the channels only:
    never write it back to the store."""
    now = res.now() if now is None else now

    def fresh(launch_id: str, gate: str, attempt: int) -> str:
        if live:
            try:
                check_live(res.store, launch_id, gate, attempt)
            except LinkError:
                return DEAD_LINK_TEXT
            except Exception:  # noqa: BLE001 - the receiver checks again; a store hiccup must not stop the alert
                pass
        return staff_link(res, launch_id, gate, attempt, now)

    if "?token=" in text:  # first: the fresh links below must not be taken for old ones
        def legacy(m: re.Match) -> str:
            attempt = _legacy_attempt(dedupe_key, m.group(1), m.group(2))
            return fresh(m.group(1), m.group(2), attempt) if attempt is not None else DEAD_LINK_TEXT

        text = _LEGACY_LINK.sub(legacy, text)
    if "[[staff-link:" in text:
        text = PLACEHOLDER.sub(lambda m: fresh(m.group(1), m.group(2), int(m.group(3))), text)
    if "[[fastregister-link:" in text:  # WeChat's page whose redirect carries a signed state
        from launch.app.fastregister_reuse import render_link_placeholders

        text = render_link_placeholders(res, text, now, live=live)
    return text
