"""Send one message to the channels of some tags, one Apprise object per channel.

Apprise returns False on failure and does not raise. Each channel gets its own
``apprise.Apprise`` so its own result is known; the reason of a failure is read from
Apprise's log records of that call (captured per thread, so concurrent deliveries do
not mix their errors), with secrets of the URL masked out and personal data scrubbed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from launch.domain.masking import scrub_text
from notifiers.config import Channel, NotifierConfig

__all__ = ["NO_CHANNEL", "ChannelResult", "deliver", "mask_secrets", "send_test"]

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


def _send_one(channel: Channel, title: str, body: str, notify_type: str) -> ChannelResult:
    import apprise

    added = False
    ok = False
    with _capture() as lines:
        try:
            aobj = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
            added = bool(aobj.add(channel.url))
            if added:
                ok = aobj.notify(
                    title=title,
                    body=body,
                    body_format=apprise.NotifyFormat.TEXT,
                    notify_type=_NOTIFY_TYPES.get(notify_type, "info"),
                ) is True
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
) -> list[ChannelResult]:
    """Send to every channel carrying any of ``tags``, except the channels named in ``skip``.

    One result per channel tried. No channel for the tags -> a single ``ok=False``
    result named :data:`NO_CHANNEL`, never an empty silence. (All channels skipped ->
    an empty list: nothing was left to send.)
    """
    tags = list(tags)
    targets = config.channels_for(tags)
    if not targets:
        return [_no_channel(tags)]
    skipped = set(skip)
    return [_send_one(ch, title, body, notify_type) for ch in targets if ch.name not in skipped]


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
