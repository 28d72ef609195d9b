"""设置小程序基本信息: the ``mini-program-profile`` gate's action (``set_profile``), through the
third-party platform (launch/wechat/platform/profile.py; WeChat's docs under
developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/basic-info-management/ and
…/category-management/).

From the client's intake: the name (``mini_program.name``), the introduction
(``mini_program.intro``), the avatar file (``mini_program.avatar``, read like the filing's
documents: absolute, under the agency's home or the working folder; never handed to Prefect) and
the service categories by name (``mini_program.categories``, "一级/二级").

Exactly once: WeChat is asked first — getaccountbasicinfo's nickname, signature and head image,
getcategory's categories — and only what WeChat does not have yet is set, so a replay or a retry
after a crash sets nothing twice. Order: categories, introduction, avatar, name (the name last:
it may wait for WeChat's review, and a refusal of the name leaves the rest set).

A name that hits WeChat's keyword policy (checkNickName's hit_condition) goes with the business
licence as proof material and waits for WeChat's review (setNickName's audit_id, kept in the
effects ledger): the gate says so, and the watcher's repair pass (``retry_deferred``) runs the
action again after WEAPP_LAUNCH_WECHAT_RECONCILE_SECONDS, which asks api_wxa_querynickname:
passed → the decision is recorded; failed → a note for staff naming the field and WeChat's reason.

Refusals (the intake lacks a field, a category WeChat does not offer or that needs a
qualification, WeChat refuses a value) become a note on the gate in Chinese and English naming
the intake field; staff decide the gate. Busy / unreachable: raised to ``act``, which defers.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launch.app.resources import Resources

log = logging.getLogger("weapp_launch.profile_action")

NAME_AUDIT_EFFECT = "profile-name-audit:"  # effects ledger "<prefix><attempt>:<audit_id>"

_LABELS = {  # intake field → (zh, en)
    "mini_program.name": ("名称", "name"),
    "mini_program.intro": ("简介", "introduction"),
    "mini_program.avatar": ("头像", "avatar"),
    "mini_program.categories": ("服务类目", "service categories"),
}


@dataclass
class _Refused(Exception):
    field: str
    zh: str
    en: str
    code: str


def _refuse_wechat(field: str, exc: Any) -> _Refused:
    zh, en = _LABELS.get(field.split("[")[0], (field, field))
    return _Refused(field, f"微信拒绝设置{zh}：{exc.zh}（错误码 {exc.errcode}）",
                    f"WeChat refused the {en}: {exc.en} (errcode {exc.errcode})", str(exc.errcode))


def _wechat(field: str, fn, *args, **kw):
    """One WeChat call for ``field``: a refusal names the field; busy / unreachable go up to ``act``."""
    from launch.wechat.platform.errors import TokenInvalid, WeChatApiError

    try:
        return fn(*args, **kw)
    except WeChatApiError as exc:
        if exc.retryable or isinstance(exc, TokenInvalid):
            raise
        raise _refuse_wechat(field, exc) from None


def name_audit(res: Resources, launch_id: str, attempt: int) -> int | None:
    """The audit id of the name review this attempt started (effects ledger), or None."""
    found = [e.effect_key.removeprefix(NAME_AUDIT_EFFECT).partition(":") for e in res.store.effects_for(launch_id)
             if e.effect_key.startswith(NAME_AUDIT_EFFECT)]
    ids = [int(a) for n, _, a in found if n == str(attempt) and a.isdigit()]
    return ids[-1] if ids else None


def _resolve(res: Resources, ref: str) -> Path | None:
    p = Path(ref).expanduser()
    candidates = [p] if p.is_absolute() else [Path(res.settings.home) / p, Path.cwd() / p]
    return next((c for c in candidates if c.is_file()), None)


def _intake_problems(res: Resources, mp: Any) -> list[tuple[str, str, str]]:
    """(field, zh, en) for what the intake lacks or breaks, before WeChat is called."""
    rules = res.rules.profile
    out: list[tuple[str, str, str]] = []
    intro = (mp.intro or "").strip()
    if not intro:
        out.append(("mini_program.intro", "未填写简介", "no introduction given"))
    elif not rules.intro_min_chars <= len(intro) <= rules.intro_max_chars:
        out.append(("mini_program.intro", f"简介须为 {rules.intro_min_chars}–{rules.intro_max_chars} 字（规则 "
                                          "profile-intro-length）",
                    f"the introduction must have {rules.intro_min_chars}–{rules.intro_max_chars} characters "
                    "(rule profile-intro-length)"))
    if not mp.avatar:
        out.append(("mini_program.avatar", "未提供头像文件", "no avatar file given"))
    elif _resolve(res, mp.avatar) is None:
        out.append(("mini_program.avatar", "头像文件不存在", "the avatar file is not found"))
    if not mp.categories:
        out.append(("mini_program.categories", "未填写服务类目", "no service category given"))
    elif len(mp.categories) > rules.categories_max:
        out.append(("mini_program.categories", f"服务类目最多 {rules.categories_max} 项（规则 profile-categories-invalid）",
                    f"at most {rules.categories_max} service categories (rule profile-categories-invalid)"))
    return out


def _wanted_categories(profile: Any, appid: str, names: list[str]) -> list[tuple[int, int, str]]:
    """(first id, second id, "一级/二级") per intake category, from WeChat's settable list."""
    nodes = _wechat("mini_program.categories", profile.get_all_categories, appid)
    firsts = {n.name: n for n in nodes if n.level == 1}
    out = []
    for i, name in enumerate(names):
        first_name, _, second_name = (part.strip() for part in name.partition("/"))
        first = firsts.get(first_name)
        second = next((n for n in nodes if first and n.father == first.id and n.name == second_name), None)
        field = f"mini_program.categories[{i}]"
        if first is None or second is None:
            raise _Refused(field, f"微信可设置的类目中没有“{name}”", f"WeChat offers no category '{name}'", "category")
        if second.sensitive_type == 1:
            raise _Refused(field, f"类目“{name}”需要资质证明，请运营在小程序后台提交",
                           f"the category '{name}' needs a qualification: staff add it in mp.weixin.qq.com",
                           "category-qualification")
        out.append((first.id, second.id, f"{first.name}/{second.name}"))
    return out


