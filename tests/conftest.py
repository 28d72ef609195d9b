"""Session fixtures: a real Prefect server and a real runner, started once for every test that asks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.faults.reporter import pytest_runtest_logreport, pytest_terminal_summary  # noqa: F401  (figures under xdist)
from tests.support.stack import ROOT, Stack

SERVER_GROUP = "prefect-servers"  # every test on the session's SQLite stack, and the small `up` stacks
SCALE_GROUP = "scale"  # the PostgreSQL two-worker scale test, then the fault suite's stacks
E2E_GROUP = "platform-e2e"  # the demo against the WeChat stand-in (its own stack), then tests without a server


def _group_of(item) -> str | None:
    if item.get_closest_marker("scale") or item.get_closest_marker("faults"):
        return SCALE_GROUP
    if item.get_closest_marker("e2e"):
        return E2E_GROUP
    if item.get_closest_marker("server"):
        return SERVER_GROUP
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Three groups, each on one pytest worker, its tests one after another: the scale test
    and the fault suite (stacks of their own, PostgreSQL); the demo against the WeChat stand-in
    (tests/e2e, a stack of its own); and every other test that starts a Prefect server (the
    session stack, `up`). They run beside each other (xdist hands out the groups in this order,
    one to each of `./dev test`'s three workers); the tests without a server run on whichever
    worker is free first — mostly the e2e group's, which is the shortest. The server groups
    mostly wait, so on two cores three workers use CPU that would sit idle.

    At most three Prefect servers on SQLite at once (one per group, each its own database
    file): a saturated one fails its writes ("database is locked"), so the stacks of a group
    never overlap. Beside the other groups the stacks get slow, which the tests allow for.
    Every worker sorts alike (xdist needs one order).
    """
    items.sort(key=lambda item: 0 if item.get_closest_marker("scale") else 1 if item.get_closest_marker("faults")
               else 2 if item.get_closest_marker("e2e") else 3 if item.get_closest_marker("server") else 4)
    for item in items:
        group = _group_of(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_runtest_setup(item):
    """Fail a server test that pytest-xdist did not put in its group (pytest 9.2 broke it once):
    it would run beside the others and overload the machine."""
    group = _group_of(item)
    if getattr(item.config.option, "loadgroup", False) and group and not item.nodeid.endswith(f"@{group}"):
        pytest.fail(f"pytest-xdist did not group this server test (@{group} missing from its id); check the "
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
