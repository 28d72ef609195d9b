"""Fixtures of the platform client tests: the store on SQLite and PostgreSQL (tests/store's
fixtures), and the WeChat stand-in (tests/support/standin.py)."""

from tests.store.conftest import db_url, keys, make_store, pg_admin, store  # noqa: F401 (fixtures)
from tests.support.standin import standin, standin_config  # noqa: F401 (fixtures)
