"""The mini program's profile (小程序基本信息): name, avatar, introduction and service categories,
set on the client's behalf (authorizer_access_token).

Shapes from WeChat's docs (developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/):

  basic-info-management/api_setnickname.html  (setNickName; permission set 30)
    POST /wxa/setnickname {nick_name, id_card?, license?, naming_other_stuff_1..5?} → {wording, audit_id}
    "当名称没有命中关键词，则直接设置成功；当名称命中关键词，需提交证明材料，并需要审核" — an
    audit_id (non-zero) means the name waits for WeChat's review; its result is pushed
    (wxa_nickname_audit {nickname, ret 2 failed / 3 passed, reason}) and can be asked:
  basic-info-management/api_getnicknamestatus.html  (getNickNameStatus; permission set 30)
    POST /wxa/api_wxa_querynickname {audit_id} → {nickname, audit_stat 1 in review / 2 failed /
    3 passed, fail_reason, create_time, audit_time}; 91011: no such audit.
  basic-info-management/api_checknickname.html  (checkNickName; permission sets 3, 31)
    POST /cgi-bin/wxverify/checkwxverifynickname {nick_name} → {hit_condition, wording}; "只允许通过
    api创建的小程序使用" (41033 otherwise). (The path is /cgi-bin/wxverify/…, not /wxa/….)
  basic-info-management/api_setheadimage.html  (setHeadImage; permission sets 3, 30)
    POST /cgi-bin/account/modifyheadimage {head_img_media_id, x1, y1, x2, y2} — the crop box in
    [0, 1] (the doc types them as strings; x1=y1=0, x2=y2=1 is the whole image). The media is a
    temporary one uploaded with the AUTHORIZER's token (40007 otherwise): BMP, JPEG, JPG, GIF, PNG,
    at most 2 MB; "一年内可申请修改5次".
  (the temporary media API) POST /cgi-bin/media/upload?type=image, multipart field ``media`` →
    {type, media_id, created_at}.
  basic-info-management/api_setsignature.html  (setSignature; permission sets 3, 30)
    POST /cgi-bin/account/modifysignature {signature} — 53204 "功能介绍长度必须在4~120个字符范围";
    53200: this month's changes used up; 53201: a blacklisted keyword.
  category-management/api_getallcategories.html  (getAllCategories; permission set 30)
    GET /cgi-bin/wxopen/getallcategories → {categories_list {categories [{id, name, level, father,
    children, sensitive_type (1: needs a qualification), qualify}]}}
  category-management/api_addcategory.html  (addCategory; permission set 30)
    POST /cgi-bin/wxopen/addcategory {categories [{first, second, certicates [{key, value}]}]}
    ("certicates" is WeChat's spelling)
  category-management/api_getcategory.html  (getSettingCategories; permission set 30)
    GET /cgi-bin/wxopen/getcategory → {categories [{first, first_name, second, second_name,
    audit_status 1 in review / 2 refused / 3 passed, audit_reason}], limit, quota, category_limit}
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from launch.wechat.platform.client import PlatformClient, WeChatBody

__all__ = [
    "CategoryChoice",
    "CategoryNode",
    "NicknameAudit",
    "NicknameCheck",
    "ProfileApi",
    "SetCategory",
    "SetNickNameRequest",
    "SetNickNameResult",
    "SettingCategories",
]


class SetNickNameRequest(WeChatBody):
    nick_name: str = Field(min_length=1, max_length=30)
    id_card: str | None = None  # 身份证照片 media id: individuals
    license: str | None = None  # 营业执照 media id: organisations
    naming_other_stuff_1: str | None = None
    naming_other_stuff_2: str | None = None
    naming_other_stuff_3: str | None = None
    naming_other_stuff_4: str | None = None
    naming_other_stuff_5: str | None = None


class SetNickNameResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    wording: str = ""
    audit_id: int = 0  # 0 / absent: set at once, no review

    @property
    def in_review(self) -> bool:
        return bool(self.audit_id)


class NicknameAudit(BaseModel):
    model_config = ConfigDict(extra="ignore")

    nickname: str = ""
    audit_stat: int = 1  # 1 in review, 2 failed, 3 passed
    fail_reason: str = ""

    IN_REVIEW: ClassVar[int] = 1
    FAILED: ClassVar[int] = 2
    PASSED: ClassVar[int] = 3


class NicknameCheck(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hit_condition: bool = False
    wording: str = ""


class CategoryNode(BaseModel):
    model_config = ConfigDict(extra="ignore")  # qualify: not read

    id: int
    name: str
    level: int = 0
    father: int = 0
    children: list[int] = Field(default_factory=list)
    sensitive_type: int = 0  # 1: a qualification is needed


class Certicate(BaseModel):
    key: str
    value: str  # media id


class SetCategory(BaseModel):
    first: int
    second: int
    certicates: list[Certicate] = Field(default_factory=list)


class _AddCategory(WeChatBody):
    categories: list[SetCategory] = Field(min_length=1)


class CategoryChoice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    first: int
    first_name: str = ""
    second: int
    second_name: str = ""
    audit_status: int | None = None  # 1 in review, 2 refused, 3 passed
    audit_reason: str = ""


class SettingCategories(BaseModel):
    model_config = ConfigDict(extra="ignore")

    categories: list[CategoryChoice] = Field(default_factory=list)
    limit: int | None = None
    quota: int | None = None
    category_limit: int | None = None


class ProfileApi:
    def __init__(self, client: PlatformClient) -> None:
        self.client = client

    def _call(self, appid: str, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        out = self.client.authorizer(appid, method, path, body=body, **kw)
        assert isinstance(out, dict)
        return out

    # name
    def check_nickname(self, appid: str, nick_name: str) -> NicknameCheck:
        return NicknameCheck.model_validate(
            self._call(appid, "POST", "/cgi-bin/wxverify/checkwxverifynickname", {"nick_name": nick_name}))

    def set_nickname(self, appid: str, request: SetNickNameRequest) -> SetNickNameResult:
        return SetNickNameResult.model_validate(self._call(appid, "POST", "/wxa/setnickname", request))

    def query_nickname(self, appid: str, audit_id: int) -> NicknameAudit:
        return NicknameAudit.model_validate(
            self._call(appid, "POST", "/wxa/api_wxa_querynickname", {"audit_id": audit_id}))

    # avatar
    def upload_image(self, appid: str, *, filename: str, content: bytes, content_type: str) -> str:
        """A temporary image (POST /cgi-bin/media/upload?type=image): its media id."""
        out = self._call(appid, "POST", "/cgi-bin/media/upload", params={"type": "image"},
                         files={"media": (filename, content, content_type)}, data={})
        return str(out["media_id"])

    def modify_head_image(self, appid: str, media_id: str) -> None:
        """The whole image as the avatar (crop box 0,0 → 1,1; strings, as the doc's example)."""
        self._call(appid, "POST", "/cgi-bin/account/modifyheadimage",
                   {"head_img_media_id": media_id, "x1": "0", "y1": "0", "x2": "1", "y2": "1"})

    # introduction
    def modify_signature(self, appid: str, signature: str) -> None:
        self._call(appid, "POST", "/cgi-bin/account/modifysignature", {"signature": signature})

    # categories
    def get_all_categories(self, appid: str) -> list[CategoryNode]:
        out = self._call(appid, "GET", "/cgi-bin/wxopen/getallcategories")
        return [CategoryNode.model_validate(c) for c in (out.get("categories_list") or {}).get("categories") or []
                if isinstance(c, dict) and "id" in c and "name" in c]

    def add_categories(self, appid: str, categories: list[SetCategory]) -> None:
        self._call(appid, "POST", "/cgi-bin/wxopen/addcategory", _AddCategory(categories=categories))

    def get_category(self, appid: str) -> SettingCategories:
        return SettingCategories.model_validate(self._call(appid, "GET", "/cgi-bin/wxopen/getcategory"))
