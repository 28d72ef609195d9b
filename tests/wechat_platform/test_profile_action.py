"""The mini-program profile set by the tool (issue 12): name, avatar, introduction and service
categories from the client's intake, through the platform, on the in-memory orchestrator against
the local WeChat stand-in over real HTTP. Set once and the gate decided (channel wechat-api); a
crash right after the action sets nothing twice; a refusal names the intake field on the gate; an
intake that lacks the profile says so and calls nothing; a name in WeChat's review waits and the
watcher's retry asks api_wxa_querynickname; without a platform the gate stays manual."""

from __future__ import annotations

from pathlib import Path

from launch.app.launches import start_launch
from launch.app.preflight import add_client
from launch.app.wechat_actions import retry_deferred
from launch.domain.intake import parse_intake
from tests.support.intakes import fresh_intake
from tests.support.memory_env import World
from tests.wechat_platform.test_acting_steps import APPID, until_waiting

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
GATE = "mini-program-profile"
SETTERS = ("/cgi-bin/wxopen/addcategory", "/cgi-bin/account/modifysignature", "/cgi-bin/media/upload",
           "/cgi-bin/account/modifyheadimage", "/wxa/setnickname")


def avatar_file(w: World) -> None:
    """The example's avatar where the intake names it (under the agency's home)."""
    path = Path(w.res.settings.home) / "clients/acme-gz/avatar.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)


def launch_with(w: World, *, licence_scan: bool = False, **mini_program) -> str:
    """The example with ``mini_program`` fields replaced; ``licence_scan``: the business licence as
    an image in the agency's home (a name's proof material)."""
    intake, _ = fresh_intake("client-acme.yaml", seed=7)
    data = intake.model_dump(mode="json")
    data["mini_program"].update(mini_program)
    if licence_scan:
        (Path(w.res.settings.home) / "clients/acme-gz/licence.png").write_bytes(PNG)
        for doc in data["documents"]:
            if doc["kind"] == "business_licence":
                doc["file"] = "clients/acme-gz/licence.png"
    client_id, _ = add_client(w.res, parse_intake(data), w.clock.now().date())
    launch_id = start_launch(w.res, client_id)["launch_id"]
    w.orch.drain()
    return launch_id


def test_the_tool_sets_the_profile_and_the_gate_passes(world, standin):
    avatar_file(world)
    launch_id = world.new_launch()
    until_waiting(world, launch_id, "filing-materials-1")
    decision = world.res.store.get_decision(launch_id, GATE, 1)
    assert decision.channel == "wechat-api" and decision.outcome == "set"
    p = decision.payload
    assert (p["name"], p["avatar_set"], p["categories"]) == (
        "阿克米示例商城", True, ["商家自营/百货", "生活服务/综合生活服务平台"])
    assert p["intro"].startswith("阿克米示例商城") and p["name_changes"] == p["category_changes"] == 0
    profile = standin.state(APPID)["profile"]
    assert profile["nickname"] == "阿克米示例商城" and profile["head_image_url"]
    assert profile["signature"] == p["intro"]
    assert [(c["first"], c["second"]) for c in profile["categories"]] == [(304, 305), (150, 152)]
    assert [standin.calls(path, APPID) for path in SETTERS] == [1, 1, 1, 1, 1]
    # WeChat now reports the profile (getaccountbasicinfo), which is what a replay asks first.
    info = world.res.wechat.account.get_account_basic_info(APPID)
    assert (info.nickname, info.signature, info.has_head_image) == ("阿克米示例商城", p["intro"], True)


def test_a_crash_right_after_the_action_sets_nothing_twice(world, standin):
    avatar_file(world)
    world.orch.crash_after("act", when=lambda args: args[1] == GATE)
    launch_id = world.new_launch()
    for _ in range(80):
        if world.orch.revive():
            world.orch.drain()
            continue
        if "filing-materials-1" in world.waiting(launch_id):
            break
        world.decide(launch_id, sorted(world.waiting(launch_id))[0].rsplit("-", 1)[0])
    assert "filing-materials-1" in world.waiting(launch_id)
    assert [standin.calls(path, APPID) for path in SETTERS] == [1, 1, 1, 1, 1]
    assert world.res.store.get_decision(launch_id, GATE, 1).channel == "wechat-api"
    assert {k: v for k, v in {e.effect_key: e.count for e in world.res.store.effects_for(launch_id)}.items()
            if k.startswith(f"decide:{GATE}")} == {f"decide:{GATE}-1": 1}


