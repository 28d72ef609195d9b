"""Steps: ``steps`` (one row per attempt of a gate or task of a launch), their deadlines
and the deadline watcher's alert cursor (``next_alert_at``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from launch.store.models import Step
from launch.store.records import StepRecord, to_record
from launch.store.unit_of_work import NotFound, UnitOfWork, _aware, _check, _now
from launch.store.vocab import STEP_OPEN_STATUSES, StepStatus


class StepRepository(UnitOfWork):
    """Step attempts, their deadlines and alert cursors."""

    @staticmethod
    def _step_stmt(launch_id: str, step: str, attempt: int):
        return select(Step).where(Step.launch_id == launch_id, Step.step == step, Step.attempt == attempt)

    def open_step(
        self,
        launch_id: str,
        step: str,
        attempt: int,
        *,
        started_at: datetime,
        due_at: datetime | None = None,
        provisional: bool = False,
        flow_run_id: str | None = None,
        gate_key: str | None = None,
        status: str = "waiting",
        session: Session | None = None,
    ) -> StepRecord:
        """Open attempt ``attempt`` (1-based) of ``step``. Idempotent: an existing row is
        returned unchanged (a replaying flow gets the first deadline, not a new one)."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        _check(status, StepStatus, "step status")
        row = Step(
            launch_id=launch_id,
            step=step,
            attempt=attempt,
            status=status,
            flow_run_id=flow_run_id,
            gate_key=gate_key,
            started_at=_aware(started_at, "started_at"),
            due_at=_aware(due_at, "due_at") if due_at else None,
            provisional=bool(provisional),
            # the watcher's cursor: the earliest rung of any ladder is the notice at open
            next_alert_at=_aware(started_at, "started_at") if status in STEP_OPEN_STATUSES else None,
        )
        with self._write(session) as s:
            self._require_launch(s, launch_id)
            found, _ = self._insert_or_get(s, row, lambda: s.scalar(self._step_stmt(launch_id, step, attempt)))
            return to_record(StepRecord, found)

    def mark_step_running(
        self,
        launch_id: str,
        step: str,
        attempt: int,
        *,
        flow_run_id: str | None = None,
        session: Session | None = None,
    ) -> StepRecord:
        """waiting -> running (no-op in any other status)."""
        with self._write(session) as s:
            row = s.scalar(self._step_stmt(launch_id, step, attempt).with_for_update())
            if row is None:
                raise NotFound(f"no step {launch_id}/{step}/{attempt}")
            if row.status == "waiting":
                row.status = "running"
                if flow_run_id:
                    row.flow_run_id = flow_run_id
            return to_record(StepRecord, row)

    def annotate_step(
        self, launch_id: str, step: str, attempt: int, *, note: str, session: Session | None = None
    ) -> StepRecord:
        """Attach a note to a step (e.g. why a Resume form was refused); the latest note wins."""
        with self._write(session) as s:
            row = s.scalar(self._step_stmt(launch_id, step, attempt))
            if row is None:
                raise NotFound(f"no step {launch_id}/{step}/{attempt}")
            row.note = note
            return to_record(StepRecord, row)

    def update_step_due(
        self,
        launch_id: str,
        step: str,
        attempt: int,
        *,
        due_at: datetime | None,
        provisional: bool,
        session: Session | None = None,
    ) -> StepRecord:
        """Move the deadline of an OPEN step (e.g. a provisional one once the calendar is published)."""
        with self._write(session) as s:
            row = s.scalar(self._step_stmt(launch_id, step, attempt).with_for_update())
            if row is None:
                raise NotFound(f"no step {launch_id}/{step}/{attempt}")
            if row.status in STEP_OPEN_STATUSES:
                row.due_at = _aware(due_at, "due_at") if due_at else None
                row.provisional = bool(provisional)
                row.next_alert_at = row.started_at  # the watcher looks at its ladder again
            return to_record(StepRecord, row)

    def finish_step(
        self,
        launch_id: str,
        step: str,
        attempt: int,
        status: str,
        outcome: str | None = None,
        at: datetime | None = None,
        note: str | None = None,
        *,
        session: Session | None = None,
    ) -> StepRecord:
        """Close an open step with a final status. Idempotent: the first finish wins and a
        later call returns the row unchanged. Raises NotFound if the step was never opened."""
        _check(status, StepStatus, "step status")
        if status in STEP_OPEN_STATUSES:
            raise ValueError(f"finish_step needs a final status, not {status!r}")
        at = _aware(at, "at") if at else _now()
        with self._write(session) as s:
            row = s.scalar(self._step_stmt(launch_id, step, attempt).with_for_update())
            if row is None:
                raise NotFound(f"no step {launch_id}/{step}/{attempt}")
            if row.status in STEP_OPEN_STATUSES:
                row.status = status
                row.outcome = outcome
                row.finished_at = at
                row.note = note
                row.next_alert_at = None  # nothing fires for a finished step
            return to_record(StepRecord, row)

    def refuse_decided_step(
        self, launch_id: str, step: str, attempt: int, *, note: str, session: Session | None = None
    ) -> StepRecord:
        """A decided step whose decision broke a rule only the store can check (the profile
        counters): mark it rejected with the reason; the flow opens the next attempt."""
        with self._write(session) as s:
            row = s.scalar(self._step_stmt(launch_id, step, attempt).with_for_update())
            if row is None:
                raise NotFound(f"no step {launch_id}/{step}/{attempt}")
            if row.status == "done":
                row.status = "rejected"
            row.note = note
            return to_record(StepRecord, row)

    def get_step(
        self, launch_id: str, step: str, attempt: int, *, session: Session | None = None
    ) -> StepRecord | None:
        with self._read(session) as s:
            row = s.scalar(self._step_stmt(launch_id, step, attempt))
            return to_record(StepRecord, row) if row else None

    def get_step_by_id(self, step_row_id: int, *, session: Session | None = None) -> StepRecord | None:
        with self._read(session) as s:
            row = s.get(Step, step_row_id)
            return to_record(StepRecord, row) if row else None

    def latest_step(self, launch_id: str, step: str, *, session: Session | None = None) -> StepRecord | None:
        """The highest attempt of ``step`` so far."""
        stmt = select(Step).where(Step.launch_id == launch_id, Step.step == step).order_by(Step.attempt.desc()).limit(1)
        with self._read(session) as s:
            row = s.scalar(stmt)
            return to_record(StepRecord, row) if row else None

    def steps_for(self, launch_id: str, *, session: Session | None = None) -> list[StepRecord]:
        """All step rows of a launch, in the order they were started."""
        stmt = select(Step).where(Step.launch_id == launch_id).order_by(Step.started_at, Step.id)
        with self._read(session) as s:
            return [to_record(StepRecord, r) for r in s.scalars(stmt)]

    def open_steps_due(self, now: datetime, limit: int = 100, *, session: Session | None = None) -> list[StepRecord]:
        """Open (waiting/running) steps whose due_at <= ``now``, soonest first.

        Uses the (status, due_at) index. For early-warning rungs pass now + horizon.
        """
        stmt = (
            select(Step)
            .where(Step.status.in_(STEP_OPEN_STATUSES), Step.due_at.is_not(None), Step.due_at <= _aware(now, "now"))
            .order_by(Step.due_at, Step.id)
            .limit(limit)
        )
        with self._read(session) as s:
            return [to_record(StepRecord, r) for r in s.scalars(stmt)]

    def steps_with_alerts_due(
        self, now: datetime, limit: int = 500, *, session: Session | None = None
    ) -> list[tuple[StepRecord, datetime]]:
        """Steps whose alert cursor (``next_alert_at``) has come, earliest first, each with
        its cursor: every rung of the step before the cursor is enqueued already.

        An index range scan on ``ix_steps_next_alert_at``: closed steps have no cursor
        (``finish_step`` clears it) and open steps with nothing left to fire are not read at
        all. The status is deliberately NOT in the WHERE clause: with it, SQLite's planner
        (and PostgreSQL's, on small tables) picks the (status, due_at) index and walks every
        open step. A row that is not open any more is handed back all the same; the caller
        clears its cursor (``set_alert_cursor(id, None)``).
        """
        stmt = (
            select(Step, Step.next_alert_at)
            .where(Step.next_alert_at.is_not(None), Step.next_alert_at <= _aware(now, "now"))
            .order_by(Step.next_alert_at, Step.id)
            .limit(limit)
        )
        with self._read(session) as s:
            return [(to_record(StepRecord, row), cursor) for row, cursor in s.execute(stmt)]

    def set_alert_cursor(
        self, step_row_id: int, at: datetime | None, *, session: Session | None = None
    ) -> bool:
        """Move a step's cursor to ``at`` (None: nothing left to fire). A moment is only set
        on an open step, so a step closed meanwhile keeps no cursor; None clears any step.
        True when the row was updated."""
        conditions = [Step.id == step_row_id]
        if at is not None:
            conditions.append(Step.status.in_(STEP_OPEN_STATUSES))
        with self._write(session) as s:
            result = s.execute(
                update(Step)
                .where(*conditions)
                .values(next_alert_at=_aware(at, "at") if at is not None else None)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def alert_cursor(self, step_row_id: int, *, session: Session | None = None) -> datetime | None:
        with self._read(session) as s:
            return s.scalar(select(Step.next_alert_at).where(Step.id == step_row_id))
