"""Registration of a client's mini program through the platform.

1. Enterprise fast registration (企业法人快速注册).
   WeChat's notice (developers.weixin.qq.com/community/develop/doc/0004829e9105005ce7d480e6561401):
   from 2026-04-30 12:00 ``registerMiniprogram`` = POST /cgi-bin/component/fastregisterweapp goes
   offline, and so does the OLD version of ``fastregisterenterpriseweapp``; the replacement is the
   NEW version of ``fastregisterenterpriseweapp`` with ``new_version: true``: body {name, code
   (18-digit unified social credit code only), component_phone, new_version: true} — no code_type,
   no legal person's WeChat id / name / openid. On success WeChat returns an authorisation URL
   (valid 24 h) that the platform shows the client as a QR code or sends them; WeChat no longer
   sends the legal person a template message.
   Path: POST /wxa/component/fastregisterenterpriseweapp (as listed by the Senparc-derived SDK
   docs: ``FastRegisterEnterpriseWeAppAsync → POST /wxa/component/fastregisterenterpriseweapp``,
   result {taskid, authorize_url, status}); ``action=create`` / ``action=query`` {taskid} as for
   its sibling fastregisterpersonalweapp. The query action's exact body is an assumption (see
   ``query_enterprise``). The result also arrives as the push ``notify_third_fasteregister``.
   The old ``fastregisterweapp`` create/search are kept (``legacy_*``) for use until the cut-off.

   After the legal person authorises (WeChat's doc of the registration call, "注册审核事件推送",
   developers.weixin.qq.com/doc/oplatform/openApi/register-management/fast-registration-ent/
   api_registerminiprogram.html): WeChat pushes ``notify_third_fasteregister`` to the
   authorisation-event URL with {appid (the new mini program), status (0 = OK), auth_code
   (第三方授权码), msg, info {name, code, …; taskid as seen in a community thread of 2024-04-07,
   developers.weixin.qq.com/community/develop/doc/000ea6b8eacff0172d517778561c00}}. The new mini
   program is authorised to the platform: auth_code is a "queryauthcode@@@…" exchanged with
   api_query_auth (launch/app/inbox.py). It is NOT 认证'd: "自2023年12月25日起，通过本接口新注册的
   账号，默认为未认证状态" (same page; 认证 through the 代认证 API or the console), so the launch's
   wechat-verification gate follows on this path too.

2. Reusing a verified 公众号's qualifications (复用公众号主体快速注册; permission set 27):
   the 公众号's admin opens ``fastregisterauth_link`` → WeChat redirects with ``ticket`` →
   POST /cgi-bin/account/fastregister?access_token=<the 公众号's authorizer token> {ticket} →
   {appid, authorization_code, is_wx_verify_succ, is_link_succ} (docs: openApi/register-management/
   fast-registration-officalaccount/registerMiniprogramByOffiaccount). A retry must come more than
   5 s after the previous call, else the ticket counts as used (61058): this call's busy retries
   wait at least 5.5 s. ``authorization_code`` is then exchanged with api_query_auth (auth.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from pydantic import BaseModel, Field, field_validator

from launch.wechat.platform.client import PlatformClient, WeChatBody

__all__ = [
    "EnterpriseRegistration",
    "EnterpriseTask",
    "FastRegisterResult",
    "LegacyEnterpriseRegistration",
    "RegistrationApi",
    "fastregisterauth_link",
]

FASTREGISTERAUTH_PAGE = "https://mp.weixin.qq.com/cgi-bin/fastregisterauth"
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def fastregisterauth_link(component_appid: str, mp_appid: str, redirect_uri: str, *,
                          copy_wx_verify: bool = True) -> str:
    """WeChat's fastregisterauth page for the 公众号 ``mp_appid``: a URL only, no call (the
    alert deliverer builds it at send time, when the redirect's state is signed)."""
    query = urlencode({
        "appid": mp_appid,
        "component_appid": component_appid,
        "copy_wx_verify": 1 if copy_wx_verify else 0,
        "redirect_uri": redirect_uri,
    })
    return f"{FASTREGISTERAUTH_PAGE}?{query}"


