"""Commitments and risk: ``launch_commitments`` (a launch's committed go-live date and the
forecast risk level last seen; revision 0005, issue 13)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from launch.store.models import Launch, LaunchCommitment
from launch.store.records import CommitmentRecord, to_record
from launch.store.unit_of_work import UnitOfWork, _aware, _now


class CommitmentRepository(UnitOfWork):
    """Committed go-live dates and the risk level last seen."""

    def set_commitment(
        self, launch_id: str, committed_go_live: date, *, at: datetime | None = None, session: Session | None = None
    ) -> CommitmentRecord:
        """Commit the launch to a go-live date (or move the commitment). A new date forgets
        the risk level last seen (the next check alerts if it is not ok); the change
        counter is kept, so alert keys never repeat."""
        if isinstance(committed_go_live, datetime) or not isinstance(committed_go_live, date):
            raise TypeError("committed_go_live must be a datetime.date")
        at = _aware(at, "at") if at else _now()
        with self._write(session) as s:
            self._require_launch(s, launch_id)
            row = s.get(LaunchCommitment, launch_id, with_for_update=True)
            if row is None:
                row = LaunchCommitment(launch_id=launch_id, committed_go_live=committed_go_live, committed_at=at,
                                       risk_seq=0)
                try:
                    with s.begin_nested():
                        s.add(row)
                except IntegrityError:  # a concurrent first commitment: update that one
                    row = s.get(LaunchCommitment, launch_id, with_for_update=True)
            if row.committed_go_live != committed_go_live or row.committed_at != at:
                if row.committed_go_live != committed_go_live:
                    row.risk_level = None
                row.committed_go_live = committed_go_live
                row.committed_at = at
            return to_record(CommitmentRecord, row)

    def get_commitment(self, launch_id: str, *, session: Session | None = None) -> CommitmentRecord | None:
        with self._read(session) as s:
            row = s.get(LaunchCommitment, launch_id)
            return to_record(CommitmentRecord, row) if row else None

    def clear_commitment(self, launch_id: str, *, session: Session | None = None) -> bool:
        with self._write(session) as s:
            row = s.get(LaunchCommitment, launch_id)
            if row is None:
                return False
            s.delete(row)
            return True

    def open_commitments(self, limit: int = 5000, *, session: Session | None = None) -> list[CommitmentRecord]:
        """Commitments of running launches (what the watcher checks), oldest launch first."""
        stmt = (
            select(LaunchCommitment)
            .join(Launch, Launch.id == LaunchCommitment.launch_id)
            .where(Launch.status == "running")
            .order_by(Launch.created_at, Launch.id)
            .limit(limit)
        )
        with self._read(session) as s:
            return [to_record(CommitmentRecord, r) for r in s.scalars(stmt)]

    def record_risk(
        self,
        launch_id: str,
        level: str,
        p50: date,
        p90: date,
        *,
        expected_level: str | None,
        expected_seq: int,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> CommitmentRecord | None:
        """Note a risk check. If the stored level and counter are still the expected ones,
        a different level bumps the counter (the caller enqueues its alert in the same
        transaction); returns the updated row. None: another checker got there first (or
        the commitment was moved or removed meanwhile) — nothing changed."""
        at = _aware(at, "at") if at else _now()
        with self._write(session) as s:
            row = s.get(LaunchCommitment, launch_id, with_for_update=True)
            if row is None or row.risk_level != expected_level or row.risk_seq != expected_seq:
                return None
            if level != row.risk_level:
                row.risk_level = level
                row.risk_seq = row.risk_seq + 1
                row.risk_changed_at = at
            row.last_p50, row.last_p90, row.checked_at = p50, p90, at
            return to_record(CommitmentRecord, row)
