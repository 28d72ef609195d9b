"""Send one message to the channels of some tags, one Apprise object per channel.

Apprise returns False on failure and does not raise. Each channel gets its own
``apprise.Apprise`` so its own result is known; the reason of a failure is read from
Apprise's log records of that call (captured per thread, so concurrent deliveries do
not mix their errors), with secrets of the URL masked out and personal data scrubbed.

Each delivery goes to a per-delivery URL (:func:`delivery_url`): the channel's URL plus
its timeouts (``cto`` / ``rto``, read by Apprise's URLBase for every plugin) and, where
the plugin takes custom headers (``+Name=value``: custom_json / custom_form / custom_xml
send HTTP headers, the email plugin mail headers), the delivery's idempotency key —
``Idempotency-Key`` over HTTP, ``X-Idempotency-Key`` in mail. Apprise's email plugin
writes its own ``Message-ID`` after the custom headers (``make_msgid``, email/base.py),
so a ``+Message-ID=`` would give the mail two Message-IDs: we do not set it. The key is
the same on every try of one alert to one channel (:func:`idempotency_key`), so a
gateway that keeps the keys it has seen delivers a retried alert once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from launch.domain.masking import scrub_text
from notifiers.config import Channel, NotifierConfig

__all__ = [
    "HTTP_KEY_HEADER",
    "MAIL_KEY_HEADER",
    "NO_CHANNEL",
    "ChannelResult",
    "deliver",
    "delivery_url",
    "idempotency_key",
    "mask_secrets",
    "send_test",
]

HTTP_KEY_HEADER = "Idempotency-Key"
MAIL_KEY_HEADER = "X-Idempotency-Key"

NO_CHANNEL = "(no-channel)"  # the name of the result that says "no channel for these tags"
MAX_ERROR_CHARS = 500

# our severities -> Apprise notify types (Apprise's own names pass through)
_NOTIFY_TYPES = {
    "info": "info",
    "success": "success",
    "warning": "warning",
    "urgent": "failure",
    "overdue": "failure",
    "failure": "failure",
}


@dataclass(frozen=True, slots=True)
class ChannelResult:
    name: str  # the channel's name (never its URL), or NO_CHANNEL
    ok: bool
    error: str | None = None  # masked reason when not ok


# --------------------------------------------------------------------------- log capture

_apprise_logger = logging.getLogger("apprise")
_lock = threading.Lock()
_active = 0
_saved_level = logging.NOTSET
_passthrough = logging.WARNING
_buffers: dict[int, list[tuple[int, str]]] = {}


class _CaptureFilter(logging.Filter):
    """Copies the apprise records of a capturing thread; lets through only what the
    logger's configured level would have let through anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        buf = _buffers.get(record.thread) if record.thread is not None else None
        if buf is not None:
            try:
                buf.append((record.levelno, record.getMessage()))
            except Exception:  # noqa: BLE001 - a bad log call must not break delivery
                pass
        return record.levelno >= _passthrough


_filter = _CaptureFilter()


@contextmanager
def _capture() -> Iterator[list[tuple[int, str]]]:
    global _active, _saved_level, _passthrough
    buf: list[tuple[int, str]] = []
    ident = threading.get_ident()
    with _lock:
        if _active == 0:
            _saved_level = _apprise_logger.level
            _passthrough = _apprise_logger.getEffectiveLevel()
            _apprise_logger.addFilter(_filter)
            _apprise_logger.setLevel(logging.DEBUG)
        _active += 1
        _buffers[ident] = buf
    try:
        yield buf
    finally:
        with _lock:
            _buffers.pop(ident, None)
            _active -= 1
            if _active == 0:
                _apprise_logger.removeFilter(_filter)
                _apprise_logger.setLevel(_saved_level)


# --------------------------------------------------------------------------- masking

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")
_SECRET_PARAM = re.compile(
    r"((?:key|token|secret|pass|password|passwd|pwd|apikey|api_key|sendkey|access_token|webhook|sign)=)[^\s&'\"]+",
    re.IGNORECASE,
)


def _secret_pieces(url: str) -> set[str]:
    """Parts of an Apprise URL that may be secret: credentials, tokens in the host or the
    path (``wecombot://KEY``, ``dingtalk://TOKEN``), query values."""
    pieces: set[str] = set()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return {url}
    for p in (parts.username, parts.password):
        if p:
            pieces.update({p, unquote(p)})
    if host and "." not in host and host != "localhost":
        pieces.update({host, netloc.split(":")[0]})
    for seg in parts.path.split("/"):
        if len(seg) >= 6:
            pieces.update({seg, unquote(seg)})
    for _, v in parse_qsl(parts.query, keep_blank_values=False):
        if len(v) >= 6 and "@" not in v:
            pieces.add(v)
    pieces.add(url)
    return {p for p in pieces if len(p) >= 4}


def mask_secrets(text: str, channel: Channel | None = None) -> str:
    """Remove the channel's URL secrets, any ``user:pass@`` and ``token=`` values, and
    scrub ID numbers and phones."""
    if channel is not None:
        for piece in sorted(_secret_pieces(channel.url), key=len, reverse=True):
            text = text.replace(piece, "***")
    text = _USERINFO.sub(r"\1***@", text)
    text = _SECRET_PARAM.sub(r"\1***", text)
    return scrub_text(text)


