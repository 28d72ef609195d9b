"""The flow bodies' logic on the in-memory orchestrator: every loop of the process catalogue,
early decisions, joins, and a crash and replay at each gate — in milliseconds per test.

The real store, activities and decision service run; only Prefect is replaced, by an
orchestrator that keeps its rules (one wait per run, replay from the top on resume, finished
activities load their results, a parked key returns its input)."""

from __future__ import annotations

from collections import Counter

import pytest

from launch.process.gate import BranchFailed
from tests.support.memory_env import World


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


def gates_in_order(w: World, launch_id: str) -> list[tuple[str, int, str]]:
    return [(s.step, s.attempt, s.status) for s in sorted(w.res.store.steps_for(launch_id), key=lambda s: s.id)]


def ledger(w: World, launch_id: str) -> dict[str, int]:
    return {e.effect_key: e.count for e in w.res.store.effects_for(launch_id)}


def released(w: World, launch_id: str) -> bool:
    run = w.orch.launch_run(launch_id)
    return run.state == "COMPLETED" and run.result == "released" and w.res.store.get_launch(launch_id).status == "released"


# --------------------------------------------------------------------------- the happy path

def test_standalone_enterprise_launch_passes_every_gate_once_in_order(world):
    launch_id = world.new_launch()
    assert world.waiting(launch_id) == {"email-activation-1"}
    world.run_through(launch_id)
    assert released(world, launch_id)
    order = [g for g, _, _ in gates_in_order(world, launch_id)]
    assert order[:4] == ["email-activation", "subject-info", "wechat-verification", "mini-program-profile"]
    review = [g for g in order if g in ("trial-acceptance", "review-submission", "code-review", "release")]
    assert review == ["trial-acceptance", "review-submission", "code-review", "release"] and order[-1] == "release"
    assert all(a == 1 and st == "done" for _, a, st in gates_in_order(world, launch_id))
    # Every side effect ran once: replays loaded their results.
    assert set(ledger(world, launch_id).values()) == {1}
    assert {b.branch for b in world.res.store.branches_for(launch_id)} == {
        "filing", "design", "implementation-1", "content"}
    # The launch run replayed from the top at every gate and join it waited at; its finished
    # activities loaded their results (each ran once), its reads ran on every replay.
    run = world.orch.launch_run(launch_id)
    ran = Counter(name for run_id, name, _ in world.orch.calls if run_id == run.id)
    own_gates = [g for g, _, _ in gates_in_order(world, launch_id) if g in _LAUNCH_RUN_GATES]
    assert run.executions > len(own_gates)
    assert ran["bind_launch_run"] == 1 and ran["open_gate"] == len(own_gates) == ran["take_decision"]
    assert ran["find_decision"] > ran["open_gate"]


def test_registration_gates_wait_one_at_a_time_and_the_branches_only_after_it(world):
    launch_id = world.new_launch()
    for gate in ("email-activation", "subject-info", "wechat-verification"):
        assert world.waiting(launch_id) == {f"{gate}-1"}
        assert world.res.store.branches_for(launch_id) == []
        world.decide(launch_id, gate)
    world.decide(launch_id, "mini-program-profile")
    # Registration done: the filing and design branches run in parallel, each waiting.
    assert world.waiting(launch_id) == {"filing-materials-1", "design-draft-1"}
    assert world.orch.launch_run(launch_id).pause_key == "join-design-0"


def test_release_waits_for_the_filing_even_after_review_passed(world):
    held = world
    launch_id = held.new_launch()
    for _ in range(60):
        waiting = sorted(k for k in held.waiting(launch_id) if not k.startswith("bureau-review"))
        if not waiting:
            break
        held.decide(launch_id, waiting[0].rsplit("-", 1)[0])
    assert held.waiting(launch_id) == {"bureau-review-1"}
    assert held.orch.launch_run(launch_id).pause_key == "join-filing-0"  # review passed, release not open
    assert held.res.store.get_step(launch_id, "release", 1) is None
    held.decide(launch_id, "bureau-review")
    assert held.waiting(launch_id) == {"release-1"}
    held.decide(launch_id, "release")
    assert released(held, launch_id)


