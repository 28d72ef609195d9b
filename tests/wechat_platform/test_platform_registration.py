"""Registration through the platform (platform_fast_registration), on the in-memory orchestrator
against the local WeChat stand-in over real HTTP: the tool creates WeChat's registration task and
the legal person authorises on the stand-in, which pushes notify_third_fasteregister; the push
decides the gate with the new app id and its auth_code authorises the platform; a failed check or
an expired link reopens the gate with a new task, and a late push about the old task decides
nothing; a lost push is found by the watcher's query; a crash after WeChat's answer never makes a
second task."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from launch.app.inbox import accept_push, apply_pending
from launch.app.reconcile import reconcile
from launch.app.wechat_actions import REGISTER_TASK_EFFECT, registration_task
from launch.domain.vocabulary import InboxResult
from launch.process.memory import Crash
from launch.wechat.events import FastRegisterResult
from launch.wechat.mapping import DECIDED_BY, DECIDED_BY_API
from launch.wechat.platform.tokens import remember_ticket
from tests.support.memory_env import World
from tests.support.standin import COMPONENT_APPID, SECRET

PATH = "/wxa/component/fastregisterenterpriseweapp"
WAIT = 1800
# WeChat's side waits for the legal person (the stand-in finishes a registration only when told)
pytestmark = pytest.mark.parametrize("standin_config", [{"register_seconds": 10 ** 7}], indirect=True)


@pytest.fixture
def world(tmp_path, standin):
    w = World(tmp_path, wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
              wechat_api_base=standin.url)
    remember_ticket(w.res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    yield w
    w.res.close()


def gates(w: World, launch_id: str) -> list[str]:
    return sorted(k for k in w.waiting(launch_id) if not k.startswith(("design", "filing")))


def last_push(standin, n: int = 1) -> list[dict]:
    """The last ``n`` notify_third_fasteregister messages the stand-in made (sent or not)."""
    pushes = [p for p in standin.standin.pusher.log if p.kind == "notify_third_fasteregister"]
    return [dict(p.message) for p in pushes[-n:]]


def deliver(w: World, message: dict, create_time: int | None = None) -> InboxResult:
    """A push as the receiver lands and applies it."""
    fields = {k: v for k, v in message.items() if k not in ("InfoType",)}
    if create_time is not None:
        fields["CreateTime"] = create_time
    accept_push(w.res, FastRegisterResult.from_fields(fields))
    [outcome] = apply_pending(w.res)
    w.orch.drain()
    return outcome.result


def test_the_legal_persons_authorisation_registers_and_authorises(world, standin):
    launch_id = world.new_launch(path="platform_fast_registration")
    assert gates(world, launch_id) == ["platform-registration-1"]
    assert standin.calls(PATH) == 1
    _, taskid = registration_task(world.res, launch_id, 1)
    assert standin.control("legal_person", taskid=taskid)["status"] == 12
    [message] = last_push(standin)
    assert message["status"] == 0 and message["auth_code"].startswith("queryauthcode@@@")

    assert deliver(world, message) == InboxResult.APPLIED
    decision = world.res.store.get_decision(launch_id, "platform-registration", 1)
    assert (decision.outcome, decision.channel, decision.actor) == ("registered", "wechat", DECIDED_BY)
    appid = message["appid"]
    assert decision.payload["appid"] == appid and world.res.store.get_launch(launch_id).appid == appid
    assert appid in world.res.store.authorizer_appids()  # auth_code exchanged: the platform may act on it
    assert standin.state(appid)["authorized"] is True
    assert gates(world, launch_id) == ["wechat-verification-1"]  # not 认证'd: the 认证 follows
    # the inbox keeps neither the auth code nor the credit code
    from sqlalchemy import select

    from launch.store.models import InboxEvent

    with world.res.store.session() as s:
        kept = json.dumps([r.payload for r in s.scalars(select(InboxEvent))], ensure_ascii=False)
    assert message["auth_code"] not in kept and message["info"]["code"] not in kept
    # WeChat sends it again: a duplicate, nothing decided twice
    assert deliver(world, message, create_time=int(message["CreateTime"]) + 5) == InboxResult.DUPLICATE
    assert standin.calls(PATH) == 1


def test_a_failed_check_reopens_the_gate_and_a_late_push_about_it_decides_nothing(world, standin):
    launch_id = world.new_launch(path="platform_fast_registration")
    standin.control("legal_person", result="fail", reason="法人人脸核身未通过 / the legal person's check failed")
    [failed] = last_push(standin)
    assert failed["status"] != 0 and "appid" not in failed
    assert deliver(world, failed) == InboxResult.APPLIED
    decision = world.res.store.get_decision(launch_id, "platform-registration", 1)
    assert decision.outcome == "failed" and "法人人脸核身未通过" in decision.payload["reason"]
    assert gates(world, launch_id) == ["platform-registration-2"]
    assert standin.calls(PATH) == 2  # a new task, a new link
    first, second = registration_task(world.res, launch_id, 1)[1], registration_task(world.res, launch_id, 2)[1]
    assert first != second and failed["info"]["taskid"] == first

    # the failure push about task 1 comes again while task 2 waits: it decides nothing
    assert deliver(world, failed, create_time=int(failed["CreateTime"]) + 7) == InboxResult.DUPLICATE
    assert world.res.store.get_decision(launch_id, "platform-registration", 2) is None

    standin.control("legal_person", taskid=second)
    assert deliver(world, last_push(standin)[0]) == InboxResult.APPLIED
    assert world.res.store.get_decision(launch_id, "platform-registration", 2).outcome == "registered"


def test_a_lost_push_is_found_by_the_watchers_query(world, standin):
    launch_id = world.new_launch(path="platform_fast_registration")
    standin.control("drop", kind="notify_third_fasteregister")
    standin.control("legal_person")
    world.clock.advance(seconds=WAIT + 60)
    report = reconcile(world.res, world.res.wechat, world.res.now(), older_than_seconds=WAIT)
    world.orch.drain()
    assert [(d.gate, d.attempt, d.outcome) for d in report.decided] == [("platform-registration", 1, "registered")]
    decision = world.res.store.get_decision(launch_id, "platform-registration", 1)
    assert decision.channel == "wechat-api" and decision.actor == DECIDED_BY_API
    appid = decision.payload["appid"]
    assert world.res.store.get_launch(launch_id).appid == appid
    # the query carries no auth code, and none was exchanged; WeChat's authoriser list has the
    # refresh token: the platform is authorised with no staff step, every permission set recorded
    assert standin.calls("/cgi-bin/component/api_query_auth") == 0
    assert standin.calls("/cgi-bin/component/api_get_authorizer_list") == 1
    assert "wechat authorize" not in decision.payload["note"]
    state = world.res.store.authorizer_state(appid)
    assert state is not None and {18, 156, 30} <= set(state.func_info)
    assert world.res.wechat.account.get_account_basic_info(appid).appid == appid  # its token works
    # the lost push arrives after all: a duplicate, and its (now stale) code changes nothing
    assert deliver(world, last_push(standin)[0]) == InboxResult.DUPLICATE


def test_a_failed_authoriser_list_leaves_the_gate_for_the_next_pass(world, standin):
    """WeChat cannot answer api_get_authorizer_list (an unexpected errcode): the gate is not
    decided with a staff note; the next pass asks again and authorises."""
    launch_id = world.new_launch(path="platform_fast_registration")
    standin.control("drop", kind="notify_third_fasteregister")
    standin.control("legal_person")
    standin.control("fail", path="/cgi-bin/component/api_get_authorizer_list", errcode=40097)
    world.clock.advance(seconds=WAIT + 60)
    first = reconcile(world.res, world.res.wechat, world.res.now(), older_than_seconds=WAIT)
    assert not first.decided and [e.api for e in first.errors] == ["api_get_authorizer_list"]
    assert world.res.store.get_decision(launch_id, "platform-registration", 1) is None
    second = reconcile(world.res, world.res.wechat, world.res.now(), older_than_seconds=WAIT)
    world.orch.drain()
    assert [(d.gate, d.outcome) for d in second.decided] == [("platform-registration", "registered")]
    decision = world.res.store.get_decision(launch_id, "platform-registration", 1)
    assert "wechat authorize" not in decision.payload["note"]
    assert decision.payload["appid"] in world.res.store.authorizer_appids()


def test_a_registration_wechat_does_not_list_as_authorised_leaves_a_note(world, standin):
    launch_id = world.new_launch(path="platform_fast_registration")
    standin.control("drop", kind="notify_third_fasteregister")
    registered = standin.control("legal_person")
    standin.control("unauthorize", appid=registered["appid"])  # the admin revoked it at once
    world.clock.advance(seconds=WAIT + 60)
    reconcile(world.res, world.res.wechat, world.res.now(), older_than_seconds=WAIT)
    world.orch.drain()
    decision = world.res.store.get_decision(launch_id, "platform-registration", 1)
    assert decision.outcome == "registered" and decision.payload["appid"] == registered["appid"]
    # not in WeChat's list: the decision tells staff to have the platform authorised
    assert "wechat authorize" in decision.payload["note"] and " / " in decision.payload["note"]
    assert world.res.store.authorizer_state(registered["appid"]) is None


def test_a_failed_code_exchange_falls_back_to_wechats_list(world, standin):
    launch_id = world.new_launch(path="platform_fast_registration")
    standin.control("drop", kind="notify_third_fasteregister")
    standin.control("legal_person")
    message = last_push(standin)[0]
    standin.advance(seconds=3600, finish=False)  # the push comes back an hour late: its code has expired
    remember_ticket(world.res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    assert deliver(world, message) == InboxResult.APPLIED
    appid = world.res.store.get_decision(launch_id, "platform-registration", 1).payload["appid"]
    assert standin.calls("/cgi-bin/component/api_query_auth") == 1  # refused: 61010
    assert appid in world.res.store.authorizer_appids()
    assert world.res.wechat.account.get_account_basic_info(appid).appid == appid


def test_an_expired_link_is_found_by_the_query_and_a_new_task_made(world, standin):
    launch_id = world.new_launch(path="platform_fast_registration")
    standin.advance(seconds=25 * 3600, finish=False)  # nobody opened the link for a day
    # a day on: WeChat's ticket of then has expired (12 h); the receiver keeps the newest one
    remember_ticket(world.res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    world.clock.advance(seconds=WAIT + 60)
    report = reconcile(world.res, world.res.wechat, world.res.now(), older_than_seconds=WAIT)
    world.orch.drain()
    assert [(d.gate, d.outcome) for d in report.decided] == [("platform-registration", "failed")]
    answered = [c for c in standin.http.get("/_standin/calls", params={"path": PATH}).json()["calls"]
                if c["errcode"] == 0]  # (the day-old component token was refreshed once: 42001)
    assert gates(world, launch_id) == ["platform-registration-2"] and len(answered) == 3  # create, query, create


def test_a_query_while_waiting_decides_nothing(world, standin):
    launch_id = world.new_launch(path="platform_fast_registration")
    world.clock.advance(seconds=WAIT + 60)
    report = reconcile(world.res, world.res.wechat, world.res.now(), older_than_seconds=WAIT)
    assert not report.decided and report.still_waiting == 1 and report.calls == 1
    assert gates(world, launch_id) == ["platform-registration-1"]


def test_a_crash_before_the_task_id_was_kept_makes_no_second_task(world, standin):
    """The process dies after WeChat created the task but before its id reached the ledger: the
    replay's call meets 89249 (a task for this subject is running); the gate says so and the
    legal person's push still decides it (found by the credit code)."""
    store = world.res.store
    real = store.note_effect
    crashed = []

    def note_effect(launch_id, key, *args, **kw):
        if key.startswith(REGISTER_TASK_EFFECT) and not crashed:
            crashed.append(key)
            raise Crash("the process died")
        return real(launch_id, key, *args, **kw)

    store.note_effect = note_effect
    launch_id = world.new_launch(path="platform_fast_registration")
    assert crashed and world.orch.revive()
    world.orch.drain()
    assert gates(world, launch_id) == ["platform-registration-1"]
    assert standin.calls(PATH) == 2 and len(standin.standin.world.registrations) == 1
    assert "89249" not in (store.get_step(launch_id, "platform-registration", 1).note or "")
    assert "任务在进行" in store.get_step(launch_id, "platform-registration", 1).note
    standin.control("legal_person")
    assert deliver(world, last_push(standin)[0]) == InboxResult.APPLIED
    assert store.get_decision(launch_id, "platform-registration", 1).outcome == "registered"


def test_a_crash_right_after_the_action_creates_nothing_twice(world, standin):
    world.orch.crash_after("act", when=lambda args: args[1] == "platform-registration")
    launch_id = world.new_launch(path="platform_fast_registration")
    assert world.orch.revive()
    world.orch.drain()
    assert gates(world, launch_id) == ["platform-registration-1"]
    assert standin.calls(PATH) == 1


def test_wechat_refusing_the_registration_is_a_note_and_staff_decide(world, standin):
    standin.control("fail", path=PATH, errcode=89253)
    launch_id = world.new_launch(path="platform_fast_registration")
    note = world.res.store.get_step(launch_id, "platform-registration", 1).note
    assert "89253" in note and " / " in note
    assert registration_task(world.res, launch_id, 1) is None
    world.decide(launch_id, "platform-registration", {"outcome": "registered", "appid": "wx0123456789abcdef"})
    assert gates(world, launch_id) == ["wechat-verification-1"]
