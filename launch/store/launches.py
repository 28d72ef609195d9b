"""Launches: ``launches`` (one per go-live of a client's mini-program), found by id, app id
or original id, and the questions the reviver and the join wake-up ask about them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from launch.store.models import Branch, Client, ClientIdentifier, Decision, Launch, Step
from launch.store.records import LaunchRecord, StepRecord, to_record
from launch.store.unit_of_work import NotFound, StoreError, UnitOfWork, _aware, _check, _new_id, _now
from launch.store.vocab import IdentifierKind, LaunchStatus


class LaunchRepository(UnitOfWork):
    """Launches."""

    @staticmethod
    def _launch_row(s: Session, launch_id: str, *, lock: bool = False) -> Launch:
        stmt = select(Launch).where(Launch.id == launch_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt)
        if row is None:
            raise NotFound(f"no launch {launch_id!r}")
        return row

    def create_launch(
        self, client_id: str, *, created_at: datetime | None = None, session: Session | None = None
    ) -> LaunchRecord:
        """A new running launch of ``client_id`` (id "l-" + 10 hex; safe in Prefect keys)."""
        at = _aware(created_at, "created_at") if created_at else _now()
        with self._write(session) as s:
            client = s.get(Client, client_id)
            if client is None:
                raise NotFound(f"no client {client_id!r}")
            for _ in range(5):
                row = Launch(
                    id=_new_id("l"),
                    client_id=client_id,
                    status="running",
                    registration_path=client.registration_path,
                    created_at=at,
                    updated_at=at,
                )
                try:
                    with s.begin_nested():
                        s.add(row)
                except IntegrityError:  # an id collision: 1 in 2**40, try another
                    continue
                return to_record(LaunchRecord, row)
            raise StoreError("could not allocate a launch id")

    def get_launch(self, launch_id: str, *, session: Session | None = None) -> LaunchRecord | None:
        with self._read(session) as s:
            row = s.get(Launch, launch_id)
            return to_record(LaunchRecord, row) if row else None

    def list_launches(
        self, status: str | None = None, *, client_id: str | None = None, session: Session | None = None
    ) -> list[LaunchRecord]:
        stmt = select(Launch).order_by(Launch.created_at, Launch.id)
        if status is not None:
            stmt = stmt.where(Launch.status == _check(status, LaunchStatus, "launch status"))
        if client_id is not None:
            stmt = stmt.where(Launch.client_id == client_id)
        with self._read(session) as s:
            return [to_record(LaunchRecord, r) for r in s.scalars(stmt)]

    def set_launch_flow_run(
        self, launch_id: str, flow_run_id: str, *, at: datetime | None = None, session: Session | None = None
    ) -> LaunchRecord:
        with self._write(session) as s:
            row = self._launch_row(s, launch_id)
            row.flow_run_id = flow_run_id
            row.updated_at = _aware(at, "at") if at else _now()
            return to_record(LaunchRecord, row)

    def set_launch_status(
        self, launch_id: str, status: str, *, at: datetime | None = None, session: Session | None = None
    ) -> LaunchRecord:
        """Set the status; ``released`` also stamps released_at (once)."""
        _check(status, LaunchStatus, "launch status")
        at = _aware(at, "at") if at else _now()
        with self._write(session) as s:
            row = self._launch_row(s, launch_id)
            row.status = status
            row.updated_at = at
            if status == "released" and row.released_at is None:
                row.released_at = at
            return to_record(LaunchRecord, row)

    def set_app_ids(
        self,
        launch_id: str,
        appid: str | None = None,
        original_id: str | None = None,
        *,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> LaunchRecord:
        """Record the mini-program's appid and/or original id (gh_…); None leaves a field as is."""
        with self._write(session) as s:
            row = self._launch_row(s, launch_id)
            if appid is not None:
                row.appid = appid
            if original_id is not None:
                row.original_id = original_id
            row.updated_at = _aware(at, "at") if at else _now()
            return to_record(LaunchRecord, row)

    def _find_launch_by(self, column, value: str, session: Session | None) -> LaunchRecord | None:
        # Several launches may share an app (a failed launch relaunched): prefer a running one, then the newest.
        stmt = (
            select(Launch)
            .where(column == value)
            .order_by((Launch.status == "running").desc(), Launch.created_at.desc(), Launch.id.desc())
            .limit(1)
        )
        with self._read(session) as s:
            row = s.scalar(stmt)
            return to_record(LaunchRecord, row) if row else None

    def find_launch_by_original_id(self, original_id: str, *, session: Session | None = None) -> LaunchRecord | None:
        return self._find_launch_by(Launch.original_id, original_id, session)

    def find_launch_by_appid(self, appid: str, *, session: Session | None = None) -> LaunchRecord | None:
        return self._find_launch_by(Launch.appid, appid, session)

    def find_running_launch_by_identifier(
        self, kind: str, digest: str, *, session: Session | None = None
    ) -> LaunchRecord | None:
        """The running launch of the client with this identifier digest (see
        ``identifier_digest``): a reuse-path launch first, then the newest."""
        stmt = (
            select(Launch)
            .join(ClientIdentifier, ClientIdentifier.client_id == Launch.client_id)
            .where(
                ClientIdentifier.kind == _check(kind, IdentifierKind, "identifier kind"),
                ClientIdentifier.digest == digest,
                Launch.status == LaunchStatus.RUNNING,
            )
            .order_by(
                (Launch.registration_path == "reuse_official_account").desc(),
                Launch.created_at.desc(),
                Launch.id.desc(),
            )
            .limit(1)
        )
        with self._read(session) as s:
            row = s.scalar(stmt)
            return to_record(LaunchRecord, row) if row else None

    def launches_maybe_joining(self, limit: int = 500, *, session: Session | None = None) -> list[LaunchRecord]:
        """Running launches with a flow run, a finished (done or failed) branch and no gate of
        their own run waiting: the only ones whose run can be parked on a ``join-…`` key that
        a lost wake-up left behind."""
        finished_branch = (
            select(Branch.launch_id)
            .where(Branch.launch_id == Launch.id, Branch.status.in_(("done", "failed")))
            .exists()
        )
        own_gate_waiting = (
            select(Step.id)
            .where(Step.launch_id == Launch.id, Step.status == "waiting", Step.flow_run_id == Launch.flow_run_id)
            .exists()
        )
        stmt = (
            select(Launch)
            .where(Launch.status == "running", Launch.flow_run_id.is_not(None), finished_branch, ~own_gate_waiting)
            .order_by(Launch.created_at, Launch.id)
            .limit(limit)
        )
        with self._read(session) as s:
            return [to_record(LaunchRecord, r) for r in s.scalars(stmt)]

    def waiting_on_wechat(
        self, gates: tuple[str, ...] | list[str], started_before: datetime, limit: int = 500, *,
        before_appid: tuple[str, ...] | list[str] = (), session: Session | None = None,
    ) -> list[tuple[StepRecord, str | None]]:
        """Steps waiting at one of ``gates`` since before ``started_before``, of running launches
        that know their mini-program, with no decision recorded for that attempt yet; each with
        the launch's appid, longest waiting first (the watcher's reconciliation asks WeChat
        about these: launch/app/reconcile.py). Gates in ``before_appid`` (the platform's
        registration, which makes the mini-program) are taken with no appid known (None)."""
        decided = (
            select(Decision.id)
            .where(Decision.launch_id == Step.launch_id, Decision.gate == Step.step, Decision.attempt == Step.attempt)
            .exists()
        )
        stmt = (
            select(Step, Launch.appid)
            .join(Launch, Launch.id == Step.launch_id)
            .where(Step.status == "waiting", Step.step.in_(list(gates) + list(before_appid)),
                   Step.started_at <= _aware(started_before, "started_before"),
                   Launch.status == "running",
                   or_(Launch.appid.is_not(None), Step.step.in_(list(before_appid))) if before_appid
                   else Launch.appid.is_not(None),
                   ~decided)
            .order_by(Step.started_at, Step.id)
            .limit(limit)
        )
        with self._read(session) as s:
            return [(to_record(StepRecord, row), appid) for row, appid in s.execute(stmt)]

    def open_flow_run_ids(self, limit: int = 500, *, session: Session | None = None) -> list[str]:
        """Flow runs the store still expects to finish: running launches and their started
        branches. Only these can be orphaned by a dead process (see orchestrator.revive_dead_runs)."""
        launches = (
            select(Launch.flow_run_id)
            .where(Launch.status == "running", Launch.flow_run_id.is_not(None))
            .order_by(Launch.created_at, Launch.id)
            .limit(limit)
        )
        branches = (
            select(Branch.flow_run_id)
            .join(Launch, Launch.id == Branch.launch_id)
            .where(Launch.status == "running", Branch.status == "started", Branch.flow_run_id.is_not(None))
            .order_by(Branch.started_at, Branch.launch_id, Branch.branch)
            .limit(limit)
        )
        with self._read(session) as s:
            return list(dict.fromkeys([*s.scalars(launches), *s.scalars(branches)]))
