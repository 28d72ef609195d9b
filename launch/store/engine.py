"""Engine creation: one place that knows how each backend must be opened.

SQLite (the default, a file): several processes write at once (flow runs, the callback
receiver, the deadline watcher, the CLI), so every connection gets WAL journaling, a busy
timeout and foreign keys, and SQLAlchemy (not the ``sqlite3`` module) emits BEGIN:
``BEGIN IMMEDIATE`` for write transactions so that a writer takes the write lock up front
and waits for it (busy timeout) instead of failing half-way with "database is locked";
``BEGIN`` (deferred) for read-only work, which never blocks in WAL mode.

PostgreSQL: plain psycopg 3 with pre-ping; rows are claimed with SKIP LOCKED (see repo).

Both hide bound parameters in error messages (``hide_parameters=True``); PostgreSQL's own
DETAIL/CONTEXT lines, which repeat key values, are dropped from the error text too.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "weapp_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas and transaction handling the store relies on.

    Every engine hides SQL parameters in its error text (``hide_parameters``): a failed
    statement's message, logged or shown, names the statement but never the values bound
    to it (ciphertexts, digests, decision payloads, alert bodies)."""
    parsed = make_url(url)
    kwargs["hide_parameters"] = True
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ValueError("the store needs a SQLite file (sqlite:///path/store.db), not an in-memory database")
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        _install_sqlite_hooks(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        _install_postgres_hooks(engine)
    return engine


# The end of a PostgreSQL primary message that quotes the offending value
# ('invalid input syntax for type integer: "abc"').
_QUOTED_VALUE = re.compile(r'(:\s*)"[^"]*"\s*$')


def _install_postgres_hooks(engine: Engine) -> None:
    """PostgreSQL puts values into error text of its own (``DETAIL:  Key (code)=(acme)
    already exists.``, ``CONTEXT``, an offending value quoted in the message), which
    ``hide_parameters`` does not reach: keep the primary message only, its quoted value
    masked. The SQLSTATE, the constraint and the table stay on ``exc.orig.diag``."""

    @event.listens_for(engine, "handle_error")
    def _hide_values(ctx: Any) -> None:
        orig = ctx.original_exception
        diag = getattr(orig, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        if not primary:
            return
        primary = _QUOTED_VALUE.sub(r'\1"***"', primary)
        try:
            orig.args = (primary,)
        except (AttributeError, TypeError):  # pragma: no cover - a driver exception that will not change
            return
        wrapped = ctx.sqlalchemy_exception
        if wrapped is not None and wrapped.args:
            wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {primary}",) + tuple(wrapped.args[1:])


def _set_wal(cursor, tries: int = 50) -> None:
    """Switching a new file to WAL needs a moment alone with it; busy_timeout does not cover
    this pragma, so several processes opening a fresh store at once retry briefly."""
    import time

    for attempt in range(tries):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
