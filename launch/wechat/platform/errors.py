"""WeChat's errcode → a typed error, with WeChat's own code and message and ours in Chinese and
English naming the rule.

Families a launch meets (codes from WeChat's open-platform docs, developers.weixin.qq.com/doc/
oplatform/…, 通用错误码 and each API's 错误码 table; the same families as wechatpy's
``WeChatErrorCode`` and WxJava's ``WxOpenErrorMsgEnum``):

- ``TokenInvalid``: 40001 (credential invalid or not latest), 42001 (access_token expired),
  40014 (invalid access_token). The client refreshes the token once and retries once (as
  wechatpy does for the same three codes).
- ``WeChatBusy``: -1 (system busy, "稍候再试"): retried with backoff.
- ``RateLimited``: 45011 (minute quota, "retry next minute"), 9402202 (submit_audit: "请勿频繁
  提交，待上一次操作完成后再提交") and 45009 (``DailyQuotaExceeded``: WeChat's docs call it the
  API's DAILY quota; gateways and the local stand-in also use it for short windows): retried
  with the same bounded backoff. A 45009 that outlasts the backoff surfaces as
  DailyQuotaExceeded: reset the quota (clear_quota) or wait for tomorrow.
- ``ReviewError``: 85009, 85085, 85086, 86002, 85008, 85010, 85023, 61039, 87013.
- ``ReleaseError``: 44002, 85019, 85020, 85052.
- ``IcpFilingRejected``: apply_icp_filing's failure with ``hints`` [{errcode, err_field, errmsg}].
- ``ProfileError``: setNickName, checkNickName, setHeadImage, setSignature, addCategory (53010,
  53200–53204, 53300–53303, 91011–91019, 40007, 41033; the 533xx and some 91xxx as recalled from
  the doc tables, see devtools/wechat_standin/errors.py).

Messages carry codes and WeChat's errmsg only; never a token, a secret or a request body.
WeChat's errmsg ends with " rid: …" (a request id worth giving WeChat support): kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DailyQuotaExceeded",
    "IcpFilingRejected",
    "IcpHint",
    "ProfileError",
    "ReleaseError",
    "RateLimited",
    "ReviewError",
    "TokenInvalid",
    "WeChatApiError",
    "WeChatBusy",
    "WeChatTransportError",
    "error_for",
    "rejected_from",
    "scrub",
]

_SECRET_PARAMS = re.compile(
    r"((?:component_)?access_token|authorizer_(?:access|refresh)_token|component_appsecret|"
    r"component_verify_ticket|pre_auth_code|auth_code|authorization_code|ticket)(=|\"\s*:\s*\")[^&\s\"]+",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """``text`` with the value of every token-like parameter replaced by ***."""
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class WeChatApiError(Exception):
    """A call WeChat answered with errcode != 0. ``zh`` / ``en``: our words, naming the rule."""

    retryable = False

    def __init__(self, errcode: int, errmsg: str = "", zh: str = "", en: str = "", *, path: str = "") -> None:
        self.errcode = int(errcode)
        self.errmsg = scrub(str(errmsg or ""))
        self.zh = zh or "微信接口返回错误"
        self.en = en or "WeChat's API returned an error"
        self.path = path
        super().__init__(f"{self.zh} / {self.en} (errcode {self.errcode}: {self.errmsg}){' ' + path if path else ''}")


class TokenInvalid(WeChatApiError):
    """40001 / 42001 / 40014: the token is expired, invalid or not the latest."""


class WeChatBusy(WeChatApiError):
    retryable = True


class RateLimited(WeChatApiError):
    retryable = True


class DailyQuotaExceeded(RateLimited):
    """45009: retried within the bounded backoff like any rate limit; if it persists, the day's
    quota is used up."""


class ReviewError(WeChatApiError):
    """submit_audit and friends refused: the rule is named in zh/en."""


class ReleaseError(WeChatApiError):
    """release / revert / gray release refused."""


class RegistrationError(WeChatApiError):
    """fast registration refused."""


class IcpError(WeChatApiError):
    """An ICP filing call refused."""


class ProfileError(WeChatApiError):
    """Setting the profile (name, avatar, introduction, categories) refused."""


@dataclass(frozen=True, slots=True)
class IcpHint:
    """One of apply_icp_filing's ``hints[]``: which field WeChat objects to and why."""

    errcode: int
    err_field: str
    errmsg: str


