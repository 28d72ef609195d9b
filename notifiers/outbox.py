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

Circuit breaker (``breaker``: a :class:`Breaker`, e.g. ``notifiers.breaker.StoreBreaker``
over the store's channel states; None: every channel up, the behaviour above):

- a channel that is down is not sent to, except as its probe (``may_send`` grants one
  delivery per probe interval, shared by every watcher); every result is reported, so a
  channel's ``trip_after``-th consecutive failure marks it down and a success brings it up;
- the channels still missing after this try that are DOWN make the alert wait for them
  (``waiting_for``; the caller stores status ``waiting`` and gives the try back): a
  down channel never uses up an alert's tries, and an alert never fails because of one;
- channels missing that are UP (failing for this alert only) follow the retry policy; when
  it is spent and a down channel is also missing, the alert waits all the same;
- the alert waits and none of its own channels has it -> it is forwarded at once to the
  fallback tag's channels that are up (not down, not the alert's own), preferring a kind
  the missing channels are not (phone when mail is down); fallback channels that are down
  are waited for too, so the alert is forwarded when the first of them is back. It goes
  to its own channels when they are back, all the same.

Every try sends each channel the same idempotency key (``notifiers.deliver.idempotency_key``
of the outbox key and the channel name), and a late alert says so
(``notifiers.lateness.late_note``: "delayed by …", "the SMS window closed at …").

Signed links: the stored body holds a placeholder where a staff link goes, never a token
(``launch.app.links.link_placeholder``). Every attempt — first try, retry, fallback — renders
the body afresh through ``render`` (the deadline watcher passes ``launch.app.links.render_links``
bound to its resources; without one the text goes as stored), so each send carries a newly
signed link; the rendered text goes to the channels only and is not part of the outcome, so
nothing usable returns to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from notifiers.config import Channel, NotifierConfig, RetryPolicy
from notifiers.deliver import NO_CHANNEL, ChannelResult, deliver, idempotency_key
from notifiers.lateness import AlertMoment, late_note

__all__ = ["Breaker", "DeliveryOutcome", "deliver_alert", "next_attempt"]


class Breaker(Protocol):
    """The circuit breakers as one alert's delivery sees them."""

    def may_send(self, name: str) -> bool:
        """Up, or down with this delivery as its probe."""
        ...

    def is_down(self, name: str) -> bool:
        """Down, as of the results reported so far."""
        ...

    def report(self, result: ChannelResult) -> None: ...


class _AllUp:
    def may_send(self, name: str) -> bool:
        return True

    def is_down(self, name: str) -> bool:
        return False

    def report(self, result: ChannelResult) -> None:
        return None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    sent: bool  # at least one channel of the alert's own tags has it, and nothing is left to retry
    results: tuple[ChannelResult, ...]  # this attempt's results, fallback sends included
    retry_at: datetime | None  # try again then (only the channels still missing it)
    fallback: bool  # the alert was sent to the fallback tag's channels in this attempt
    fallback_channels: tuple[str, ...] = ()
    waiting_for: tuple[str, ...] = ()  # channels down that still lack it: the alert waits (no try spent)

    @property
    def waiting(self) -> bool:
        return bool(self.waiting_for) and not self.sent and self.retry_at is None

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


def _fallback_text(title: str, body: str, tags: list[str], attempts: int, fallback_tag: str,
                   down: Iterable[str] = ()) -> tuple[str, str]:
    t = ", ".join(tags) or "—"
    down = list(down)
    if down:
        d = ", ".join(down)
        note = (
            f"【转发】此提醒原定发往标签 {t}，其渠道（{d}）目前中断，现转至 {fallback_tag}，请代为跟进；"
            "渠道恢复后仍会补发。\n"
            f"[Forwarded] This alert was meant for tags {t}; its channels ({d}) are down, so it goes to "
            f"{fallback_tag} now: please follow up. They will still get it once they are back.\n\n"
        )
    else:
        note = (
            f"【转发】此提醒原定发往标签 {t}，{attempts} 次尝试均未送达，现转至 {fallback_tag}，请代为跟进。\n"
            f"[Forwarded] This alert was meant for tags {t}; {attempts} tries did not reach them, so it goes to "
            f"{fallback_tag}: please follow up.\n\n"
        )
    return f"【转发 fallback】{title}", note + body