def set_profile(res: Resources, platform: Any, launch: Any, gate_id: str, attempt: int) -> str:
    from launch.app.wechat_actions import DEFERRED_EFFECT, MANUAL, _record
    from launch.domain.intake import parse_intake
    from launch.domain.masking import scrub_text
    from launch.wechat.platform.profile import NicknameAudit, SetCategory

    profile, account = getattr(platform, "profile", None), getattr(platform, "account", None)
    if profile is None or account is None:
        return MANUAL
    appid = launch.appid

    def note(text: str) -> None:
        res.store.annotate_step(launch.id, gate_id, attempt, note=text[:4000])

    intake = parse_intake(res.store.client_intake(launch.client_id), source="client intake")
    mp = intake.mini_program
    problems = _intake_problems(res, mp)
    if problems:
        fields = ", ".join(p[0] for p in problems)
        note("未设置小程序基本信息：客户资料不全（" + "；".join(f"{f}：{zh}" for f, zh, _ in problems)
             + "），请补充 intake 后由运营设置并登记 / the profile was not set: the intake lacks what it needs ("
             + "; ".join(f"{f}: {en}" for f, _, en in problems) + "); complete the intake, staff set and decide it")
        log.warning("profile of %s not set: the intake lacks %s", launch.id, fields)
        return "refused:intake"
    name, intro = mp.name.strip(), (mp.intro or "").strip()
    set_now: list[str] = []
    try:
        # categories: only those WeChat does not have yet (getcategory), in one addcategory
        wanted = _wanted_categories(profile, appid, list(mp.categories))
        have = {(c.first, c.second) for c in _wechat("mini_program.categories", profile.get_category, appid).categories}
        missing = [SetCategory(first=f, second=s) for f, s, _ in wanted if (f, s) not in have]
        if missing:
            _wechat("mini_program.categories", profile.add_categories, appid, missing)
            set_now.append("categories")
        category_changes = 1 if missing and have else 0
        info = account.get_account_basic_info(appid)
        # introduction
        intro_changes = 0
        if info.signature != intro:
            _wechat("mini_program.intro", profile.modify_signature, appid, intro)
            set_now.append("intro")
            intro_changes = 1 if info.signature else 0
        # avatar: only when WeChat has none (a replay after it was set finds it there)
        if not info.has_head_image:
            path = _resolve(res, mp.avatar or "")
            assert path is not None  # checked above
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            media_id = _wechat("mini_program.avatar", profile.upload_image, appid, filename=path.name,
                               content=path.read_bytes(), content_type=content_type)
            _wechat("mini_program.avatar", profile.modify_head_image, appid, media_id)
            set_now.append("avatar")
        # name: last; it may wait for WeChat's review
        name_changes = 0
        if info.nickname != name:
            audit_id = name_audit(res, launch.id, attempt)
            in_review = False
            if audit_id is not None:
                audit = _wechat("mini_program.name", profile.query_nickname, appid, audit_id)
                if audit.audit_stat == NicknameAudit.FAILED:
                    reason = scrub_text(audit.fail_reason or "")[:200]
                    raise _Refused("mini_program.name", f"微信名称审核未通过：{reason}",
                                   f"WeChat's name review failed: {reason}", "name-review")
                in_review = audit.audit_stat == NicknameAudit.IN_REVIEW
            else:
                in_review = _set_name(res, profile, launch, attempt, name, intake)
                set_now.append("name")
                name_changes = 1 if info.nickname else 0
            if in_review:
                res.store.note_effect(launch.id, f"{DEFERRED_EFFECT}{gate_id}:{attempt}", at=res.now())
                note("名称已提交微信审核（命中关键字，已附营业执照），巡检将查询审核结果；其余信息已设置 / the name is in "
                     "WeChat's review (it hits a keyword; the business licence went with it): the watcher asks for "
                     "the result; the rest of the profile is set")
                return "name-in-review"
    except _Refused as r:
        done = ", ".join(set_now) or "-"
        note(f"{r.zh}（字段 {r.field}；本次已设置：{done}），请修改客户资料或由运营在小程序后台处理后登记 / {r.en} "
             f"(field {r.field}; set now: {done}); fix the intake, or staff set it in mp.weixin.qq.com and decide")
        log.warning("profile of %s: %s refused (%s)", launch.id, r.field, r.code)
        return f"refused:{r.code}"
    _record(res, launch, gate_id, attempt, {
        "outcome": "set", "name": name, "avatar_set": True, "intro": intro,
        "categories": [label for _, _, label in wanted],
        "name_changes": name_changes, "avatar_changes": 0, "intro_changes": intro_changes,
        "category_changes": category_changes})
    return "set"


