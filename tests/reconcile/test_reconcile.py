"""The watcher asks WeChat about gates whose push never came (launch/app/reconcile.py), on the
in-memory orchestrator against the WeChat stand-in over real HTTP: a lost review result or filing
status decides its gate through the decision service (channel wechat-api) and the run resumes; a
push arriving later is a duplicate; the budget and a rate limit stop a pass; a launch waiting less
than the interval, or a world without a platform, asks WeChat nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from devtools.wechat_standin.lookups import sample_filing
from launch.app.inbox import accept_push, apply_pending
from launch.app.reconcile import FILING, REVIEW, reconcile
from launch.app.watcher import repair
from launch.domain.vocabulary import InboxResult
from launch.wechat.events import AuditFail, AuditSuccess, IcpFilingResult
from launch.wechat.mapping import DECIDED_BY_API
from launch.wechat.platform.code import CommitRequest
from launch.wechat.platform.tokens import remember_ticket
from tests.support.memory_env import World
from tests.support.standin import COMPONENT_APPID, SECRET

WAIT = 1800  # WEAPP_LAUNCH_WECHAT_RECONCILE_SECONDS' default
LATER = timedelta(seconds=WAIT + 60)


@pytest.fixture
def world(tmp_path, standin):
    w = World(tmp_path, wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
              wechat_api_base=standin.url)
    remember_ticket(w.res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    w.res.wechat.client.backoff = w.res.wechat.client.max_backoff = 0.01  # rate-limit retries, quickly
    yield w
    w.res.close()


def authorise(w: World, standin) -> tuple[str, str]:
    """A new mini-program whose admin authorised the platform: (appid, original id)."""
    pre = w.res.wechat.auth.create_preauthcode()
    consent = standin.control("authorize", pre_auth_code=pre.pre_auth_code)
    w.res.wechat.auth.query_auth(consent["auth_code"])
    return consent["appid"], consent["original_id"]


def launch_for(w: World, standin) -> tuple[str, str, str]:
    """A launch whose registration names a new authorised mini-program: (launch, appid, original id)."""
    appid, original_id = authorise(w, standin)
    launch_id = w.new_launch()
    until(w, launch_id, "subject-info-1")
    w.decide(launch_id, "subject-info", {"outcome": "submitted", "appid": appid, "original_id": original_id})
    return launch_id, appid, original_id


def waiting(w: World, launch_id: str) -> set[str]:
    """Gate keys this launch's runs are parked at (joins left out)."""
    return {r.pause_key for r in w.orch.runs.values()
            if r.state == "PAUSED" and r.parameters.get("launch_id") == launch_id
            and not r.pause_key.startswith("join-")}


def until(w: World, launch_id: str, key: str) -> None:
    """Answer every other gate (passing) until `key` waits; developers commit the version."""
    for _ in range(80):
        keys = sorted(waiting(w, launch_id))
        if key in keys:
            return
        gate = keys[0].rsplit("-", 1)[0]
        if gate == "implementation":
            appid = w.res.store.get_launch(launch_id).appid
            w.res.wechat.code.commit(appid, CommitRequest(template_id=1, ext_json={"extAppid": appid},
                                                          user_version="1.0.0", user_desc="第一版"))
        w.decide(launch_id, gate)
    raise AssertionError(f"{key} never waited: {waiting(w, launch_id)}")


def run_reconcile(w: World, *, after: timedelta = LATER, budget: int = 500):
    """One pass, `after` the gates opened; the runs it resumed move on."""
    w.clock.advance(seconds=after.total_seconds())
    report = reconcile(w.res, w.res.wechat, w.res.now(), older_than_seconds=WAIT, budget=budget)
    w.orch.drain()
    return report


def push(w: World, event) -> InboxResult:
    """A push that arrives late, through the receiver's inbox and its applier."""
    accept_push(w.res, event)
    [outcome] = apply_pending(w.res)
    w.orch.drain()
    return outcome.result