def _fallback_pool(config: NotifierConfig, targets: list[Channel], done: set[str], tried: set[str]) -> list[Channel]:
    """The fallback tag's channels that could still get the alert (not its own, not done,
    not failed in this try)."""
    if not config.fallback_tag:
        return []
    own = {c.name for c in targets}
    return [c for c in config.channels_for([config.fallback_tag])
            if c.name not in own and c.name not in done and c.name not in tried]


def _choose_fallback(pool: list[Channel], missing: list[Channel], br: Breaker) -> list[Channel]:
    """The pool's channels that are up, of another kind than the missing ones when there
    is one (phone when mail is down), else of any kind."""
    up = [c for c in pool if not br.is_down(c.name)]
    kinds = {c.kind for c in missing}
    other = [c for c in up if c.kind not in kinds]
    return other or up


def deliver_alert(
    config: NotifierConfig,
    alert_like: Any,
    now: datetime,
    delivered: Iterable[str] = (),
    *,
    notify_type: str | None = None,
    render: Callable[[str], str] | None = None,
    breaker: Breaker | None = None,
    moment: AlertMoment | None = None,
    tz: str = "Asia/Shanghai",
) -> DeliveryOutcome:
    """One attempt at an outbox alert (an ``AlertRecord`` or anything with ``tags``,
    ``title``, ``body`` and ``attempts``, attribute or mapping; ``send_after`` and
    ``dedupe_key`` when it has them). ``delivered``: names of the channels that already got
    THIS alert (from its delivery records). ``render`` turns the stored body into the text
    sent (signed links filled in); default: the text as stored. ``breaker``:
    the channels' circuit breakers (module docstring); ``moment``: what the alert speaks
    of, for the "delayed by" / "moment passed" note."""
    raw_tags = _field(alert_like, "tags")
    if isinstance(raw_tags, str):
        tags = [t for t in raw_tags.split(",") if t]
    else:
        tags = [t for t in (raw_tags or ()) if t]
    title = str(_field(alert_like, "title", "") or "")
    body = str(_field(alert_like, "body", "") or "")
    dedupe = _field(alert_like, "dedupe_key")
    if render is not None:
        body = render(body)
    fire_at = _field(alert_like, "send_after")
    note = late_note(fire_at if isinstance(fire_at, datetime) else None, now, moment,
                     delayed_after_seconds=config.delayed_after_seconds, tz=tz)
    if note is not None:
        title, body = note[0] + title, note[1] + body
    alert_key = dedupe or _field(alert_like, "id")
    key_for = (lambda name: idempotency_key(str(alert_key), name)) if alert_key is not None else None
    attempts = max(1, int(_field(alert_like, "attempts", 1) or 1))
    ntype = notify_type or _field(alert_like, "severity") or "info"
    br: Breaker = breaker if breaker is not None else _AllUp()
    done = set(delivered)

    def send(tag_list: list[str], t: str, b: str, skip: set[str]) -> list[ChannelResult]:
        out = deliver(config, tag_list, t, b, skip=skip, notify_type=ntype, key_for=key_for)
        for r in out:
            if r.name != NO_CHANNEL:
                br.report(r)
        return out

    targets = config.channels_for(tags)
    results: list[ChannelResult] = []
    if not targets:
        results = deliver(config, tags, title, body, notify_type=ntype)  # the NO_CHANNEL result
        return _forward_or_retry(config, tags, title, body, attempts, now, targets, [], done, set(), results,
                                 br, send, retry_when_none=True)

    missing = [c for c in targets if c.name not in done]
    held = {c.name for c in missing if not br.may_send(c.name)}  # down, not this delivery's probe
    if len(held) < len(missing):
        results = send(tags, title, body, done | held)
    done.update(r.name for r in results if r.ok)
    still = [c for c in targets if c.name not in done]
    if not still:
        return DeliveryOutcome(True, tuple(results), None, False)
    down = [c for c in still if br.is_down(c.name)]
    failing = [c for c in still if c not in down]
    tried = {r.name for r in results if not r.ok}
    if failing:
        retry_at = next_attempt(attempts, now, config.retry)
        if retry_at is not None:
            return DeliveryOutcome(False, tuple(results), retry_at, False)
        if not down:
            if any(c.name in done for c in targets):
                return DeliveryOutcome(True, tuple(results), None, False)  # partial: failures recorded
            return _forward_or_retry(config, tags, title, body, attempts, now, targets, still, done, tried,
                                     results, br, send, retry_when_none=False)

    # Down channels still lack it: wait for them (no try spent); forward if nobody has it.
    waiting = [c.name for c in down]
    fb_results: list[ChannelResult] = []
    fb_names: tuple[str, ...] = ()
    pool = _fallback_pool(config, targets, done, tried)
    forwarded = bool(config.fallback_tag) and any(
        c.name in done for c in config.channels_for([config.fallback_tag]) if c not in targets
    )
    if not any(c.name in done for c in targets) and not forwarded and pool:
        chosen = _choose_fallback(pool, still, br)
        if chosen:
            fb_title, fb_body = _fallback_text(title, body, tags, attempts, config.fallback_tag,  # type: ignore[arg-type]
                                               down=waiting)
            fb_results = [r for r in send([config.fallback_tag], fb_title, fb_body,  # type: ignore[list-item]
                                          {c.name for c in config.channels if c not in chosen})
                          if r.name != NO_CHANNEL]
            fb_names = tuple(c.name for c in chosen)
        if not any(r.ok for r in fb_results):
            # nobody reached yet: wait for the fallback channels that are down as well
            waiting += [c.name for c in pool if br.is_down(c.name) and c.name not in waiting]
    return DeliveryOutcome(False, tuple(results) + tuple(fb_results), None, bool(fb_names), fb_names,
                           tuple(dict.fromkeys(waiting)))


