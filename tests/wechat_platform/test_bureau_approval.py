"""The bureau's approval decided by the tool (issue 12), on the in-memory orchestrator against the
local WeChat stand-in over real HTTP: WeChat's "filed" (status 6) — by push or by the watcher's poll
— approves bureau-review with the filing number the tool asks of WeChat (get_online_icp_order);
a failed look-up loses nothing (the gate waits, the next poll decides); a push after the poll is a
duplicate and asks nothing; no staff enter the number."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devtools.simulator import PASSING
from devtools.wechat_standin.lookups import sample_filing
from launch.app.inbox import accept_push, apply_pending
from launch.app.reconcile import ONLINE_ORDER, reconcile
from launch.domain.forms import MINI_PROGRAM_FILING_NUMBER
from launch.domain.vocabulary import InboxResult
from launch.wechat.events import IcpFilingResult
from launch.wechat.mapping import DECIDED_BY, DECIDED_BY_API
from launch.wechat.platform.code import CommitRequest
from launch.wechat.platform.errors import WeChatApiError

APPID = PASSING["subject-info"]["appid"]
WAIT = 1800
ORDER_PATH = "/wxa/icp/get_online_icp_order"


def to_bureau_review(w, standin, launch_id: str) -> None:
    """Every gate up to bureau-review-1 answered; on the stand-in the filing is applied, passed
    WeChat's first review and the SMS check: the bureau reviews it."""
    task_id = None
    for _ in range(80):
        keys = sorted(w.waiting(launch_id))
        if "bureau-review-1" in keys:
            return
        gate = keys[0].rsplit("-", 1)[0]
        data = None
        if gate == "face-verification":
            task_id = w.res.store.get_step(launch_id, gate, 1).note.split("task_id=")[1]
            standin.advance(appid=APPID, kind="face")
            data = {"outcome": "passed", "task_id": task_id}
        elif gate == "filing-submission":  # the example's documents are no files here: staff apply
            media = w.res.wechat.icp.upload_icp_media(
                APPID, media_type="image", icp_order_field="icp_subject.principal_info.certificate_photo_front",
                filename="front.jpg", content=b"\xff\xd8\xff-jpeg", certificate_type=2).media_id
            w.res.wechat.client.authorizer(APPID, "POST", "/wxa/icp/apply_icp_filing",
                                           body=sample_filing(APPID, task_id, media))
            data = {"outcome": "done", "verify_task_id": task_id}
        elif gate == "first-review":
            standin.advance(appid=APPID, kind="filing")  # WeChat's first review passes
        elif gate == "sms-verification":
            standin.control("sms", appid=APPID, status=2)  # the principal answered 12381's SMS
        elif gate == "implementation":
            w.res.wechat.code.commit(APPID, CommitRequest(template_id=1, ext_json={"extAppid": APPID},
                                                          user_version="1.0.0", user_desc="第一版"))
        w.decide(launch_id, gate, data)
    raise AssertionError(f"bureau-review-1 never waited: {w.waiting(launch_id)}")


def filed_push(create_time: int) -> IcpFilingResult:
    return IcpFilingResult.from_fields({"authorizer_appid": APPID, "beian_status": 6,
                                        "CreateTime": str(create_time)})


def push(w, event) -> InboxResult:
    accept_push(w.res, event)
    [outcome] = apply_pending(w.res)
    w.orch.drain()
    return outcome.result


def poll(w, after: float = WAIT + 60):
    w.clock.advance(seconds=after)
    report = reconcile(w.res, w.res.wechat, w.res.now(), older_than_seconds=WAIT)
    w.orch.drain()
    return report


@pytest.fixture
def quick(world):
    world.res.wechat.client.backoff = world.res.wechat.client.max_backoff = 0.01  # busy retries, quickly
    return world


def test_the_stand_in_issues_a_filing_number_once_filed(quick, standin):
    launch_id = quick.new_launch()
    to_bureau_review(quick, standin, launch_id)
    with pytest.raises(WeChatApiError) as refused:
        quick.res.wechat.icp.get_online_icp_order(APPID)  # still with the bureau: no number yet
    assert refused.value.errcode == 40097
    standin.advance(appid=APPID, kind="filing")
    order = quick.res.wechat.icp.get_online_icp_order(APPID)
    assert MINI_PROGRAM_FILING_NUMBER.match(order.record_number)
    assert order.record_number.startswith(order.subject_record_number + "-")
    assert quick.res.wechat.icp.get_online_icp_order(APPID).record_number == order.record_number  # kept


