"""Fixtures of the platform client tests: the store on SQLite and PostgreSQL (tests/store's
fixtures), and the WeChat stand-in (tests/support/standin.py)."""

import pytest

from tests.store.conftest import db_url, keys, make_store, pg_admin, store  # noqa: F401 (fixtures)
from tests.support.standin import standin, standin_config  # noqa: F401 (fixtures)


@pytest.fixture
def world(tmp_path, standin):
    """A launch world (tests/support/memory_env.py) with a platform on the stand-in, its
    mini-program (the one registration names) authorised by the client's admin."""
    from datetime import UTC, datetime

    from devtools.simulator import PASSING
    from launch.wechat.platform.tokens import remember_ticket
    from tests.support.memory_env import World
    from tests.support.standin import COMPONENT_APPID, SECRET

    w = World(tmp_path / "home", wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
              wechat_api_base=standin.url)
    platform = w.res.wechat
    remember_ticket(w.res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    pre = platform.auth.create_preauthcode()
    consent = standin.control("authorize", appid=PASSING["subject-info"]["appid"], pre_auth_code=pre.pre_auth_code)
    platform.auth.query_auth(consent["auth_code"])
    yield w
    w.res.close()
