"""The store: the record of truth for clients, launches, steps, decisions, the inbox of
callbacks and the alert outbox. Synchronous; safe to use from several threads and
several processes at once (see ``launch.store.engine`` for SQLite locking).

Every method opens its own transaction unless ``session=`` is passed (then it joins the
caller's transaction, opened with ``Store.session()``, and commits nothing itself).
Methods return frozen records from ``launch.store.records``; nothing needs a session to
be read afterwards. Timestamps must be timezone-aware; they come back in UTC.

Idempotent writes (``open_step``, ``record_decision``, ``put_event``, ``enqueue_alert``,
``remember_nonce``, ``note_effect``) are race-safe: the insert runs in a SAVEPOINT and a
unique-constraint violation from a concurrent writer turns into "return the existing row".
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from launch.store.crypto import BlindIndex, FieldCipher
from launch.store.engine import READ_ONLY_OPTION, make_engine
from launch.store.migrations import current_revision, head_revision, migrate
from launch.store.models import (
    ALERT_STATUSES,
    BRANCH_STATUSES,
    DECISION_CHANNELS,
    IDENTIFIER_KINDS,
    INBOX_RESULTS,
    INBOX_SOURCES,
    LAUNCH_STATUSES,
    STEP_OPEN_STATUSES,
    STEP_STATUSES,
    Alert,
    AlertDelivery,
    Branch,
    ChannelState,
    Client,
    ClientIdentifier,
    ClientProfileChange,
    Decision,
    Effect,
    InboxEvent,
    Launch,
    LaunchCommitment,
    Nonce,
    Step,
)
from launch.store.records import (
    AlertRecord,
    BranchRecord,
    ChannelStateRecord,
    ClientRecord,
    CommitmentRecord,
    DecisionRecord,
    DeliveryRecord,
    EffectRecord,
    InboxRecord,
    LaunchRecord,
    ProfileChangeRecord,
    StepRecord,
    to_record,
)

if TYPE_CHECKING:
    from launch.settings import Settings

__all__ = ["DuplicateClientCode", "NotFound", "Store", "StoreError"]


class StoreError(Exception):
    """Base of the store's own errors."""


class NotFound(StoreError, LookupError):
    """The row a write refers to does not exist."""