class EnterpriseRegistration(WeChatBody):
    """fastregisterenterpriseweapp, NEW version (required after 2026-04-30 12:00)."""

    name: str = Field(min_length=1)
    code: str  # the 18-digit unified social credit code, nothing else
    component_phone: str = Field(min_length=1)
    new_version: bool = True

    @field_validator("code")
    @classmethod
    def _credit_code(cls, v: str) -> str:
        v = v.strip().upper()
        if not _CREDIT_CODE.match(v):
            raise ValueError("code must be an 18-character unified social credit code (统一社会信用代码)")
        return v

    @field_validator("new_version")
    @classmethod
    def _always_new(cls, v: bool) -> bool:
        if v is not True:
            raise ValueError("new_version must be true (the old version goes offline 2026-04-30)")
        return v


class EnterpriseTask(BaseModel):
    taskid: str | None = None
    authorize_url: str | None = None  # valid 24 h: show it to the client as a QR code
    status: int | None = None
    appid: str | None = None  # ASSUMPTION: the query action names the new mini program once registered


class LegacyEnterpriseRegistration(WeChatBody):
    """fastregisterweapp (registerMiniprogram): offline after 2026-04-30 12:00."""

    name: str
    code: str
    code_type: int = Field(ge=1, le=3)
    legal_persona_wechat: str
    legal_persona_name: str
    component_phone: str | None = None


class FastRegisterResult(BaseModel):
    appid: str
    authorization_code: str = Field(repr=False)
    is_wx_verify_succ: bool | None = None
    is_link_succ: bool | None = None


class RegistrationApi:
    def __init__(self, client: PlatformClient, component_appid: str) -> None:
        self.client = client
        self.component_appid = component_appid
        # fastregister: retries more than 5 s apart (61058 otherwise)
        self._slow = PlatformClient(
            client.base_url, client.http, client.tokens, retries=client.retries,
            backoff=max(client.backoff, 5.5), max_backoff=max(client.max_backoff, 30.0), sleep=client.sleep,
        )

    # ---- enterprise fast registration (new version)

    def create_enterprise(self, request: EnterpriseRegistration) -> EnterpriseTask:
        data = self.client.component(
            "POST", "/wxa/component/fastregisterenterpriseweapp", params={"action": "create"}, body=request
        )
        return EnterpriseTask.model_validate(data)

    def query_enterprise(self, taskid: str) -> EnterpriseTask:
        """ASSUMPTION: action=query with {taskid, new_version: true}, as fastregisterpersonalweapp's
        query takes {taskid}; re-check against WeChat's page for fastregisterenterpriseweapp."""
        data = self.client.component(
            "POST", "/wxa/component/fastregisterenterpriseweapp", params={"action": "query"},
            body={"taskid": taskid, "new_version": True},
        )
        return EnterpriseTask.model_validate(data)

    # ---- the old call, until 2026-04-30 12:00

    def legacy_create(self, request: LegacyEnterpriseRegistration) -> None:
        self.client.component("POST", "/cgi-bin/component/fastregisterweapp", params={"action": "create"}, body=request)

    def legacy_search(self, name: str, legal_persona_wechat: str, legal_persona_name: str) -> None:
        self.client.component(
            "POST", "/cgi-bin/component/fastregisterweapp", params={"action": "search"},
            body={"name": name, "legal_persona_wechat": legal_persona_wechat,
                  "legal_persona_name": legal_persona_name},
        )

    # ---- reuse a 公众号's qualifications

    def fastregisterauth_link(self, mp_appid: str, redirect_uri: str, *, copy_wx_verify: bool = True) -> str:
        """The page the 公众号's admin opens to let the platform register a mini program with the
        公众号's qualifications; WeChat redirects to ``redirect_uri?ticket=…``."""
        return fastregisterauth_link(self.component_appid, mp_appid, redirect_uri, copy_wx_verify=copy_wx_verify)

    def fastregister(self, mp_appid: str, ticket: str) -> FastRegisterResult:
        """POST /cgi-bin/account/fastregister with the 公众号's authorizer token."""
        data = self._slow.authorizer(mp_appid, "POST", "/cgi-bin/account/fastregister", body={"ticket": ticket})
        return FastRegisterResult.model_validate(data)