def test_a_refusal_names_the_field_and_staff_decide(world, standin):
    avatar_file(world)
    standin.control("fail", path="/cgi-bin/account/modifysignature", errcode=53204, count=1)
    launch_id = world.new_launch()
    until_waiting(world, launch_id, f"{GATE}-1")
    note = world.res.store.get_step(launch_id, GATE, 1).note
    assert "mini_program.intro" in note and "53204" in note and "简介" in note and "introduction" in note
    assert "set now: categories" in note  # what went through before the refusal is said
    assert world.res.store.get_decision(launch_id, GATE, 1) is None
    assert standin.calls("/wxa/setnickname", APPID) == 0  # nothing after the refusal
    world.decide(launch_id, GATE)
    assert f"{GATE}-1" not in world.waiting(launch_id)


def test_a_category_wechat_does_not_offer_or_that_needs_a_qualification_is_named(world, standin):
    avatar_file(world)
    launch_id = launch_with(world, categories=["商家自营/百货", "工具/不存在"])
    until_waiting(world, launch_id, f"{GATE}-1")
    note = world.res.store.get_step(launch_id, GATE, 1).note
    assert "mini_program.categories[1]" in note and "工具/不存在" in note and "WeChat offers no category" in note
    assert sum(standin.calls(path, APPID) for path in SETTERS) == 0  # checked before anything is set


def test_a_keyword_name_without_a_licence_scan_is_named(world, standin):
    avatar_file(world)
    launch_id = launch_with(world, name="阿克米官方商城")  # the example's licence is a PDF that is not there
    until_waiting(world, launch_id, f"{GATE}-1")
    note = world.res.store.get_step(launch_id, GATE, 1).note
    assert "mini_program.name" in note and "营业执照" in note and "business licence" in note
    assert standin.calls("/wxa/setnickname", APPID) == 0
    assert world.res.store.get_decision(launch_id, GATE, 1) is None


def test_an_intake_without_the_profile_says_so_and_calls_nothing(world, standin):
    launch_id = launch_with(world, intro=None, avatar=None, categories=[])
    until_waiting(world, launch_id, f"{GATE}-1")
    note = world.res.store.get_step(launch_id, GATE, 1).note
    for field in ("mini_program.intro", "mini_program.avatar", "mini_program.categories"):
        assert field in note
    assert "客户资料不全" in note and "the intake lacks" in note
    assert sum(standin.calls(path, APPID) for path in SETTERS) == 0
    assert standin.calls("/cgi-bin/wxopen/getallcategories", APPID) == 0
    assert world.res.store.get_decision(launch_id, GATE, 1) is None


def test_a_name_in_wechats_review_waits_and_the_watcher_asks_for_its_result(world, standin):
    avatar_file(world)
    world.res.settings.wechat_reconcile_seconds = 300
    launch_id = launch_with(world, name="阿克米官方商城", licence_scan=True)  # hits the stand-in's keyword policy
    until_waiting(world, launch_id, f"{GATE}-1")
    store = world.res.store
    assert store.get_decision(launch_id, GATE, 1) is None
    assert "名称已提交微信审核" in store.get_step(launch_id, GATE, 1).note
    assert standin.state(APPID)["profile"]["nickname"] == ""
    # Still in review: the watcher's retry asks and waits again; nothing is set twice.
    world.clock.advance(seconds=301)
    assert [w for *_, w in retry_deferred(world.res, world.res.now(), older_than_seconds=300)] == ["name-in-review"]
    assert standin.calls("/wxa/api_wxa_querynickname", APPID) == 1
    # WeChat's reviewer passes the name; the next retry records the decision and resumes the run.
    standin.control("nickname_audit", appid=APPID, result="pass")
    world.clock.advance(seconds=301)
    assert [w for *_, w in retry_deferred(world.res, world.res.now(), older_than_seconds=300)] == ["set"]
    world.orch.drain()
    assert store.get_decision(launch_id, GATE, 1).payload["name"] == "阿克米官方商城"
    assert f"{GATE}-1" not in world.waiting(launch_id)
    assert [standin.calls(path, APPID) for path in SETTERS] == [1, 1, 2, 1, 1]  # the licence and the avatar


