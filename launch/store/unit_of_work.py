"""The unit of work: the engine, sessions and the helpers every repository shares.

``UnitOfWork`` opens the database (migrating it unless told not to) and hands out
transactions. Every repository method opens its own transaction unless ``session=`` is
passed; then it joins the caller's transaction, opened with ``store.session()``, and
commits nothing itself. So several repositories' writes become one atomic unit::

    with store.session() as s:
        store.record_decision(..., session=s)
        store.finish_event(..., session=s)

Idempotent writes are race-safe: the insert runs in a SAVEPOINT (``_insert_or_get``) or as
``INSERT … ON CONFLICT DO NOTHING`` (``_insert``), and a unique-constraint violation from a
concurrent writer turns into "return the existing row".
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from launch.store.crypto import BlindIndex, FieldCipher
from launch.store.engine import READ_ONLY_OPTION, make_engine
from launch.store.migrations import current_revision, head_revision, migrate
from launch.store.models import Launch

if TYPE_CHECKING:
    from launch.settings import Settings

__all__ = ["DuplicateClientCode", "NotFound", "StoreError", "UnitOfWork"]


class StoreError(Exception):
    """Base of the store's own errors."""


class NotFound(StoreError, LookupError):
    """The row a write refers to does not exist."""


class DuplicateClientCode(StoreError, ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(f"a client with code {code!r} already exists")
        self.code = code


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def _check(value: str, allowed: type[StrEnum], what: str) -> str:
    """``value`` as the plain string of a member of the closed vocabulary ``allowed``."""
    try:
        return allowed(value).value
    except ValueError:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}") from None


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


class UnitOfWork:
    """The database and its transactions. Construct once per process and share; the
    repositories (``launch.store``) are mixed into ``Store`` on top of this."""

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
    def from_settings(cls, settings: Settings, *, run_migrations: bool = True) -> Self:
        return cls(
            settings.store_url,
            settings.fernet_key(),
            settings.derived_secret("blind-index"),
            run_migrations=run_migrations,
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
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

    # ------------------------------------------------------------ transactions

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

    # ------------------------------------------------------------ helpers of every repository

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

    def _insert(self, table: Table):
        """An INSERT of this backend's dialect (for ``on_conflict_do_nothing``)."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    @staticmethod
    def _require_launch(s: Session, launch_id: str) -> None:
        if s.scalar(select(Launch.id).where(Launch.id == launch_id)) is None:
            raise NotFound(f"no launch {launch_id!r}")
