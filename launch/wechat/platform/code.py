"""Code, review and release on behalf of a mini program (authorizer_access_token; permission
set 18, 小程序开发与数据分析).

Shapes from WeChat's docs (developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/
code-management/: commit, getTrialQRCode, submitAudit, getAuditStatus, getLatestAuditStatus,
undoAudit, release, revertCodeRelease, grayRelease), cross-checked with wechatpy
``client/api/wxa.py`` (commit, get_qrcode, submit_audit, get_audit_status,
get_latest_audit_status, undo_code_audit, release with data={}, revert_code_release) and SKIT's
WxaComponent/Code models (item_list fields, grayrelease's support_*_first flags):

  POST /wxa/commit            {template_id, ext_json (a JSON *string*), user_version, user_desc}
  GET  /wxa/get_qrcode?path=  → the trial version's QR image (JSON only on error)
  POST /wxa/submit_audit      {item_list?, preview_info?, version_desc?, feedback_info?, feedback_stuff?,
                               ugc_declare?, privacy_api_not_use?, order_path?} → {auditid}
  POST /wxa/get_auditstatus   {auditid} → {status, reason, ScreenShot}
  GET  /wxa/get_latest_auditstatus → {auditid, status, reason, ScreenShot, user_version, user_desc,
                                      submit_audit_time}
  GET  /wxa/undocodeaudit
  POST /wxa/release           body {} EXACTLY (anything else, or nothing: 44002)
  GET  /wxa/revertcoderelease
  POST /wxa/grayrelease       {gray_percentage 1–100, support_debuger_first?, support_experiencer_first?}

``release`` takes no body argument: the client always sends ``{}`` for it (ReleaseBody has no
fields), so a release without ``{}`` cannot be written.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from launch.wechat.platform.client import PlatformClient, WeChatBody

__all__ = [
    "AuditItem",
    "AuditState",
    "AuditStatus",
    "CodeApi",
    "CommitRequest",
    "GrayReleaseRequest",
    "ReleaseBody",
    "SubmitAuditRequest",
]


class CommitRequest(WeChatBody):
    template_id: int | str
    ext_json: str  # WeChat wants a JSON *string* (ext.json of the template), not an object
    user_version: str = Field(max_length=64)
    user_desc: str = Field(max_length=512)

    @field_validator("ext_json", mode="before")
    @classmethod
    def _as_json_string(cls, v: Any) -> str:
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        json.loads(v)  # must be JSON
        return v


class AuditItem(BaseModel):
    """One item_list entry: a page and its category (from get_category)."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    tag: str | None = None
    first_class: str | None = None
    second_class: str | None = None
    third_class: str | None = None
    first_id: int | None = None
    second_id: int | None = None
    third_id: int | None = None
    title: str | None = None


class SubmitAuditRequest(WeChatBody):
    item_list: list[AuditItem] | None = Field(default=None, min_length=1, max_length=5)
    preview_info: dict[str, Any] | None = None
    version_desc: str | None = None
    feedback_info: str | None = Field(default=None, max_length=200)  # on a resubmission after a rejection
    feedback_stuff: str | None = None  # media ids separated by |
    ugc_declare: dict[str, Any] | None = None
    privacy_api_not_use: bool | None = None
    order_path: str | None = None


class GrayReleaseRequest(WeChatBody):
    gray_percentage: int = Field(ge=1, le=100)
    support_debuger_first: bool | None = None
    support_experiencer_first: bool | None = None


class ReleaseBody(WeChatBody):
    """release's body: no fields, so it is always ``{}``."""

    model_config = ConfigDict(extra="forbid")


class AuditState(IntEnum):
    PASSED = 0
    REJECTED = 1
    IN_REVIEW = 2
    WITHDRAWN = 3
    DELAYED = 4


class AuditStatus(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    auditid: int | None = None
    status: int
    reason: str | None = None
    screenshot: str | None = Field(default=None, alias="ScreenShot")
    user_version: str | None = None
    user_desc: str | None = None
    submit_audit_time: int | None = None

    @property
    def state(self) -> AuditState | None:
        try:
            return AuditState(self.status)
        except ValueError:
            return None


class CodeApi:
    def __init__(self, client: PlatformClient) -> None:
        self.client = client

    def commit(self, appid: str, request: CommitRequest) -> None:
        self.client.authorizer(appid, "POST", "/wxa/commit", body=request)

    def get_qrcode(self, appid: str, path: str | None = None) -> bytes:
        params = {"path": path} if path else None
        out = self.client.authorizer(appid, "GET", "/wxa/get_qrcode", params=params, raw=True)
        if not isinstance(out, bytes):
            raise ValueError("get_qrcode answered JSON without an error")
        return out

    def submit_audit(self, appid: str, request: SubmitAuditRequest) -> int:
        data = self.client.authorizer(appid, "POST", "/wxa/submit_audit", body=request)
        assert isinstance(data, dict)
        return int(data["auditid"])

    def get_auditstatus(self, appid: str, auditid: int) -> AuditStatus:
        data = self.client.authorizer(appid, "POST", "/wxa/get_auditstatus", body={"auditid": auditid})
        return AuditStatus.model_validate(data)

    def get_latest_auditstatus(self, appid: str) -> AuditStatus:
        data = self.client.authorizer(appid, "GET", "/wxa/get_latest_auditstatus")
        return AuditStatus.model_validate(data)

    def undocodeaudit(self, appid: str) -> None:
        self.client.authorizer(appid, "GET", "/wxa/undocodeaudit")

    def release(self, appid: str) -> None:
        self.client.authorizer(appid, "POST", "/wxa/release", body=ReleaseBody())

    def revertcoderelease(self, appid: str) -> None:
        self.client.authorizer(appid, "GET", "/wxa/revertcoderelease")

    def grayrelease(self, appid: str, request: GrayReleaseRequest) -> None:
        self.client.authorizer(appid, "POST", "/wxa/grayrelease", body=request)
