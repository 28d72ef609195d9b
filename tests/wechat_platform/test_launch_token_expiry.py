"""Tokens expire in the middle of a launch (issue 12): the face task is created with one
authorizer token, every token then expires at WeChat (42001), and the launch's next action —
the review submission — refreshes each token once and goes on, with no backoff, no staff click
and no call made twice. In-memory orchestrator, the stand-in over real HTTP."""

from __future__ import annotations

from tests.wechat_platform.test_acting_steps import APPID, until_waiting


def test_a_launch_goes_on_through_expired_tokens(world, standin):
    sleeps: list[float] = []
    world.res.wechat.client.sleep = sleeps.append
    launch_id = world.new_launch()
    until_waiting(world, launch_id, "face-verification-1")
    assert standin.calls("/wxa/icp/create_icp_verifytask", APPID) == 1
    component_before = standin.calls("/cgi-bin/component/api_component_token")
    refresh_before = standin.calls("/cgi-bin/component/api_authorizer_token")

    assert standin.control("expire_tokens")["expired"] >= 1  # the component's and every authorizer's

    until_waiting(world, launch_id, "code-review-1")
    store = world.res.store
    assert store.get_decision(launch_id, "review-submission", 1).channel == "wechat-api"
    assert standin.calls("/wxa/submit_audit", APPID) == 1
    # one new component token and one authorizer refresh that WeChat answered, then none
    assert standin.calls("/cgi-bin/component/api_component_token") == component_before + 1
    assert len(standin.standin.calls_to("/cgi-bin/component/api_authorizer_token", ok=True)) == refresh_before + 1
    assert sleeps == []  # a refresh is not a backoff