# --------------------------------------------------------------------------- registration loops

def test_individual_subject_skips_wechat_verification(world):
    launch_id = world.new_launch(path="reuse_official_account")
    world.run_through(launch_id)
    assert released(world, launch_id)
    assert "wechat-verification" not in {g for g, _, _ in gates_in_order(world, launch_id)}


def test_reuse_path_failed_fast_registration_authorises_again(world):
    launch_id = world.new_launch(path="reuse_official_account")
    world.decide(launch_id, "official-account-authorization")
    world.decide(launch_id, "fast-registration", {"outcome": "failed", "reason": "管理员未确认 / admin did not confirm"})
    assert world.waiting(launch_id) == {"official-account-authorization-2"}
    world.decide(launch_id, "official-account-authorization")
    assert world.waiting(launch_id) == {"fast-registration-2"}
    world.decide(launch_id, "fast-registration")
    assert world.waiting(launch_id) == {"admin-binding-1"}


def test_registered_but_unverified_binds_the_admin_then_redoes_only_the_verification(world):
    launch_id = world.new_launch(path="reuse_official_account")
    world.decide(launch_id, "official-account-authorization")
    world.decide(launch_id, "fast-registration", {
        "outcome": "registered_unverified", "appid": "wx0123456789abcdef", "original_id": "gh_0123456789ab",
        "reason": "认证未通过 / verification failed"})
    world.decide(launch_id, "admin-binding")
    # The client is an individual (client-reuse.yaml) but a registered-unverified account needs
    # its 认证 redone only where the subject type requires one.
    info = world.res.store.get_client(world.res.store.get_launch(launch_id).client_id)
    expected = set() if info.subject_type == "individual" else {"wechat-verification-1"}
    assert world.waiting(launch_id) - {"mini-program-profile-1"} == expected


def test_a_failed_verification_reopens_the_verification_gate_alone(world):
    launch_id = world.new_launch()
    world.decide(launch_id, "email-activation")
    world.decide(launch_id, "subject-info")
    world.decide(launch_id, "wechat-verification", {"outcome": "failed", "reason": "对公打款失败 / transfer failed"})
    assert world.waiting(launch_id) == {"wechat-verification-2"}
    assert world.attempts(launch_id, "email-activation") == [(1, "done", "done")]
    assert world.attempts(launch_id, "subject-info") == [(1, "done", "submitted")]


# --------------------------------------------------------------------------- filing loops

def _to_filing(w: World, path: str = "standalone") -> str:
    launch_id = w.new_launch(path=path)
    while not any(k.startswith("filing-materials") for k in w.waiting(launch_id)):
        w.decide(launch_id, sorted(w.waiting(launch_id))[0].rsplit("-", 1)[0])
    return launch_id


def test_filing_rejections_timeouts_and_face_retries_each_open_a_new_attempt(world):
    launch_id = _to_filing(world)
    world.decide(launch_id, "filing-materials")
    world.decide(launch_id, "face-verification", {"outcome": "failed", "reason": "光线不足 / too dark"})
    assert "face-verification-2" in world.waiting(launch_id)
    world.decide(launch_id, "face-verification")
    world.decide(launch_id, "filing-submission")
    world.decide(launch_id, "first-review", {"outcome": "rejected", "reason": "备注不全 / remark incomplete"})
    assert "filing-submission-2" in world.waiting(launch_id)  # face task still inside its 3 days: reused
    world.decide(launch_id, "filing-submission")
    world.decide(launch_id, "first-review")
    world.decide(launch_id, "sms-verification", {"outcome": "timed_out"})
    assert "filing-resubmission-1" in world.waiting(launch_id)  # resubmit before a new SMS
    world.decide(launch_id, "filing-resubmission")
    world.decide(launch_id, "sms-verification", {"outcome": "rejected", "reason": "字段需修改 / fields to change"})
    assert "filing-submission-3" in world.waiting(launch_id)  # fields change: a full resubmission
    world.decide(launch_id, "filing-submission")
    world.decide(launch_id, "first-review")
    world.decide(launch_id, "sms-verification")
    world.decide(launch_id, "bureau-review", {"outcome": "rejected", "reason": "服务内容不符 / service mismatch"})
    assert "filing-submission-4" in world.waiting(launch_id)
    assert world.attempts(launch_id, "face-verification") == [(1, "rejected", "failed"), (2, "done", "passed")]
    assert [a for a, _, _ in world.attempts(launch_id, "sms-verification")] == [1, 2, 3]


