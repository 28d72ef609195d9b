"""Alembic migrations of the store, driven from code (no alembic.ini needed at runtime).

``migrate(url)`` upgrades to head and is safe to call at every start, from several
processes at once: on PostgreSQL the upgrade holds a transaction-level advisory lock; on
SQLite it holds an exclusive ``flock`` on a lock file beside the database
(``<database>.migrate-lock``) and reads the revision again under it. (``BEGIN IMMEDIATE``
alone is not enough on SQLite: Alembic treats SQLite DDL as non-transactional, reads the
revision before it runs each migration in a transaction of its own, so two processes
that both read 0001 both applied 0002 — "duplicate column next_alert_at".) A database
already at head is left untouched, without taking any lock.

For a developer creating a revision by hand:
    alembic -c launch/store/migrations/alembic.ini -x url=sqlite:///tmp/x.db revision --autogenerate -m "..."
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from launch.store.engine import READ_ONLY_OPTION, make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent

# Any constant works; it only has to be the same for every process of this application.
PG_ADVISORY_LOCK_ID = 0x7765_6170_7073  # "weapps"

# Alembic's ``context`` is module-global: two upgrades in one process must not overlap.
# (Across processes: the advisory lock on PostgreSQL, the lock file on SQLite.)
_PROCESS_LOCK = threading.Lock()

__all__ = ["alembic_config", "current_revision", "head_revision", "migrate"]


def alembic_config(url: str | None = None, *, connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _with_engine(target: str | Engine, fn):
    if isinstance(target, Engine):
        return fn(target)
    engine = make_engine(target, poolclass=NullPool)
    try:
        return fn(engine)
    finally:
        engine.dispose()


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Across processes, one SQLite upgrade at a time: an exclusive ``flock`` on
    ``<database>.migrate-lock`` (released by the kernel if the process dies)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database:
        yield
        return
    import fcntl  # POSIX only, as is the rest of the stack

    path = Path(database).expanduser()
    fd = os.open(path.with_name(path.name + ".migrate-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def migrate(target: str | Engine) -> str:
    """Upgrade the database at ``target`` (a URL or an Engine) to head; return the revision."""

    def run(engine: Engine) -> str:
        head = head_revision()
        if current_revision(engine) == head:
            return head  # the usual start: nothing to do, no lock taken
        with _PROCESS_LOCK, _sqlite_file_lock(engine):
            if current_revision(engine) == head:
                return head  # another process upgraded it while this one waited
            with engine.connect() as connection:
                command.upgrade(alembic_config(connection=connection), "head")
        return current_revision(engine) or ""

    return _with_engine(target, run)


def current_revision(target: str | Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""

    def run(engine: Engine) -> str | None:
        with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    return _with_engine(target, run)
