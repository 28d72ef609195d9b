"""The 认证 (wechat-verification) asked of WeChat by the watcher's reconciliation, on the in-memory
orchestrator against the local WeChat stand-in: getaccountbasicinfo's
wx_verify_info.qualification_verify true decides the gate "passed" (channel wechat-api, once);
false decides nothing; a mini program not authorised to the platform is not asked."""

from __future__ import annotations

from datetime import UTC, datetime

from devtools.simulator import PASSING
from launch.app.reconcile import ACCOUNT, reconcile
from launch.wechat.mapping import DECIDED_BY_API
from launch.wechat.platform.tokens import remember_ticket
from tests.support.memory_env import World
from tests.support.standin import COMPONENT_APPID, SECRET

APPID = PASSING["subject-info"]["appid"]
WAIT = 1800
PATH = "/cgi-bin/account/getaccountbasicinfo"


def to_verification(w: World, launch_id: str) -> None:
    for _ in range(10):
        keys = sorted(w.waiting(launch_id))
        if "wechat-verification-1" in keys:
            return
        w.decide(launch_id, keys[0].rsplit("-", 1)[0])
    raise AssertionError(w.waiting(launch_id))


def poll(w: World, after: float = WAIT + 60):
    w.clock.advance(seconds=after)
    report = reconcile(w.res, w.res.wechat, w.res.now(), older_than_seconds=WAIT)
    w.orch.drain()
    return report


def test_the_verification_is_decided_once_wechat_says_verified(world, standin):
    launch_id = world.new_launch()
    to_verification(world, launch_id)
    report = poll(world)
    assert not report.decided and report.still_waiting == 1 and standin.calls(PATH, APPID) == 1
    assert "wechat-verification-1" in world.waiting(launch_id)

    standin.control("verify", appid=APPID)  # WeChat's 认证 reviewer approves
    report = poll(world, after=60)
    assert [(d.gate, d.attempt, d.outcome, d.status) for d in report.decided] == [
        ("wechat-verification", 1, "passed", "recorded")]
    decision = world.res.store.get_decision(launch_id, "wechat-verification", 1)
    assert decision.channel == "wechat-api" and decision.actor == DECIDED_BY_API
    assert "mini-program-profile-1" in world.waiting(launch_id)
    assert poll(world).calls == 0  # nothing waits on WeChat any more


def test_an_error_is_reported_and_the_gate_waits(world, standin):
    launch_id = world.new_launch()
    to_verification(world, launch_id)
    standin.control("fail", path=PATH, errcode=40001, count=2)  # the token is refused twice
    report = poll(world)
    assert [e.api for e in report.errors] == [ACCOUNT] and "access_token=" not in report.errors[0].message
    assert "wechat-verification-1" in world.waiting(launch_id)


def test_a_mini_program_not_authorised_to_the_platform_is_not_asked(tmp_path, standin):
    w = World(tmp_path, wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
              wechat_api_base=standin.url)
    remember_ticket(w.res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    launch_id = w.new_launch()  # the admin never authorised it: manual gates
    to_verification(w, launch_id)
    report = poll(w)
    assert report.calls == 0 and report.still_waiting == 1 and standin.calls(PATH) == 0
    w.res.close()