def _summarise(lines: list[tuple[int, str]]) -> str:
    keep = [
        msg.strip()
        for level, msg in lines
        if level >= logging.WARNING or "Exception" in msg or msg.startswith("Response Details")
    ]
    text = " | ".join(dict.fromkeys(m for m in keep if m))
    return text[:MAX_ERROR_CHARS]


# --------------------------------------------------------------------------- sending


def idempotency_key(alert_key: str, channel: str) -> str:
    """The key of one alert's delivery to one channel: the same on every try, from every
    watcher; nothing personal in it (a digest of the outbox key and the channel name)."""
    digest = hashlib.sha256(f"{alert_key}\n{channel}".encode()).hexdigest()
    return f"wl-{digest[:32]}"


def delivery_url(channel: Channel, key: str | None = None) -> str:
    """The channel's URL as one delivery uses it: + timeouts, + the idempotency key where
    the scheme can carry it (see the module docstring). Holds the channel's secrets: it
    goes to Apprise only."""
    params = [f"{k}={v:g}" for k, v in channel.timeouts().items()]
    if key:
        if channel.idempotency == "http-header":
            params.append(f"+{HTTP_KEY_HEADER}={quote(key, safe='')}")
        elif channel.idempotency == "mail-header":
            params.append(f"+{MAIL_KEY_HEADER}={quote(key, safe='')}")
    if not params:
        return channel.url
    return channel.url + ("&" if "?" in channel.url else "?") + "&".join(params)


def _send_one(channel: Channel, title: str, body: str, notify_type: str, key: str | None = None) -> ChannelResult:
    import apprise

    added = False
    ok = False
    url = delivery_url(channel, key)
    with _capture() as lines:
        try:
            aobj = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
            added = bool(aobj.add(url))
            if added:
                # Apprise 1.x answers True/False, 2.x an AppriseResult that is truthy on success.
                ok = bool(aobj.notify(
                    title=title,
                    body=body,
                    body_format=apprise.NotifyFormat.TEXT,
                    notify_type=_NOTIFY_TYPES.get(notify_type, "info"),
                ))
        except Exception as exc:  # noqa: BLE001 - Apprise should not raise; one channel must not stop the rest
            lines.append((logging.ERROR, f"{type(exc).__name__}: {exc}"))
    if ok:
        return ChannelResult(channel.name, True, None)
    if not added:
        error = "Apprise 无法加载此渠道的 URL / Apprise could not load this channel's URL"
        detail = _summarise(lines)
        if detail:
            error += f" ({detail})"
    else:
        error = _summarise(lines) or "Apprise 报告发送失败（无详细日志） / Apprise reported a failure (no log detail)"
    if url != channel.url:
        error = mask_secrets(error, Channel(channel.name, url, channel.tags))
    return ChannelResult(channel.name, False, mask_secrets(error, channel)[:MAX_ERROR_CHARS])


def _no_channel(tags: Iterable[str]) -> ChannelResult:
    t = ", ".join(tags) or "—"
    return ChannelResult(
        NO_CHANNEL, False, f"没有任何渠道带有标签 {t}，消息未发送 / no channel carries the tags {t}: nothing was sent"
    )


def deliver(
    config: NotifierConfig,
    tags: Iterable[str],
    title: str,
    body: str,
    *,
    skip: Iterable[str] = (),
    notify_type: str = "info",
    key_for: Callable[[str], str] | None = None,
) -> list[ChannelResult]:
    """Send to every channel carrying any of ``tags``, except the channels named in ``skip``.

    One result per channel tried. No channel for the tags -> a single ``ok=False``
    result named :data:`NO_CHANNEL`, never an empty silence. (All channels skipped ->
    an empty list: nothing was left to send.) ``key_for(channel name)``: the delivery's
    idempotency key (None: no key).
    """
    tags = list(tags)
    targets = config.channels_for(tags)
    if not targets:
        return [_no_channel(tags)]
    skipped = set(skip)
    return [
        _send_one(ch, title, body, notify_type, key_for(ch.name) if key_for else None)
        for ch in targets if ch.name not in skipped
    ]


def send_test(config: NotifierConfig, tag: str | None = None) -> list[ChannelResult]:
    """A test message to each configured channel (or each carrying ``tag``), one result each."""
    targets = config.channels if tag is None else config.channels_for([tag])
    if not targets:
        return [_no_channel([tag] if tag else ["(any)"])]
    results = []
    for ch in targets:
        title = f"weapp-launch 测试消息 / test message ({ch.name})"
        body = (
            f"这是一条测试消息，发往渠道 {ch.name}（标签：{', '.join(ch.tags)}）。收到即表示该渠道可用。\n\n"
            f"This is a test message to channel {ch.name} (tags: {', '.join(ch.tags)}). "
            "If you can read it, the channel works.\n"
        )
        results.append(_send_one(ch, title, body, "info"))
    return results
