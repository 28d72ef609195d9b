"""Revision 0002 adds the watcher's cursor to a store that already has steps: open steps
get next_alert_at = started_at (the first pass looks at each once), closed steps none."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import text

from launch.store import Store, head_revision
from launch.store.engine import make_engine
from launch.store.migrations import alembic_config


def test_upgrade_from_0001_sets_cursors_of_open_steps_and_downgrades(db_url):
    engine = make_engine(db_url)
    t = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
    try:
        with engine.connect() as conn:
            command.upgrade(alembic_config(connection=conn), "0001")
            conn.commit()
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO clients (id, code, display_name, mini_program_name, province, subject_type, "
                "registration_path, intake_ciphertext, created_at) "
                "VALUES ('c-1', 'x', 'X', 'Y', '广东', 'enterprise', 'standalone', 'z', :t)"), {"t": t})
            conn.execute(text(
                "INSERT INTO launches (id, client_id, status, registration_path, created_at, updated_at) "
                "VALUES ('l-1', 'c-1', 'running', 'standalone', :t, :t)"), {"t": t})
            for attempt, status in ((1, "waiting"), (2, "running"), (3, "done")):
                conn.execute(text(
                    "INSERT INTO steps (launch_id, step, attempt, status, started_at, provisional) "
                    "VALUES ('l-1', 'content', :a, :s, :t, false)"), {"a": attempt, "s": status, "t": t})
        store = Store(db_url, Fernet.generate_key(), os.urandom(32))  # migrates to head
        try:
            assert store.health()["current_revision"] == head_revision()
            cursors = {s.attempt: store.alert_cursor(s.id) for s in store.steps_for("l-1")}
            assert cursors == {1: t, 2: t, 3: None}
            assert [s.attempt for s, _ in store.steps_with_alerts_due(t)] == [1, 2]
        finally:
            store.close()
        with engine.connect() as conn:
            command.downgrade(alembic_config(connection=conn), "0001")
            conn.commit()
        with engine.connect() as conn:
            command.upgrade(alembic_config(connection=conn), "head")
            conn.commit()
    finally:
        engine.dispose()


def test_0003_adds_the_breakers_and_its_downgrade_puts_waiting_alerts_back_to_pending(db_url):
    from sqlalchemy import inspect

    t = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
    store = Store(db_url, Fernet.generate_key(), os.urandom(32))
    try:
        assert "channel_states" in inspect(store.engine).get_table_names()
        alert, _ = store.enqueue_alert(dedupe_key="sys:x", rung="now", title="t", body="b", tags=["ops"], send_after=t)
        store.record_channel_result("ops-phone", False, at=t, trip_after=1)
        store.claim_due_alerts(t, "w")
        assert store.mark_alert_waiting(alert.id, ["ops-phone"], None, at=t, worker_id="w") == "waiting"
    finally:
        store.close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            command.downgrade(alembic_config(connection=conn), "0002")
            conn.commit()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM alerts")).scalar() == "pending"
            assert "channel_states" not in inspect(conn).get_table_names()
        with engine.connect() as conn:
            command.upgrade(alembic_config(connection=conn), "head")
            conn.commit()
    finally:
        engine.dispose()
