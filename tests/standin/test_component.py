"""Tokens: the ticket the stand-in pushed, component and authorizer tokens, expiry mid-launch."""

from __future__ import annotations

import pytest


def test_component_token_needs_the_latest_ticket(standin):
    cfg = standin.standin.config
    body = {"component_appid": cfg.component_appid, "component_appsecret": cfg.component_appsecret}
    assert standin.call("/cgi-bin/component/api_component_token",
                        body={**body, "component_verify_ticket": "ticket@@@made-up"})["errcode"] == 61006
    old = standin.ticket()
    new = standin.ticket()
    assert standin.call("/cgi-bin/component/api_component_token",
                        body={**body, "component_verify_ticket": old})["errcode"] == 61006
    ok = standin.call("/cgi-bin/component/api_component_token", body={**body, "component_verify_ticket": new})
    assert ok["errcode"] == 0 and ok["expires_in"] == 7200 and ok["component_access_token"]
    bad_secret = standin.call("/cgi-bin/component/api_component_token",
                              body={**body, "component_appsecret": "wrong", "component_verify_ticket": new})
    assert bad_secret["errcode"] == 40125
    standin.advance(seconds=12 * 3600 + 1, finish=False)  # a ticket lives 12 h
    assert standin.call("/cgi-bin/component/api_component_token",
                        body={**body, "component_verify_ticket": new})["errcode"] == 61005


def test_component_calls_take_either_token_parameter_name(standin):
    ct = standin.component_token()
    appid = standin.standin.config.component_appid
    for name in ("component_access_token", "access_token"):
        answer = standin.call("/cgi-bin/component/api_create_preauthcode", ct, {"component_appid": appid},
                              token_param=name)
        assert answer["errcode"] == 0 and answer["pre_auth_code"].startswith("preauthcode@@@")


def test_authorisation_and_refresh(standin):
    app = standin.authorized("wx0123456789abcdef")
    assert app.appid == "wx0123456789abcdef" and app.original_id.startswith("gh_")
    assert standin.call("/wxa/get_latest_auditstatus", app.token)["errcode"] == 85058  # a real call works
    ct = standin.component_token()
    cfg = standin.standin.config
    fresh = standin.call("/cgi-bin/component/api_authorizer_token", ct, {
        "component_appid": cfg.component_appid, "authorizer_appid": app.appid,
        "authorizer_refresh_token": app.refresh_token})
    assert fresh["errcode"] == 0 and fresh["authorizer_access_token"] != app.token
    assert fresh["authorizer_refresh_token"] == app.refresh_token
    wrong = standin.call("/cgi-bin/component/api_authorizer_token", ct, {
        "component_appid": cfg.component_appid, "authorizer_appid": app.appid,
        "authorizer_refresh_token": "refreshtoken@@@nope"})
    assert wrong["errcode"] == 61023


def test_an_authorization_code_is_used_once(standin):
    ct = standin.component_token()
    cfg = standin.standin.config
    consent = standin.control("authorize")
    body = {"component_appid": cfg.component_appid, "authorization_code": consent["auth_code"]}
    assert standin.call("/cgi-bin/component/api_query_auth", ct, body)["errcode"] == 0
    assert standin.call("/cgi-bin/component/api_query_auth", ct, body)["errcode"] == 61010


@pytest.mark.parametrize("standin_config", [{"token_lifetime": 600}], indirect=True)
def test_a_token_expires_in_the_middle_of_a_launch(standin):
    app = standin.authorized()
    commit = {"template_id": 1, "ext_json": "{}", "user_version": "1.0.0", "user_desc": "first"}
    assert standin.call("/wxa/commit", app.token, commit)["errcode"] == 0
    standin.advance(seconds=601, finish=False)
    assert standin.call("/wxa/submit_audit", app.token, {})["errcode"] == 42001
    # the component token expired too: a new ticket, a new component token, a new authorizer token
    ct = standin.component_token()
    cfg = standin.standin.config
    fresh = standin.call("/cgi-bin/component/api_authorizer_token", ct, {
        "component_appid": cfg.component_appid, "authorizer_appid": app.appid,
        "authorizer_refresh_token": app.refresh_token})["authorizer_access_token"]
    assert standin.call("/wxa/submit_audit", fresh, {})["errcode"] == 0
    assert standin.calls("/wxa/submit_audit") == 2  # both calls logged, the refused one too


