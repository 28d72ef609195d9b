"""Registration through the platform (platform_fast_registration) on the in-memory orchestrator,
with a WeChat double in place of the platform's registration API: the tool creates the
registration task when the gate opens (once per attempt, under replay and crash), sends the
client the authorisation link (no credit code or phone in Prefect's parameters, the link alert or
the step note), WeChat's answer decides the gate; a failed or expired registration reopens it with
a new task; the 认证 follows (accounts registered this way start unverified); without a platform the
path is refused at start."""

from __future__ import annotations

import itertools
import json

import pytest

from launch.app.launches import LaunchRefused, start_launch
from launch.app.preflight import add_client
from launch.app.wechat_actions import REGISTER_TASK_EFFECT, registration_task
from launch.wechat.platform.registration import EnterpriseRegistration, EnterpriseTask
from tests.support.intakes import PLATFORM_PHONE, platform_intake
from tests.support.memory_env import World

REGISTRATION = {"platform-registration", "wechat-verification", "mini-program-profile"}
REGISTERED = {"outcome": "registered", "appid": "wx0123456789abcdef"}
FAILED = {"outcome": "failed", "reason": "法人未在 24 小时内授权 / the link expired"}


class FakeRegistrationApi:
    """WeChat's fastregisterenterpriseweapp, in memory: each create makes a task."""

    def __init__(self) -> None:
        self.created: list[EnterpriseRegistration] = []
        self._ids = itertools.count(1)

    def create_enterprise(self, request: EnterpriseRegistration) -> EnterpriseTask:
        assert request.new_version is True
        self.created.append(request)
        taskid = f"task{next(self._ids):04d}"
        return EnterpriseTask(taskid=taskid, status=0, authorize_url=f"https://wx.example/auth?taskid={taskid}")


class FakePlatform:
    def __init__(self) -> None:
        self.registration = FakeRegistrationApi()

    def close(self) -> None:
        pass


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path, wechat_component_appid="wx00000000005a0d1e", wechat_component_secret="s3cret")
    w.res._wechat = FakePlatform()  # before first use: res.wechat answers the double
    yield w
    w.res.close()


def keys(w: World, launch_id: str) -> list[str]:
    return sorted(k for k in w.waiting(launch_id) if k.rsplit("-", 1)[0] in REGISTRATION)


def test_the_tool_creates_the_task_and_sends_the_link(world):
    launch_id = world.new_launch(path="platform_fast_registration")
    assert keys(world, launch_id) == ["platform-registration-1"]
    [request] = world.res.wechat.registration.created
    client = world.res.store.list_clients()[0]
    intake = world.res.store.client_intake(client.id)
    assert (request.name, request.code, request.component_phone) == (
        intake["subject"]["name"], intake["subject"]["credit_code"], PLATFORM_PHONE)
    assert registration_task(world.res, launch_id, 1) == (1, "task0001")
    note = world.res.store.get_step(launch_id, "platform-registration", 1).note
    assert "taskid=task0001" in note and "https://wx.example/auth?taskid=task0001" in note
    [alert] = [a for a in world.res.store.list_alerts() if a.dedupe_key.endswith("authorize-link")]
    assert "https://wx.example/auth?taskid=task0001" in alert.body and "client" in alert.tags
    # the credit code and the phone are nowhere Prefect or an alert sees them
    seen = json.dumps([r.parameters for r in world.orch.runs.values()], ensure_ascii=False) + alert.body + note
    assert request.code not in seen and PLATFORM_PHONE not in seen