def test_a_failed_name_review_becomes_a_note_for_staff(world, standin):
    avatar_file(world)
    launch_id = launch_with(world, name="阿克米官方商城", licence_scan=True)
    until_waiting(world, launch_id, f"{GATE}-1")
    standin.control("nickname_audit", appid=APPID, result="fail", reason="材料不足 / not enough material")
    world.clock.advance(seconds=world.res.settings.wechat_reconcile_seconds + 1)
    [(*_, what)] = retry_deferred(world.res, world.res.now(),
                                  older_than_seconds=world.res.settings.wechat_reconcile_seconds)
    assert what == "refused:name-review"
    note = world.res.store.get_step(launch_id, GATE, 1).note
    assert "mini_program.name" in note and "材料不足" in note
    assert world.res.store.get_decision(launch_id, GATE, 1) is None


def test_without_a_platform_the_profile_stays_a_manual_gate(tmp_path, standin):
    w = World(tmp_path)
    avatar_file(w)
    launch_id = w.new_launch()
    until_waiting(w, launch_id, f"{GATE}-1")
    assert w.res.store.get_decision(launch_id, GATE, 1) is None
    assert not w.res.store.get_step(launch_id, GATE, 1).note
    assert standin.calls() == 0


def _name_review_push(world, launch_id: str, ret: int, reason: str = ""):
    """WeChat's wxa_nickname_audit push about this launch's mini program, as the receiver parses it."""
    from launch.wechat.events import parse_event

    original_id = world.res.store.get_launch(launch_id).original_id
    return parse_event(
        f"<xml><ToUserName><![CDATA[{original_id}]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[wxa_nickname_audit]]></Event><ret>{ret}</ret>"
        f"<nickname><![CDATA[阿克米官方商城]]></nickname><reason><![CDATA[{reason}]]></reason></xml>")


def test_wechats_name_review_push_decides_the_gate_at_once(world, standin):
    """No wait for the watcher: the push runs the profile action again, which asks WeChat and
    decides; the same push again changes nothing."""
    from launch.app.inbox import accept_push, apply_pending

    avatar_file(world)
    launch_id = launch_with(world, name="阿克米官方商城", licence_scan=True)
    until_waiting(world, launch_id, f"{GATE}-1")
    store = world.res.store
    standin.control("nickname_audit", appid=APPID, result="pass")
    row, created = accept_push(world.res, _name_review_push(world, launch_id, 3), path_appid=APPID)
    assert created
    [outcome] = [o for o in apply_pending(world.res) if o.inbox_id == row.id]
    world.orch.drain()
    assert outcome.result == "applied" and outcome.launch_id == launch_id, outcome
    decision = store.get_decision(launch_id, GATE, 1)
    assert decision.channel == "wechat-api" and decision.payload["name"] == "阿克米官方商城"
    assert f"{GATE}-1" not in world.waiting(launch_id)
    assert standin.calls("/wxa/setnickname", APPID) == 1  # asked, not set again

    again, created = accept_push(world.res, _name_review_push(world, launch_id, 3), path_appid=APPID)
    assert not created and again.id == row.id  # WeChat's retry of the same push: one row


def test_a_rejected_name_push_leaves_a_note_and_no_decision(world, standin):
    from launch.app.inbox import accept_push, apply_pending

    avatar_file(world)
    launch_id = launch_with(world, name="阿克米官方商城", licence_scan=True)
    until_waiting(world, launch_id, f"{GATE}-1")
    standin.control("nickname_audit", appid=APPID, result="fail", reason="材料不足 / not enough material")
    row, _ = accept_push(world.res, _name_review_push(world, launch_id, 2, "材料不足"), path_appid=APPID)
    [outcome] = [o for o in apply_pending(world.res) if o.inbox_id == row.id]
    assert outcome.result == "noted" and "refused:name-review" in (outcome.detail or ""), outcome
    assert world.res.store.get_decision(launch_id, GATE, 1) is None
    assert "not enough material" in world.res.store.get_step(launch_id, GATE, 1).note