def test_unknown_missing_and_expired_on_demand(standin):
    app = standin.authorized()
    assert standin.call("/wxa/get_latest_auditstatus", "not-a-token")["errcode"] == 40001
    assert standin.call("/wxa/get_latest_auditstatus")["errcode"] == 41001
    ct = standin.component_token()
    assert standin.call("/wxa/get_latest_auditstatus", ct)["errcode"] == 40001  # a component token is not one
    assert standin.control("expire_tokens", appid=app.appid)["expired"] == 1
    assert standin.call("/wxa/get_latest_auditstatus", app.token)["errcode"] == 42001


def test_unauthorized_stops_the_tokens(standin):
    app = standin.authorized()
    standin.control("unauthorize", appid=app.appid)
    assert standin.call("/wxa/get_latest_auditstatus", app.token)["errcode"] == 42001
    assert [p["kind"] for p in standin.pushes()][-1] == "unauthorized"


def test_the_authorizer_list_pages_through_consented_accounts(standin):
    """getAuthorizerList lists every account that consented (code exchanged or not) with its
    refresh token, oldest first, in pages of at most 500; a revoked one leaves the list."""
    ct = standin.component_token()
    cfg = standin.standin.config
    exchanged = standin.authorized()  # consented and its code exchanged
    waiting = standin.control("authorize", push=False)  # consented, code never exchanged
    revoked = standin.control("authorize", push=False)
    standin.control("unauthorize", appid=revoked["appid"])
    page = {"component_appid": cfg.component_appid, "offset": 0, "count": 1}
    first = standin.call("/cgi-bin/component/api_get_authorizer_list", ct, page)
    second = standin.call("/cgi-bin/component/api_get_authorizer_list", ct, {**page, "offset": 1})
    assert first["errcode"] == second["errcode"] == 0 and first["total_count"] == 2
    listed = first["list"] + second["list"]
    assert [r["authorizer_appid"] for r in listed] == [exchanged.appid, waiting["appid"]]
    assert listed[0]["refresh_token"] == exchanged.refresh_token
    # the unexchanged account's refresh token works as it is
    fresh = standin.call("/cgi-bin/component/api_authorizer_token", ct, {
        "component_appid": cfg.component_appid, "authorizer_appid": waiting["appid"],
        "authorizer_refresh_token": listed[1]["refresh_token"]})
    assert fresh["errcode"] == 0
    for bad in ({**page, "count": 501}, {**page, "count": 0}, {**page, "offset": -1}, {**page, "component_appid": "wx1"}):
        assert standin.call("/cgi-bin/component/api_get_authorizer_list", ct, bad)["errcode"] in (40097, 40013)


def test_the_authorizer_info_names_the_permission_sets(standin):
    ct = standin.component_token()
    cfg = standin.standin.config
    consent = standin.control("authorize", push=False, func_scopes=[18, 30])
    body = {"component_appid": cfg.component_appid, "authorizer_appid": consent["appid"]}
    info = standin.call("/cgi-bin/component/api_get_authorizer_info", ct, body)
    assert info["errcode"] == 0
    assert [f["funcscope_category"]["id"] for f in info["authorization_info"]["func_info"]] == [18, 30]
    standin.control("unauthorize", appid=consent["appid"])
    assert standin.call("/cgi-bin/component/api_get_authorizer_info", ct, body)["errcode"] == 61003


def test_start_push_ticket_checks_the_secret_and_pushes_a_ticket(standin):
    cfg = standin.standin.config
    path = "/cgi-bin/component/api_start_push_ticket"
    before = len(standin.pushes("component_verify_ticket"))
    assert standin.call(path, body={"component_appid": cfg.component_appid})["errcode"] == 41004
    assert standin.call(path, body={"component_appid": cfg.component_appid,
                                    "component_secret": "wrong"})["errcode"] == 40125
    assert standin.call(path, body={"component_appid": "wx1", "component_secret": cfg.component_appsecret})["errcode"] == 40013
    assert len(standin.pushes("component_verify_ticket")) == before  # refused: nothing pushed
    ok = standin.call(path, body={"component_appid": cfg.component_appid, "component_secret": cfg.component_appsecret})
    assert ok["errcode"] == 0
    standin.http.post("/_standin/flush")
    assert len(standin.pushes("component_verify_ticket")) == before + 1
