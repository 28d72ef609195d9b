"""The mini program's account as WeChat holds it: getAccountBasicInfo (获取基本信息).

Doc: developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/basic-info-management/
api_getaccountbasicinfo.html — ``POST /cgi-bin/account/getaccountbasicinfo`` with the authorizer
token (permission sets 3 and 30; the older page, getAccountBasicInfo.html, also lists 61, and
earlier versions of the doc gave it as GET: WeChat's current page says POST, so this client posts
``{}``). Answer: {appid, account_type (3 mini program), principal_type, principal_name,
realname_status, wx_verify_info {qualification_verify, naming_verify, annual_review, …},
signature_info, head_image_info, nickname, credential, customer_type (0 until 认证 is done)}.

Read: the 认证 state (``wx_verify_info.qualification_verify``: "是否资质认证，若是，拥有微信
认证相关的权限") and the public profile as WeChat holds it — ``nickname``,
``signature_info.signature`` (the introduction) and ``head_image_info.head_image_url`` — which
the profile action asks before setting anything (launch/app/profile_action.py). Everything else
is dropped on parsing — ``credential`` is the organisation's
code and ``principal_name`` a person's name for an individual: never kept, never logged.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from launch.wechat.platform.client import PlatformClient

__all__ = ["AccountApi", "AccountBasicInfo", "HeadImageInfo", "SignatureInfo", "WxVerifyInfo"]


class WxVerifyInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    qualification_verify: bool = False
    naming_verify: bool | None = None


class SignatureInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    signature: str = ""


class HeadImageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    head_image_url: str = ""


class AccountBasicInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")  # principal_name, credential, …: not read, not kept

    appid: str | None = None
    account_type: int | None = None
    realname_status: int | None = None
    wx_verify_info: WxVerifyInfo = WxVerifyInfo()
    customer_type: int | None = None  # 认证类型; 0 until 认证 is done
    nickname: str = ""  # the mini program's name (public)
    signature_info: SignatureInfo = SignatureInfo()
    head_image_info: HeadImageInfo = HeadImageInfo()

    @property
    def signature(self) -> str:
        return self.signature_info.signature

    @property
    def has_head_image(self) -> bool:
        return bool(self.head_image_info.head_image_url)

    @property
    def verified(self) -> bool:
        """认证 done (资质认证)."""
        return bool(self.wx_verify_info.qualification_verify)


class AccountApi:
    def __init__(self, client: PlatformClient) -> None:
        self.client = client

    def get_account_basic_info(self, appid: str) -> AccountBasicInfo:
        data = self.client.authorizer(appid, "POST", "/cgi-bin/account/getaccountbasicinfo", body={})
        assert isinstance(data, dict)
        return AccountBasicInfo.model_validate(data)
