"""A store of its own (SQLite in a temp folder) with a seeded portfolio, for the report tests
that need no receiver; the receiver tests use tests/api's real receiver fixture."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import default_catalogue
from launch.store import Store
from tests.support.portfolio import seed_portfolio

NOW = datetime(2026, 10, 20, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def fresh_store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", Fernet.generate_key(), b"i" * 32)
    yield store
    store.close()


@pytest.fixture
def portfolio_store(fresh_store):
    """12 open launches (individuals, both paths, some waiting past a deadline), one released."""
    cat, cal = default_catalogue(), WorkCalendar()
    ids = seed_portfolio(fresh_store, 12, now=NOW, catalogue=cat, calendar=cal)
    extra = seed_portfolio(fresh_store, 1, now=NOW, catalogue=cat, calendar=cal, seed=99)
    fresh_store.set_launch_status(extra[0], "released", at=NOW)
    return fresh_store, ids, extra[0]