def test_the_filed_push_approves_the_bureau_review_with_wechats_number(quick, standin):
    launch_id = quick.new_launch()
    to_bureau_review(quick, standin, launch_id)
    standin.advance(appid=APPID, kind="filing")  # the bureau approves: WeChat pushes status 6
    number = standin.state(APPID)["filing"]["record_number"]

    assert push(quick, filed_push(1)) == InboxResult.APPLIED
    decision = quick.res.store.get_decision(launch_id, "bureau-review", 1)
    assert (decision.outcome, decision.channel, decision.actor) == ("approved", "wechat", DECIDED_BY)
    assert decision.payload["filing_number"] == number
    assert standin.calls(ORDER_PATH, APPID) == 1
    assert quick.res.store.get_branch(launch_id, "filing").status == "done"  # the filing branch ended
    assert "bureau-review-1" not in quick.waiting(launch_id)

    # the same news again (WeChat retried, or a second status-6 push): nothing twice, nothing asked
    assert push(quick, filed_push(2)) == InboxResult.DUPLICATE
    assert standin.calls(ORDER_PATH, APPID) == 1
    assert [d.attempt for d in quick.res.store.history(launch_id) if d.gate == "bureau-review"] == [1]


def test_a_failed_number_lookup_loses_nothing_the_poll_decides(quick, standin):
    launch_id = quick.new_launch()
    to_bureau_review(quick, standin, launch_id)
    standin.advance(appid=APPID, kind="filing")
    # WeChat busy on every try of the client's bounded retries
    standin.control("fail", path=ORDER_PATH, errcode=-1, count=4)

    assert push(quick, filed_push(1)) == InboxResult.NOTED
    assert quick.res.store.get_decision(launch_id, "bureau-review", 1) is None
    assert "bureau-review-1" in quick.waiting(launch_id)  # the gate still waits, nothing lost

    report = poll(quick)
    assert [(d.gate, d.attempt, d.outcome, d.status) for d in report.decided] == [
        ("bureau-review", 1, "approved", "recorded")]
    decision = quick.res.store.get_decision(launch_id, "bureau-review", 1)
    assert decision.channel == "wechat-api" and decision.actor == DECIDED_BY_API
    assert decision.payload["filing_number"] == standin.state(APPID)["filing"]["record_number"]
    assert quick.res.store.get_branch(launch_id, "filing").status == "done"


def test_the_poll_fails_too_and_asks_again_on_the_next_pass(quick, standin):
    launch_id = quick.new_launch()
    to_bureau_review(quick, standin, launch_id)
    standin.control("drop", kind="notify_apply_icpfiling_result", appid=APPID)
    standin.advance(appid=APPID, kind="filing")
    standin.control("fail", path=ORDER_PATH, errcode=-1, count=4)

    report = poll(quick)
    assert not report.decided and [e.api for e in report.errors] == [ONLINE_ORDER]
    assert "bureau-review-1" in quick.waiting(launch_id)
    report = poll(quick, after=60)
    assert [(d.gate, d.outcome) for d in report.decided] == [("bureau-review", "approved")]


def test_a_push_arriving_after_the_poll_is_a_duplicate_and_asks_nothing(quick, standin):
    launch_id = quick.new_launch()
    to_bureau_review(quick, standin, launch_id)
    standin.control("drop", kind="notify_apply_icpfiling_result", appid=APPID)  # the status-6 push is lost
    standin.advance(appid=APPID, kind="filing")

    report = poll(quick)
    assert [(d.gate, d.outcome) for d in report.decided] == [("bureau-review", "approved")]
    assert standin.calls(ORDER_PATH, APPID) == 1

    assert push(quick, filed_push(1)) == InboxResult.DUPLICATE  # the lost push arrives after all
    assert standin.calls(ORDER_PATH, APPID) == 1  # the recorded number was reused: no second question
    decisions = [d for d in quick.res.store.history(launch_id) if d.gate == "bureau-review"]
    assert [(d.attempt, d.channel) for d in decisions] == [(1, "wechat-api")]
    assert poll(quick).calls == 0  # nothing waits on WeChat's filing any more


def test_without_a_platform_the_filed_push_is_a_note_for_staff(tmp_path):
    from tests.support.memory_env import World

    w = World(tmp_path)
    launch_id = w.new_launch()
    for _ in range(80):
        keys = sorted(w.waiting(launch_id))
        if "bureau-review-1" in keys:
            break
        w.decide(launch_id, keys[0].rsplit("-", 1)[0])
    appid = w.res.store.get_launch(launch_id).appid
    accept_push(w.res, IcpFilingResult.from_fields({"authorizer_appid": appid, "beian_status": 6}))
    [outcome] = apply_pending(w.res)
    assert outcome.result == InboxResult.NOTED and "备案号" in outcome.detail
    assert w.res.store.get_decision(launch_id, "bureau-review", 1) is None
    w.res.close()
