"""An action WeChat could not take (busy past the client's retries, unreachable) is not a
refusal: the gate says so and waits, and the watcher acts again once the reconcile interval
has passed — once per failed try, by one watcher — then resumes the run. A refusal is not
retried. In-memory orchestrator, the WeChat stand-in over real HTTP."""

from __future__ import annotations

from launch.app.watcher import repair
from launch.app.wechat_actions import RETRY_CLAIM, retry_deferred
from tests.wechat_platform.test_acting_steps import APPID, until_waiting

SUBMIT = "/wxa/submit_audit"
INTERVAL = 300


def _at_review_submission(world, standin, errcode: int, count: int) -> str:
    world.res.wechat.client.sleep = lambda seconds: None  # the client's backoff, skipped
    standin.control("fail", path=SUBMIT, errcode=errcode, count=count)
    launch_id = world.new_launch()
    until_waiting(world, launch_id, "review-submission-1")
    return launch_id


def test_a_busy_wechat_is_retried_by_the_watcher_and_the_run_goes_on(tmp_path, world, standin):
    world.res.settings.wechat_reconcile_seconds = INTERVAL
    launch_id = _at_review_submission(world, standin, errcode=-1, count=4)  # the first try and 3 retries
    store = world.res.store
    assert standin.calls(SUBMIT, APPID) == 4
    assert store.get_decision(launch_id, "review-submission", 1) is None
    note = store.get_step(launch_id, "review-submission", 1).note
    assert "巡检将自动重试" in note and "the watcher tries again" in note and "errcode -1" in note

    # A pass right away leaves it: the last try was a moment ago.
    assert retry_deferred(world.res, world.res.now(), older_than_seconds=INTERVAL) == []
    assert standin.calls(SUBMIT, APPID) == 4

    world.clock.advance(seconds=INTERVAL + 1)
    report = repair(world.res, world.res.now())
    world.orch.drain()
    assert [r.kind for r in report.repaired if r.launch_id == launch_id] == ["action"], report.to_json()
    assert standin.calls(SUBMIT, APPID) == 5
    decision = store.get_decision(launch_id, "review-submission", 1)
    assert decision.channel == "wechat-api" and decision.outcome == "submitted"
    assert "code-review-1" in world.waiting(launch_id)  # resumed by the retry, no staff click

    # Nothing is left to retry: the gate is decided.
    world.clock.advance(seconds=INTERVAL + 1)
    assert retry_deferred(world.res, world.res.now(), older_than_seconds=INTERVAL) == []
    assert standin.calls(SUBMIT, APPID) == 5


def test_still_busy_defers_again_and_another_watchers_claim_is_respected(tmp_path, world, standin):
    launch_id = _at_review_submission(world, standin, errcode=45011, count=8)  # two tries' worth
    store = world.res.store
    world.clock.advance(seconds=INTERVAL + 1)
    [(lid, gate, attempt, what)] = retry_deferred(world.res, world.res.now(), older_than_seconds=INTERVAL)
    assert (lid, gate, attempt, what) == (launch_id, "review-submission", 1, "deferred:2")
    assert standin.calls(SUBMIT, APPID) == 8 and store.get_decision(launch_id, "review-submission", 1) is None

    # Another watcher claimed try 2 first: this one leaves it.
    world.clock.advance(seconds=INTERVAL + 1)
    store.note_effect(launch_id, f"{RETRY_CLAIM}review-submission:1:2")
    assert retry_deferred(world.res, world.res.now(), older_than_seconds=INTERVAL) == []
    assert standin.calls(SUBMIT, APPID) == 8
    assert store.get_decision(launch_id, "review-submission", 1) is None


def test_unreachable_wechat_is_deferred_not_refused(tmp_path, world, standin):
    """Connection refused: nothing reached WeChat; the gate waits for the retry, not for staff."""
    launch_id = world.new_launch()
    until_waiting(world, launch_id, "content-1")
    world.res.wechat.client.sleep = lambda seconds: None
    world.res.wechat.client.base_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    try:
        world.decide(launch_id, "content")
        until_waiting(world, launch_id, "review-submission-1")
    finally:
        world.res.wechat.client.base_url = standin.url.rstrip("/")
    note = world.res.store.get_step(launch_id, "review-submission", 1).note
    assert "cannot reach WeChat" in note and "the watcher tries again" in note
    world.clock.advance(seconds=INTERVAL + 1)
    world.res.settings.wechat_reconcile_seconds = INTERVAL
    repair(world.res, world.res.now())
    world.orch.drain()
    assert world.res.store.get_decision(launch_id, "review-submission", 1).outcome == "submitted"
    assert standin.calls(SUBMIT, APPID) == 1


def test_a_refusal_is_not_retried(tmp_path, world, standin):
    launch_id = _at_review_submission(world, standin, errcode=85085, count=1)  # the monthly quota
    note = world.res.store.get_step(launch_id, "review-submission", 1).note
    assert "85085" in note and "the watcher tries again" not in note
    world.clock.advance(seconds=INTERVAL + 1)
    assert retry_deferred(world.res, world.res.now(), older_than_seconds=INTERVAL) == []
    assert standin.calls(SUBMIT, APPID) == 1


def test_busy_when_asking_for_the_latest_review_does_not_submit_blind(tmp_path, world, standin):
    """Not knowing whether a review runs is not "no review": submitting then could meet 85009."""
    world.res.wechat.client.sleep = lambda seconds: None
    standin.control("fail", path="/wxa/get_latest_auditstatus", errcode=-1, count=4)
    launch_id = world.new_launch()
    until_waiting(world, launch_id, "review-submission-1")
    assert standin.calls(SUBMIT, APPID) == 0
    assert "the watcher tries again" in world.res.store.get_step(launch_id, "review-submission", 1).note
