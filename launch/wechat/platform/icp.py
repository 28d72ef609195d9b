"""ICP filing (小程序备案) on behalf of a mini program (authorizer_access_token; permission sets
18 or 156 per the docs).

Shapes from WeChat's docs (developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/
record/: getIcpEntranceInfo, createIcpVerifyTask, queryIcpVerifyTask, uploadIcpMedia,
applyIcpFiling, cancelApplyIcpFiling, queryIcpServiceContentTypes, queryIcpNrlxTypes,
queryIcpSubjectTypes, queryIcpCertificateTypes, queryIcpDistrictCode), cross-checked with SKIT's
WxaComponent/ICP models (HTTP methods: the look-ups and get_icp_entrance_info are GET, the rest
POST) and its model samples:

  GET  /wxa/icp/get_icp_entrance_info   → {info: {status, is_canceling, audit_data[{key_name, error,
                                          suggest}], available, sms_verify_status}}
  POST /wxa/icp/create_icp_verifytask   {along_with_auth?} → {task_id, verify_url?}
                                          (the admin's notice lives 24 h; the task 3 days, 1 day
                                          with along_with_auth)
  POST /wxa/icp/query_icp_verifytask    {task_id} → {is_finish, face_status 0 not started, 1 waiting,
                                          2 failed, 3 passed, along_with_auth_result?}
  POST /wxa/icp/upload_icp_media        multipart: type, certificate_type, icp_order_field, media
                                          → {type, media_id, create_at}
  POST /wxa/icp/apply_icp_filing        {icp_subject, icp_applets, icp_materials} → on refusal
                                          errcode != 0 with hints[{errcode, err_field, errmsg}]
  POST /wxa/icp/cancel_apply_icp_filing
  GET  /wxa/icp/get_online_icp_order    → {icp_subject: {base_info: {…, record_number}, …},
                                          icp_applets: [{base_info: {…, record_number}, …}]}
                                          (getOnlineIcpOrder, 获取小程序已备案详情, permission sets 18
                                          and 156, authorizer token: developers.weixin.qq.com/doc/
                                          oplatform/openApi/miniprogram-management/record/
                                          api_getonlineicporder.html; subject 粤B2-20090059,
                                          mini program 粤B2-20090059-1626X in its samples. No images;
                                          the subject's personal fields come back masked (脱敏))
  GET  /wxa/icp/query_icp_service_content_types | query_icp_nrlx_types | query_icp_subject_types |
       query_icp_certificate_types | query_icp_district_code → {items: [...]}

The look-ups are the same for every mini program and change rarely: cached per process for
``lookup_ttl`` seconds. Documents are read by the caller from the client's files and handed in
as bytes: never through Prefect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from launch.wechat.platform.client import PlatformClient, WeChatBody
from launch.wechat.platform.errors import IcpFilingRejected, IcpHint

__all__ = [
    "ApplyIcpFilingRequest",
    "EntranceInfo",
    "IcpApi",
    "IcpFilingRejected",
    "IcpHint",
    "IcpStatus",
    "MediaUpload",
    "OnlineIcpOrder",
    "VerifyTask",
    "VerifyTaskResult",
]

LOOKUPS = (
    "query_icp_service_content_types",
    "query_icp_nrlx_types",
    "query_icp_subject_types",
    "query_icp_certificate_types",
    "query_icp_district_code",
)


class IcpStatus(IntEnum):
    """info.status of get_icp_entrance_info."""

    PLATFORM_REVIEW = 2
    PLATFORM_REJECTED = 3
    BUREAU_REVIEW = 4
    BUREAU_REJECTED = 5
    FILED = 6
    NOT_FILED = 1024
    INFO_MISSING = 1025
    CATEGORY_MISSING = 1026
    INFO_AND_CATEGORY_MISSING = 1027


class AuditData(BaseModel):
    key_name: str = ""
    error: str = ""
    suggest: str | None = None


class EntranceInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: int
    is_canceling: bool | None = None
    audit_data: list[AuditData] = []
    available: int | None = None
    sms_verify_status: int | None = None  # 1 waiting, 2 done, 3 timed out (while status is 4)


class VerifyTask(BaseModel):
    task_id: str
    verify_url: str | None = None


class VerifyTaskResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    is_finish: bool
    face_status: int  # 0 not started, 1 waiting, 2 failed, 3 passed; final only when is_finish
    along_with_auth_result: int | None = None


class MediaUpload(BaseModel):
    type: str | None = None
    media_id: str
    create_at: int | None = None


class _RecordBase(BaseModel):
    model_config = ConfigDict(extra="allow")

    record_number: str | None = None


class _RecordPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    base_info: _RecordBase = Field(default_factory=_RecordBase)


class OnlineIcpOrder(BaseModel):
    """get_online_icp_order: the filing as WeChat holds it once filed. Only the filing numbers
    are read (typed); the rest (masked subject data) is kept untyped and never stored."""

    model_config = ConfigDict(extra="allow")

    icp_subject: _RecordPart = Field(default_factory=_RecordPart)
    icp_applets: list[_RecordPart] = []

    @property
    def subject_record_number(self) -> str | None:
        """The subject's filing number (主体备案号), e.g. 粤B2-20090059."""
        return (self.icp_subject.base_info.record_number or "").strip() or None

    @property
    def record_number(self) -> str | None:
        """The mini program's filing number (小程序备案号, ends in -<n>X), e.g. 粤B2-20090059-1626X:
        the first applet's; None when WeChat gave none."""
        for applet in self.icp_applets:
            number = (applet.base_info.record_number or "").strip()
            if number:
                return number
        return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class IcpSubject(_Section):
    base_info: dict[str, Any]
    personal_info: dict[str, Any] | None = None
    organize_info: dict[str, Any] | None = None
    principal_info: dict[str, Any]
    legal_person_info: dict[str, Any] | None = None


