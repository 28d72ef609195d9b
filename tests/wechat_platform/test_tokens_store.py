"""Token arithmetic (pure) and the store's side of the life cycle on SQLite and PostgreSQL:
encryption at rest, the latest ticket, the compare-and-set refresh lease, migration 0006."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text

from launch.store import current_revision, head_revision
from launch.store.engine import make_engine
from launch.store.migrations import alembic_config
from launch.wechat.platform.tokens import expiry, needs_refresh, remember_ticket

T0 = datetime(2026, 12, 12, 8, 0, tzinfo=UTC)


def test_expiry_and_margin():
    exp = expiry(T0, 7200)
    assert exp == T0 + timedelta(hours=2)
    margin = timedelta(minutes=10)
    assert not needs_refresh("tok", exp, T0 + timedelta(minutes=109), margin=margin)
    assert needs_refresh("tok", exp, T0 + timedelta(minutes=110), margin=margin)
    assert needs_refresh(None, exp, T0, margin=margin)
    assert needs_refresh("tok", None, T0, margin=margin)
    assert needs_refresh("tok", exp, T0, margin=margin, stale="tok")  # WeChat refused this one
    assert not needs_refresh("tok", exp, T0, margin=margin, stale="older")  # someone refreshed already
    with pytest.raises(ValueError):
        expiry(T0.replace(tzinfo=None), 7200)


def test_ticket_kept_encrypted_and_latest_wins(store):
    assert remember_ticket(store, "ticket@@@one", T0, component_appid="wxc")
    assert remember_ticket(store, "ticket@@@two", T0 + timedelta(minutes=10))
    assert not remember_ticket(store, "ticket@@@late", T0 + timedelta(minutes=5))  # an older push, late
    state = store.component_state()
    assert state.ticket == "ticket@@@two" and state.component_appid == "wxc"
    assert "ticket@@@" not in repr(state)
    with store.engine.connect() as conn:
        raw = conn.execute(text("SELECT ticket_enc FROM wechat_component")).scalar()
    assert "ticket@@@" not in raw


def test_authorizer_tokens_encrypted_at_rest(store):
    rec = store.save_authorizer("wxapp1", "refresh@@@r1", at=T0, token="access@@@a1",
                                expires_at=T0 + timedelta(hours=2), func_info=[18, 17, 18])
    assert rec.refresh_token == "refresh@@@r1" and rec.token == "access@@@a1" and rec.func_info == [17, 18]
    assert "@@@" not in repr(rec)
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT refresh_token_enc, token_enc FROM wechat_authorizers")).one()
    assert "@@@" not in row[0] + row[1]
    assert store.authorizer_appids() == ["wxapp1"]
    assert store.revoke_authorizer("wxapp1", T0)
    assert store.authorizer_state("wxapp1").token is None and store.authorizer_appids() == []


def test_one_refresher_across_two_stores(make_store):
    """Two Store objects on one database (two processes): one lease, one refresher."""
    a, b = make_store(), make_store()
    a.save_authorizer("wxapp1", "refresh@@@r1", at=T0)
    assert a.claim_authorizer_refresh("wxapp1", "worker-a", T0, 30)
    assert not b.claim_authorizer_refresh("wxapp1", "worker-b", T0 + timedelta(seconds=5), 30)
    assert not b.save_authorizer_token("wxapp1", "worker-b", "access@@@b", T0 + timedelta(hours=2), at=T0)
    assert a.save_authorizer_token("wxapp1", "worker-a", "access@@@a", T0 + timedelta(hours=2), at=T0,
                                   refresh_token="refresh@@@r2")
    state = b.authorizer_state("wxapp1")
    assert state.token == "access@@@a" and state.refresh_token == "refresh@@@r2" and state.refresh_owner is None
    # a refresher that died: its lease expires and another may take it
    assert a.claim_authorizer_refresh("wxapp1", "worker-a", T0, 30)
    assert b.claim_authorizer_refresh("wxapp1", "worker-b", T0 + timedelta(seconds=31), 30)
    assert not a.save_authorizer_token("wxapp1", "worker-a", "access@@@stale", T0 + timedelta(hours=2), at=T0)


def test_component_lease_race_has_one_winner(make_store):
    stores = [make_store() for _ in range(4)]
    remember_ticket(stores[0], "ticket@@@x", T0)
    barrier = threading.Barrier(len(stores))
    wins: list[str] = []

    def race(i: int) -> None:
        barrier.wait()
        if stores[i].claim_component_refresh(f"w{i}", T0, 30):
            wins.append(f"w{i}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 1


def test_migration_0006_up_and_down(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            command.upgrade(alembic_config(connection=conn), "0005")
            conn.commit()
        assert "wechat_component" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            command.upgrade(alembic_config(connection=conn), "0006")
            conn.commit()
        names = set(inspect(engine).get_table_names())
        assert {"wechat_component", "wechat_authorizers"} <= names
        assert current_revision(engine) == "0006" == head_revision()
        with engine.connect() as conn:
            command.downgrade(alembic_config(connection=conn), "0005")
            conn.commit()
        assert "wechat_authorizers" not in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