class DuplicateClientCode(StoreError, ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(f"a client with code {code!r} already exists")
        self.code = code


# A signed staff-link token in text (`token=kid.payload.sig`, or the older `token=payload.sig`).
_LINK_TOKEN = re.compile(r"[?&]token=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# A bare token as launch.links makes them (kid . payload . 43-character signature), e.g. echoed
# URL-encoded in a channel's error text.
_BARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,16}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


def _no_tokens(text: str | None) -> str | None:
    """Error text as it may be stored: any link token in it masked."""
    if not text:
        return text
    text = re.sub(r"(token=)[^\s&'\"]+", r"\1***", text, flags=re.IGNORECASE)
    return _BARE_TOKEN.sub("***", text)

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def _check(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


def _tags(tags: str | Iterable[str]) -> str:
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    out: list[str] = []
    for t in items:
        t = t.strip()
        if not t:
            continue
        if "," in t:
            raise ValueError(f"tag {t!r} contains a comma")
        if t not in out:
            out.append(t)
    return ",".join(out)


def safe_channel_label(channel: str) -> str:
    """A delivery channel as it may be stored: a URL is cut to ``scheme://host``, so no
    token, password or path with a secret in it reaches the database."""
    channel = channel.strip()
    if "://" not in channel:
        return channel[:255]
    parts = urlsplit(channel)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}"[:255]


class Store:
    """Repository over the store database. Construct once per process and share."""

    def __init__(
        self,
        url: str,
        fernet_key: bytes | str,
        index_key: bytes,
        *,
        run_migrations: bool = True,
        echo: bool = False,
    ) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.dialect = self.engine.dialect.name
        self._cipher = FieldCipher(fernet_key)
        self._index = BlindIndex(index_key)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        if run_migrations:
            migrate(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings, *, run_migrations: bool = True) -> Store:
        return cls(
            settings.store_url,
            settings.fernet_key(),
            settings.derived_secret("blind-index"),
            run_migrations=run_migrations,
        )

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> str:
        return migrate(self.engine)

    def health(self) -> dict[str, Any]:
        """For a health check: backend, revision the database is at, revision the code wants."""
        current = current_revision(self.engine)
        head = head_revision()
        return {"backend": self.dialect, "current_revision": current, "head_revision": head, "ok": current == head}

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on normal exit, rolled back on an exception.

        Pass it as ``session=`` to several methods to make them one atomic unit.
        On SQLite it starts with BEGIN IMMEDIATE (holds the write lock until the end).
        """
        with self._sessions() as s, s.begin():
            yield s

    @contextmanager
    def _write(self, session: Session | None) -> Iterator[Session]:
        if session is not None:
            yield session
        else:
            with self.session() as s:
                yield s

    @contextmanager
    def _read(self, session: Session | None) -> Iterator[Session]:
        if session is not None:
            yield session
        else:
            with self._read_sessions() as s, s.begin():
                yield s

    @staticmethod
    def _insert_or_get(s: Session, obj: Any, lookup) -> tuple[Any, bool]:
        """Insert ``obj`` in a savepoint; on a unique violation return what ``lookup`` finds."""
        existing = lookup()
        if existing is not None:
            return existing, False
        try:
            with s.begin_nested():
                s.add(obj)
        except IntegrityError:
            existing = lookup()
            if existing is None:
                raise
            return existing, False
        return obj, True

    @staticmethod
    def _launch_row(s: Session, launch_id: str, *, lock: bool = False) -> Launch:
        stmt = select(Launch).where(Launch.id == launch_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt)
        if row is None:
            raise NotFound(f"no launch {launch_id!r}")
        return row

    @staticmethod
    def _require_launch(s: Session, launch_id: str) -> None:
        if s.scalar(select(Launch.id).where(Launch.id == launch_id)) is None:
            raise NotFound(f"no launch {launch_id!r}")

    # ------------------------------------------------------------ clients

    def _identifier_rows(self, identifiers: Mapping[str, Iterable[str]] | None) -> set[tuple[str, str]]:
        pairs: set[tuple[str, str]] = set()
        for kind, values in (identifiers or {}).items():
            _check(kind, IDENTIFIER_KINDS, "identifier kind")
            if isinstance(values, str):
                values = [values]
            for value in values:
                if value is None or not str(value).strip():
                    continue
                pairs.add((kind, self._index.digest(kind, str(value))))
        return pairs

    def add_client(
        self,
        code: str,
        display_name: str,
        mini_program_name: str,
        province: str,
        subject_type: str,
        registration_path: str,
        intake: dict[str, Any],
        identifiers: Mapping[str, Iterable[str]] | None = None,
        *,
        created_at: datetime | None = None,
        session: Session | None = None,
    ) -> str:
        """Store a client; the intake is encrypted, identifiers only as blind-index digests.

        Returns the new id ("c-" + 10 hex). Raises DuplicateClientCode if ``code`` is taken.
        """
        if not _CODE_RE.match(code):
            raise ValueError(f"client code {code!r}: use lowercase letters, digits, '-' or '_' (max 64)")
        pairs = self._identifier_rows(identifiers)
        ciphertext = self._cipher.encrypt(intake)
        created_at = _aware(created_at, "created_at") if created_at else _now()
        with self._write(session) as s:
            if s.scalar(select(Client.id).where(Client.code == code)) is not None:
                raise DuplicateClientCode(code)
            client_id = _new_id("c")
            try:
                with s.begin_nested():
                    s.add(
                        Client(
                            id=client_id,
                            code=code,
                            display_name=display_name,
                            mini_program_name=mini_program_name,
                            province=province,
                            subject_type=subject_type,
                            registration_path=registration_path,
                            intake_ciphertext=ciphertext,
                            created_at=created_at,
                        )
                    )
                    s.flush()
                    s.add_all(ClientIdentifier(client_id=client_id, kind=k, digest=d) for k, d in sorted(pairs))
            except IntegrityError as exc:
                if s.scalar(select(Client.id).where(Client.code == code)) is not None:
                    raise DuplicateClientCode(code) from exc
                raise
            return client_id

    def update_client_intake(
        self,
        client_id: str,
        intake: dict[str, Any],
        identifiers: Mapping[str, Iterable[str]] | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """Replace the encrypted intake; when ``identifiers`` is given, replace those too."""
        ciphertext = self._cipher.encrypt(intake)
        with self._write(session) as s:
            row = s.get(Client, client_id)
            if row is None:
                raise NotFound(f"no client {client_id!r}")
            row.intake_ciphertext = ciphertext
            if identifiers is not None:
                pairs = self._identifier_rows(identifiers)
                s.execute(
                    ClientIdentifier.__table__.delete().where(ClientIdentifier.client_id == client_id)
                )
                s.add_all(ClientIdentifier(client_id=client_id, kind=k, digest=d) for k, d in sorted(pairs))

    def get_client(self, client_id: str, *, session: Session | None = None) -> ClientRecord | None:
        with self._read(session) as s:
            row = s.get(Client, client_id)
            return to_record(ClientRecord, row) if row else None

    def get_client_by_code(self, code: str, *, session: Session | None = None) -> ClientRecord | None:
        with self._read(session) as s:
            row = s.scalar(select(Client).where(Client.code == code))
            return to_record(ClientRecord, row) if row else None

    def list_clients(self, *, session: Session | None = None) -> list[ClientRecord]:
        with self._read(session) as s:
            rows = s.scalars(select(Client).order_by(Client.created_at, Client.code))
            return [to_record(ClientRecord, r) for r in rows]

    def client_intake(self, client_id: str, *, session: Session | None = None) -> dict[str, Any]:
        """The decrypted intake. Raises NotFound."""
        with self._read(session) as s:
            token = s.scalar(select(Client.intake_ciphertext).where(Client.id == client_id))
        if token is None:
            raise NotFound(f"no client {client_id!r}")
        return self._cipher.decrypt(token)

    def identifier_usage(
        self,
        identifiers: Mapping[str, Iterable[str]],
        exclude_client_id: str | None = None,
        *,
        session: Session | None = None,
    ) -> dict[str, dict[str, int]]:
        """How many clients (other than ``exclude_client_id``) already use each value.

        Input raw values; they are digested here. Output is keyed by the raw input values,
        every input value present (0 when unused).
        """
        wanted: dict[str, dict[str, str]] = {}  # kind -> raw value -> digest
        for kind, values in identifiers.items():
            _check(kind, IDENTIFIER_KINDS, "identifier kind")
            if isinstance(values, str):
                values = [values]
            wanted[kind] = {v: self._index.digest(kind, v) for v in values if v is not None and str(v).strip()}
        counts: dict[tuple[str, str], int] = {}
        conditions = [
            and_(ClientIdentifier.kind == kind, ClientIdentifier.digest.in_(sorted(set(by_value.values()))))
            for kind, by_value in wanted.items()
            if by_value
        ]
        if conditions:
            stmt = (
                select(ClientIdentifier.kind, ClientIdentifier.digest, func.count(func.distinct(ClientIdentifier.client_id)))
                .where(or_(*conditions))
                .group_by(ClientIdentifier.kind, ClientIdentifier.digest)
            )
            if exclude_client_id is not None:
                stmt = stmt.where(ClientIdentifier.client_id != exclude_client_id)
            with self._read(session) as s:
                for kind, digest, n in s.execute(stmt):
                    counts[(kind, digest)] = int(n)
        return {
            kind: {value: counts.get((kind, digest), 0) for value, digest in by_value.items()}
            for kind, by_value in wanted.items()
        }

    # ------------------------------------------------------------ client profile counters

    def profile_changes(
        self,
        client_id: str,
        *,
        exclude: tuple[str, int] | None = None,
        session: Session | None = None,
    ) -> list[ProfileChangeRecord]:
        """The client's recorded profile changes, oldest first; ``exclude`` = (launch id,
        attempt) leaves out one decision's own rows (so a replay does not count it twice)."""
        stmt = (
            select(ClientProfileChange)
            .where(ClientProfileChange.client_id == client_id)
            .order_by(ClientProfileChange.changed_at, ClientProfileChange.id)
        )
        if exclude is not None:
            stmt = stmt.where(
                or_(ClientProfileChange.launch_id != exclude[0], ClientProfileChange.attempt != exclude[1])
            )
        with self._read(session) as s:
            return [to_record(ProfileChangeRecord, r) for r in s.scalars(stmt)]

    def record_profile_changes(
        self,
        client_id: str,
        launch_id: str,
        attempt: int,
        changes: Iterable[tuple[str, int, datetime]],
        *,
        session: Session | None = None,
    ) -> int:
        """Count (field, times, at) changes of one decided profile gate. Idempotent per
        (client, launch, attempt, field): a second call adds nothing. Returns rows added."""
        added = 0
        with self._write(session) as s:
            for field, count, at in changes:
                if count <= 0:
                    continue
                _, created = self._insert_or_get(
                    s,
                    ClientProfileChange(
                        client_id=client_id, launch_id=launch_id, attempt=attempt, field=field,
                        count=int(count), changed_at=_aware(at, "changed_at"),
                    ),
                    lambda field=field: s.scalar(select(ClientProfileChange).where(
                        ClientProfileChange.client_id == client_id,
                        ClientProfileChange.launch_id == launch_id,
                        ClientProfileChange.attempt == attempt,
                        ClientProfileChange.field == field,
                    )),
                )
                added += int(created)
        return added

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

    # ------------------------------------------------------------ launches

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
            stmt = stmt.where(Launch.status == _check(status, LAUNCH_STATUSES, "launch status"))
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
        _check(status, LAUNCH_STATUSES, "launch status")
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

    # ------------------------------------------------------------ steps

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
        _check(status, STEP_STATUSES, "step status")
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
        _check(status, STEP_STATUSES, "step status")
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

    # ------------------------------------------------------------ the deadline watcher's cursor

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

    # ------------------------------------------------------------ decisions

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
        _check(channel, DECISION_CHANNELS, "channel")
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

    def history(self, launch_id: str, *, session: Session | None = None) -> list[DecisionRecord]:
        """Every decision of a launch in the order it was decided."""
        stmt = select(Decision).where(Decision.launch_id == launch_id).order_by(Decision.decided_at, Decision.id)
        with self._read(session) as s:
            return [to_record(DecisionRecord, r) for r in s.scalars(stmt)]

    # ------------------------------------------------------------ branches

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
        _check(status, BRANCH_STATUSES, "branch status")
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

    # ------------------------------------------------------------ inbox

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
        """Land a callback in the inbox, once per ``event_key``. The payload must already be
        redacted. Returns (row, created); a duplicate returns the first row, created=False."""
        _check(source, INBOX_SOURCES, "inbox source")
        row = InboxEvent(
            source=source,
            event_key=event_key,
            kind=kind,
            launch_id=launch_id,
            gate=gate,
            payload=dict(payload or {}),
            received_at=_aware(received_at, "received_at") if received_at else _now(),
        )
        with self._write(session) as s:
            if launch_id is not None:
                self._require_launch(s, launch_id)
            found, created = self._insert_or_get(
                s, row, lambda: s.scalar(select(InboxEvent).where(InboxEvent.event_key == event_key))
            )
            return to_record(InboxRecord, found), created

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

    def mark_applied(
        self,
        event_id: int,
        result: str,
        error: str | None = None,
        *,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> InboxRecord:
        _check(result, INBOX_RESULTS, "inbox result")
        with self._write(session) as s:
            row = s.get(InboxEvent, event_id)
            if row is None:
                raise NotFound(f"no inbox event {event_id}")
            row.applied_at = _aware(at, "at") if at else _now()
            row.result = result
            row.error = error
            return to_record(InboxRecord, row)

    # ------------------------------------------------------------ nonces

    def remember_nonce(
        self, scope: str, nonce: str, now: datetime, ttl_seconds: float, *, session: Session | None = None
    ) -> bool:
        """True the first time (scope, nonce) is seen within ``ttl_seconds``; False on a replay.

        Race-safe: of two concurrent callers with the same nonce exactly one gets True.
        """
        now = _aware(now, "now")
        cutoff = now - timedelta(seconds=ttl_seconds)
        with self._write(session) as s:
            # A nonce last seen before the window may be used again: take it over atomically.
            taken = s.execute(
                update(Nonce)
                .where(Nonce.scope == scope, Nonce.nonce == nonce, Nonce.seen_at <= cutoff)
                .values(seen_at=now)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:
                return True
            try:
                with s.begin_nested():
                    s.add(Nonce(scope=scope, nonce=nonce, seen_at=now))
            except IntegrityError:
                return False
            return True

    def purge_nonces(self, older_than: datetime, *, session: Session | None = None) -> int:
        """Delete nonces last seen before ``older_than``; returns how many."""
        with self._write(session) as s:
            result = s.execute(
                Nonce.__table__.delete().where(Nonce.seen_at < _aware(older_than, "older_than"))
            )
            return int(result.rowcount or 0)

    # ------------------------------------------------------------ alerts (outbox)

    def enqueue_alert(
        self,
        *,
        dedupe_key: str,
        rung: str,
        title: str,
        body: str,
        launch_id: str | None = None,
        step_row_id: int | None = None,
        tags: str | Iterable[str] = (),
        send_after: datetime | None = None,
        created_at: datetime | None = None,
        session: Session | None = None,
    ) -> tuple[AlertRecord, bool]:
        """Put an alert in the outbox once per ``dedupe_key`` (e.g. "l-…:sms-verification:1:rung-12h").

        It becomes due at ``send_after`` (default now). Returns (row, created).

        The outbox holds no credential: a title or body with a signed link token in it
        (``token=…``) is refused; put ``launch.links.link_placeholder(...)`` where the link
        goes and the deliverer signs a fresh one.
        """
        if _LINK_TOKEN.search(title) or _LINK_TOKEN.search(body):
            raise ValueError("an outbox alert must not hold a signed link token; store launch.links.link_placeholder "
                             "and let the deliverer sign the link / 提醒正文不得包含链接令牌")
        created = _aware(created_at, "created_at") if created_at else _now()
        due = _aware(send_after, "send_after") if send_after else created
        row = Alert(
            launch_id=launch_id,
            step_row_id=step_row_id,
            dedupe_key=dedupe_key,
            rung=rung,
            tags=_tags(tags),
            title=title,
            body=body,
            send_after=due,
            status="pending",
            attempts=0,
            next_attempt_at=due,
            created_at=created,
        )
        with self._write(session) as s:
            if launch_id is not None:
                self._require_launch(s, launch_id)
            found, was_created = self._insert_or_get(
                s, row, lambda: s.scalar(select(Alert).where(Alert.dedupe_key == dedupe_key))
            )
            return to_record(AlertRecord, found), was_created

    def claim_due_alerts(
        self,
        now: datetime,
        worker_id: str,
        limit: int = 10,
        lease_seconds: float = 300,
        *,
        session: Session | None = None,
    ) -> list[AlertRecord]:
        """Atomically claim due alerts for ``worker_id``: pending rows whose next_attempt_at
        has come, and sending rows whose claim lease ran out (a sender that died). They move
        to ``sending`` with claimed_by/claimed_until set and attempts + 1.

        PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, so concurrent claimers never get the
        same row and never wait on each other. SQLite: the write transaction (BEGIN
        IMMEDIATE) serialises claimers.
        """
        now = _aware(now, "now")
        until = now + timedelta(seconds=lease_seconds)
        stmt = (
            select(Alert)
            .where(
                or_(
                    and_(Alert.status == "pending", Alert.next_attempt_at <= now),
                    and_(Alert.status == "sending", Alert.claimed_until <= now),
                )
            )
            .order_by(Alert.next_attempt_at, Alert.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._write(session) as s:
            rows = list(s.scalars(stmt))
            for row in rows:
                row.status = "sending"
                row.claimed_by = worker_id
                row.claimed_until = until
                row.attempts = (row.attempts or 0) + 1
            s.flush()
            return [to_record(AlertRecord, r) for r in rows]

    def _finish_claim(self, alert_id: int, worker_id: str | None, values: dict[str, Any], session) -> bool:
        conditions = [Alert.id == alert_id, Alert.status == "sending"]
        if worker_id is not None:
            conditions.append(Alert.claimed_by == worker_id)
        with self._write(session) as s:
            result = s.execute(
                update(Alert).where(*conditions).values(**values).execution_options(synchronize_session="fetch")
            )
            return result.rowcount == 1

    def mark_alert_sent(
        self, alert_id: int, at: datetime | None = None, *, worker_id: str | None = None, session: Session | None = None
    ) -> bool:
        """sending -> sent. With ``worker_id``, only if that worker still holds the claim.
        Returns False when the row was not in a state to be updated."""
        values = {"status": "sent", "sent_at": _aware(at, "at") if at else _now(), "claimed_until": None}
        return self._finish_claim(alert_id, worker_id, values, session)

    def mark_alert_retry(
        self,
        alert_id: int,
        next_attempt_at: datetime,
        error: str | None,
        *,
        worker_id: str | None = None,
        session: Session | None = None,
    ) -> bool:
        """sending -> pending again, due at ``next_attempt_at``; the claim is released."""
        values = {
            "status": "pending",
            "next_attempt_at": _aware(next_attempt_at, "next_attempt_at"),
            "last_error": _no_tokens(error),
            "claimed_by": None,
            "claimed_until": None,
        }
        return self._finish_claim(alert_id, worker_id, values, session)

    def mark_alert_failed(
        self, alert_id: int, error: str | None, *, worker_id: str | None = None, session: Session | None = None
    ) -> bool:
        """sending -> failed for good (no more attempts)."""
        values = {"status": "failed", "last_error": _no_tokens(error), "claimed_until": None}
        return self._finish_claim(alert_id, worker_id, values, session)

    def record_delivery(
        self,
        alert_id: int,
        channel: str,
        ok: bool,
        error: str | None = None,
        at: datetime | None = None,
        *,
        session: Session | None = None,
    ) -> DeliveryRecord:
        """One delivery attempt to one channel. ``channel`` is a masked label; a URL is cut
        down to scheme://host so no secret ends up stored."""
        row = AlertDelivery(
            alert_id=alert_id,
            channel=safe_channel_label(channel),
            ok=bool(ok),
            error=_no_tokens(error),
            at=_aware(at, "at") if at else _now(),
        )
        with self._write(session) as s:
            if s.get(Alert, alert_id) is None:
                raise NotFound(f"no alert {alert_id}")
            s.add(row)
            s.flush()
            return to_record(DeliveryRecord, row)

    def get_alert(self, alert_id: int, *, session: Session | None = None) -> AlertRecord | None:
        with self._read(session) as s:
            row = s.get(Alert, alert_id)
            return to_record(AlertRecord, row) if row else None

    def list_alerts(
        self, status: str | None = None, *, launch_id: str | None = None, session: Session | None = None
    ) -> list[AlertRecord]:
        stmt = select(Alert).order_by(Alert.id)
        if status is not None:
            stmt = stmt.where(Alert.status == _check(status, ALERT_STATUSES, "alert status"))
        if launch_id is not None:
            stmt = stmt.where(Alert.launch_id == launch_id)
        with self._read(session) as s:
            return [to_record(AlertRecord, r) for r in s.scalars(stmt)]

    def deliveries_for(self, alert_id: int, *, session: Session | None = None) -> list[DeliveryRecord]:
        stmt = select(AlertDelivery).where(AlertDelivery.alert_id == alert_id).order_by(AlertDelivery.at, AlertDelivery.id)
        with self._read(session) as s:
            return [to_record(DeliveryRecord, r) for r in s.scalars(stmt)]

    # ------------------------------------------------------------ alerts waiting for channels

    @staticmethod
    def _names(channels: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(safe_channel_label(c)[:64] for c in channels if c))

    @staticmethod
    def _waiting_text(names: Sequence[str]) -> str | None:
        text = "," + ",".join(names) + "," if names else None
        if text is not None and len(text) > 255:
            raise ValueError("too many channels to wait for / 等待的渠道过多")
        return text

    def mark_alert_waiting(
        self,
        alert_id: int,
        waiting_for: Iterable[str],
        error: str | None,
        *,
        at: datetime,
        next_check_at: datetime | None = None,
        worker_id: str | None = None,
        session: Session | None = None,
    ) -> str | None:
        """sending -> waiting for channels that are down; the try just made is not counted
        (attempts - 1). Only the named channels still down when this commits are kept (read
        under a shared lock, so a channel coming back at the same moment releases this alert
        or is seen as up here); none left -> pending, due ``at``. Returns the new status, or
        None when the claim was lost."""
        names = self._names(waiting_for)
        at = _aware(at, "at")
        with self._write(session) as s:
            down = set(s.scalars(
                select(ChannelState.channel)
                .where(ChannelState.channel.in_(names), ChannelState.state == "down")
                .with_for_update(read=True)
            )) if names else set()
            still = [n for n in names if n in down]
            values: dict[str, Any] = {
                "attempts": case((Alert.attempts > 0, Alert.attempts - 1), else_=0),
                "last_error": _no_tokens(error),
                "claimed_by": None,
                "claimed_until": None,
            }
            if still:
                values.update(status="waiting", waiting_for=self._waiting_text(still),
                              next_attempt_at=_aware(next_check_at, "next_check_at") if next_check_at else at)
            else:
                values.update(status="pending", waiting_for=None, next_attempt_at=at)
            return values["status"] if self._finish_claim(alert_id, worker_id, values, s) else None

    def claim_waiting_alert(
        self, channel: str, now: datetime, worker_id: str, lease_seconds: float = 300, *, session: Session | None = None
    ) -> AlertRecord | None:
        """Claim the oldest alert (by due time) waiting for ``channel``: the probe of a channel
        that is down is a real delivery of it. SKIP LOCKED as ``claim_due_alerts``."""
        now = _aware(now, "now")
        [name] = self._names([channel])
        stmt = (
            select(Alert)
            .where(Alert.status == "waiting", Alert.waiting_for.contains(f",{name},", autoescape=True))
            .order_by(Alert.send_after, Alert.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._write(session) as s:
            row = s.scalar(stmt)
            if row is None:
                return None
            row.status = "sending"
            row.waiting_for = None  # set again by mark_alert_waiting if it still waits
            row.claimed_by = worker_id
            row.claimed_until = now + timedelta(seconds=lease_seconds)
            row.attempts = (row.attempts or 0) + 1
            s.flush()
            return to_record(AlertRecord, row)

    def _release_waiting(self, s: Session, name: str) -> int:
        result = s.execute(
            update(Alert)
            .where(Alert.status == "waiting", Alert.waiting_for.contains(f",{name},", autoescape=True))
            .values(status="pending", waiting_for=None, next_attempt_at=Alert.send_after)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)

    def release_waiting(self, channel: str, *, session: Session | None = None) -> int:
        """Every alert waiting for ``channel`` becomes pending, due at its own due time, so the
        claims take the backlog oldest first. Returns how many."""
        [name] = self._names([channel])
        with self._write(session) as s:
            return self._release_waiting(s, name)

    def release_stranded(self, down: Iterable[str], *, session: Session | None = None) -> int:
        """Waiting alerts none of whose channels is in ``down`` (the channels down and still
        configured) become pending: a channel that came back, or was removed, strands none."""
        down_set = set(self._names(down))
        with self._write(session) as s:
            rows = s.execute(select(Alert.id, Alert.waiting_for).where(Alert.status == "waiting")).all()
            ids = [i for i, w in rows if not down_set.intersection(t for t in (w or "").split(",") if t)]
            if not ids:
                return 0
            result = s.execute(
                update(Alert).where(Alert.id.in_(ids), Alert.status == "waiting")
                .values(status="pending", waiting_for=None, next_attempt_at=Alert.send_after)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)

    def waiting_counts(self, *, session: Session | None = None) -> dict[str, int]:
        """Per channel name: how many alerts wait for it."""
        counts: dict[str, int] = {}
        with self._read(session) as s:
            for w in s.scalars(select(Alert.waiting_for).where(Alert.status == "waiting")):
                for name in (t for t in (w or "").split(",") if t):
                    counts[name] = counts.get(name, 0) + 1
        return counts

    def requeue_alerts(
        self,
        ids: Iterable[int] = (),
        *,
        status: str | None = None,
        now: datetime,
        session: Session | None = None,
    ) -> list[tuple[int, str, str | None]]:
        """Put alerts back in the queue: by id, or every alert in ``status`` (failed | waiting).

        failed -> pending with a fresh retry budget; waiting -> pending, and each down channel
        it waited for is due for a probe now; pending -> due now. Due at the alert's own due
        time when that has passed, so the backlog goes oldest first. Returns (id, status
        before, status after or None when left alone: sent, sending, unknown id)."""
        now = _aware(now, "now")
        if status is not None and status not in ("failed", "waiting"):
            raise ValueError("status must be failed or waiting / 只能按 failed 或 waiting 重新排队")
        due = case((Alert.send_after < now, Alert.send_after), else_=now)
        out: list[tuple[int, str, str | None]] = []
        with self._write(session) as s:
            stmt = select(Alert).order_by(Alert.send_after, Alert.id).with_for_update()
            wanted = [int(i) for i in ids]
            if status is not None:
                stmt = stmt.where(Alert.status == status)
            elif wanted:
                stmt = stmt.where(Alert.id.in_(wanted))
            else:
                return out
            rows = list(s.scalars(stmt))
            found = {r.id for r in rows}
            probe: set[str] = set()
            for row in rows:
                before = row.status
                if before not in ("failed", "waiting", "pending"):
                    out.append((row.id, before, None))
                    continue
                values: dict[str, Any] = {"status": "pending", "next_attempt_at": due, "waiting_for": None}
                if before == "failed":
                    values["attempts"] = 0
                elif before == "waiting":
                    probe.update(t for t in (row.waiting_for or "").split(",") if t)
                s.execute(update(Alert).where(Alert.id == row.id).values(**values)
                          .execution_options(synchronize_session=False))
                out.append((row.id, before, "pending"))
            for i in wanted:
                if i not in found and status is None:
                    out.append((i, "unknown", None))
            if probe:
                s.execute(
                    update(ChannelState)
                    .where(ChannelState.channel.in_(sorted(probe)), ChannelState.state == "down")
                    .values(next_probe_at=now)
                    .execution_options(synchronize_session=False)
                )
        return out

    # ------------------------------------------------------------ channel breakers

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
        [name] = self._names([channel])
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
                row.last_error = (_no_tokens(error) or "")[:500] or None
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
                released = self._release_waiting(s, name)
            return to_record(ChannelStateRecord, row), change, released

    def claim_channel_probe(
        self, channel: str, now: datetime, probe_seconds: float = 300.0, *, session: Session | None = None
    ) -> bool:
        """Take the probe of a down channel whose probe is due: one watcher wins, and the next
        probe moves ``probe_seconds`` on. False: not down, not due, or taken."""
        now = _aware(now, "now")
        [name] = self._names([channel])
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

    # ------------------------------------------------------------ effects ledger

    def note_effect(
        self,
        launch_id: str,
        effect_key: str,
        flow_run_id: str | None = None,
        *,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> int:
        """Count one execution of a side-effecting task; returns the count after this one."""
        at = _aware(at, "at") if at else _now()

        def bump(s: Session) -> bool:
            result = s.execute(
                update(Effect)
                .where(Effect.launch_id == launch_id, Effect.effect_key == effect_key)
                .values(count=Effect.count + 1, flow_run_id=flow_run_id, ran_at=at)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

        with self._write(session) as s:
            self._require_launch(s, launch_id)
            if not bump(s):
                try:
                    with s.begin_nested():
                        s.add(Effect(launch_id=launch_id, effect_key=effect_key, flow_run_id=flow_run_id, ran_at=at, count=1))
                except IntegrityError:
                    if not bump(s):
                        raise
            return int(
                s.scalar(select(Effect.count).where(Effect.launch_id == launch_id, Effect.effect_key == effect_key))
            )

    def effects_for(self, launch_id: str, *, session: Session | None = None) -> list[EffectRecord]:
        stmt = select(Effect).where(Effect.launch_id == launch_id).order_by(Effect.effect_key)
        with self._read(session) as s:
            return [to_record(EffectRecord, r) for r in s.scalars(stmt)]

    # ------------------------------------------------------------ commitments (revision 0005, issue 13)

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
