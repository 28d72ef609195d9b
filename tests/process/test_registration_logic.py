"""The registration phase's loops on the in-memory orchestrator (issue 10 item 3): which gate,
which attempt, in which order, for each path and outcome."""

from __future__ import annotations

import pytest

from tests.support.memory_env import World

REGISTRATION = {"official-account-authorization", "fast-registration", "admin-binding", "email-activation",
                "subject-info", "wechat-verification", "mini-program-profile"}
UNVERIFIED = {"outcome": "registered_unverified", "appid": "wx0123456789abcdef", "original_id": "gh_0123456789ab"}


def register(w: World, path: str, script: dict[str, list[dict]]) -> list[tuple[str, int]]:
    """Answer registration's gates (scripted outcomes first, then passing ones) until the
    filing opens; the gates in the order the flow opened them."""
    launch_id = w.new_launch(path=path)
    script = {k: list(v) for k, v in script.items()}
    for _ in range(30):
        waiting = [k for k in w.waiting(launch_id) if k.rsplit("-", 1)[0] in REGISTRATION]
        if not waiting:
            break
        gate = waiting[0].rsplit("-", 1)[0]
        w.decide(launch_id, gate, script[gate].pop(0) if script.get(gate) else None)
    assert "filing-materials-1" in w.waiting(launch_id)
    return [(s.step, s.attempt) for s in sorted(w.res.store.steps_for(launch_id), key=lambda s: s.id)
            if s.step in REGISTRATION]


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path)


def test_a_failed_verification_reopens_only_the_verification(world):
    failed = {"outcome": "failed", "reason": "对公打款失败 / transfer failed"}
    assert register(world, "standalone", {"wechat-verification": [failed, failed]}) == [
        ("email-activation", 1), ("subject-info", 1), ("wechat-verification", 1), ("wechat-verification", 2),
        ("wechat-verification", 3), ("mini-program-profile", 1)]


def test_registered_but_unverified_binds_the_admin_then_verifies_only(tmp_path):
    w = World(tmp_path)
    calls = register(w, "reuse_official_account", {"fast-registration": [UNVERIFIED]})
    subject = w.res.store.list_clients()[0].subject_type
    expected = [("official-account-authorization", 1), ("fast-registration", 1), ("admin-binding", 1)]
    if subject != "individual":  # 个人 subjects have no 认证 at all
        expected.append(("wechat-verification", 1))
    assert calls == [*expected, ("mini-program-profile", 1)]


def test_a_verified_fast_registration_skips_verification(world):
    assert register(world, "reuse_official_account", {}) == [
        ("official-account-authorization", 1), ("fast-registration", 1), ("admin-binding", 1),
        ("mini-program-profile", 1)]


def test_a_failed_fast_registration_authorises_again(world):
    failed = {"outcome": "failed", "reason": "管理员未确认 / admin did not confirm"}
    assert register(world, "reuse_official_account", {"fast-registration": [failed]})[:4] == [
        ("official-account-authorization", 1), ("fast-registration", 1),
        ("official-account-authorization", 2), ("fast-registration", 2)]


def test_a_profile_over_wechats_limits_is_refused_and_asked_again(world):
    too_many = {"outcome": "set", "name": "示例小程序", "avatar_set": True, "intro": "点餐 / ordering",
                "categories": ["餐饮服务", "外卖", "零售", "教育", "医疗", "旅游"]}
    calls = register(world, "standalone", {"mini-program-profile": [too_many]})
    assert calls[-2:] == [("mini-program-profile", 1), ("mini-program-profile", 2)]
    launch_id = world.res.store.list_launches()[0].id
    refused = world.res.store.get_step(launch_id, "mini-program-profile", 1)
    assert refused.status == "rejected" and "categories" in refused.note