class IcpAppletBaseInfo(_Section):
    appid: str | None = None
    name: str | None = None
    service_content_types: list[int] = Field(min_length=1, max_length=5)
    nrlx_details: list[dict[str, Any]] = Field(min_length=1)  # 前置审批; the "none of these" type when none
    comment: str = Field(min_length=20, max_length=200)


class IcpApplets(_Section):
    base_info: IcpAppletBaseInfo
    principal_info: dict[str, Any]  # carries verify_task_id


class ApplyIcpFilingRequest(WeChatBody):
    icp_subject: IcpSubject
    icp_applets: IcpApplets
    icp_materials: dict[str, list[str]] | None = None


class IcpApi:
    def __init__(
        self, client: PlatformClient, *, lookup_ttl: float = 24 * 3600, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.lookup_ttl = lookup_ttl
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def _post(self, appid: str, path: str, body: Any = None) -> dict[str, Any]:
        out = self.client.authorizer(appid, "POST", path, body=body)
        assert isinstance(out, dict)
        return out

    def get_icp_entrance_info(self, appid: str) -> EntranceInfo:
        data = self.client.authorizer(appid, "GET", "/wxa/icp/get_icp_entrance_info")
        assert isinstance(data, dict)
        return EntranceInfo.model_validate(data.get("info") or {})

    def get_online_icp_order(self, appid: str) -> OnlineIcpOrder:
        """The filed application with its numbers (only meaningful once status is 6, filed)."""
        data = self.client.authorizer(appid, "GET", "/wxa/icp/get_online_icp_order")
        assert isinstance(data, dict)
        return OnlineIcpOrder.model_validate(data)

    def create_icp_verifytask(self, appid: str, *, along_with_auth: bool = False) -> VerifyTask:
        body = {"along_with_auth": True} if along_with_auth else {}
        return VerifyTask.model_validate(self._post(appid, "/wxa/icp/create_icp_verifytask", body))

    def query_icp_verifytask(self, appid: str, task_id: str) -> VerifyTaskResult:
        return VerifyTaskResult.model_validate(self._post(appid, "/wxa/icp/query_icp_verifytask", {"task_id": task_id}))

    def upload_icp_media(
        self,
        appid: str,
        *,
        media_type: str,
        icp_order_field: str,
        filename: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        certificate_type: int | None = None,
    ) -> MediaUpload:
        """Upload one document (multipart, as the docs describe: type, certificate_type,
        icp_order_field, media)."""
        data: dict[str, Any] = {"type": media_type, "icp_order_field": icp_order_field}
        if certificate_type is not None:
            data["certificate_type"] = str(certificate_type)
        out = self.client.authorizer(
            appid, "POST", "/wxa/icp/upload_icp_media",
            files={"media": (filename, content, content_type)}, data=data,
        )
        return MediaUpload.model_validate(out)

    def apply_icp_filing(self, appid: str, request: ApplyIcpFilingRequest) -> None:
        """Submit the filing. A refusal raises ``IcpFilingRejected`` whose ``hints`` name the
        fields (err_field) at fault; ``map_hints`` turns them into the caller's field names."""
        self._post(appid, "/wxa/icp/apply_icp_filing", request)

    def cancel_apply_icp_filing(self, appid: str) -> None:
        self._post(appid, "/wxa/icp/cancel_apply_icp_filing")

    # ------------------------------------------------------------ look-ups, cached

    def lookup(self, appid: str, name: str) -> list[dict[str, Any]]:
        if name not in LOOKUPS:
            raise ValueError(f"unknown ICP look-up {name!r}")
        now = self._monotonic()
        with self._lock:
            hit = self._cache.get(name)
            if hit and now - hit[0] < self.lookup_ttl:
                return hit[1]
        data = self.client.authorizer(appid, "GET", f"/wxa/icp/{name}")
        assert isinstance(data, dict)
        items = list(data.get("items") or [])
        with self._lock:
            self._cache[name] = (now, items)
        return items

    def service_content_types(self, appid: str) -> list[dict[str, Any]]:
        return self.lookup(appid, "query_icp_service_content_types")

    def nrlx_types(self, appid: str) -> list[dict[str, Any]]:
        return self.lookup(appid, "query_icp_nrlx_types")

    def subject_types(self, appid: str) -> list[dict[str, Any]]:
        return self.lookup(appid, "query_icp_subject_types")

    def certificate_types(self, appid: str) -> list[dict[str, Any]]:
        return self.lookup(appid, "query_icp_certificate_types")

    def district_codes(self, appid: str) -> list[dict[str, Any]]:
        return self.lookup(appid, "query_icp_district_code")


def map_hints(error: IcpFilingRejected, field_map: dict[str, str]) -> dict[str, list[IcpHint]]:
    """The hints grouped by OUR field (or rule id): ``field_map`` maps WeChat's err_field (a
    dotted path, e.g. ``icp_subject.principal_info.mobile``) or a prefix of it to ours; a field
    with no mapping is kept under WeChat's own name."""
    out: dict[str, list[IcpHint]] = {}
    for hint in error.hints:
        ours = field_map.get(hint.err_field)
        if ours is None:
            prefixes = [p for p in field_map if hint.err_field.startswith(p + ".")]
            ours = field_map[max(prefixes, key=len)] if prefixes else hint.err_field
        out.setdefault(ours, []).append(hint)
    return out
