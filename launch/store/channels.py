"""Channel breakers: ``channel_states`` (a circuit breaker per alert channel, by name).
A channel coming back up releases the alerts waiting for it (``launch.store.alerts``) in
the same transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from launch.store.alerts import channel_names, no_tokens, release_waiting_alerts
from launch.store.models import ChannelState
from launch.store.records import ChannelStateRecord, to_record
from launch.store.unit_of_work import UnitOfWork, _aware


class ChannelRepository(UnitOfWork):
    """Per-channel circuit breakers."""

    def channel_states(self, *, session: Session | None = None) -> dict[str, ChannelStateRecord]:
        """Every channel's breaker that has a row (a channel never tried has none: it is up)."""
        with self._read(session) as s:
            return {r.channel: to_record(ChannelStateRecord, r) for r in s.scalars(select(ChannelState))}

    def record_channel_result(
        self,
        channel: str,
        ok: bool,
        *,
        at: datetime,
        error: str | None = None,
        trip_after: int = 3,
        probe_seconds: float = 300.0,
        session: Session | None = None,
    ) -> tuple[ChannelStateRecord, str | None, int]:
        """One delivery's result on a channel's breaker, under a row lock (two watchers agree).

        A success closes it (up, failures 0) and, when it was down, releases every alert
        waiting for it in the same transaction; a failure counts, and the ``trip_after``-th
        consecutive one marks it down with a probe due in ``probe_seconds``. Returns (state,
        change "up" | "down" | None, alerts released)."""
        at = _aware(at, "at")
        [name] = channel_names([channel])
        change: str | None = None
        released = 0
        with self._write(session) as s:
            row, _ = self._insert_or_get(
                s,
                ChannelState(channel=name, state="up", consecutive_failures=0, updated_at=at),
                lambda: s.scalar(select(ChannelState).where(ChannelState.channel == name).with_for_update()),
            )
            if ok:
                if row.state == "down":
                    change = "up"
                row.state = "up"
                row.consecutive_failures = 0
                row.down_since = None
                row.next_probe_at = None
                row.last_ok_at = at
            else:
                row.consecutive_failures = (row.consecutive_failures or 0) + 1
                row.last_failure_at = at
                row.last_error = (no_tokens(error) or "")[:500] or None
                probe_at = at + timedelta(seconds=probe_seconds)
                if row.state != "down" and row.consecutive_failures >= max(1, trip_after):
                    change = "down"
                    row.state = "down"
                    row.down_since = at
                    row.next_probe_at = probe_at
                elif row.state == "down" and (row.next_probe_at is None or row.next_probe_at < probe_at):
                    row.next_probe_at = probe_at
            row.updated_at = at
            s.flush()
            if change == "up":
                released = release_waiting_alerts(s, name)
            return to_record(ChannelStateRecord, row), change, released

    def claim_channel_probe(
        self, channel: str, now: datetime, probe_seconds: float = 300.0, *, session: Session | None = None
    ) -> bool:
        """Take the probe of a down channel whose probe is due: one watcher wins, and the next
        probe moves ``probe_seconds`` on. False: not down, not due, or taken."""
        now = _aware(now, "now")
        [name] = channel_names([channel])
        with self._write(session) as s:
            result = s.execute(
                update(ChannelState)
                .where(
                    ChannelState.channel == name,
                    ChannelState.state == "down",
                    or_(ChannelState.next_probe_at.is_(None), ChannelState.next_probe_at <= now),
                )
                .values(next_probe_at=now + timedelta(seconds=probe_seconds), updated_at=now)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1
