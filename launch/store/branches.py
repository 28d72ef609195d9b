"""Branches: ``branches`` (a launch's parallel sub-flows: started, done or failed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from launch.store.models import Branch
from launch.store.records import BranchRecord, to_record
from launch.store.unit_of_work import NotFound, UnitOfWork, _aware, _check, _now
from launch.store.vocab import BranchStatus


class BranchRepository(UnitOfWork):
    """A launch's branches."""

    def start_branch(
        self,
        launch_id: str,
        branch: str,
        flow_run_id: str | None = None,
        *,
        started_at: datetime | None = None,
        session: Session | None = None,
    ) -> BranchRecord:
        """Idempotent. A started/done branch is returned as is (a missing flow_run_id is
        filled in); a failed branch is restarted (status started, new flow run)."""
        at = _aware(started_at, "started_at") if started_at else _now()
        with self._write(session) as s:
            self._require_launch(s, launch_id)
            row = Branch(launch_id=launch_id, branch=branch, flow_run_id=flow_run_id, status="started", started_at=at)

            def lookup():
                return s.scalar(
                    select(Branch).where(Branch.launch_id == launch_id, Branch.branch == branch).with_for_update()
                )

            found, created = self._insert_or_get(s, row, lookup)
            if not created:
                if found.status == "failed":
                    found.status = "started"
                    found.flow_run_id = flow_run_id
                    found.started_at = at
                    found.finished_at = None
                elif found.flow_run_id is None and flow_run_id:
                    found.flow_run_id = flow_run_id
            return to_record(BranchRecord, found)

    def finish_branch(
        self,
        launch_id: str,
        branch: str,
        status: str,
        *,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> BranchRecord:
        """started -> done|failed; idempotent (a finished branch is returned unchanged)."""
        _check(status, BranchStatus, "branch status")
        if status == "started":
            raise ValueError("finish_branch needs done or failed")
        with self._write(session) as s:
            row = s.scalar(
                select(Branch).where(Branch.launch_id == launch_id, Branch.branch == branch).with_for_update()
            )
            if row is None:
                raise NotFound(f"no branch {launch_id}/{branch}")
            if row.status == "started":
                row.status = status
                row.finished_at = _aware(at, "at") if at else _now()
            return to_record(BranchRecord, row)

    def get_branch(self, launch_id: str, branch: str, *, session: Session | None = None) -> BranchRecord | None:
        with self._read(session) as s:
            row = s.get(Branch, (launch_id, branch))
            return to_record(BranchRecord, row) if row else None

    def branches_for(self, launch_id: str, *, session: Session | None = None) -> list[BranchRecord]:
        stmt = select(Branch).where(Branch.launch_id == launch_id).order_by(Branch.started_at, Branch.branch)
        with self._read(session) as s:
            return [to_record(BranchRecord, r) for r in s.scalars(stmt)]