def _forward_or_retry(
    config: NotifierConfig, tags: list[str], title: str, body: str, attempts: int, now: datetime,
    targets: list[Channel], missing: list[Channel], done: set[str], tried: set[str],
    results: list[ChannelResult], br: Breaker, send: Callable[..., list[ChannelResult]], *, retry_when_none: bool,
) -> DeliveryOutcome:
    """The last try failed on channels that are up (or nobody carries the tags): to the
    fallback tag's channels that are up, another kind preferred; failed for good after."""
    pool = _fallback_pool(config, targets, done, tried)
    chosen = _choose_fallback(pool, missing, br)
    if not chosen:
        retry_at = next_attempt(attempts, now, config.retry) if retry_when_none else None
        down_pool = [c.name for c in pool if br.is_down(c.name)]
        if retry_at is None and down_pool:
            # the fallback channels are down: wait for them rather than give up
            return DeliveryOutcome(False, tuple(results), None, False, (), tuple(down_pool))
        return DeliveryOutcome(False, tuple(results), retry_at, False)
    fb_title, fb_body = _fallback_text(title, body, tags, attempts, config.fallback_tag)  # type: ignore[arg-type]
    fb_results = [r for r in send([config.fallback_tag], fb_title, fb_body,  # type: ignore[list-item]
                                  {c.name for c in config.channels if c not in chosen})
                  if r.name != NO_CHANNEL]
    return DeliveryOutcome(
        False, tuple(results) + tuple(fb_results), None, True, tuple(c.name for c in chosen)
    )