def test_a_lost_review_result_is_asked_for_and_decided_once(world, standin):
    launch_id, appid, original_id = launch_for(world, standin)
    until(world, launch_id, "code-review-1")  # the tool submitted the review when its gate opened
    standin.control("drop", kind="weapp_audit_success", appid=appid)
    standin.advance(appid=appid, kind="review")  # WeChat passes it; its push is lost
    assert [p["status"] for p in standin.pushes("weapp_audit_success")] == ["dropped"]
    asked = standin.calls("/wxa/get_latest_auditstatus", appid)  # the submit_audit action asked once

    report = run_reconcile(world)
    assert [(d.gate, d.attempt, d.outcome, d.status) for d in report.decided] == [
        ("code-review", 1, "passed", "recorded")]
    assert standin.calls("/wxa/get_latest_auditstatus", appid) == asked + 1 and report.calls == 1
    decision = world.res.store.get_decision(launch_id, "code-review", 1)
    assert decision.channel == "wechat-api" and decision.actor == DECIDED_BY_API
    assert "code-review-1" not in waiting(world, launch_id)  # the run resumed
    assert decision.consumed_at is not None

    # The push arrives after all: a duplicate, nothing decided twice.
    late = AuditSuccess.from_fields({"ToUserName": original_id, "SuccTime": str(int(time.time()))})
    assert push(world, late) == InboxResult.DUPLICATE
    assert [d.attempt for d in world.res.store.history(launch_id) if d.gate == "code-review"] == [1]
    # The next pass asks nothing: no gate waits on WeChat.
    assert run_reconcile(world).calls == 0


def test_a_lost_rejection_is_decided_and_its_late_push_is_a_duplicate(world, standin):
    launch_id, appid, original_id = launch_for(world, standin)
    until(world, launch_id, "code-review-1")
    standin.control("script", appid=appid, kind="review", result="reject", after=-1,
                    reason="类目与内容不符 / category does not match")
    # the script applies to the NEXT review: withdraw the one running and submit again
    world.res.wechat.code.undocodeaudit(appid)
    from launch.wechat.platform.code import SubmitAuditRequest
    world.res.wechat.code.submit_audit(appid, SubmitAuditRequest(version_desc="1.0.0"))
    standin.control("drop", kind="weapp_audit_fail", appid=appid)
    standin.advance(appid=appid, kind="review")

    report = run_reconcile(world)
    assert [(d.gate, d.outcome) for d in report.decided] == [("code-review", "failed")]
    decision = world.res.store.get_decision(launch_id, "code-review", 1)
    assert decision.channel == "wechat-api" and "类目与内容不符" in decision.payload["reason"]
    assert decision.payload["screenshots"]
    assert any(k.startswith("implementation-2") for k in waiting(world, launch_id))  # back to the developers

    late = AuditFail.from_fields({"ToUserName": original_id, "FailTime": str(int(time.time())),
                                  "Reason": "类目与内容不符 / category does not match"})
    assert push(world, late) == InboxResult.DUPLICATE
    assert [d.attempt for d in world.res.store.history(launch_id) if d.gate == "code-review"] == [1]


def test_a_push_first_then_no_question(world, standin):
    """The push came (late, but before the pass): the pass finds no waiting gate to ask about."""
    launch_id, appid, original_id = launch_for(world, standin)
    until(world, launch_id, "code-review-1")
    standin.advance(appid=appid, kind="review")
    assert push(world, AuditSuccess.from_fields({"ToUserName": original_id, "SuccTime": "1"})) == InboxResult.APPLIED
    report = run_reconcile(world)
    assert report.calls == 0 and not report.decided
    assert world.res.store.get_decision(launch_id, "code-review", 1).channel == "wechat"


