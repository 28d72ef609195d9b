"""Decisions: ``decisions`` (one per gate attempt, from any channel), consumed by the gate
that acts on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from launch.domain.vocabulary import DecisionChannel
from launch.store.models import Decision, InboxEvent, Step
from launch.store.records import DecisionRecord, StepRecord, to_record
from launch.store.unit_of_work import NotFound, UnitOfWork, _aware, _check, _now


class DecisionRepository(UnitOfWork):
    """Gate decisions."""

    @staticmethod
    def _decision_stmt(launch_id: str, gate: str, attempt: int):
        return select(Decision).where(Decision.launch_id == launch_id, Decision.gate == gate, Decision.attempt == attempt)

    def record_decision(
        self,
        launch_id: str,
        gate: str,
        attempt: int,
        outcome: str,
        actor: str,
        channel: str,
        payload: dict[str, Any] | None = None,
        decided_at: datetime | None = None,
        inbox_id: int | None = None,
        *,
        session: Session | None = None,
    ) -> tuple[DecisionRecord, bool]:
        """One decision per gate attempt. Returns (decision, created); a second decision for
        the same (launch, gate, attempt) returns the first one with created=False.

        With ``inbox_id``, one inbox event decides a gate at most once, whatever attempt the
        caller aimed at: two appliers of the same push (the receiver's and the watcher's) must
        not turn its second application into an early decision for the next attempt. The
        inbox row is locked first (PostgreSQL; SQLite's write transaction is already
        exclusive), so the second applier waits for the first and then finds its decision."""
        _check(channel, DecisionChannel, "channel")
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        row = Decision(
            launch_id=launch_id,
            gate=gate,
            attempt=attempt,
            outcome=outcome,
            actor=actor,
            channel=channel,
            payload=dict(payload or {}),
            decided_at=_aware(decided_at, "decided_at") if decided_at else _now(),
            inbox_id=inbox_id,
        )
        with self._write(session) as s:
            self._require_launch(s, launch_id)
            if inbox_id is not None:
                s.execute(select(InboxEvent.id).where(InboxEvent.id == inbox_id).with_for_update())
                earlier = s.scalar(
                    select(Decision).where(Decision.launch_id == launch_id, Decision.gate == gate,
                                           Decision.inbox_id == inbox_id).order_by(Decision.attempt).limit(1)
                )
                if earlier is not None:
                    return to_record(DecisionRecord, earlier), False
            found, created = self._insert_or_get(
                s, row, lambda: s.scalar(self._decision_stmt(launch_id, gate, attempt))
            )
            return to_record(DecisionRecord, found), created

    def get_decision(
        self, launch_id: str, gate: str, attempt: int, *, session: Session | None = None
    ) -> DecisionRecord | None:
        with self._read(session) as s:
            row = s.scalar(self._decision_stmt(launch_id, gate, attempt))
            return to_record(DecisionRecord, row) if row else None

    def unconsumed_decision_from_event(
        self, launch_id: str, gate: str, inbox_id: int, *, session: Session | None = None
    ) -> DecisionRecord | None:
        """The decision an inbox event recorded for this gate that no gate has taken yet
        (a crash between recording and resuming leaves one behind)."""
        stmt = select(Decision).where(
            Decision.launch_id == launch_id,
            Decision.gate == gate,
            Decision.inbox_id == inbox_id,
            Decision.consumed_at.is_(None),
        ).order_by(Decision.attempt).limit(1)
        with self._read(session) as s:
            row = s.scalar(stmt)
            return to_record(DecisionRecord, row) if row else None

    def mark_decision_consumed(
        self, decision_id: int, at: datetime | None = None, *, session: Session | None = None
    ) -> DecisionRecord:
        """Note that a gate acted on the decision (the first time counts)."""
        with self._write(session) as s:
            row = s.get(Decision, decision_id)
            if row is None:
                raise NotFound(f"no decision {decision_id}")
            if row.consumed_at is None:
                row.consumed_at = _aware(at, "at") if at else _now()
            return to_record(DecisionRecord, row)

    def unconsumed_decisions_at_waiting_gates(
        self, decided_before: datetime | None = None, limit: int = 100, *, session: Session | None = None
    ) -> list[tuple[DecisionRecord, StepRecord]]:
        """Decisions recorded for a gate attempt that is still waiting in a known flow run and
        that no gate has taken yet: a resume that was lost (or is under way). Read through the
        (status, due_at) index of steps and the unique key of decisions."""
        stmt = (
            select(Decision, Step)
            .join(
                Decision,
                and_(Decision.launch_id == Step.launch_id, Decision.gate == Step.step, Decision.attempt == Step.attempt),
            )
            .where(Step.status == "waiting", Step.flow_run_id.is_not(None), Decision.consumed_at.is_(None))
            .order_by(Decision.decided_at, Decision.id)
            .limit(limit)
        )
        if decided_before is not None:
            stmt = stmt.where(Decision.decided_at <= _aware(decided_before, "decided_before"))
        with self._read(session) as s:
            return [(to_record(DecisionRecord, d), to_record(StepRecord, st)) for d, st in s.execute(stmt)]

    def history(self, launch_id: str, *, session: Session | None = None) -> list[DecisionRecord]:
        """Every decision of a launch in the order it was decided."""
        stmt = select(Decision).where(Decision.launch_id == launch_id).order_by(Decision.decided_at, Decision.id)
        with self._read(session) as s:
            return [to_record(DecisionRecord, r) for r in s.scalars(stmt)]
