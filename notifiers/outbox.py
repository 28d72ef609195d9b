"""One delivery attempt of an outbox alert: per-channel results, retry time, fallback.

The store (launch/store) keeps the alert row and one delivery record per channel per
try; this module decides, from the row and the names of the channels that already got
the alert, what to send now and what happens next. It never touches the store itself.

Semantics of :func:`deliver_alert` (``attempts`` = tries so far INCLUDING this one, as
the store's claim counts them):

- the alert's channels are those carrying any of its tags; channels named in
  ``delivered`` already got this alert and are never sent it again;
- every channel has it now -> ``sent=True``;
- some channel still lacks it and the policy allows another try -> ``sent=False``,
  ``retry_at`` = when to try again (only the missing channels will be tried);
- the last try failed -> ``sent=True`` if at least one of the alert's own channels has
  it (partial delivery; the failures are in the results), otherwise the alert goes to the
  channels of ``fallback_tag`` that have not got it (``fallback=True``) and ``sent``
  stays False: the intended people were not reached. The caller marks the alert failed
  then, with the fallback deliveries on record;
- no channel carries the alert's tags -> straight to the fallback (a retry cannot help
  until the configuration changes); with no fallback either, the retry policy applies so
  a fixed configuration still gets the alert out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notifiers.config import NotifierConfig, RetryPolicy
from notifiers.deliver import NO_CHANNEL, ChannelResult, deliver

__all__ = ["DeliveryOutcome", "deliver_alert", "next_attempt"]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    sent: bool  # at least one channel of the alert's own tags has it, and nothing is left to retry
    results: tuple[ChannelResult, ...]  # this attempt's results, fallback sends included
    retry_at: datetime | None  # try again then (only the channels still missing it)
    fallback: bool  # the alert was sent to the fallback tag's channels in this attempt
    fallback_channels: tuple[str, ...] = ()

    @property
    def delivered_now(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.results if r.ok)

    @property
    def reached_anyone(self) -> bool:
        return any(r.ok for r in self.results)

    @property
    def error(self) -> str | None:
        """The failures of this attempt, one line per channel (masked), or None."""
        errs = [f"{r.name}: {r.error}" for r in self.results if not r.ok]
        return "\n".join(errs) if errs else None


def next_attempt(attempts_so_far: int, now: datetime, policy: RetryPolicy) -> datetime | None:
    """When to try again after ``attempts_so_far`` failed tries; None = give up (fallback).

    ``backoff_seconds[k-1]`` is the wait after the k-th failed try; the last value
    repeats. 0 tries so far -> now.
    """
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime / now 必须带时区")
    if isinstance(attempts_so_far, bool) or not isinstance(attempts_so_far, int):
        raise TypeError("attempts_so_far must be an int")
    if attempts_so_far >= policy.attempts:
        return None
    if attempts_so_far <= 0:
        return now
    backoff = policy.backoff_seconds or (60.0,)
    wait = backoff[min(attempts_so_far - 1, len(backoff) - 1)]
    return now + timedelta(seconds=wait)


def _field(alert: Any, name: str, default: Any = None) -> Any:
    if isinstance(alert, Mapping):
        return alert.get(name, default)
    return getattr(alert, name, default)


def _fallback_text(title: str, body: str, tags: list[str], attempts: int, fallback_tag: str) -> tuple[str, str]:
    t = ", ".join(tags) or "—"
    note = (
        f"【转发】此提醒原定发往标签 {t}，{attempts} 次尝试均未送达，现转至 {fallback_tag}，请代为跟进。\n"
        f"[Forwarded] This alert was meant for tags {t}; {attempts} tries did not reach them, so it goes to "
        f"{fallback_tag}: please follow up.\n\n"
    )
    return f"【转发 fallback】{title}", note + body


def deliver_alert(
    config: NotifierConfig,
    alert_like: Any,
    now: datetime,
    delivered: Iterable[str] = (),
    *,
    notify_type: str | None = None,
) -> DeliveryOutcome:
    """One attempt at an outbox alert (an ``AlertRecord`` or anything with ``tags``,
    ``title``, ``body`` and ``attempts``, attribute or mapping). ``delivered``: names of
    the channels that already got THIS alert (from its delivery records)."""
    tags = [t for t in (_field(alert_like, "tags") or ()) if t]
    if isinstance(_field(alert_like, "tags"), str):
        tags = [t for t in _field(alert_like, "tags").split(",") if t]
    title = str(_field(alert_like, "title", "") or "")
    body = str(_field(alert_like, "body", "") or "")
    attempts = max(1, int(_field(alert_like, "attempts", 1) or 1))
    ntype = notify_type or _field(alert_like, "severity") or "info"
    done = set(delivered)

    targets = config.channels_for(tags)
    results: list[ChannelResult] = []
    if targets:
        results = deliver(config, tags, title, body, skip=done, notify_type=ntype)
        done.update(r.name for r in results if r.ok)
        if all(c.name in done for c in targets):
            return DeliveryOutcome(True, tuple(results), None, False)
        retry_at = next_attempt(attempts, now, config.retry)
        if retry_at is not None:
            return DeliveryOutcome(False, tuple(results), retry_at, False)
        if any(c.name in done for c in targets):
            return DeliveryOutcome(True, tuple(results), None, False)  # partial: failures recorded
        tried = {r.name for r in results}
    else:
        results = deliver(config, tags, title, body, notify_type=ntype)  # the NO_CHANNEL result
        tried = set()

    # fallback: the last try failed (or nobody carries the tags)
    fb_channels = []
    if config.fallback_tag:
        fb_channels = [
            c for c in config.channels_for([config.fallback_tag]) if c.name not in done and c.name not in tried
        ]
    if not fb_channels:
        retry_at = None if targets else next_attempt(attempts, now, config.retry)
        return DeliveryOutcome(False, tuple(results), retry_at, False)
    fb_title, fb_body = _fallback_text(title, body, tags, attempts, config.fallback_tag)  # type: ignore[arg-type]
    fb_results = deliver(
        config, [config.fallback_tag], fb_title, fb_body,  # type: ignore[list-item]
        skip={c.name for c in config.channels if c not in fb_channels}, notify_type=ntype,
    )
    fb_results = [r for r in fb_results if r.name != NO_CHANNEL]
    return DeliveryOutcome(
        False, tuple(results) + tuple(fb_results), None, True, tuple(c.name for c in fb_channels)
    )
