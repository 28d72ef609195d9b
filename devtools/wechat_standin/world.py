"""The stand-in's WeChat: tokens, authorised mini-programs and what each has been through
(committed code, reviews, release, ICP filing, face-check tasks, registrations), and the
rules WeChat applies to each call. No HTTP here: launch.app-free, plain Python under one lock;
devtools.wechat_standin.app translates requests into these methods.

Each method returns WeChat's JSON answer (without errcode/errmsg, added by the app) or
raises WeChatError. Time comes from the StandinClock; outcomes from the StandinScript;
pushes go to the Pusher (sent after the lock is released, by the pusher's thread).
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from devtools.wechat_standin import lookups
from devtools.wechat_standin.config import (
    AUTH_CODE_LIFETIME,
    PRE_AUTH_CODE_LIFETIME,
    REGISTER_LINK_LIFETIME,
    VERIFY_NOTICE_LIFETIME,
    VERIFY_TASK_LIFETIME,
    Outcome,
    StandinClock,
    StandinConfig,
    StandinScript,
)
from devtools.wechat_standin.errors import WeChatError
from devtools.wechat_standin.pushes import Pusher

ALL_CATEGORIES = lookups.ALL_CATEGORIES
# Names that hit WeChat's keyword policy in the stand-in (checkNickName's hit_condition): such a
# name needs proof material (license / id_card) and waits for WeChat's review.
NICKNAME_KEYWORDS = ("腾讯", "微信", "官方")
NICKNAME_WORDING = ("你申请的名称可能涉及特定主体姓名或名称，请提供可确认主体材料与名称对应的材料 / the name may name "
                    "another party: provide material that shows the right to use it")
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")

# Authorizer review statuses (get_auditstatus doc): 0 passed, 1 rejected, 2 in review, 3 withdrawn, 4 delayed
PASSED, REJECTED, IN_REVIEW, WITHDRAWN = 0, 1, 2, 3
# ICP statuses (getIcpEntranceInfo doc)
NOT_FILED, PLATFORM_REVIEW, PLATFORM_REJECTED, BUREAU_REVIEW, BUREAU_REJECTED, FILED = 1024, 2, 3, 4, 5, 6
# face_status (queryIcpVerifyTask doc): 0 not started, 1 waiting, 2 failed, 3 passed
FACE_WAITING, FACE_FAILED, FACE_PASSED = 1, 2, 3
# The permission sets handed out on authorisation (func_info): 18 development (code, ICP),
# 156 ICP filing, 27 fast registration, 30 basic information (profile, getaccountbasicinfo)
# (oplatform docs of each call name the set).
FUNC_SCOPES = (18, 156, 27, 30)


def _token(n: int = 64) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits + "_-") for _ in range(n))


def _appid() -> str:
    return "wx" + secrets.token_hex(8)


@dataclass
class Token:
    value: str
    kind: str  # "component" | "authorizer"
    appid: str | None
    expires_at: float


@dataclass
class Audit:
    auditid: int
    version: str
    desc: str
    submitted_at: float
    outcome: Outcome
    due_at: float | None
    status: int = IN_REVIEW
    reason: str = ""
    screenshots: list[str] = field(default_factory=list)
    released: bool = False
    feedback_info: str | None = None


@dataclass
class Filing:
    status: int = NOT_FILED
    sms_verify_status: int | None = None
    audit_data: list[dict] = field(default_factory=list)
    due_at: float | None = None
    outcome: Outcome | None = None
    applications: int = 0
    subject_record_number: str | None = None  # issued once filed (getOnlineIcpOrder's record_number)
    record_number: str | None = None  # the mini program's: the subject's + "-<n>X"


@dataclass
class VerifyTask:
    task_id: str
    appid: str
    created: float
    outcome: Outcome
    due_at: float | None
    along_with_auth: bool = False
    is_finish: bool = False
    face_status: int = FACE_WAITING

    @property
    def notice_until(self) -> float:
        return self.created + VERIFY_NOTICE_LIFETIME

    @property
    def expires_at(self) -> float:
        return self.created + VERIFY_TASK_LIFETIME


@dataclass
class Profile:
    """小程序基本信息 as WeChat holds it (setNickName, setHeadImage, setSignature, addCategory)."""

    nickname: str = ""
    head_image_url: str = ""
    signature: str = ""
    categories: list[dict] = field(default_factory=list)  # {first, second, audit_status}
    nickname_audits: dict[int, dict] = field(default_factory=dict)  # audit_id -> {nickname, audit_stat, fail_reason}
    changes: dict[str, list[float]] = field(default_factory=dict)  # name/avatar/intro/categories -> times
    images: dict[str, dict] = field(default_factory=dict)  # /cgi-bin/media/upload's media ids


@dataclass
class Authorizer:
    appid: str
    original_id: str
    refresh_token: str
    authorized: bool = False  # until api_query_auth has been called with its code
    # The admin consented (or WeChat registered it for the platform): WeChat counts it authorised
    # from then on, listed by api_get_authorizer_list with its refresh token, code exchanged or not.
    consented: bool = False
    consented_at: float = 0.0
    committed: dict | None = None
    audits: list[Audit] = field(default_factory=list)
    releases: list[dict] = field(default_factory=list)  # newest last: {version, desc, time, reverted}
    gray_percentage: int | None = None
    filing: Filing = field(default_factory=Filing)
    media: dict[str, dict] = field(default_factory=dict)
    undo_times: list[float] = field(default_factory=list)
    verified: bool = False  # 认证 (getaccountbasicinfo's wx_verify_info.qualification_verify)
    profile: Profile = field(default_factory=lambda: Profile())
    func_scopes: tuple[int, ...] = FUNC_SCOPES  # the sets the admin left ticked

    @property
    def latest_audit(self) -> Audit | None:
        return self.audits[-1] if self.audits else None


@dataclass
class RegisterTask:
    taskid: str
    name: str
    code: str
    component_phone: str
    created: float
    outcome: Outcome
    due_at: float | None
    status: int = 0  # fastregisterpersonalweapp's task enum: 0 created … 12 created OK; 5 face failed
    appid: str | None = None
    legacy: bool = False


class World:
    def __init__(self, config: StandinConfig, pusher: Pusher, script: StandinScript | None = None,
                 clock: StandinClock | None = None):
        self.config = config
        self.pusher = pusher
        self.script = script or StandinScript()
        self.clock = clock or StandinClock()
        self.lock = threading.RLock()
        self.tokens: dict[str, Token] = {}
        self.tickets: list[tuple[str, float]] = []  # (ticket, pushed at), newest last
        self.last_ticket_at: float | None = None
        self.pre_auth_codes: dict[str, float] = {}
        self.auth_codes: dict[str, tuple[str, float]] = {}  # code -> (appid, expires)
        self.authorizers: dict[str, Authorizer] = {}
        self.tasks: dict[str, VerifyTask] = {}
        self.registrations: dict[str, RegisterTask] = {}
        # ticket -> (official account appid, copy_wx_verify: whether the 认证 is copied)
        self.fastregister_tickets: dict[str, tuple[str, bool]] = {}
        self.submits: deque[float] = deque()  # submit_audit times, for the monthly quota
        self._auditid = 400000000
        self._filed = 0  # filing numbers issued, for plausible distinct ones

    def now(self) -> float:
        return self.clock.now()

    # ------------------------------------------------------------------ tokens

    def check_token(self, value: str | None, kind: str) -> str | None:
        """The appid a token stands for (None for the component token); 41001 missing,
        40001 unknown or of the other kind, 42001 expired (global codes)."""
        if not value:
            raise WeChatError(41001)
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.kind != kind:
                raise WeChatError(40001)
            if token.expires_at <= self.now():
                raise WeChatError(42001)
            return token.appid

    def _issue(self, kind: str, appid: str | None) -> Token:
        token = Token(_token(), kind, appid, self.now() + self.config.token_lifetime)
        self.tokens[token.value] = token
        return token

    def expire_tokens(self, appid: str | None = None, kind: str | None = None) -> int:
        """Make tokens expire now (all, one authorizer's, or one kind's)."""
        n = 0
        with self.lock:
            for token in self.tokens.values():
                if (appid is None or token.appid == appid) and (kind is None or token.kind == kind):
                    token.expires_at = min(token.expires_at, self.now())
                    n += 1
        return n

    # ------------------------------------------------------------------ component (token life cycle)

    def push_ticket(self) -> str:
        """Push a new component_verify_ticket to /wechat/auth (every ticket_every seconds)."""
        with self.lock:
            ticket = "ticket@@@" + _token(86)
            now = self.now()
            self.tickets.append((ticket, now))
            self.tickets = self.tickets[-10:]
            self.last_ticket_at = now
        self.pusher.auth_event("component_verify_ticket", {"ComponentVerifyTicket": ticket})
        return ticket

    def _check_secret(self, body: dict, field: str) -> None:
        """The platform's app id and secret in a token-less call (the secret's field name differs)."""
        if body.get("component_appid") != self.config.component_appid:
            raise WeChatError(40013)
        if not body.get(field):
            raise WeChatError(41004)
        if body.get(field) != self.config.component_appsecret:
            raise WeChatError(40125)

    def start_push_ticket(self, body: dict) -> dict:
        # doc startPushTicket (api_start_push_ticket): {component_appid, component_secret} -> {};
        # WeChat (re)starts pushing component_verify_ticket every 10 minutes: here, one at once
        self._check_secret(body, "component_secret")
        self.push_ticket()
        return {}

    def component_token(self, body: dict) -> dict:
        # doc api_component_token: {component_appid, component_appsecret, component_verify_ticket}
        # -> {component_access_token, expires_in}
        self._check_secret(body, "component_appsecret")
        with self.lock:
            ticket = body.get("component_verify_ticket")
            latest = self.tickets[-1] if self.tickets else None
            if latest is None or ticket != latest[0]:
                raise WeChatError(61006)
            if latest[1] + self.config.ticket_lifetime <= self.now():
                raise WeChatError(61005)
            token = self._issue("component", None)
        return {"component_access_token": token.value, "expires_in": int(self.config.token_lifetime)}

    def create_preauthcode(self, body: dict) -> dict:
        # doc api_create_preauthcode: {component_appid} -> {pre_auth_code, expires_in 1800}
        if body.get("component_appid") != self.config.component_appid:
            raise WeChatError(40013)
        with self.lock:
            code = "preauthcode@@@" + _token(40)
            self.pre_auth_codes[code] = self.now() + PRE_AUTH_CODE_LIFETIME
        return {"pre_auth_code": code, "expires_in": PRE_AUTH_CODE_LIFETIME}

    def authorize(self, appid: str | None = None, original_id: str | None = None,
                  pre_auth_code: str | None = None, push: bool = True,
                  func_scopes: list[int] | None = None) -> dict:
        """What the client's admin does on the authorisation page: the platform gets an
        authorization code (the redirect's auth_code, and the `authorized` push).
        ``func_scopes``: the permission sets the admin left ticked (all by default)."""
        with self.lock:
            if pre_auth_code is not None:
                expires = self.pre_auth_codes.pop(pre_auth_code, None)
                if expires is None or expires <= self.now():
                    raise WeChatError(61010, "pre_auth_code is expired or unknown")
            appid = appid or _appid()
            auth = self.authorizers.get(appid)
            if auth is None:
                auth = Authorizer(appid, original_id or "gh_" + secrets.token_hex(6), "refreshtoken@@@" + _token(40))
                self.authorizers[appid] = auth
            if func_scopes is not None:
                auth.func_scopes = tuple(int(i) for i in func_scopes)
            auth.consented, auth.consented_at = True, self.now()
            code = "queryauthcode@@@" + _token(40)
            expires = self.now() + AUTH_CODE_LIFETIME
            self.auth_codes[code] = (appid, expires)
        if push:
            self.pusher.auth_event("authorized", {
                "AuthorizerAppid": appid, "AuthorizationCode": code,
                "AuthorizationCodeExpiredTime": int(expires), "PreAuthCode": pre_auth_code or ""}, appid=appid)
        return {"appid": appid, "original_id": auth.original_id, "auth_code": code, "expires_in": AUTH_CODE_LIFETIME}

    def unauthorize(self, appid: str) -> None:
        with self.lock:
            auth = self._authorizer(appid)
            auth.authorized = auth.consented = False
            auth.refresh_token = "refreshtoken@@@" + _token(40)  # the old one stops working
            for token in self.tokens.values():
                if token.appid == appid:
                    token.expires_at = 0
        self.pusher.auth_event("unauthorized", {"AuthorizerAppid": appid}, appid=appid)

    def query_auth(self, body: dict) -> dict:
        # doc api_query_auth: {component_appid, authorization_code} -> {authorization_info:
        # {authorizer_appid, authorizer_access_token, expires_in, authorizer_refresh_token, func_info}}
        with self.lock:
            found = self.auth_codes.pop(body.get("authorization_code") or "", None)
            if found is None or found[1] <= self.now():
                raise WeChatError(61010)
            auth = self.authorizers[found[0]]
            auth.authorized = True
            token = self._issue("authorizer", auth.appid)
        return {"authorization_info": {
            "authorizer_appid": auth.appid, "authorizer_access_token": token.value,
            "expires_in": int(self.config.token_lifetime), "authorizer_refresh_token": auth.refresh_token,
            "func_info": [{"funcscope_category": {"id": i}} for i in auth.func_scopes]}}

    def authorizer_token(self, body: dict) -> dict:
        # doc api_authorizer_token: {component_appid, authorizer_appid, authorizer_refresh_token}
        # -> {authorizer_access_token, expires_in, authorizer_refresh_token}
        with self.lock:
            auth = self.authorizers.get(body.get("authorizer_appid") or "")
            if auth is None or not auth.consented:  # a refresh token from the list works unexchanged
                raise WeChatError(61023)
            if body.get("authorizer_refresh_token") != auth.refresh_token:
                raise WeChatError(61023)
            token = self._issue("authorizer", auth.appid)
        return {"authorizer_access_token": token.value, "expires_in": int(self.config.token_lifetime),
                "authorizer_refresh_token": auth.refresh_token}

    def authorizer_list(self, body: dict) -> dict:
        # doc getAuthorizerList (api_get_authorizer_list): {component_appid, offset, count <= 500}
        # -> {total_count, list: [{authorizer_appid, refresh_token, auth_time}]}, oldest first
        if body.get("component_appid") != self.config.component_appid:
            raise WeChatError(40013)
        offset, count = body.get("offset"), body.get("count")
        if not isinstance(offset, int) or not isinstance(count, int) or offset < 0 or not 0 < count <= 500:
            raise WeChatError(40097, "invalid args: offset, count (1..500)")
        with self.lock:
            listed = sorted((a for a in self.authorizers.values() if a.consented), key=lambda a: a.consented_at)
            page = [{"authorizer_appid": a.appid, "refresh_token": a.refresh_token, "auth_time": int(a.consented_at)}
                    for a in listed[offset:offset + count]]
        return {"total_count": len(listed), "list": page}

    def authorizer_info(self, body: dict) -> dict:
        # doc getAuthorizerInfo (api_get_authorizer_info): {component_appid, authorizer_appid} ->
        # {authorizer_info: {nick_name, user_name, …}, authorization_info: {authorizer_appid, func_info}}
        if body.get("component_appid") != self.config.component_appid:
            raise WeChatError(40013)
        with self.lock:
            auth = self.authorizers.get(body.get("authorizer_appid") or "")
            if auth is None or not auth.consented:
                raise WeChatError(61003, "component is not authorized by this account")
            return {"authorizer_info": {"nick_name": auth.profile.nickname, "user_name": auth.original_id},
                    "authorization_info": {"authorizer_appid": auth.appid,
                                           "func_info": [{"funcscope_category": {"id": i}} for i in auth.func_scopes]}}

    def _authorizer(self, appid: str | None) -> Authorizer:
        auth = self.authorizers.get(appid or "")
        if auth is None:
            raise WeChatError(40013)
        return auth

    # ------------------------------------------------------------------ code, review, release

    def commit(self, appid: str, body: dict) -> dict:
        # doc commit: {template_id, ext_json (a JSON string), user_version, user_desc}
        if not isinstance(body.get("template_id"), (int, str)) or body.get("template_id") in ("", None):
            raise WeChatError(40097, "invalid args: template_id")
        ext = body.get("ext_json")
        if ext is not None:
            if not isinstance(ext, str):
                raise WeChatError(47001, "data format error: ext_json must be a JSON string")
            try:
                json.loads(ext)
            except ValueError:
                raise WeChatError(47001, "data format error: ext_json is not JSON") from None
        if not body.get("user_version"):
            raise WeChatError(40097, "invalid args: user_version")
        with self.lock:
            auth = self._authorizer(appid)
            auth.committed = {"template_id": body["template_id"], "user_version": str(body["user_version"]),
                              "user_desc": str(body.get("user_desc") or ""), "at": self.now()}
        return {}

    def submit_audit(self, appid: str, body: dict) -> dict:
        # doc submitAudit -> {auditid}; errors 85009, 85085, 85086, 61039 (see errors.py)
        with self.lock:
            auth = self._authorizer(appid)
            now = self.now()
            if auth.committed is None:
                raise WeChatError(85086)
            latest = auth.latest_audit
            if latest is not None and latest.status == IN_REVIEW:
                raise WeChatError(85009)
            if now < auth.committed["at"] + self.config.privacy_scan_seconds:
                raise WeChatError(61039)
            month = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m")
            used = sum(1 for t in self.submits if datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m") == month)
            if used >= self.config.audit_quota_per_month:
                raise WeChatError(85085)
            items = body.get("item_list")
            if items is not None and (not isinstance(items, list) or not 1 <= len(items) <= 5):
                raise WeChatError(40097, "invalid args: item_list holds 1 to 5 items")
            feedback = body.get("feedback_info")
            if feedback is not None and len(str(feedback)) > 200:
                raise WeChatError(40097, "invalid args: feedback_info longer than 200 characters")
            self.submits.append(now)
            self._auditid += 1
            outcome = self.script.next(appid, "review")
            audit = Audit(self._auditid, auth.committed["user_version"], auth.committed["user_desc"], now, outcome,
                          self._due(outcome, self.config.review_seconds), feedback_info=feedback)
            auth.audits.append(audit)
        return {"auditid": audit.auditid}

    def _due(self, outcome: Outcome, default: float) -> float | None:
        if outcome.manual:
            return None
        return self.now() + (default if outcome.after is None else outcome.after)

    def _audit_answer(self, audit: Audit) -> dict:
        out: dict[str, Any] = {"status": audit.status}
        if audit.status == REJECTED:
            out["reason"] = audit.reason
            out["ScreenShot"] = "|".join(audit.screenshots)
        return out

    def get_auditstatus(self, appid: str, body: dict) -> dict:
        # doc get_auditstatus: {auditid} -> {status, reason, ScreenShot}
        with self.lock:
            auth = self._authorizer(appid)
            for audit in auth.audits:
                if str(audit.auditid) == str(body.get("auditid")):
                    return self._audit_answer(audit)
        raise WeChatError(85012)

    def get_latest_auditstatus(self, appid: str) -> dict:
        # doc get_latest_auditstatus -> {auditid, status, reason, ScreenShot, user_version, user_desc,
        # submit_audit_time}
        with self.lock:
            audit = self._authorizer(appid).latest_audit
            if audit is None:
                raise WeChatError(85058)
            return {"auditid": audit.auditid, **self._audit_answer(audit), "user_version": audit.version,
                    "user_desc": audit.desc, "submit_audit_time": int(audit.submitted_at)}

    def undocodeaudit(self, appid: str) -> dict:
        # doc undocodeaudit: withdraw the review in progress; 5 a day, 10 a month (87013)
        with self.lock:
            auth = self._authorizer(appid)
            audit = auth.latest_audit
            if audit is None or audit.status != IN_REVIEW:
                raise WeChatError(85020)  # ST: nothing under review to withdraw
            now = self.now()
            if (sum(1 for t in auth.undo_times if now - t < 86400) >= self.config.undo_per_day
                    or sum(1 for t in auth.undo_times if now - t < 30 * 86400) >= self.config.undo_per_month):
                raise WeChatError(87013)
            auth.undo_times.append(now)
            audit.status, audit.due_at = WITHDRAWN, None
        return {}

    def release(self, appid: str) -> dict:
        # doc api_release: 85019 nothing reviewed, 85020 latest review not passed, 85052 released
        with self.lock:
            auth = self._authorizer(appid)
            audit = auth.latest_audit
            if audit is None:
                raise WeChatError(85019)
            if audit.status != PASSED:
                raise WeChatError(85020)
            if audit.released:
                raise WeChatError(85052)
            audit.released = True
            auth.gray_percentage = None
            auth.releases.append({"version": audit.version, "desc": audit.desc, "time": int(self.now()),
                                  "reverted": False})
        return {}

    def revertcoderelease(self, appid: str) -> dict:
        # doc revertcoderelease: back to the previous release; 87011 while gray, 87012 none to go back to
        with self.lock:
            auth = self._authorizer(appid)
            if auth.gray_percentage is not None:
                raise WeChatError(87011)
            live = [r for r in auth.releases if not r["reverted"]]
            if len(live) < 2:
                raise WeChatError(87012)
            live[-1]["reverted"] = True
        return {}

    def grayrelease(self, appid: str, body: dict) -> dict:
        # doc grayrelease {gray_percentage 1..100}: releases the approved version to a share of
        # users; 85079 no online version yet, 85080 nothing approved, 85081 bad share, 85082 lower
        pct = body.get("gray_percentage")
        with self.lock:
            auth = self._authorizer(appid)
            if not [r for r in auth.releases if not r["reverted"]]:
                raise WeChatError(85079)
            audit = auth.latest_audit
            if audit is None or audit.status != PASSED or audit.released:
                raise WeChatError(85080)
            if not isinstance(pct, int) or isinstance(pct, bool) or not 1 <= pct <= 100:
                raise WeChatError(85081)
            if auth.gray_percentage is not None and pct < auth.gray_percentage:
                raise WeChatError(85082)
            auth.gray_percentage = pct
        return {}

    # ------------------------------------------------------------------ ICP filing

    def icp_entrance_info(self, appid: str) -> dict:
        # doc getIcpEntranceInfo -> info {status, is_canceling, audit_data, available, sms_verify_status}
        with self.lock:
            f = self._authorizer(appid).filing
            info: dict[str, Any] = {"status": f.status, "is_canceling": False, "available": 1}
            if f.status in (PLATFORM_REJECTED, BUREAU_REJECTED):
                info["audit_data"] = list(f.audit_data)
            if f.status == BUREAU_REVIEW:
                info["sms_verify_status"] = f.sms_verify_status
            return {"info": info}

    # ------------------------------------------------------------------ profile (小程序基本信息)
    # developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/basic-info-management/
    # (api_setnickname, api_getnicknamestatus, api_checknickname, api_setheadimage, api_setsignature)
    # and …/category-management/ (api_getallcategories, api_addcategory, api_getcategory).

    def _changed(self, p: Profile, what: str, limit: int, window: float, errcode: int) -> None:
        now = self.now()
        recent = [t for t in p.changes.get(what, []) if now - t < window]
        if len(recent) >= limit:
            raise WeChatError(errcode)
        p.changes[what] = [*recent, now]

    def check_nickname(self, appid: str, body: dict) -> dict:
        # checkNickName -> {hit_condition, wording}; 53010: 名称格式不合法
        name = str(body.get("nick_name") or "")
        with self.lock:
            self._authorizer(appid)
            self._nickname_format(name)
            hit = any(k in name for k in NICKNAME_KEYWORDS)
        return {"hit_condition": hit, "wording": NICKNAME_WORDING if hit else ""}

    @staticmethod
    def _nickname_format(name: str) -> None:
        # setNickName: "不支持包含“小程序”关键字的昵称"; the console takes 4–30 characters
        # (a Chinese character counting 2); the stand-in answers 53010 名称格式不合法 for both.
        width = sum(2 if ord(c) > 0x7F else 1 for c in name)
        if "小程序" in name or not 4 <= width <= 30 or not name.strip():
            raise WeChatError(53010)

    def set_nickname(self, appid: str, body: dict) -> dict:
        # setNickName -> {wording, audit_id}: set at once, or (a keyword hit) an audit whose result
        # is pushed as wxa_nickname_audit and asked with api_wxa_querynickname. 2 changes before release.
        name = str(body.get("nick_name") or "")
        with self.lock:
            auth = self._authorizer(appid)
            p = auth.profile
            self._nickname_format(name)
            if any(a["audit_stat"] == 1 for a in p.nickname_audits.values()):
                raise WeChatError(91019)  # an earlier name is still in review
            if p.nickname and not auth.releases:
                self._changed(p, "name", 2, float("inf"), 91012)  # the first setting is not a change
            if any(k in name for k in NICKNAME_KEYWORDS):
                if not (body.get("license") or body.get("id_card")):
                    raise WeChatError(91014)  # the keyword needs proof material
                self._auditid += 1
                p.nickname_audits[self._auditid] = {"nickname": name, "audit_stat": 1, "fail_reason": "",
                                                    "create_time": int(self.now()), "audit_time": 0}
                return {"wording": NICKNAME_WORDING, "audit_id": self._auditid}
            p.nickname = name
            return {"wording": "", "audit_id": 0}

    def query_nickname(self, appid: str, body: dict) -> dict:
        with self.lock:
            audit = self._authorizer(appid).profile.nickname_audits.get(int(body.get("audit_id") or 0))
            if audit is None:
                raise WeChatError(91011)
            return dict(audit)

    def nickname_audit(self, appid: str, passed: bool, reason: str = "") -> dict:
        """WeChat's reviewer decides the pending name (control API); the push follows."""
        with self.lock:
            auth = self._authorizer(appid)
            p = auth.profile
            pending = [(i, a) for i, a in p.nickname_audits.items() if a["audit_stat"] == 1]
            if not pending:
                raise ValueError("no name audit is pending")
            audit_id, audit = pending[-1]
            audit.update(audit_stat=3 if passed else 2, fail_reason="" if passed else reason,
                         audit_time=int(self.now()))
            if passed:
                p.nickname = audit["nickname"]
        # wxa_nickname_audit {nickname, ret 2 failed / 3 passed, reason} to the message-event URL
        self.pusher.message_event("wxa_nickname_audit", auth.appid, auth.original_id,
                                  {"nickname": audit["nickname"], "ret": 3 if passed else 2,
                                   "reason": audit["fail_reason"]})
        return {"audit_id": audit_id, **audit}

    def upload_image(self, appid: str, kind: str | None, media: bytes | None) -> dict:
        # /cgi-bin/media/upload?type=image (multipart `media`) -> {type, media_id, created_at};
        # setHeadImage takes BMP, JPEG, JPG, GIF, PNG up to 2 MB
        if kind != "image" or not media:
            raise WeChatError(40004)  # invalid media type
        if not media.startswith(IMAGE_MAGIC):
            raise WeChatError(40005)  # invalid file type
        if len(media) > 2 * 1024 * 1024:
            raise WeChatError(40009)  # invalid image size
        with self.lock:
            p = self._authorizer(appid).profile
            media_id = _token(40)
            p.images[media_id] = {"size": len(media), "created_at": int(self.now())}
        return {"type": "image", "media_id": media_id, "created_at": int(self.now())}

    def modify_head_image(self, appid: str, body: dict) -> dict:
        with self.lock:
            auth = self._authorizer(appid)
            p = auth.profile
            media_id = body.get("head_img_media_id")
            if media_id not in p.images:
                raise WeChatError(40007)  # invalid media_id (only the authorizer's own uploads)
            try:
                x1, y1, x2, y2 = (float(body[k]) for k in ("x1", "y1", "x2", "y2"))
            except (KeyError, TypeError, ValueError):
                raise WeChatError(40097) from None
            if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
                raise WeChatError(40097)
            if p.head_image_url:
                self._changed(p, "avatar", 5, 365 * 86400, 53202)  # 5 a year; the first setting is free
            p.head_image_url = f"https://wx.qlogo.cn/mmhead/standin/{media_id[:16]}/0"
        return {}

    def modify_signature(self, appid: str, body: dict) -> dict:
        # setSignature: 53204 "功能介绍长度必须在4~120个字符范围，且是合法的UTF8字符串"; 53200: this month's
        # changes are used up (5 a month)
        signature = body.get("signature")
        if not isinstance(signature, str) or not 4 <= len(signature) <= 120:
            raise WeChatError(53204)
        with self.lock:
            p = self._authorizer(appid).profile
            if p.signature:
                self._changed(p, "intro", 5, 30 * 86400, 53200)
            p.signature = signature
        return {}

    def all_categories(self, appid: str) -> dict:
        with self.lock:
            self._authorizer(appid)
        return {"categories_list": {"categories": ALL_CATEGORIES}}

    def add_category(self, appid: str, body: dict) -> dict:
        # addCategory {categories [{first, second, certicates}]}: each pair must be in the settable
        # list; a sensitive category needs certicates; at most 5 set (getcategory's category_limit
        # is larger, but a mini program's service categories are at most 5); 5 additions a month
        cats = body.get("categories")
        if not isinstance(cats, list) or not cats:
            raise WeChatError(40097)
        nodes = {c["id"]: c for c in ALL_CATEGORIES}
        with self.lock:
            p = self._authorizer(appid).profile
            have = {(c["first"], c["second"]) for c in p.categories}
            new = []
            for c in cats:
                first, second = (c.get("first"), c.get("second")) if isinstance(c, dict) else (None, None)
                node = nodes.get(second)
                if node is None or node.get("father") != first or nodes.get(first, {}).get("level") != 1:
                    raise WeChatError(53302)  # not a category this mini program may set
                if node.get("sensitive_type") == 1 and not c.get("certicates"):
                    raise WeChatError(53303)  # a sensitive category without its qualification
                if (first, second) in have:
                    raise WeChatError(53301)  # already set
                new.append({"first": first, "second": second, "audit_status": 3})
                have.add((first, second))
            if len(have) > 5:
                raise WeChatError(53301)
            self._changed(p, "categories", 5, 30 * 86400, 53300)  # 5 additions a month
            p.categories.extend(new)
        return {}

    def get_category(self, appid: str) -> dict:
        nodes = {c["id"]: c for c in ALL_CATEGORIES}
        with self.lock:
            p = self._authorizer(appid).profile
            used = len([t for t in p.changes.get("categories", []) if self.now() - t < 30 * 86400])
            return {"categories": [{**c, "first_name": nodes[c["first"]]["name"],
                                    "second_name": nodes[c["second"]]["name"], "audit_reason": ""}
                                   for c in p.categories],
                    "limit": 5, "quota": max(0, 5 - used), "category_limit": 5}

    def account_basic_info(self, appid: str, body: dict | None = None) -> dict:
        # doc getAccountBasicInfo (POST /cgi-bin/account/getaccountbasicinfo; older pages: GET) ->
        # {appid, account_type 3, principal_type, principal_name, realname_status,
        # wx_verify_info {qualification_verify, naming_verify, …}, customer_type (0 until 认证)}
        with self.lock:
            auth = self._authorizer(appid)
            info: dict[str, Any] = {"qualification_verify": auth.verified, "naming_verify": auth.verified}
            if auth.verified:
                info.update(annual_review=False, annual_review_begin_time=0, annual_review_end_time=0)
            return {"appid": auth.appid, "account_type": 3, "principal_type": 1, "principal_name": "示例企业",
                    "realname_status": 1, "wx_verify_info": info, "customer_type": 1 if auth.verified else 0,
                    "nickname": auth.profile.nickname,
                    "signature_info": {"signature": auth.profile.signature, "modify_used_count": 0, "modify_quota": 5},
                    "head_image_info": {"head_image_url": auth.profile.head_image_url, "modify_used_count": 0,
                                        "modify_quota": 5}}

    def set_verified(self, appid: str, passed: bool) -> None:
        """WeChat's 认证 reviewer decides (the client paid and submitted)."""
        with self.lock:
            self._authorizer(appid).verified = passed

    def online_icp_order(self, appid: str) -> dict:
        # doc getOnlineIcpOrder (GET /wxa/icp/get_online_icp_order) -> {icp_subject {base_info {…,
        # record_number}, …}, icp_applets [{base_info {…, record_number}, …}]}; no images, the
        # subject's data masked. Before the filing is done: ST 40097 (no doc names the code).
        with self.lock:
            auth = self._authorizer(appid)
            f = auth.filing
            if f.status != FILED or not f.record_number:
                raise WeChatError(40097, "invalid args: the mini program has no completed filing")
            return {
                "icp_subject": {"base_info": {"type": 1, "name": "示**司", "province": "440000", "city": "440100",
                                              "district": "440106", "record_number": f.subject_record_number}},
                "icp_applets": [{"base_info": {"appid": auth.appid, "name": "示例小程序",
                                               "record_number": f.record_number}}],
            }

    def create_verifytask(self, appid: str, body: dict) -> dict:
        # doc createIcpVerifyTask {along_with_auth?} -> {task_id}; notice 24 h, task 3 days
        with self.lock:
            self._authorizer(appid)
            outcome = self.script.next(appid, "face")
            task = VerifyTask(_token(22), appid, self.now(), outcome, self._due(outcome, self.config.face_seconds),
                              along_with_auth=bool(body.get("along_with_auth")))
            self.tasks[task.task_id] = task
        return {"task_id": task.task_id}

    def query_verifytask(self, appid: str, body: dict) -> dict:
        # doc queryIcpVerifyTask {task_id} -> {is_finish, face_status}; 86328 unknown, 1 expired
        with self.lock:
            task = self.tasks.get(body.get("task_id") or "")
            if task is None or task.appid != appid:
                raise WeChatError(86328)
            if task.expires_at <= self.now():
                raise WeChatError(1)
            out: dict[str, Any] = {"is_finish": task.is_finish, "face_status": task.face_status}
            if task.along_with_auth and task.face_status == FACE_PASSED:
                out["along_with_auth_result"] = 9
            return out

    def upload_media(self, appid: str, form: dict, media: bytes | None) -> dict:
        # doc uploadIcpMedia (multipart: type, certificate_type, icp_order_field, media) ->
        # {type, media_id, create_time}; a bad call answers 40097 invalid args
        kind = form.get("type")
        if kind not in ("image", "video") or not form.get("icp_order_field") or not media:
            raise WeChatError(40097)
        with self.lock:
            auth = self._authorizer(appid)
            media_id = _token(40)
            now = int(self.now())
            auth.media[media_id] = {"type": kind, "icp_order_field": form["icp_order_field"],
                                    "certificate_type": form.get("certificate_type"), "size": len(media),
                                    "create_time": now}
        return {"type": kind, "media_id": media_id, "create_time": now}

    def apply_filing(self, appid: str, body: dict) -> dict:
        # doc applyIcpFiling; failure: {errcode 86202, hints [{errcode, err_field, errmsg}]}
        with self.lock:
            auth = self._authorizer(appid)
            f = auth.filing
            open_for = (NOT_FILED, PLATFORM_REJECTED, BUREAU_REJECTED)
            if f.status not in open_for and not (f.status == BUREAU_REVIEW and f.sms_verify_status == 3):
                raise WeChatError(86202, hints=[{"errcode": 40097, "err_field": "",
                                                 "errmsg": "当前备案状态不允许提交 / the filing is under review or done"}])
            hints = self._filing_hints(auth, body)
            if hints:
                raise WeChatError(86202, hints=hints)
            f.applications += 1
            f.outcome = self.script.next(appid, "filing")
            f.status, f.sms_verify_status, f.audit_data = PLATFORM_REVIEW, None, []
            f.due_at = self._due(f.outcome, self.config.filing_seconds)
        return {}

    def _filing_hints(self, auth: Authorizer, body: dict) -> list[dict]:
        hints: list[dict] = []

        def hint(code: int, path: str, msg: str) -> None:
            hints.append({"errcode": code, "err_field": path, "errmsg": msg})

        def get(path: str) -> Any:
            node: Any = body
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            return node

        for path in lookups.REQUIRED_FILING_FIELDS:
            value = get(path)
            if value is None or value == "" or value == []:
                hint(40097, path, "必填字段缺失 / required field missing")
        for path in lookups.MEDIA_FIELDS:
            value = get(path)
            ids = value if isinstance(value, list) else [value] if value else []
            for media_id in ids:
                if media_id not in auth.media:
                    hint(86328, path, "无法找到资源 / media_id not found (upload it with upload_icp_media)")
        comment = get("icp_applets.base_info.comment")
        if isinstance(comment, str) and not 20 <= len(comment) <= 200:
            hint(40097, "icp_applets.base_info.comment", "备注须为 20–200 字 / comment must be 20 to 200 characters")
        types = get("icp_applets.base_info.service_content_types")
        if isinstance(types, list):
            if len(types) > 5:
                hint(40097, "icp_applets.base_info.service_content_types", "最多 5 个服务内容类型 / at most 5 types")
            second_level = {t["type"] for t in lookups.SERVICE_CONTENT_TYPES if t["parent_type"]}
            if any(t not in second_level for t in types):
                hint(40097, "icp_applets.base_info.service_content_types",
                     "只能填写二级服务内容类型 / only second-level service content types")
        app = get("icp_applets.base_info.appid")
        if app and app != auth.appid:
            hint(40097, "icp_applets.base_info.appid", "appid 与调用方不一致 / appid differs from the caller")
        for path in ("icp_applets.principal_info.verify_task_id", "icp_subject.principal_info.verify_task_id"):
            task_id = get(path)
            if not task_id:
                continue
            task = self.tasks.get(task_id)
            if task is None or task.appid != auth.appid or task.expires_at <= self.now():
                hint(86328, path, "人脸核身任务不存在或已过期 / verify task unknown or expired (3 days)")
            elif task.face_status != FACE_PASSED:
                hint(40097, path, "人脸核身未通过 / the face check has not passed")
        return hints

    def cancel_filing(self, appid: str, body: dict) -> dict:
        # doc cancelApplyIcpFiling: withdraws an application still under review
        with self.lock:
            f = self._authorizer(appid).filing
            if f.status not in (PLATFORM_REVIEW, BUREAU_REVIEW):
                raise WeChatError(40097, "invalid args: no filing application to cancel")  # ST
            f.status, f.sms_verify_status, f.due_at, f.outcome = NOT_FILED, None, None, None
        return {}

    def set_sms(self, appid: str, status: int) -> None:
        """The principal's SMS check while the bureau reviews: 1 waiting, 2 done, 3 timed out."""
        with self.lock:
            f = self._authorizer(appid).filing
            if f.status != BUREAU_REVIEW:
                raise WeChatError(40097, "filing is not in bureau review")
            f.sms_verify_status = status
            if status == 3:
                f.due_at = None

    # ------------------------------------------------------------------ registration

    def fastregisterauth(self, official_appid: str, copy_wx_verify: bool = True) -> str:
        """What the 公众号 admin's scan of mp.weixin.qq.com/cgi-bin/fastregisterauth gives: a ticket.
        ``copy_wx_verify`` false: the 认证 is not copied (account/fastregister then answers
        is_wx_verify_succ false: registered, not verified)."""
        ticket = secrets.token_hex(16)
        with self.lock:
            self.fastregister_tickets[ticket] = (official_appid, bool(copy_wx_verify))
        return ticket

    def fastregister(self, official_appid: str, body: dict) -> dict:
        # doc registerMiniprogramByOffiaccount {ticket} -> {appid, authorization_code,
        # is_wx_verify_succ, is_link_succ}; a bad or used ticket -> 61058
        with self.lock:
            found = self.fastregister_tickets.pop(body.get("ticket") or "", None)
            if found is None or found[0] != official_appid:
                raise WeChatError(61058)
            verified = found[1]
        created = self.authorize(push=False)
        return {"appid": created["appid"], "authorization_code": created["auth_code"],
                "is_wx_verify_succ": "true" if verified else "false", "is_link_succ": "true"}

    def register_enterprise(self, body: dict) -> dict:
        # fastregisterenterpriseweapp, new version (community notice 0004829e9105005ce7d480e6561401:
        # from 2026-04-30 12:00 new_version must be true; name, code (18-digit USCC only),
        # component_phone required; no code_type / legal person fields; WeChat hands back an
        # authorisation URL the client opens within 24 h). Answer shape {taskid, authorize_url,
        # status} from SKIT's WechatOpenFastRegisterEnterpriseWeAppResult.
        if body.get("new_version") is not True:
            raise WeChatError(-1)  # the old version is offline after the cut-off
        name, code, phone = body.get("name"), body.get("code"), body.get("component_phone")
        if not name or not code or not phone:
            raise WeChatError(89253)
        if not (isinstance(code, str) and len(code) == 18 and code.isalnum()):
            raise WeChatError(89248, "invalid code: an 18-character unified social credit code is required")
        with self.lock:
            if any(r.code == code and r.status not in (5, 11, 12) and not r.legacy for r in self.registrations.values()):
                raise WeChatError(89249)
            outcome = self.script.next(code, "register")
            task = RegisterTask(secrets.token_hex(16), name, code, phone, self.now(), outcome,
                                self._due(outcome, self.config.register_seconds))
            self.registrations[task.taskid] = task
        return self._register_answer(task)

    def _register_answer(self, task: RegisterTask) -> dict:
        out = {"taskid": task.taskid, "status": task.status,
               "authorize_url": f"https://open.weixin.qq.com/standin/fastregister?taskid={task.taskid}"}
        if task.appid:
            out["appid"] = task.appid  # ST: the query names the new mini program once registered
        return out

    def legal_person(self, taskid: str | None = None, result: str = "ok", reason: str = "") -> dict:
        """What the legal person does with WeChat's authorisation link: authorises (ok; WeChat
        registers the mini program, authorises it to the platform and pushes
        notify_third_fasteregister with appid and auth_code) or fails the check (fail)."""
        with self.lock:
            pending = [r for r in self.registrations.values() if r.status == 0 and not r.legacy
                       and taskid in (None, r.taskid)]
            if not pending:
                raise WeChatError(89250)
            reg = max(pending, key=lambda r: r.created)
            if reg.created + REGISTER_LINK_LIFETIME <= self.now():
                reg.status, reg.due_at = 11, None
                raise WeChatError(89250, "the authorisation link expired (24 h)")
            reg.outcome = Outcome(result, reason=reason)
            self._finish_register(reg)
            return {"taskid": reg.taskid, "appid": reg.appid, "status": reg.status}

    def query_register(self, body: dict) -> dict:
        with self.lock:
            task = self.registrations.get(body.get("taskid") or "")
            if task is None:
                raise WeChatError(89250)
            return self._register_answer(task)

    def legacy_fastregisterweapp(self, action: str, body: dict) -> dict:
        # doc registerMiniprogram (fastregisterweapp?action=create|search): offline after the
        # cut-off (a community thread shows -1 "system error" for it, answered with the notice)
        if self.config.legacy_fastregister_offline:
            raise WeChatError(-1)
        if action == "search":
            with self.lock:
                if any(r.legacy and r.name == body.get("name") for r in self.registrations.values()):
                    return {}
            raise WeChatError(89250)
        needed = ("name", "code", "code_type", "legal_persona_wechat", "legal_persona_name")
        if any(not body.get(k) for k in needed):
            raise WeChatError(89253)
        if body.get("code_type") not in (1, 2, 3):
            raise WeChatError(89248)
        with self.lock:
            outcome = self.script.next(str(body["code"]), "register")
            task = RegisterTask(secrets.token_hex(16), body["name"], str(body["code"]),
                                str(body.get("component_phone") or ""), self.now(), outcome,
                                self._due(outcome, self.config.register_seconds), legacy=True)
            self.registrations[task.taskid] = task
        return {}

    # ------------------------------------------------------------------ the clock

    def tick(self) -> None:
        """Move everything that is due; called by the ticker thread and by /_standin/advance."""
        now = self.now()
        every = self.config.ticket_every
        if every and (self.last_ticket_at is None or now - self.last_ticket_at >= every):
            self.push_ticket()
        with self.lock:
            for auth in self.authorizers.values():
                audit = auth.latest_audit
                if audit is not None and audit.status == IN_REVIEW and audit.due_at is not None and audit.due_at <= now:
                    self._finish_review(auth, audit)
                f = auth.filing
                if f.due_at is not None and f.due_at <= now:
                    self._advance_filing(auth)
            for task in self.tasks.values():
                if not task.is_finish and task.due_at is not None and task.due_at <= now:
                    self._finish_face(task, task.outcome.result == "pass")
                elif not task.is_finish and task.notice_until <= now:
                    self._finish_face(task, False)  # the admin never opened the notice within 24 h
            for reg in self.registrations.values():
                if reg.status == 0 and reg.due_at is not None and reg.due_at <= now:
                    self._finish_register(reg)
                elif reg.status == 0 and not reg.legacy and reg.created + REGISTER_LINK_LIFETIME <= now:
                    reg.status, reg.due_at = 11, None  # ST: the link expired unused (no push; the query says so)

    def advance(self, appid: str | None = None, kind: str | None = None) -> int:
        """Finish now whatever is pending (for one appid / kind): reviews, filing stages, face
        checks, registrations. Returns how many moved."""
        moved = 0
        with self.lock:
            now = self.now()
            for auth in self.authorizers.values():
                if appid not in (None, auth.appid):
                    continue
                audit = auth.latest_audit
                if kind in (None, "review") and audit is not None and audit.status == IN_REVIEW:
                    audit.due_at = now
                    moved += 1
                if kind in (None, "filing") and auth.filing.status in (PLATFORM_REVIEW, BUREAU_REVIEW) \
                        and auth.filing.sms_verify_status != 3:
                    auth.filing.due_at = now
                    moved += 1
            for task in self.tasks.values():
                if kind in (None, "face") and appid in (None, task.appid) and not task.is_finish:
                    task.due_at = now
                    moved += 1
            for reg in self.registrations.values():
                if kind in (None, "register") and reg.status == 0:
                    reg.due_at = now
                    moved += 1
        self.tick()
        return moved

    def _finish_review(self, auth: Authorizer, audit: Audit) -> None:
        t = int(self.now())
        if audit.outcome.result == "pass":
            audit.status = PASSED
            self.pusher.message_event("weapp_audit_success", auth.appid, auth.original_id, {"SuccTime": t})
        else:
            audit.status = REJECTED
            audit.reason = audit.outcome.reason or "小程序类目与内容不符 / category does not match the content"
            audit.screenshots = [_token(20)]
            self.pusher.message_event("weapp_audit_fail", auth.appid, auth.original_id,
                                      {"Reason": audit.reason, "FailTime": t, "ScreenShot": "|".join(audit.screenshots)})
        audit.due_at = None

    def _advance_filing(self, auth: Authorizer) -> None:
        f = auth.filing
        outcome = f.outcome or Outcome("filed")
        reasons = outcome.audit_data or [{"key_name": "小程序备注", "error": outcome.reason or "备注未说明服务内容",
                                          "suggest": "请补充小程序的具体服务内容"}]
        if f.status == PLATFORM_REVIEW:
            if outcome.result == "platform_reject":
                f.status, f.audit_data, f.due_at = PLATFORM_REJECTED, reasons, None
            else:
                f.status, f.sms_verify_status = BUREAU_REVIEW, 1
                if outcome.result == "sms_timeout":
                    f.sms_verify_status, f.due_at = 3, None
                else:
                    f.due_at = self._due(outcome, self.config.filing_seconds)
        elif f.status == BUREAU_REVIEW:
            if outcome.result == "bureau_reject":
                f.status, f.audit_data = BUREAU_REJECTED, reasons
            else:
                f.status = FILED
                if f.record_number is None:  # kept per mini program: the bureau issues it once
                    self._filed += 1
                    f.subject_record_number = f"粤B2-2024{self._filed:04d}"
                    f.record_number = f"{f.subject_record_number}-1X"
            f.sms_verify_status = 2 if f.status == FILED else f.sms_verify_status
            f.due_at = None
        else:
            f.due_at = None
            return
        fields: dict[str, Any] = {"authorizer_appid": auth.appid, "beian_status": f.status}
        self.pusher.auth_event("notify_apply_icpfiling_result", fields, appid=auth.appid)

    def _finish_face(self, task: VerifyTask, passed: bool) -> None:
        task.is_finish = True
        task.face_status = FACE_PASSED if passed else FACE_FAILED
        task.due_at = None
        self.pusher.auth_event("notify_icpfiling_verify_result", {
            "task_id": task.task_id, "verify_appid": task.appid, "result": 3 if passed else 2}, appid=task.appid)

    def _finish_register(self, reg: RegisterTask) -> None:
        reg.due_at = None
        info = {"name": reg.name, "code": reg.code, "component_phone": reg.component_phone, "taskid": reg.taskid}
        if reg.outcome.result == "ok":
            created = self.authorize(push=False)
            reg.status, reg.appid = 12, created["appid"]
            fields = {"appid": created["appid"], "status": 0, "auth_code": created["auth_code"], "msg": "OK",
                      "info": info}
        else:
            reg.status = 5
            fields = {"status": 89251, "msg": reg.outcome.reason or "legal person face check failed", "info": info}
        self.pusher.auth_event("notify_third_fasteregister", fields, appid=reg.appid)

    # ------------------------------------------------------------------ for the control API

    def snapshot(self, appid: str) -> dict:
        with self.lock:
            auth = self._authorizer(appid)
            return {
                "appid": auth.appid, "original_id": auth.original_id, "authorized": auth.authorized,
                "committed": auth.committed,
                "audits": [{k: v for k, v in vars(a).items() if k != "outcome"} | {"outcome": vars(a.outcome)}
                           for a in auth.audits],
                "releases": list(auth.releases), "gray_percentage": auth.gray_percentage,
                "filing": {k: v for k, v in vars(auth.filing).items() if k != "outcome"},
                "tasks": [{"task_id": t.task_id, "is_finish": t.is_finish, "face_status": t.face_status,
                           "created": t.created} for t in self.tasks.values() if t.appid == appid],
                "media": len(auth.media),
                "profile": {k: v for k, v in vars(auth.profile).items() if k not in ("images", "changes")},
            }