def test_the_filing_statuses_are_asked_for(world, standin):
    """Face check, first review, SMS check and the bureau, each push lost: every gate decided
    from WeChat's answers, with WeChat's own reasons; 'filed' approves with WeChat's filing number."""
    launch_id, appid, _ = launch_for(world, standin)
    standin.control("drop", kind="*", appid=appid, count=100)  # every push of this mini-program
    until(world, launch_id, "face-verification-1")
    task_id = world.res.store.get_step(launch_id, "face-verification", 1).note.split("task_id=")[1]
    standin.advance(appid=appid, kind="face")
    report = run_reconcile(world)
    assert [(d.gate, d.outcome) for d in report.decided] == [("face-verification", "passed")]
    assert world.res.store.get_decision(launch_id, "face-verification", 1).payload["task_id"] == task_id

    # staff submit the filing in the console (here: the API), then say so
    until(world, launch_id, "filing-submission-1")
    media = world.res.wechat.icp.upload_icp_media(
        appid, media_type="image", icp_order_field="icp_subject.principal_info.certificate_photo_front",
        filename="front.jpg", content=b"\xff\xd8\xff-jpeg", certificate_type=2).media_id
    reasons = [{"key_name": "小程序备注", "error": "备注未说明服务内容", "suggest": "补充服务内容"}]
    standin.control("script", appid=appid, kind="filing", result="platform_reject", audit_data=reasons)
    body = sample_filing(appid, task_id, media)
    world.res.wechat.client.authorizer(appid, "POST", "/wxa/icp/apply_icp_filing", body=body)
    world.decide(launch_id, "filing-submission", {"outcome": "done", "verify_task_id": task_id})
    assert "first-review-1" in waiting(world, launch_id)
    standin.advance(appid=appid, kind="filing")  # the platform rejects it

    report = run_reconcile(world)
    assert [(d.gate, d.attempt, d.outcome) for d in report.decided] == [("first-review", 1, "rejected")]
    assert "备注未说明服务内容" in world.res.store.get_decision(launch_id, "first-review", 1).payload["reason"]

    # resubmitted; the platform passes it, the bureau reviews, MIIT's SMS is waiting
    until(world, launch_id, "filing-submission-2")
    world.res.wechat.client.authorizer(appid, "POST", "/wxa/icp/apply_icp_filing", body=body)
    world.decide(launch_id, "filing-submission", {"outcome": "done", "verify_task_id": task_id})
    standin.advance(appid=appid, kind="filing")
    report = run_reconcile(world)
    assert [(d.gate, d.attempt, d.outcome) for d in report.decided] == [("first-review", 2, "passed")]

    assert "sms-verification-1" in waiting(world, launch_id)
    assert run_reconcile(world).still_waiting == 1  # SMS not done yet: nothing decided
    standin.control("sms", appid=appid, status=2)
    report = run_reconcile(world)
    assert [(d.gate, d.outcome) for d in report.decided] == [("sms-verification", "verified")]

    assert "bureau-review-1" in waiting(world, launch_id)
    standin.advance(appid=appid, kind="filing")  # filed
    report = run_reconcile(world)  # the number is asked of WeChat (get_online_icp_order): no staff
    assert [(d.gate, d.outcome) for d in report.decided] == [("bureau-review", "approved")]
    assert world.res.store.get_decision(launch_id, "bureau-review", 1).payload["filing_number"] == \
        standin.state(appid)["filing"]["record_number"]
    assert all(d.channel == "wechat-api" for d in world.res.store.history(launch_id)
               if d.gate in ("face-verification", "first-review", "sms-verification", "bureau-review"))

    # the lost filing push arrives after all: a duplicate
    late = IcpFilingResult.from_fields({"authorizer_appid": appid, "beian_status": 4, "sms_verify_status": 2})
    assert push(world, late) == InboxResult.DUPLICATE


def test_the_bureau_rejection_is_asked_for(world, standin):
    launch_id, appid, _ = launch_for(world, standin)
    until(world, launch_id, "face-verification-1")
    task_id = world.res.store.get_step(launch_id, "face-verification", 1).note.split("task_id=")[1]
    standin.advance(appid=appid, kind="face")
    world.decide(launch_id, "face-verification", {"outcome": "passed", "task_id": task_id}, channel="wechat")
    until(world, launch_id, "filing-submission-1")
    media = world.res.wechat.icp.upload_icp_media(
        appid, media_type="image", icp_order_field="icp_subject.principal_info.certificate_photo_front",
        filename="front.jpg", content=b"\xff\xd8\xff-jpeg", certificate_type=2).media_id
    standin.control("script", appid=appid, kind="filing", result="bureau_reject",
                    audit_data=[{"key_name": "主体负责人", "error": "负责人电话无法接通"}])
    world.res.wechat.client.authorizer(appid, "POST", "/wxa/icp/apply_icp_filing",
                                       body=sample_filing(appid, task_id, media))
    world.decide(launch_id, "filing-submission", {"outcome": "done", "verify_task_id": task_id})
    until(world, launch_id, "bureau-review-1")
    standin.control("drop", kind="notify_apply_icpfiling_result", appid=appid, count=2)
    standin.advance(appid=appid, kind="filing")  # the platform passes it (first review decided by staff)
    standin.advance(appid=appid, kind="filing")  # the bureau rejects it
    report = run_reconcile(world)
    assert [(d.gate, d.outcome) for d in report.decided] == [("bureau-review", "rejected")]
    assert "负责人电话无法接通" in world.res.store.get_decision(launch_id, "bureau-review", 1).payload["reason"]