def test_an_expired_face_task_is_redone_before_resubmitting(world):
    launch_id = _to_filing(world)
    world.decide(launch_id, "filing-materials")
    world.decide(launch_id, "face-verification")
    world.decide(launch_id, "filing-submission")
    world.clock.advance(days=4)  # WeChat's verify task lives 3 days
    world.decide(launch_id, "first-review", {"outcome": "rejected", "reason": "备注不全 / remark incomplete"})
    assert "face-verification-2" in world.waiting(launch_id)
    assert not any(k.startswith("filing-submission-2") for k in world.waiting(launch_id))
    world.decide(launch_id, "face-verification")
    assert "filing-submission-2" in world.waiting(launch_id)


# --------------------------------------------------------------------------- design, review loops

def test_design_rework_opens_a_new_draft(world):
    launch_id = _to_filing(world)
    world.decide(launch_id, "design-draft")
    world.decide(launch_id, "design-confirmation", {"outcome": "rework", "feedback": "换色 / recolour"})
    assert "design-draft-2" in world.waiting(launch_id)
    world.decide(launch_id, "design-draft")
    world.decide(launch_id, "design-confirmation")
    assert "implementation-1" in world.waiting(launch_id)


def test_a_failed_code_review_reopens_implementation_as_a_new_branch_then_trial_and_review_again(world):
    launch_id = world.new_launch()
    world.run_through(launch_id, answers={
        "code-review": [{"outcome": "failed", "reason": "类目不符 / category mismatch"}],
        "trial-acceptance": [{"outcome": "changes_requested", "feedback": "按钮太小 / buttons too small"}],
    })
    assert released(world, launch_id)
    assert [b.branch for b in world.res.store.branches_for(launch_id) if b.branch.startswith("implementation")] == [
        "implementation-1", "implementation-2"]
    assert [s for _, s, _ in world.attempts(launch_id, "trial-acceptance")] == ["rejected", "done", "done"]
    assert [s for _, s, _ in world.attempts(launch_id, "code-review")] == ["rejected", "done"]
    assert [a for a, _, _ in world.attempts(launch_id, "review-submission")] == [1, 2]


def test_without_the_trial_switch_review_is_submitted_straight_away(tmp_path):
    w = World(tmp_path, trial_acceptance=False)
    launch_id = w.new_launch()
    w.run_through(launch_id)
    assert released(w, launch_id)
    assert w.attempts(launch_id, "trial-acceptance") == []


# --------------------------------------------------------------------------- early decisions, forms

def test_a_decision_recorded_before_its_gate_opens_is_taken_without_parking(world):
    launch_id = world.new_launch()
    world.decide(launch_id, "subject-info")  # early: the launch waits at email activation
    assert world.waiting(launch_id) == {"email-activation-1"}
    world.decide(launch_id, "email-activation")
    assert world.waiting(launch_id) == {"wechat-verification-1"}  # subject info taken on the way
    run = world.orch.launch_run(launch_id)
    assert "subject-info-1" not in run.parked_keys