def _set_name(res: Resources, profile: Any, launch: Any, attempt: int, name: str, intake: Any) -> bool:
    """setNickName; True when the name waits for WeChat's review (its audit id kept)."""
    from launch.wechat.platform.errors import WeChatApiError
    from launch.wechat.platform.profile import SetNickNameRequest

    appid = launch.appid
    try:
        hit = profile.check_nickname(appid, name).hit_condition
    except WeChatApiError as exc:
        if exc.retryable:
            raise
        if exc.errcode != 41033:
            raise _refuse_wechat("mini_program.name", exc) from None
        hit = False  # checkNickName is for API-registered mini programs only: setNickName says the rest
    license = None
    if hit:
        found = [d for _, d in intake.find_documents("business_licence") if getattr(d, "file", None)]
        path = _resolve(res, found[0].file) if found else None
        if path is None:
            raise _Refused("mini_program.name", "名称命中关键字，须附营业执照作为证明材料，但资料中没有营业执照文件",
                           "the name hits a keyword and needs the business licence as proof; the intake has no "
                           "licence file", "name-proof")
        license = _wechat("mini_program.name", profile.upload_image, appid, filename=path.name,
                          content=path.read_bytes(),
                          content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    try:
        answer = profile.set_nickname(appid, SetNickNameRequest(nick_name=name, license=license))
    except WeChatApiError as exc:
        if exc.errcode == 91019:
            return True  # an earlier call's review is running (its answer was lost): wait for it
        if exc.retryable:
            raise
        raise _refuse_wechat("mini_program.name", exc) from None
    if answer.in_review:
        res.store.note_effect(launch.id, f"{NAME_AUDIT_EFFECT}{attempt}:{answer.audit_id}"[:255])
        return True
    return False
