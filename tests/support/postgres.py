"""The test PostgreSQL (WEAPP_LAUNCH_TEST_POSTGRES_URL, default 127.0.0.1:5432/test, user postgres,
trust auth): one place for its URL, for the scale test and the benchmarks that make databases."""

from __future__ import annotations

import os

PG_URL = os.environ.get("WEAPP_LAUNCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_url(database: str | None = None, driver: str = "postgresql") -> str:
    """PG_URL with another driver (psycopg for the store, asyncpg for Prefect) and database."""
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL).set(drivername=driver)
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def pg_admin():
    """An autocommit connection to PG_URL's database (for CREATE / DROP DATABASE)."""
    import psycopg

    return psycopg.connect(pg_url(), autocommit=True, connect_timeout=5)