def test_a_ui_form_breaking_a_cross_field_rule_is_noted_and_asked_again(world):
    launch_id = world.new_launch()
    run = world.orch.launch_run(launch_id)
    # Valid against the schema, but "rejected" needs a reason (a cross-field rule).
    world.decide(launch_id, "email-activation")
    world.decide(launch_id, "subject-info")
    assert world.orch.answer_form(run.id, {"decided_by": "运营", "outcome": "failed"})
    world.orch.drain()
    assert run.pause_key == "wechat-verification-1-retry-1"
    assert "reason" in world.res.store.get_step(launch_id, "wechat-verification", 1).note
    assert world.orch.answer_form(run.id, {"decided_by": "运营", "outcome": "passed"})
    world.orch.drain()
    decision = world.res.store.get_decision(launch_id, "wechat-verification", 1)
    assert (decision.outcome, decision.channel) == ("passed", "ui")
    # What Prefect kept of the forms is gone once the store has the decision.
    assert run.inputs["wechat-verification-1"] is None and run.inputs["wechat-verification-1-retry-1"] is None


def test_a_second_decision_for_a_decided_attempt_changes_nothing(world):
    launch_id = world.new_launch()
    world.decide(launch_id, "email-activation")
    again = world.decide(launch_id, "email-activation", {"outcome": "done"}, drain=True)
    assert again.status == "duplicate"
    assert world.waiting(launch_id) == {"subject-info-1"}
    assert ledger(world, launch_id)["decide:email-activation-1"] == 1


def test_a_failed_branch_fails_the_launch_waiting_for_it(world):
    launch_id = _to_filing(world)

    def broken(*args):
        raise RuntimeError("design tool down")

    world.orch.bodies["design"] = broken
    world.res.store.finish_branch(launch_id, "design", status="started", at=world.clock.now()) if False else None
    # Re-run the design branch with a body that fails: its failure hook marks it and wakes the launch.
    design = world.orch.branch_run(launch_id, "design")
    design.state = "SCHEDULED"
    world.orch.drain()
    run = world.orch.launch_run(launch_id)
    assert design.state == "FAILED" and world.res.store.get_branch(launch_id, "design").status == "failed"
    assert run.state == "FAILED" and isinstance(run.error, BranchFailed)


# --------------------------------------------------------------------------- crash and replay

CRASH_POINTS = {"open_gate": "open:", "take_decision": "decide:", "start_branch": "branch:", "settle_profile": None,
                "mark_released": "released", "finish_branch": None}


def test_a_crash_after_every_gate_step_replays_to_the_same_launch_with_each_effect_kept(world):
    """The process dies right after each of these activities, at EVERY gate and branch (its
    effect done, its result lost); the revive pass replays the run from the top. The launch
    ends the same, every decision is recorded once, every step passed at its first attempt,
    and only the crashed activities ran a second time."""
    for activity in CRASH_POINTS:
        world.orch.crash_after(activity, times=10_000)
    launch_id = world.new_launch()
    crashes = 0
    for _ in range(600):
        if world.orch.revive():
            crashes += 1
            world.orch.drain()
            continue
        waiting = sorted(world.waiting(launch_id))
        if not waiting:
            break
        world.decide(launch_id, waiting[0].rsplit("-", 1)[0])
    assert released(world, launch_id)
    steps = gates_in_order(world, launch_id)
    assert crashes >= 2 * len(steps)  # at least after opening and after deciding each gate
    assert all(a == 1 and st == "done" for _, a, st in steps)
    history = world.res.store.history(launch_id)
    assert len({(d.gate, d.attempt) for d in history}) == len(history) == len(steps)
    crashed = tuple(p for p in CRASH_POINTS.values() if p)
    for key, count in ledger(world, launch_id).items():
        # Each crashed activity ran again on replay, exactly once more; nothing else repeated.
        assert count == (2 if key.startswith(crashed) else 1), (key, count)


_LAUNCH_RUN_GATES = {"email-activation", "subject-info", "wechat-verification", "mini-program-profile",
                     "trial-acceptance", "review-submission", "code-review", "release"}
