"""The inbox: ``inbox`` (callbacks landed once per source event, applied afterwards) and
``nonces`` (replay keys of the receiver). This is the ONE implementation of landing an
event, taking nonces and marking an event applied; ``launch.app.inbox`` calls it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from launch.domain.vocabulary import InboxResult, InboxSource
from launch.store.models import InboxEvent, Nonce
from launch.store.records import InboxRecord, to_record
from launch.store.unit_of_work import UnitOfWork, _aware, _check, _now

__all__ = ["NONCE_MARGIN_SECONDS", "InboxRepository", "nonce_ttl_seconds"]

# Slack for clock steps and slow requests beyond the timestamp window.
NONCE_MARGIN_SECONDS = 60


def nonce_ttl_seconds(timestamp_window_seconds: int) -> int:
    """How long a nonce (or signature) is remembered: the receiver accepts a push whose
    timestamp is within ``timestamp_window_seconds`` either side of its clock, so the same
    push can pass the timestamp check for twice the window; a margin on top. Purging older
    nonces never lets a replay through (its timestamp is refused by then)."""
    return 2 * int(timestamp_window_seconds) + NONCE_MARGIN_SECONDS


class InboxRepository(UnitOfWork):
    """Inbox events and replay nonces."""

    # ------------------------------------------------------------ events

    def _land(self, s: Session, values: dict[str, Any]) -> tuple[int, bool]:
        table = InboxEvent.__table__
        # RETURNING, not rowcount: psycopg 3 reports rowcount -1 for INSERT … ON CONFLICT DO NOTHING.
        new_id = s.execute(
            self._insert(table).values(**values).on_conflict_do_nothing(index_elements=["event_key"])
            .returning(table.c.id)
        ).scalar()
        if new_id is not None:
            return int(new_id), True
        return int(s.scalar(select(table.c.id).where(table.c.event_key == values["event_key"]))), False

    def land_event(
        self,
        source: str,
        event_key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        gate: str | None = None,
        received_at: datetime | None = None,
        session: Session | None = None,
    ) -> tuple[int, bool]:
        """Land a callback once per ``event_key`` (the payload must already be redacted):
        (inbox id, created). The receiver's group commit calls this per push; a concurrent
        second writer of the same key gets the first row's id, created=False."""
        values = {
            "source": _check(source, InboxSource, "inbox source"),
            "event_key": event_key,
            "kind": kind,
            "launch_id": None,
            "gate": gate,
            "payload": dict(payload or {}),
            "received_at": _aware(received_at, "received_at") if received_at else _now(),
        }
        with self._write(session) as s:
            return self._land(s, values)

    def put_event(
        self,
        source: str,
        event_key: str,
        kind: str,
        payload: dict[str, Any],
        launch_id: str | None = None,
        gate: str | None = None,
        received_at: datetime | None = None,
        *,
        session: Session | None = None,
    ) -> tuple[InboxRecord, bool]:
        """As ``land_event``, optionally for a known launch, returning (row, created); a
        duplicate returns the first row, created=False."""
        values = {
            "source": _check(source, InboxSource, "inbox source"),
            "event_key": event_key,
            "kind": kind,
            "launch_id": launch_id,
            "gate": gate,
            "payload": dict(payload or {}),
            "received_at": _aware(received_at, "received_at") if received_at else _now(),
        }
        with self._write(session) as s:
            if launch_id is not None:
                self._require_launch(s, launch_id)
            event_id, created = self._land(s, values)
            row = s.scalar(select(InboxEvent).where(InboxEvent.id == event_id).execution_options(populate_existing=True))
            return to_record(InboxRecord, row), created

    def get_event(self, event_id: int, *, session: Session | None = None) -> InboxRecord | None:
        with self._read(session) as s:
            row = s.get(InboxEvent, event_id)
            return to_record(InboxRecord, row) if row else None

    def find_event(self, event_key: str, *, session: Session | None = None) -> InboxRecord | None:
        with self._read(session) as s:
            row = s.scalar(select(InboxEvent).where(InboxEvent.event_key == event_key))
            return to_record(InboxRecord, row) if row else None

    def unapplied_events(self, limit: int = 100, *, session: Session | None = None) -> list[InboxRecord]:
        """Events not yet applied, oldest first."""
        stmt = (
            select(InboxEvent)
            .where(InboxEvent.applied_at.is_(None))
            .order_by(InboxEvent.received_at, InboxEvent.id)
            .limit(limit)
        )
        with self._read(session) as s:
            return [to_record(InboxRecord, r) for r in s.scalars(stmt)]

    def events_for(self, launch_id: str, *, session: Session | None = None) -> list[InboxRecord]:
        stmt = select(InboxEvent).where(InboxEvent.launch_id == launch_id).order_by(InboxEvent.received_at, InboxEvent.id)
        with self._read(session) as s:
            return [to_record(InboxRecord, r) for r in s.scalars(stmt)]

    def finish_event(
        self,
        event_id: int,
        result: str,
        detail: str | None = None,
        *,
        launch_id: str | None = None,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> bool:
        """Mark an event applied with its ``result`` (and ``detail`` for staff, in
        ``inbox.error``; ``launch_id`` when applying found the launch). The first writer wins:
        a row applied already (by another process) stays as it is. True when this call marked it."""
        values: dict[str, Any] = {
            "applied_at": _aware(at, "at") if at else _now(),
            "result": _check(result, InboxResult, "inbox result"),
            "error": detail,
        }
        if launch_id is not None:
            values["launch_id"] = launch_id
        with self._write(session) as s:
            done = s.execute(
                update(InboxEvent)
                .where(InboxEvent.id == event_id, InboxEvent.applied_at.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return done.rowcount == 1

    def note_event_error(self, event_id: int, detail: str, *, session: Session | None = None) -> None:
        """Note why applying an event failed (it stays unapplied and is tried again)."""
        with self._write(session) as s:
            s.execute(
                update(InboxEvent)
                .where(InboxEvent.id == event_id, InboxEvent.applied_at.is_(None))
                .values(error=detail[:2000])
                .execution_options(synchronize_session=False)
            )

    # ------------------------------------------------------------ nonces

    def _take_nonce(self, s: Session, scope: str, nonce: str, now: datetime, cutoff: datetime) -> bool:
        table = Nonce.__table__
        # RETURNING, not rowcount: psycopg 3 reports rowcount -1 for INSERT … ON CONFLICT DO NOTHING,
        # which once made every push on PostgreSQL look like a replay.
        inserted = s.execute(
            self._insert(table).values(scope=scope, nonce=nonce, seen_at=now)
            .on_conflict_do_nothing(index_elements=["scope", "nonce"])
            .returning(table.c.nonce)
        ).scalar()
        if inserted is not None:
            return True
        # Seen before: usable again only once its last sighting is older than the TTL. Of two
        # concurrent takers the second re-reads the row after the first commits (PostgreSQL's
        # READ COMMITTED) or waits for the write lock (SQLite), and finds it fresh.
        taken = s.execute(
            update(table)
            .where(table.c.scope == scope, table.c.nonce == nonce, table.c.seen_at <= cutoff)
            .values(seen_at=now)
        )
        return taken.rowcount == 1

    def take_nonces(
        self,
        keys: Iterable[tuple[str, str | None]],
        now: datetime,
        ttl_seconds: float,
        *,
        session: Session | None = None,
    ) -> bool:
        """Take every (scope, value) replay key at once, or none: False when any was seen
        within ``ttl_seconds`` (a replay; nothing is kept, so a refused replay burns no key).
        Empty values are skipped. Race-safe: of concurrent takers of a key exactly one wins.
        Runs in a savepoint, so it can sit inside a larger transaction (``session=``)."""
        now = _aware(now, "now")
        cutoff = now - timedelta(seconds=ttl_seconds)
        with self._write(session) as s:
            savepoint = s.begin_nested()
            for scope, value in keys:
                if value and not self._take_nonce(s, scope, value, now, cutoff):
                    savepoint.rollback()
                    return False
            savepoint.commit()
            return True

    def take_nonce(
        self, scope: str, nonce: str, now: datetime, ttl_seconds: float, *, session: Session | None = None
    ) -> bool:
        """True the first time (scope, nonce) is seen within ``ttl_seconds``; False on a replay."""
        return self.take_nonces([(scope, nonce)], now, ttl_seconds, session=session)

    def purge_nonces(self, older_than: datetime, *, session: Session | None = None) -> int:
        """Delete nonces last seen before ``older_than``; returns how many."""
        with self._write(session) as s:
            result = s.execute(
                Nonce.__table__.delete().where(Nonce.seen_at < _aware(older_than, "older_than"))
            )
            return int(result.rowcount or 0)
