"""Circuit breakers of the alert channels, kept in the store so every watcher agrees.

Per channel name (never its URL) the store keeps: up or down, consecutive failed
deliveries, since when it is down, when it is probed next (``Store.channel_states``).

- ``config.trip_after`` consecutive failures (``breaker.failures``, at most
  ``retry.attempts``) mark a channel down; its deliveries then wait (alert status
  ``waiting``) without spending tries;
- once per ``breaker.probe_seconds`` one watcher wins the probe (``claim_channel_probe``)
  and really delivers the oldest alert waiting for it; a success brings the channel up and
  releases its backlog, due at each alert's own due time, so it goes out oldest first;
- any success closes the breaker, whoever sent it.

:class:`StoreBreaker` is what ``notifiers.outbox.deliver_alert`` sees of this (its
``breaker=``); :func:`channel_health` is what ``weapp-launch health`` shows of it.
The store is duck-typed (``launch.store.Store``): this module imports no database code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifiers.config import NotifierConfig
from notifiers.deliver import NO_CHANNEL, ChannelResult

__all__ = ["ChannelHealth", "StoreBreaker", "channel_health"]


class StoreBreaker:
    """The breakers as one pass of deliveries sees them. ``states`` is shared by the pass
    (refresh it with :meth:`refresh`); every reported result is written through at once."""

    def __init__(self, store: Any, config: NotifierConfig, now: datetime, states: dict | None = None) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.states: dict[str, Any] = states if states is not None else dict(store.channel_states())
        self.probing: set[str] = set()
        self.changes: list[tuple[str, str, int]] = []  # (channel, "up" | "down", alerts released)

    def refresh(self) -> None:
        self.states.clear()
        self.states.update(self.store.channel_states())

    def for_alert(self) -> StoreBreaker:
        """A view for the next alert: same states and changes, its own probes."""
        view = StoreBreaker(self.store, self.config, self.now, self.states)
        view.changes = self.changes
        return view

    def is_down(self, name: str) -> bool:
        st = self.states.get(name)
        return st is not None and st.state == "down"

    def may_send(self, name: str) -> bool:
        if not self.is_down(name) or name in self.probing:
            return True
        st = self.states[name]
        if st.next_probe_at is not None and st.next_probe_at > self.now:
            return False
        if self.store.claim_channel_probe(name, self.now, self.config.breaker.probe_seconds):
            self.probing.add(name)
            return True
        return False

    def report(self, result: ChannelResult) -> None:
        if result.name == NO_CHANNEL:
            return
        known = self.states.get(result.name)
        if result.ok and (known is None or (known.state == "up" and not known.consecutive_failures)):
            return  # nothing to change: no write for the everyday success
        state, change, released = self.store.record_channel_result(
            result.name, result.ok, at=self.now, error=None if result.ok else result.error,
            trip_after=self.config.trip_after, probe_seconds=self.config.breaker.probe_seconds,
        )
        self.states[result.name] = state
        if change:
            self.changes.append((result.name, change, released))

    def next_check(self, names: Iterable[str]) -> datetime | None:
        """The earliest next probe of ``names`` (when a waiting alert may move again)."""
        times = [self.states[n].next_probe_at for n in names
                 if n in self.states and self.states[n].next_probe_at is not None]
        return min(times) if times else None


@dataclass(frozen=True)
class ChannelHealth:
    """One channel as ``weapp-launch health`` shows it. Nothing secret: name, kind, state."""

    channel: str
    kind: str
    state: str  # up | down | not-configured (alerts still wait for a channel no longer in the file)
    consecutive_failures: int
    down_since: datetime | None
    next_probe_at: datetime | None
    waiting: int  # alerts waiting for this channel
    last_ok_at: datetime | None
    last_error: str | None  # masked by the notifiers

    @property
    def part(self) -> str:
        return f"alerts:{self.channel}"

    @property
    def ok(self) -> bool:
        return self.state == "up"

    @property
    def detail(self) -> str:
        def t(dt: datetime | None) -> str:
            return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if dt else "—"

        if self.state == "down":
            return (
                f"中断（自 {t(self.down_since)}，连续失败 {self.consecutive_failures} 次），{self.waiting} 条提醒等待，"
                f"下次探测 {t(self.next_probe_at)} / DOWN since {t(self.down_since)} "
                f"({self.consecutive_failures} failures in a row), {self.waiting} alerts waiting, "
                f"next probe {t(self.next_probe_at)}"
            )
        if self.state == "not-configured":
            return (f"已不在渠道文件中，仍有 {self.waiting} 条提醒等待它（下一轮发送时放行）/ no longer in the "
                    f"notifiers file; {self.waiting} alerts waited for it (released by the next pass)")
        extra_zh = f"，连续失败 {self.consecutive_failures} 次" if self.consecutive_failures else ""
        extra_en = f", {self.consecutive_failures} failures in a row" if self.consecutive_failures else ""
        return (f"正常（{self.kind}{extra_zh}），{self.waiting} 条提醒等待 / up ({self.kind}{extra_en}), "
                f"{self.waiting} alerts waiting")

    def to_json(self) -> dict[str, Any]:
        def iso(dt: datetime | None) -> str | None:
            return dt.astimezone(UTC).isoformat() if dt else None

        return {
            "channel": self.channel, "kind": self.kind, "state": self.state, "ok": self.ok,
            "consecutive_failures": self.consecutive_failures, "down_since": iso(self.down_since),
            "next_probe_at": iso(self.next_probe_at), "waiting": self.waiting, "last_ok_at": iso(self.last_ok_at),
            "last_error": self.last_error, "detail": self.detail,
        }


def channel_health(store: Any, config: NotifierConfig | None) -> list[ChannelHealth]:
    """Each configured channel's breaker and how many alerts wait for it (then any channel
    no longer configured that alerts still wait for). For ``weapp-launch health``::

        checks += [Check(h.part, h.ok, h.detail) for h in channel_health(res.store, config)]
    """
    states = store.channel_states()
    waiting = store.waiting_counts()
    out: list[ChannelHealth] = []
    names = set()
    for ch in (config.channels if config is not None else []):
        names.add(ch.name)
        st = states.get(ch.name)
        out.append(ChannelHealth(
            ch.name, ch.kind, st.state if st else "up", st.consecutive_failures if st else 0,
            st.down_since if st else None, st.next_probe_at if st else None, waiting.get(ch.name, 0),
            st.last_ok_at if st else None, st.last_error if st else None,
        ))
    for name, count in sorted(waiting.items()):
        if name not in names and count:
            st = states.get(name)
            out.append(ChannelHealth(name, "?", "not-configured", st.consecutive_failures if st else 0,
                                     st.down_since if st else None, None, count, st.last_ok_at if st else None,
                                     st.last_error if st else None))
    return out
