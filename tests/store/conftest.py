"""Fixtures of the store tests: every test runs against SQLite (a temporary file) and
PostgreSQL (a fresh schema per test, dropped afterwards).

PostgreSQL comes from WEAPP_LAUNCH_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test); when it cannot be reached its
parameters are skipped with the reason. Isolation: each test gets its own schema
``wl_<random>`` and a URL whose ``options=-csearch_path=<schema>`` makes every
connection (the store's, Alembic's, the test's) see only that schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from launch.store import Store

PG_URL = os.environ.get("WEAPP_LAUNCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[Engine | None, str | None]]:
    """(engine, None) when PostgreSQL answers, else (None, reason)."""
    try:
        engine = create_engine(PG_URL, poolclass=NullPool, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as err:  # noqa: BLE001 - any failure means "not reachable"
        yield None, f"PostgreSQL not reachable at {_shown(PG_URL)}: {err}"
        return
    yield engine, None
    engine.dispose()


def pg_schema_url(schema: str) -> str:
    return make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, pg_admin) -> Iterator[str]:
    """A URL of an empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    engine, reason = pg_admin
    if engine is None:
        pytest.skip(reason)
    schema = f"wl_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield pg_schema_url(schema)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET lock_timeout = '20s'")
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass
class Keys:
    fernet: bytes
    index: bytes


@pytest.fixture
def keys() -> Keys:
    return Keys(fernet=Fernet.generate_key(), index=os.urandom(32))


@pytest.fixture
def make_store(db_url, keys):
    """Open further Store instances on the same database (another 'process')."""
    opened: list[Store] = []

    def make(**kwargs) -> Store:
        store = Store(db_url, keys.fernet, keys.index, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store) -> Store:
    return make_store()


@pytest.fixture
def launch_id(store) -> str:
    client_id = store.add_client(
        "acme", "Acme Ltd", "Acme Shop", "广东", "enterprise", "standalone", {"note": "test"}, {}
    )
    return store.create_launch(client_id).id