def test_a_failed_registration_reopens_the_gate_with_a_new_task_then_the_verification(world):
    launch_id = world.new_launch(path="platform_fast_registration")
    world.decide(launch_id, "platform-registration", FAILED, channel="wechat")
    assert keys(world, launch_id) == ["platform-registration-2"]
    assert [t for _, t in (registration_task(world.res, launch_id, n) for n in (1, 2))] == ["task0001", "task0002"]
    assert len(world.res.wechat.registration.created) == 2
    world.decide(launch_id, "platform-registration", REGISTERED, channel="wechat")
    assert world.res.store.get_launch(launch_id).appid == REGISTERED["appid"]
    # accounts registered this way start unverified: the 认证 follows, then the profile
    assert keys(world, launch_id) == ["wechat-verification-1"]
    world.decide(launch_id, "wechat-verification")
    world.decide(launch_id, "mini-program-profile")
    assert "filing-materials-1" in world.waiting(launch_id)
    assert [(s.step, s.attempt, s.outcome) for s in sorted(world.res.store.steps_for(launch_id), key=lambda s: s.id)
            if s.step in REGISTRATION] == [
        ("platform-registration", 1, "failed"), ("platform-registration", 2, "registered"),
        ("wechat-verification", 1, "passed"), ("mini-program-profile", 1, "set")]
    assert len(world.res.wechat.registration.created) == 2  # replays created nothing more


def test_a_crash_right_after_the_task_was_created_creates_nothing_twice(world):
    world.orch.crash_after("act", when=lambda args: args[1] == "platform-registration")
    launch_id = world.new_launch(path="platform_fast_registration")
    assert world.orch.revive()
    world.orch.drain()
    assert keys(world, launch_id) == ["platform-registration-1"]
    assert len(world.res.wechat.registration.created) == 1
    ledger = {e.effect_key: e.count for e in world.res.store.effects_for(launch_id)}
    assert ledger[f"{REGISTER_TASK_EFFECT}1:task0001"] == 1


def test_a_crash_at_the_gate_replays_to_the_same_place(world):
    """The run dies right after the gate took WeChat's decision: the replay takes it from the
    store once, creates no task, and goes on to the 认证."""
    world.orch.crash_after("take_decision", when=lambda args: args[1] == "platform-registration")
    launch_id = world.new_launch(path="platform_fast_registration")
    world.decide(launch_id, "platform-registration", REGISTERED, channel="wechat")
    assert world.orch.revive()
    world.orch.drain()
    assert keys(world, launch_id) == ["wechat-verification-1"]
    assert len(world.res.wechat.registration.created) == 1
    decided = [d for d in world.res.store.history(launch_id) if d.gate == "platform-registration"]
    assert [(d.attempt, d.outcome) for d in decided] == [(1, "registered")]
    ledger = {e.effect_key: e.count for e in world.res.store.effects_for(launch_id)}
    assert ledger["decide:platform-registration-1"] >= 1 and ledger[f"{REGISTER_TASK_EFFECT}1:task0001"] == 1


def test_a_registration_without_the_app_id_is_refused(world):
    launch_id = world.new_launch(path="platform_fast_registration")
    from launch.app.decisions import DecisionRefused

    with pytest.raises(DecisionRefused) as refused:
        world.decide(launch_id, "platform-registration", {"outcome": "registered"})
    assert [p.field for p in refused.value.problems] == ["appid"] and " / " in refused.value.problems[0].message


def test_without_a_platform_the_path_is_refused_at_start(tmp_path):
    w = World(tmp_path)
    intake, _ = platform_intake(seed=3)
    client_id, _ = add_client(w.res, intake, w.clock.now().date())
    with pytest.raises(LaunchRefused) as refused:
        start_launch(w.res, client_id)
    assert "registration.path" in str(refused.value) and "平台" in str(refused.value)
    w.res.close()


def test_the_platform_path_needs_the_platforms_phone_and_a_credit_code():
    from pydantic import ValidationError

    from launch.domain.intake import Intake

    intake, _ = platform_intake(seed=1)
    data = intake.model_dump(mode="json")
    data["registration"]["component_phone"] = None
    with pytest.raises(ValidationError) as refused:
        Intake.model_validate(data)
    assert "registration.component_phone" in str(refused.value) and " / " in str(refused.value)
