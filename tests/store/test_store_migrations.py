from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from launch.store import Store, current_revision, head_revision, migrate
from launch.store.engine import make_engine
from launch.store.models import TABLES, Base


def test_store_start_creates_every_table(store):
    names = set(inspect(store.engine).get_table_names())
    assert set(TABLES) <= names
    assert "alembic_version" in names


def test_migrate_is_idempotent(db_url):
    assert current_revision(db_url) is None
    first = migrate(db_url)
    assert first == head_revision()
    assert migrate(db_url) == first  # second run: no-op
    assert current_revision(db_url) == head_revision()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()


def test_store_health_and_skipped_migrations(make_store):
    unmigrated = make_store(run_migrations=False)
    assert unmigrated.health()["ok"] is False
    assert unmigrated.health()["current_revision"] is None
    migrated = make_store()
    health = migrated.health()
    assert health == {
        "backend": migrated.dialect,
        "current_revision": head_revision(),
        "head_revision": head_revision(),
        "ok": True,
    }
    assert unmigrated.health()["ok"] is True


def test_concurrent_first_start_migrates_once(db_url, keys):
    """Several processes starting at once on an empty database must not trip over each other."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)
    stores: list[Store] = []

    def start() -> None:
        try:
            barrier.wait()
            stores.append(Store(db_url, keys.fernet, keys.index))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    assert not errors, errors
    assert current_revision(db_url) == head_revision()


def test_concurrent_first_start_in_separate_processes(db_url, keys):
    script = (
        "import sys; from launch.store import Store; "
        "Store(sys.argv[1], sys.argv[2].encode(), bytes.fromhex(sys.argv[3])).close()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, db_url, keys.fernet.decode(), keys.index.hex()],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert current_revision(db_url) == head_revision()


def test_models_and_migrations_agree(store):
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_status_due_at_index_exists_and_is_used(store):
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(store.engine).get_indexes("steps")}
    assert indexes["ix_steps_status_due_at"] == ["status", "due_at"]
    alerts = {ix["name"]: ix["column_names"] for ix in inspect(store.engine).get_indexes("alerts")}
    assert alerts["ix_alerts_status_next_attempt_at"] == ["status", "next_attempt_at"]
    inbox = {ix["name"]: ix["column_names"] for ix in inspect(store.engine).get_indexes("inbox")}
    assert inbox["ix_inbox_applied_at"] == ["applied_at"]
    query = "SELECT id FROM steps WHERE status = 'waiting' AND due_at <= '2030-01-01' ORDER BY due_at"
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query))
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN " + query))
    assert "ix_steps_status_due_at" in plan


def test_connection_settings(store):
    """SQLite: WAL, a busy timeout, foreign keys on every connection.
    PostgreSQL: the test's own schema first in the search path, READ COMMITTED."""
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        else:
            assert conn.exec_driver_sql("SELECT current_schema()").scalar().startswith("wl_")
            assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"


def test_in_memory_sqlite_refused():
    with pytest.raises(ValueError, match="SQLite file"):
        make_engine("sqlite://")


def test_from_settings_uses_the_settings_keys(db_url, tmp_path):
    from cryptography.fernet import Fernet

    from launch.settings import Settings

    settings = Settings(_env_file=None, home=tmp_path / "home", database_url=db_url, encryption_key=Fernet.generate_key().decode())
    with Store.from_settings(settings) as first:
        client_id = first.add_client("acme", "Acme", "Acme Shop", "广东", "enterprise", "standalone", {"a": 1}, {"phone": ["13812345678"]})
    with Store.from_settings(settings) as second:  # same keys: decrypts, same blind index
        assert second.client_intake(client_id) == {"a": 1}
        assert second.identifier_usage({"phone": ["13812345678"]}) == {"phone": {"13812345678": 1}}


def test_default_sqlite_location_is_created(tmp_path):
    from launch.settings import Settings

    settings = Settings(_env_file=None, home=tmp_path / "new" / "home", database_url=None)
    with Store.from_settings(settings) as store:
        assert store.dialect == "sqlite" and store.health()["ok"]
    assert (tmp_path / "new" / "home" / "store.db").exists()
    assert (tmp_path / "new" / "home" / "secret.key").exists()
