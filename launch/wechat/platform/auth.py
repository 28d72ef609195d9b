"""A client authorises the platform: pre-auth code → authorisation link (PC page or mobile) →
WeChat redirects the admin to ``redirect_uri?auth_code=…&expires_in=600`` → ``query_auth``
stores the authorizer's app id and refresh token (encrypted) in the store.

Shapes (developers.weixin.qq.com/doc/oplatform, openApi/ticket-token getPreAuthCode and
getAuthorizerAccessToken / api_query_auth; Third-party_Platforms/2.0/api/Before_Develop/
Authorization_Process_Technical_Description; wechatpy component.py create_preauthcode,
query_auth, get_pre_auth_url(_m)):

- POST /cgi-bin/component/api_create_preauthcode?component_access_token=… {component_appid}
  → {pre_auth_code, expires_in} (the docs give 1800 s in the text, 600 in the sample)
- PC:     https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid=&pre_auth_code=
          &redirect_uri=&auth_type=  (auth_type 1 official accounts, 2 mini programs, 3 both)
- mobile: https://mp.weixin.qq.com/safe/bindcomponent?action=bindcomponent&no_scan=1
          &component_appid=&pre_auth_code=&redirect_uri=&auth_type=|biz_appid=#wechat_redirect
          (auth_type and biz_appid exclusive; biz_appid names the one account allowed)
- POST /cgi-bin/component/api_query_auth?component_access_token=… {component_appid,
  authorization_code} → {authorization_info: {authorizer_appid, authorizer_access_token,
  expires_in, authorizer_refresh_token, func_info: [{funcscope_category: {id}}]}}
- POST /cgi-bin/component/api_get_authorizer_list {component_appid, offset, count ≤ 500} →
  {total_count, list: [{authorizer_appid, refresh_token, auth_time}]} (getAuthorizerList: the
  documented way back to a refresh token whose auth code was never exchanged)
- POST /cgi-bin/component/api_get_authorizer_info {component_appid, authorizer_appid} →
  {authorizer_info: {…}, authorization_info: {authorizer_appid, func_info}} (getAuthorizerInfo)
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from launch.wechat.platform.client import PlatformClient
from launch.wechat.platform.tokens import PlatformTokens, expiry

__all__ = ["AuthApi", "Authorization", "FuncScope", "ListedAuthorizer", "PreAuthCode"]

PC_PAGE = "https://mp.weixin.qq.com/cgi-bin/componentloginpage"
MOBILE_PAGE = "https://mp.weixin.qq.com/safe/bindcomponent"
AUTH_TYPE_MINI_PROGRAM = 2


class PreAuthCode(BaseModel):
    pre_auth_code: str = Field(repr=False)
    expires_in: int = 1800


class FuncScope(BaseModel):
    id: int


class _FuncInfo(BaseModel):
    funcscope_category: FuncScope


class Authorization(BaseModel):
    """api_query_auth's authorization_info (tokens hidden from repr)."""

    authorizer_appid: str
    authorizer_access_token: str | None = Field(default=None, repr=False)
    expires_in: int = 7200
    authorizer_refresh_token: str = Field(repr=False)
    func_info: list[_FuncInfo] = []

    def permission_sets(self) -> list[int]:
        return sorted({f.funcscope_category.id for f in self.func_info})


class ListedAuthorizer(BaseModel):
    """One row of api_get_authorizer_list (the refresh token hidden from repr)."""

    authorizer_appid: str
    refresh_token: str = Field(repr=False)
    auth_time: int = 0


LIST_PAGE = 500  # getAuthorizerList's largest page


class AuthApi:
    def __init__(self, tokens: PlatformTokens, client: PlatformClient | None = None) -> None:
        self.tokens = tokens
        self.client = client or tokens.client

    def create_preauthcode(self) -> PreAuthCode:
        data = self.client.component(
            "POST", "/cgi-bin/component/api_create_preauthcode", body={"component_appid": self.tokens.component_appid}
        )
        return PreAuthCode.model_validate(data)

    def authorization_link(
        self, pre_auth_code: str, redirect_uri: str, *, mobile: bool = False,
        auth_type: int = AUTH_TYPE_MINI_PROGRAM, biz_appid: str | None = None,
    ) -> str:
        """The page the client's admin opens (PC: scan the QR shown there; mobile: open in WeChat)."""
        params: dict[str, str | int] = {
            "component_appid": self.tokens.component_appid,
            "pre_auth_code": pre_auth_code,
            "redirect_uri": redirect_uri,
        }
        if biz_appid:
            params["biz_appid"] = biz_appid
        else:
            params["auth_type"] = auth_type
        if not mobile:
            return f"{PC_PAGE}?{urlencode(params)}"
        return f"{MOBILE_PAGE}?{urlencode({'action': 'bindcomponent', 'no_scan': 1, **params})}#wechat_redirect"

    def query_auth(self, auth_code: str, *, at: datetime | None = None) -> Authorization:
        """The callback: exchange ``auth_code`` and store the authorizer's app id, refresh token and
        current token (encrypted). Returns the authorisation (tokens hidden from repr)."""
        issued = at or self.tokens.now()
        data = self.client.component(
            "POST",
            "/cgi-bin/component/api_query_auth",
            body={"component_appid": self.tokens.component_appid, "authorization_code": auth_code},
        )
        info = Authorization.model_validate(data["authorization_info"])
        self.tokens.store.save_authorizer(
            info.authorizer_appid,
            info.authorizer_refresh_token,
            at=issued,
            token=info.authorizer_access_token,
            expires_at=expiry(issued, info.expires_in) if info.authorizer_access_token else None,
            func_info=info.permission_sets(),
        )
        return info

    def authorizer_list(self, offset: int = 0, count: int = LIST_PAGE) -> tuple[int, list[ListedAuthorizer]]:
        """One page of the accounts authorised to the platform: (total_count, rows)."""
        data = self.client.component("POST", "/cgi-bin/component/api_get_authorizer_list", body={
            "component_appid": self.tokens.component_appid, "offset": offset, "count": count})
        rows = [ListedAuthorizer.model_validate(r) for r in data.get("list") or []]
        return int(data.get("total_count") or 0), rows

    def permission_sets_of(self, appid: str) -> list[int]:
        """The permission sets ``appid`` granted the platform (api_get_authorizer_info)."""
        data = self.client.component("POST", "/cgi-bin/component/api_get_authorizer_info", body={
            "component_appid": self.tokens.component_appid, "authorizer_appid": appid})
        info = data.get("authorization_info") or {}
        return sorted({_FuncInfo.model_validate(f).funcscope_category.id for f in info.get("func_info") or []})

    def recover(self, appid: str, *, at: datetime | None = None, page: int = LIST_PAGE) -> bool:
        """An account WeChat counts as authorised whose auth code we never exchanged (a lost push,
        a failed exchange): find its refresh token in api_get_authorizer_list (page by page) and
        its permission sets with api_get_authorizer_info, and store them as ``query_auth`` does.
        False when WeChat does not list it (not authorised after all)."""
        offset = 0
        while True:
            total, rows = self.authorizer_list(offset, page)
            found = next((r for r in rows if r.authorizer_appid == appid), None)
            if found is not None:
                break
            offset += len(rows)
            if not rows or offset >= total:
                return False
        sets = self.permission_sets_of(appid)
        self.tokens.store.save_authorizer(appid, found.refresh_token, at=at or self.tokens.now(), func_info=sets)
        return True
