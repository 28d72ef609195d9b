"""The errcodes the stand-in answers, with WeChat's errmsg and where each came from.

Sources (developers.weixin.qq.com unless said):
- G  global codes page (doc/oplatform/Return_codes/Return_code_descriptions_new.html) and the
     per-API "错误码" tables that repeat them (e.g. api_release: -1, 40001, 40014)
- CT api_component_token's table (61005, 61006, 40125, 41004, 45009, 47001)
- SA submitAudit doc and community threads quoting WeChat's answers (85009 "already submit a
     version under auditing", 85085 "submit audit reach limit, please try later", 85086 "must
     commit before submit audit", 61039 "隐私接口检查任务未完成，请稍等一分钟再重试")
- RL api_release (44002 "empty post data", 85019 "no version is under auditing", 85020
     "status not allowed"); 85052 "app is already released" from a community thread
- GR grayrelease / revertcoderelease / undocodeaudit tables (85079-85082, 87011-87013) as
     recalled from the doc pages; not re-read here: re-check before relying on the numbers
- ICP query_icp_verifytask table (1 "code过期或不存在", 86328 "无法找到资源"); apply_icp_filing's
     failure shape {errcode, errmsg, hints[{errcode, err_field, errmsg}]} from a community
     thread quoting WeChat (86202 "apply icp filing fail" with a hint 86328 on
     icp_subject.organize_info.certificate_photo)
- FR fastregisterweapp / fastregister tables (89249, 89250, 89253, 61058, 61070 …)
- PF the profile APIs (doc/oplatform/openApi/miniprogram-management/basic-info-management/ and
     category-management/): 53204 / 53200 / 53201 from api_setsignature's table, 53010 from
     api_checknickname's, 91011 from api_getnicknamestatus's, 91019 "小程序正在审核中" from community
     threads quoting setnickname; 53202, 91012, 91014 and 53300-53303 as recalled from the
     setHeadImage / setNickName / addCategory tables, not re-read here: re-check before relying
     on the numbers
- ST the stand-in's own choice where no doc gives a code (kept to documented global codes)
"""

from __future__ import annotations

ERRMSG: dict[int, str] = {
    0: "ok",
    -1: "system error",  # G
    1: "code过期或不存在",  # ICP query_icp_verifytask
    40001: "invalid credential, access_token is invalid or not latest",  # G
    40013: "invalid appid",  # G
    40097: "invalid args",  # G (also seen on upload_icp_media)
    40125: "invalid appsecret",  # CT
    41001: "access_token missing",  # G
    41004: "appsecret missing",  # CT
    42001: "access_token expired",  # G
    44002: "empty post data",  # RL
    45009: "reach max api daily quota limit",  # G, CT
    47001: "data format error",  # G, CT
    61003: "component is not authorized by this account",  # G (api_get_authorizer_info, an unauthorised app)
    61005: "component ticket is expired",  # CT
    61006: "component ticket is invalid",  # CT
    61010: "code is expired",  # G (authorization_code of api_query_auth)
    61023: "refresh_token is invalid",  # G (api_authorizer_token)
    61039: "隐私接口检查任务未完成，请稍等一分钟再重试",  # SA
    61058: "用户扫码凭证校验不通过",  # FR (account/fastregister)
    85009: "already submit a version under auditing",  # SA
    85012: "invalid audit id",  # G (get_auditstatus)
    85019: "no version is under auditing",  # RL
    85020: "status not allowed",  # RL
    85052: "app is already released",  # RL
    85058: "no valid audit_id exist",  # G (get_latest_auditstatus, seen in a community thread)
    85079: "miniprogram has no online release",  # GR
    85080: "miniprogram commit not approved",  # GR
    85081: "invalid gray percentage",  # GR
    85082: "gray percentage should be larger than the current one",  # GR
    85085: "submit audit reach limit, please try later",  # SA
    85086: "must commit before submit audit",  # SA
    86202: "apply icp filing fail",  # ICP
    86328: "无法找到资源",  # ICP
    87011: "current version is in gray release, cannot revert",  # GR
    87012: "this version cannot be reverted",  # GR
    87013: "undo audit reach limit",  # GR ("撤回次数达到上限（每天5次，每个月 10 次）")
    89248: "invalid code type",  # FR
    89249: "task running",  # FR
    89250: "task not found",  # FR
    89253: "lack of some params",  # FR
    40004: "invalid media type",  # G
    40005: "invalid file type",  # G
    40007: "invalid media_id",  # G (setHeadImage: a media id not uploaded with the authorizer's token)
    40009: "invalid image size",  # G
    53010: "名称格式不合法",  # PF (checkNickName)
    53200: "本月功能介绍修改次数已用完",  # PF (setSignature)
    53201: "功能介绍内容命中黑名单关键字",  # PF (setSignature)
    53202: "本月头像修改次数已用完",  # PF (setHeadImage, recalled)
    53204: "signature invalid",  # PF (setSignature: 4–120 characters)
    53300: "超出每月次数限制",  # PF (addCategory, recalled)
    53301: "超出可配置类目总数限制",  # PF (addCategory, recalled)
    53302: "当前账号主体类型不允许设置此种类目",  # PF (addCategory, recalled)
    53303: "提交的参数不合法",  # PF (addCategory, recalled)
    91011: "查不到昵称修改审核单信息",  # PF (getNickNameStatus)
    91012: "其他错误：名称修改次数已用完",  # PF (setNickName, recalled)
    91014: "+号规则 同一类型关联名主体不一致",  # PF (setNickName, recalled)
    91019: "小程序正在审核中",  # PF (setNickName, community threads)
}


def answer(errcode: int, errmsg: str | None = None, **extra) -> dict:
    """A WeChat JSON answer: {errcode, errmsg, …}. WeChat appends a request id to errmsg."""
    msg = errmsg if errmsg is not None else ERRMSG.get(errcode, "error")
    if errcode != 0:
        msg = f"{msg} rid: standin-{abs(hash((errcode, msg))) % 10**8:08d}"
    return {"errcode": errcode, "errmsg": msg, **extra}


class WeChatError(Exception):
    """Raised by the rules; the app answers it as HTTP 200 with the errcode (as WeChat does)."""

    def __init__(self, errcode: int, errmsg: str | None = None, **extra):
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg
        self.extra = extra

    def body(self) -> dict:
        return answer(self.errcode, self.errmsg, **self.extra)
