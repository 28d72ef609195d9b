from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from launch.store import NotFound

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_create_launch(store, launch_id):
    assert re.fullmatch(r"l-[0-9a-f]{10}", launch_id)
    launch = store.get_launch(launch_id)
    assert launch.status == "running" and launch.registration_path == "standalone"
    assert launch.flow_run_id is None and launch.released_at is None
    with pytest.raises(NotFound):
        store.create_launch("c-0000000000")


def test_launch_updates_and_lookups(store, launch_id):
    store.set_launch_flow_run(launch_id, "8f1c2d3e-0000-4000-8000-000000000001")
    store.set_app_ids(launch_id, appid="wx1234567890abcdef")
    launch = store.set_app_ids(launch_id, original_id="gh_abcdef123456")
    assert launch.appid == "wx1234567890abcdef" and launch.original_id == "gh_abcdef123456"
    assert launch.flow_run_id == "8f1c2d3e-0000-4000-8000-000000000001"
    assert store.find_launch_by_original_id("gh_abcdef123456").id == launch_id
    assert store.find_launch_by_appid("wx1234567890abcdef").id == launch_id
    assert store.find_launch_by_appid("wx-unknown") is None

    released = store.set_launch_status(launch_id, "released", at=T0)
    assert released.status == "released" and released.released_at == T0
    assert store.list_launches("released") == [released]
    assert store.list_launches("running") == []
    with pytest.raises(ValueError):
        store.set_launch_status(launch_id, "done")
    with pytest.raises(NotFound):
        store.set_launch_status("l-0000000000", "failed")


def test_find_launch_prefers_the_running_relaunch(store, launch_id):
    client_id = store.get_launch(launch_id).client_id
    store.set_app_ids(launch_id, "wxapp", "gh_same")
    store.set_launch_status(launch_id, "failed")
    relaunch = store.create_launch(client_id)
    store.set_app_ids(relaunch.id, "wxapp", "gh_same")
    assert store.find_launch_by_original_id("gh_same").id == relaunch.id
    assert [x.id for x in store.list_launches(client_id=client_id)] == [launch_id, relaunch.id]


def test_open_step_is_idempotent(store, launch_id):
    due = T0 + timedelta(days=3)
    first = store.open_step(
        launch_id, "bureau-review", 2, started_at=T0, due_at=due, provisional=True, gate_key="bureau-review-2"
    )
    assert first.status == "waiting" and first.provisional is True and first.due_at == due
    again = store.open_step(launch_id, "bureau-review", 2, started_at=T0 + timedelta(hours=5), due_at=None, provisional=False)
    assert again == first  # unchanged
    assert len(store.steps_for(launch_id)) == 1
    with pytest.raises(ValueError):
        store.open_step(launch_id, "bureau-review", 0, started_at=T0, due_at=None, provisional=False)
    with pytest.raises(NotFound):
        store.open_step("l-0000000000", "x", 1, started_at=T0, due_at=None, provisional=False)


def test_finish_step_is_idempotent(store, launch_id):
    store.open_step(launch_id, "first-review", 1, started_at=T0, due_at=None, provisional=False)
    running = store.mark_step_running(launch_id, "first-review", 1, flow_run_id="run-1")
    assert running.status == "running" and running.flow_run_id == "run-1"
    done = store.finish_step(launch_id, "first-review", 1, "rejected", "rejected", T0 + timedelta(days=1), note="blurry licence")
    assert done.status == "rejected" and done.outcome == "rejected" and done.note == "blurry licence"
    assert done.finished_at == T0 + timedelta(days=1) and not done.is_open
    later = store.finish_step(launch_id, "first-review", 1, "done", "approved", T0 + timedelta(days=2))
    assert later == done  # first finish wins
    with pytest.raises(ValueError):
        store.finish_step(launch_id, "first-review", 1, "waiting", None, T0)
    with pytest.raises(NotFound):
        store.finish_step(launch_id, "first-review", 9, "done", None, T0)


def test_steps_for_is_ordered_and_latest_step(store, launch_id):
    for n, (step, attempt) in enumerate([("registration", 1), ("design", 1), ("first-review", 1), ("first-review", 2)]):
        store.open_step(launch_id, step, attempt, started_at=T0 + timedelta(hours=n), due_at=None, provisional=False)
    assert [(s.step, s.attempt) for s in store.steps_for(launch_id)] == [
        ("registration", 1),
        ("design", 1),
        ("first-review", 1),
        ("first-review", 2),
    ]
    assert store.latest_step(launch_id, "first-review").attempt == 2
    assert store.latest_step(launch_id, "release") is None
    step = store.get_step(launch_id, "design", 1)
    assert store.get_step_by_id(step.id) == step


def test_open_steps_due(store, launch_id):
    store.open_step(launch_id, "sms-verification", 1, started_at=T0, due_at=T0 + timedelta(hours=24), provisional=False)
    store.open_step(launch_id, "first-review", 1, started_at=T0, due_at=T0 + timedelta(hours=2), provisional=False)
    store.open_step(launch_id, "design", 1, started_at=T0, due_at=None, provisional=False)
    store.open_step(launch_id, "registration", 1, started_at=T0, due_at=T0, provisional=False)
    store.finish_step(launch_id, "registration", 1, "done", "ok", T0)
    assert store.open_steps_due(T0 + timedelta(hours=1)) == []
    assert [s.step for s in store.open_steps_due(T0 + timedelta(hours=30))] == ["first-review", "sms-verification"]
    assert [s.step for s in store.open_steps_due(T0 + timedelta(hours=30), limit=1)] == ["first-review"]
    # A deadline given in Shanghai time compares as the same instant.
    shanghai = (T0 + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Shanghai"))
    assert [s.step for s in store.open_steps_due(shanghai)] == ["first-review"]
    moved = store.update_step_due(launch_id, "first-review", 1, due_at=T0 + timedelta(days=5), provisional=True)
    assert moved.provisional and moved.due_at == T0 + timedelta(days=5)
    assert [s.step for s in store.open_steps_due(T0 + timedelta(hours=30))] == ["sms-verification"]


def test_timestamps_are_aware_utc_and_naive_refused(store, launch_id):
    local = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    step = store.open_step(launch_id, "design", 1, started_at=local, due_at=local + timedelta(days=1), provisional=False)
    got = store.get_step(launch_id, "design", 1)
    assert got.started_at == local and got.started_at.tzinfo == UTC and got.started_at.hour == 1
    assert got.due_at.tzinfo == UTC and step == got
    with pytest.raises(ValueError, match="timezone-aware"):
        store.open_step(launch_id, "content", 1, started_at=datetime(2026, 3, 2), due_at=None, provisional=False)


def test_open_flow_run_ids_lists_running_launches_and_their_started_branches(store, launch_id):
    assert store.open_flow_run_ids() == []  # a launch without a flow run has nothing to revive
    store.set_launch_flow_run(launch_id, "run-launch")
    store.start_branch(launch_id, "design", "run-design")
    store.start_branch(launch_id, "filing", "run-filing")
    store.start_branch(launch_id, "content")  # not started in Prefect yet
    assert store.open_flow_run_ids() == ["run-launch", "run-design", "run-filing"]

    store.finish_branch(launch_id, "design", status="done")
    assert store.open_flow_run_ids() == ["run-launch", "run-filing"]
    # The limit applies to launches and to branches each.
    assert store.open_flow_run_ids(limit=1) == ["run-launch", "run-filing"]

    store.set_launch_status(launch_id, "released")
    assert store.open_flow_run_ids() == []  # a released launch and its branches are closed