def test_one_question_per_mini_program_and_the_budget_stops_a_pass(world, standin):
    launches = [launch_for(world, standin) for _ in range(3)]
    for launch_id, appid, _ in launches:
        until(world, launch_id, "code-review-1")
        standin.advance(appid=appid, kind="review")
    asked = standin.calls("/wxa/get_latest_auditstatus")
    report = run_reconcile(world, budget=2)
    assert report.calls == 2 and len(report.decided) == 2
    assert report.deferred == 1 and report.stopped == {REVIEW: "budget"}
    assert standin.calls("/wxa/get_latest_auditstatus") == asked + 2
    report = run_reconcile(world, after=timedelta(0), budget=2)  # the next pass takes the rest
    assert report.calls == 1 and len(report.decided) == 1
    assert all(world.res.store.get_decision(lid, "code-review", 1) for lid, _, _ in launches)


def test_a_rate_limit_stops_that_api_for_the_pass(world, standin):
    launches = [launch_for(world, standin) for _ in range(2)]
    for launch_id, appid, _ in launches:
        until(world, launch_id, "code-review-1")
    # the first question meets 45011 on every retry of the client's bounded backoff
    standin.control("fail", path="/wxa/get_latest_auditstatus", errcode=45011, count=4)
    report = run_reconcile(world)
    assert report.stopped == {REVIEW: "rate-limited"}
    assert report.calls == 1 and report.deferred == 1
    [error] = report.errors
    assert error.kind == "RateLimited" and "45011" in error.message and " / " in error.message
    assert "access_token" not in error.message
    assert FILING not in report.stopped


def test_a_gate_waiting_less_than_the_interval_is_not_asked(world, standin):
    launch_id, appid, _ = launch_for(world, standin)
    until(world, launch_id, "code-review-1")
    standin.advance(appid=appid, kind="review")
    before = standin.calls("/wxa/get_latest_auditstatus")
    report = run_reconcile(world, after=timedelta(minutes=10))
    assert report.calls == 0 and report.asked == 0
    assert standin.calls("/wxa/get_latest_auditstatus") == before
    assert "code-review-1" in waiting(world, launch_id)


def test_errors_are_reported_per_launch_never_raised(world, standin):
    launch_id, appid, _ = launch_for(world, standin)
    until(world, launch_id, "code-review-1")
    standin.control("unauthorize", appid=appid)  # the client withdrew the authorisation
    report = run_reconcile(world)
    [error] = report.errors
    assert error.launch_id == launch_id and error.gate == "code-review" and error.api == REVIEW
    assert "code-review-1" in waiting(world, launch_id)


def test_the_watcher_repair_pass_reconciles_and_counts(world, standin):
    launch_id, appid, _ = launch_for(world, standin)
    until(world, launch_id, "code-review-1")
    standin.advance(appid=appid, kind="review")
    world.clock.advance(seconds=LATER.total_seconds())
    report = repair(world.res, world.res.now())
    world.orch.drain()
    assert report.reconciled == 1 and report.reconcile_calls >= 1
    assert report.counts()["reconciled"] == 1 and report.to_json()["reconcile_calls"] >= 1
    assert [r.kind for r in report.repaired if r.launch_id == launch_id] == ["reconcile"]
    assert world.res.store.get_decision(launch_id, "code-review", 1).channel == "wechat-api"


def test_the_setting_at_zero_turns_it_off(tmp_path, standin):
    w = World(tmp_path, wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
              wechat_api_base=standin.url, wechat_reconcile_seconds=0)
    w.clock.advance(days=1)
    report = repair(w.res, w.res.now())
    assert report.reconcile_calls == 0
    assert standin.calls() == 0
    w.res.close()


def test_without_a_platform_nothing_is_asked(tmp_path, standin):
    w = World(tmp_path)  # no component app id or secret: every WeChat gate stays manual
    assert w.res.wechat is None
    launch_id = w.new_launch()
    for _ in range(80):
        if "code-review-1" in waiting(w, launch_id):
            break
        w.decide(launch_id, sorted(waiting(w, launch_id))[0].rsplit("-", 1)[0])
    w.clock.advance(days=3)
    report = repair(w.res, w.res.now())
    assert report.reconciled == 0 and report.reconcile_calls == 0
    assert reconcile(w.res, None, w.res.now(), older_than_seconds=WAIT).calls == 0
    assert standin.calls() == 0
    assert "code-review-1" in waiting(w, launch_id)
    w.res.close()