class IcpFilingRejected(IcpError):
    """apply_icp_filing refused the application; ``hints`` name the fields
    (``err_field`` is a dotted path into the request, e.g. ``icp_subject.principal_info.mobile``)."""

    def __init__(self, errcode: int, errmsg: str, hints: Iterable[IcpHint], *, path: str = "") -> None:
        self.hints = list(hints)
        fields = ", ".join(h.err_field for h in self.hints) or "-"
        super().__init__(
            errcode, errmsg,
            f"备案申请被微信退回，问题字段：{fields}",
            f"WeChat refused the ICP filing application; fields at fault: {fields}",
            path=path,
        )

    def fields(self) -> dict[str, list[str]]:
        """err_field → WeChat's messages (a field may carry several)."""
        out: dict[str, list[str]] = {}
        for h in self.hints:
            out.setdefault(h.err_field, []).append(h.errmsg)
        return out


class WeChatTransportError(Exception):
    """WeChat could not be reached or answered something that is not its JSON (no errcode).
    The message names the API path only, never the URL's query (the token is there)."""

    def __init__(self, zh: str, en: str, *, path: str = "", sent: bool = True) -> None:
        self.zh, self.en, self.path, self.sent = zh, en, path, sent
        super().__init__(f"{zh} / {en}{' ' + path if path else ''}")


