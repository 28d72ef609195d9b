"""Session fixtures: a real Prefect server and a real runner, started once for every test that asks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.stack import ROOT, Stack

SERVER_GROUP = "prefect-servers"
GROUP_SUFFIX = f"@{SERVER_GROUP}"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Every test that starts a Prefect server runs on one pytest worker, one after another,
    the ten-minute scale test first; the other tests run on the other worker meanwhile.

    Two of them at once saturate two cores, and a saturated Prefect server on SQLite drops
    events ("database is locked" in its consumers): branch wake-ups and crash recovery are
    then lost and the end-to-end tests time out. Seen, so never beside each other.
    Every worker sorts alike (xdist needs the same order everywhere).
    """
    items.sort(key=lambda item: 0 if item.get_closest_marker("scale") else 1)
    for item in items:
        if item.get_closest_marker("server"):
            item.add_marker(pytest.mark.xdist_group(SERVER_GROUP))


def pytest_runtest_setup(item):
    """Fail a server test that pytest-xdist did not put in the group (pytest 9.2 broke it once):
    it would run beside the others and overload the machine."""
    if getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("server") \
            and not item.nodeid.endswith(GROUP_SUFFIX):
        pytest.fail(f"pytest-xdist did not group this server test ({GROUP_SUFFIX} missing from its id); check the "
                    "pytest / pytest-xdist versions in pyproject.toml", pytrace=False)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("stack")
    s = Stack(base)
    # No scheduled watcher here: a pass at a random moment would repair what a test means
    # to leave alone. Tests start passes themselves; tests/watcher checks the schedule.
    s.env["WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS"] = "0"
    s.start_server()
    s.apply_env()
    s.start_runner()
    yield s
    s.stop()
    if os.environ.get("WEAPP_LAUNCH_KEEP_STACK"):
        print(f"stack kept at {base}")
    else:
        shutil.rmtree(base / "results", ignore_errors=True)
