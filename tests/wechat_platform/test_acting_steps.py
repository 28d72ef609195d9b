"""Steps the tool performs on WeChat (issue 12), on the in-memory orchestrator against the local
WeChat stand-in over real HTTP: the review is submitted and the approved version released with
no staff decision on those gates; a crash right after submit_audit submits nothing twice; a
refused release becomes a note on the gate; without a platform every gate stays manual."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devtools.simulator import PASSING
from launch.wechat.platform.code import CommitRequest
from launch.wechat.platform.tokens import remember_ticket
from tests.support.memory_env import World
from tests.support.standin import COMPONENT_APPID, SECRET

APPID = PASSING["subject-info"]["appid"]



def until_waiting(w: World, launch_id: str, key: str, answers: dict | None = None) -> None:
    """Answer every other gate (passing, or as scripted) until `key` waits."""
    answers = {k: list(v) for k, v in (answers or {}).items()}
    for _ in range(80):
        waiting = sorted(w.waiting(launch_id))
        if key in waiting:
            return
        gate = waiting[0].rsplit("-", 1)[0]
        if gate == "implementation":  # developers commit the version to WeChat, then say so
            w.res.wechat.code.commit(APPID, CommitRequest(template_id=1, ext_json={"extAppid": APPID},
                                                          user_version="1.0.0", user_desc="第一版"))
        w.decide(launch_id, gate, answers[gate].pop(0) if answers.get(gate) else None)
    raise AssertionError(f"{key} never waited: {w.waiting(launch_id)}")


def test_the_tool_submits_for_review_and_releases_by_itself(world, standin):
    launch_id = world.new_launch()
    until_waiting(world, launch_id, "face-verification-1")
    # The face check was started on WeChat when its gate opened; the gate waits for its result.
    assert standin.calls("/wxa/icp/create_icp_verifytask", APPID) == 1
    assert "task_id=" in world.res.store.get_step(launch_id, "face-verification", 1).note
    until_waiting(world, launch_id, "code-review-1")
    submitted = world.res.store.get_decision(launch_id, "review-submission", 1)
    assert submitted.channel == "wechat-api" and submitted.payload["version"] == "1.0.0"
    assert standin.calls("/wxa/submit_audit", APPID) == 1
    # WeChat passes the review (its push or the reconciliation brings the result).
    standin.advance(appid=APPID, kind="review")
    world.decide(launch_id, "code-review", {"outcome": "passed"}, channel="wechat")
    while world.orch.launch_run(launch_id).state != "COMPLETED":
        gate = sorted(world.waiting(launch_id))[0].rsplit("-", 1)[0]
        world.decide(launch_id, gate)
    release = world.res.store.get_decision(launch_id, "release", 1)
    assert release.channel == "wechat-api" and release.outcome == "released"
    assert standin.calls("/wxa/release", APPID) == 1
    assert world.res.store.get_launch(launch_id).status == "released"
    assert standin.calls("/wxa/icp/create_icp_verifytask", APPID) == 1  # replays called nothing again


def test_a_crash_right_after_submit_audit_submits_nothing_twice(world, standin):
    """The process dies after WeChat took the review but before the answer was kept; the replay
    asks WeChat first, finds the review running and takes it (85009 never reached)."""
    world.orch.crash_after("act", when=lambda args: args[1] == "review-submission")
    launch_id = world.new_launch()
    for _ in range(80):
        if world.orch.revive():
            world.orch.drain()
            continue
        if "code-review-1" in world.waiting(launch_id):
            break
        gate = sorted(world.waiting(launch_id))[0].rsplit("-", 1)[0]
        if gate == "implementation":
            world.res.wechat.code.commit(APPID, CommitRequest(template_id=1, ext_json={"extAppid": APPID},
                                                              user_version="1.0.0", user_desc="第一版"))
        world.decide(launch_id, gate)
    assert "code-review-1" in world.waiting(launch_id)
    assert standin.calls("/wxa/submit_audit", APPID) == 1
    assert world.res.store.get_decision(launch_id, "review-submission", 1).channel == "wechat-api"
    assert {k: v for k, v in {e.effect_key: e.count for e in world.res.store.effects_for(launch_id)}.items()
            if k.startswith("decide:review-submission")} == {"decide:review-submission-1": 1}


def test_a_refused_release_becomes_a_note_and_staff_decide(world, standin):
    """Nothing approved on WeChat (the review result came from staff, not WeChat): 85019 or
    85020, said on the gate in Chinese and English; the gate waits for staff."""
    launch_id = world.new_launch()
    until_waiting(world, launch_id, "code-review-1")
    world.decide(launch_id, "code-review", {"outcome": "passed"})  # staff say so; WeChat still reviews
    until_waiting(world, launch_id, "release-1")
    note = world.res.store.get_step(launch_id, "release", 1).note
    assert "errcode 850" in note and " / " in note
    assert world.res.store.get_decision(launch_id, "release", 1) is None
    world.decide(launch_id, "release")
    assert world.res.store.get_launch(launch_id).status == "released"


def test_without_a_platform_every_wechat_step_stays_a_manual_gate(tmp_path, standin):
    w = World(tmp_path)  # no component app id or secret
    assert w.res.wechat is None
    launch_id = w.new_launch()
    w.run_through(launch_id)
    assert w.res.store.get_launch(launch_id).status == "released"
    assert {d.channel for d in w.res.store.history(launch_id)} == {"cli"}
    assert standin.calls() == 0