# errcode → (class, zh, en). Sources: each API's 错误码 table on developers.weixin.qq.com
# (submitAudit, release, revertCodeRelease, grayRelease, undoAudit, the ICP APIs, registerMiniprogram,
# registerMiniprogramByOffiaccount) and the 通用错误码 page.
_TABLE: dict[int, tuple[type[WeChatApiError], str, str]] = {
    # tokens
    40001: (TokenInvalid, "凭证无效或不是最新的（access_token 已被刷新或 secret 错误）",
            "credential invalid or not the latest (the access_token was refreshed elsewhere, or the secret is wrong)"),
    42001: (TokenInvalid, "access_token 已过期（有效期 2 小时）", "access_token expired (they live 2 hours)"),
    40014: (TokenInvalid, "access_token 无效", "invalid access_token"),
    61003: (WeChatApiError, "该账号未授权给第三方平台（或已取消授权）",
            "the account has not authorised the platform (or has revoked it)"),
    # busy, rate limits
    -1: (WeChatBusy, "微信系统繁忙，稍候再试", "WeChat is busy; try again shortly"),
    45011: (RateLimited, "接口调用太频繁（分钟级频率限制），下一分钟再试",
            "API minute quota reached; retry in the next minute"),
    9402202: (RateLimited, "请勿频繁提交，待上一次操作完成后再提交",
              "submitted too often: wait until the previous operation has finished"),
    45009: (DailyQuotaExceeded, "接口调用超过每日次数上限（需清零配额或次日再试）",
            "the API's daily quota is used up (reset the quota or try tomorrow)"),
    # review (submit_audit, undocodeaudit, speedupaudit)
    85009: (ReviewError, "已有一个版本正在审核中，不能再次提交",
            "a version is already under review; it cannot be submitted again"),
    85085: (ReviewError, "本月提审次数已用完（或近 7 天提审被驳回过多）",
            "this month's review submissions are used up (or too many were rejected in 7 days)"),
    85086: (ReviewError, "尚未提交代码，不能提审", "no code has been committed: nothing to submit for review"),
    86002: (ReviewError, "小程序名称、头像或简介尚未设置，不能提审",
            "the mini program's name, avatar or introduction is not set: it cannot be submitted for review"),
    85008: (ReviewError, "小程序尚未设置服务类目，不能提审",
            "the mini program has no service category: it cannot be submitted for review"),
    85010: (ReviewError, "item_list 有项目为空或类目不合法", "item_list has an empty entry or an invalid category"),
    85023: (ReviewError, "item_list 数量不在 1 到 5 之间", "item_list must hold 1 to 5 entries"),
    61039: (ReviewError, "代码隐私检测尚未完成，稍后再提审（或调用 get_code_privacy_info 查看）",
            "the code's privacy scan has not finished; submit for review later"),
    87013: (ReviewError, "撤回审核次数已用完（每天 5 次、每月 10 次）",
            "the withdraw-review quota is used up (5 a day, 10 a month)"),
    # release
    44002: (ReleaseError, "请求体为空：发布接口须以 {} 为请求体", "empty POST body: release must be sent with {} as its body"),
    85019: (ReleaseError, "没有审核通过的版本，不能发布", "no version has passed review: nothing to release"),
    85020: (ReleaseError, "审核状态不允许发布", "the review status does not allow releasing"),
    85052: (ReleaseError, "该版本已发布", "this version is already released"),
    87011: (ReleaseError, "现网正在灰度发布，不能回退版本", "a gray release is live: the version cannot be rolled back"),
    87012: (ReleaseError, "该版本不能回退（没有上一个线上版本，或已回退过）",
            "this version cannot be rolled back (no previous live version, or it was rolled back already)"),
    # profile (basic-info-management: setNickName, checkNickName, setHeadImage, setSignature;
    # category-management: addCategory)
    53010: (ProfileError, "名称格式不合法（不能含“小程序”，4–30 个字符，一个汉字算 2 个）",
            "the name's format is invalid (no “小程序”, 4–30 characters, a Chinese character counting 2)"),
    53200: (ProfileError, "本月简介修改次数已用完", "this month's introduction changes are used up"),
    53201: (ProfileError, "简介命中黑名单关键字", "the introduction hits a blacklisted keyword"),
    53202: (ProfileError, "头像修改次数已用完", "the avatar changes are used up"),
    53204: (ProfileError, "简介不合法：须为 4–120 个字符", "the introduction is invalid: it must have 4–120 characters"),
    53300: (ProfileError, "本月类目修改次数已用完", "this month's category changes are used up"),
    53301: (ProfileError, "类目数量超出上限（或已设置）", "too many categories (or the category is already set)"),
    53302: (ProfileError, "该主体不能设置此类目", "this subject may not set the category"),
    53303: (ProfileError, "类目参数不合法（需要资质的类目须附资质）",
            "the category is invalid (a category needing a qualification must carry it)"),
    40007: (ProfileError, "素材 media_id 无效（须用授权方令牌上传的临时素材）",
            "invalid media_id (a temporary media uploaded with the authorizer's token is needed)"),
    40005: (ProfileError, "文件类型不支持（头像：BMP、JPEG、JPG、GIF、PNG）",
            "unsupported file type (avatar: BMP, JPEG, JPG, GIF, PNG)"),
    40009: (ProfileError, "图片过大（头像不超过 2 MB）", "the image is too large (the avatar: at most 2 MB)"),
    41033: (ProfileError, "该接口只允许通过 API 创建的小程序使用", "only mini programs created through the API may call it"),
    91001: (ProfileError, "不是通过第三方平台快速创建的小程序，不能用接口改名",
            "not a mini program the platform registered: the name cannot be set through the API"),
    91011: (ProfileError, "查不到名称审核单", "no such name review"),
    91012: (ProfileError, "名称修改次数已用完", "the name changes are used up"),
    91014: (ProfileError, "名称命中关键字，须提供证明材料", "the name hits a keyword: proof material is needed"),
    91019: (ProfileError, "小程序正在审核中，暂不能改名", "the mini program is in review: the name cannot change now"),
    # fast registration (registerMiniprogram, fastregister)
    89249: (RegistrationError, "该主体已有注册任务执行中，24 小时后再试",
            "a registration task for this entity is already running; try again after 24 hours"),
    89251: (RegistrationError, "等待法人人脸核身", "waiting for the legal person's face verification"),
    89252: (RegistrationError, "法人与企业信息一致性校验中", "the legal person and company are being checked"),
    89254: (RegistrationError, "第三方平台权限集不全，请补充权限集后重试",
            "the platform lacks a permission set; add it and retry"),
    61058: (RegistrationError, "复用公众号资质注册的 ticket 无效（两次调用需间隔 5 秒以上）",
            "the fastregister ticket is invalid (retries must be more than 5 s apart)"),
}


def error_for(errcode: int, errmsg: str = "", *, path: str = "") -> WeChatApiError:
    """The typed error of ``errcode`` (a plain WeChatApiError for codes this table does not know)."""
    cls, zh, en = _TABLE.get(int(errcode), (WeChatApiError, "", ""))
    if cls is WeChatApiError and path.startswith("/wxa/icp/"):
        cls = IcpError
    return cls(errcode, errmsg, zh, en, path=path)


def rejected_from(errcode: int, errmsg: str, hints: list[Any], *, path: str = "") -> IcpFilingRejected:
    """apply_icp_filing's answer with ``hints[]`` (shape: WeChat's applyIcpFiling doc, and SKIT's
    WxaICPApplyICPFilingResponse.Types.Hint: errcode, errmsg, err_field) as a typed error."""
    parsed = [
        IcpHint(int(h.get("errcode") or 0), str(h.get("err_field") or ""), scrub(str(h.get("errmsg") or "")))
        for h in hints
        if isinstance(h, dict)
    ]
    return IcpFilingRejected(errcode, errmsg, parsed, path=path)
