"""Registration: the reuse path (fastregisterauth -> account/fastregister) and enterprise fast
registration (the new fastregisterenterpriseweapp; the old fastregisterweapp offline)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.support.standin import COMPONENT_APPID


def test_reuse_an_official_accounts_qualifications(standin):
    official = standin.authorized()  # the 公众号, authorised to the platform
    page = standin.http.get("/cgi-bin/fastregisterauth", params={
        "appid": official.appid, "component_appid": COMPONENT_APPID, "copy_wx_verify": 1,
        "redirect_uri": "https://agency.example/back?x=1"}, follow_redirects=False)
    assert page.status_code == 302
    ticket = parse_qs(urlparse(page.headers["location"]).query)["ticket"][0]
    made = standin.call("/cgi-bin/account/fastregister", official.token, {"ticket": ticket})
    assert made["errcode"] == 0 and made["appid"].startswith("wx") and made["authorization_code"]
    assert made["is_wx_verify_succ"] == "true" and made["is_link_succ"] == "true"
    assert standin.call("/cgi-bin/account/fastregister", official.token, {"ticket": ticket})["errcode"] == 61058
    ct = standin.component_token()
    auth = standin.call("/cgi-bin/component/api_query_auth", ct, {
        "component_appid": COMPONENT_APPID, "authorization_code": made["authorization_code"]})
    assert auth["authorization_info"]["authorizer_appid"] == made["appid"]


def test_enterprise_fast_registration_new_version(standin):
    ct = standin.component_token()
    body = {"name": "示例餐饮有限公司", "code": "91440101MA5XXXXXX1", "component_phone": "020-12345678"}
    assert standin.call("/wxa/component/fastregisterenterpriseweapp", ct, body)["errcode"] == -1  # no new_version
    assert standin.call("/wxa/component/fastregisterenterpriseweapp", ct,
                        {**body, "new_version": True, "code": "123"})["errcode"] == 89248
    assert standin.call("/wxa/component/fastregisterenterpriseweapp", ct,
                        {"name": "x", "new_version": True})["errcode"] == 89253
    made = standin.call("/wxa/component/fastregisterenterpriseweapp", ct, {**body, "new_version": True})
    assert made["errcode"] == 0 and made["status"] == 0 and made["authorize_url"].startswith("https://")
    assert standin.call("/wxa/component/fastregisterenterpriseweapp", ct,
                        {**body, "new_version": True})["errcode"] == 89249  # one task per subject at a time
    standin.advance(kind="register")
    query = standin.call("/wxa/component/fastregisterenterpriseweapp", ct, {"taskid": made["taskid"]},
                         params={"action": "query"})
    assert query["status"] == 12
    assert standin.pushes("notify_third_fasteregister")[-1]["appid"].startswith("wx")


def test_legacy_fastregisterweapp_is_offline(standin):
    ct = standin.component_token()
    answer = standin.call("/cgi-bin/component/fastregisterweapp", ct, {"name": "x"}, params={"action": "create"},
                          token_param="component_access_token")
    assert answer["errcode"] == -1


@pytest.mark.parametrize("standin_config", [{"legacy_fastregister_offline": False}], indirect=True)
def test_legacy_fastregisterweapp_before_the_cut_off(standin):
    ct = standin.component_token()
    body = {"name": "示例", "code": "91440101MA5XXXXXX1", "code_type": 1, "legal_persona_wechat": "wxid",
            "legal_persona_name": "张三", "component_phone": "1"}
    assert standin.call("/cgi-bin/component/fastregisterweapp", ct, {**body, "code_type": 9},
                        params={"action": "create"})["errcode"] == 89248
    assert standin.call("/cgi-bin/component/fastregisterweapp", ct, body, params={"action": "create"})["errcode"] == 0
    assert standin.call("/cgi-bin/component/fastregisterweapp", ct, {"name": "示例"},
                        params={"action": "search"})["errcode"] == 0
