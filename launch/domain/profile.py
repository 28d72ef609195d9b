"""The mini-program's profile (小程序基本信息): name, avatar, introduction, service categories.

WeChat reports a filing as not possible while they are missing (get_icp_entrance_info
status 1025–1027 "information or category missing"; submit_audit errors 86002
"name/avatar/intro not set" and 85008 "category not set": shared/wechat-platform.md), so
the ``mini-program-profile`` gate closes the registration phase and the filing branch
starts after it.

Changing them is limited (shared/domain.md, "Name: 2 changes before release / a year;
avatar 5 a year; intro 5 a month; service categories at most 5, 5 changes a month"). The
counters are kept on the client in the store (``client_profile_changes``); this module only
counts: :func:`profile_problems` takes the gate's answer, the client's change history and
the figures of :class:`launch.domain.rules.ProfileRules`, and names every limit the answer
would break, as ``FormProblem`` (field, rule id, "中文 / English"). Pure: the clock is
passed in.

Windows: ``rolling`` (default) counts the month / year ending at the decision, which never
counts fewer changes than the natural month / year and so is the stricter reading;
``calendar`` counts the natural month / year in Asia/Shanghai. Before release: every
change recorded for the client before its first release (the first setting of a field is
not a change).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from launch.domain.forms import FormProblem

__all__ = ["PROFILE_FIELDS", "PROFILE_RULE_IDS", "ProfileChange", "changes_in_window", "profile_changes",
           "profile_problems"]

SHANGHAI = ZoneInfo("Asia/Shanghai")

# What a change is counted under, in the store and here.
PROFILE_FIELDS: tuple[str, ...] = ("name", "avatar", "intro", "categories")

PROFILE_RULE_IDS: tuple[str, ...] = (
    "profile-name-missing",
    "profile-avatar-missing",
    "profile-intro-missing",
    "profile-categories-missing",
    "profile-categories-max",
    "profile-name-changes",
    "profile-avatar-changes",
    "profile-intro-changes",
    "profile-category-changes",
)

Window = Literal["month", "year", "before_release"]


@dataclass(frozen=True)
class ProfileChange:
    """``count`` changes of ``field`` recorded at ``at`` (one gate decision)."""

    field: str
    at: datetime
    count: int = 1


class ProfileAnswer(Protocol):
    name: str
    avatar_set: bool
    intro: str
    categories: list[str]
    name_changes: int
    avatar_changes: int
    intro_changes: int
    category_changes: int


class ProfileLimits(Protocol):
    name_changes_before_release: int
    avatar_changes_per_year: int
    intro_changes_per_month: int
    categories_max: int
    category_changes_per_month: int
    windows: str


def _months_back(at: datetime, months: int) -> datetime:
    y, m = divmod(at.month - 1 - months, 12)
    year, month = at.year + y, m + 1
    import calendar

    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def changes_in_window(
    history: Iterable[ProfileChange],
    field: str,
    now: datetime,
    window: Window,
    mode: str = "rolling",
    released_at: datetime | None = None,
) -> int:
    """How many changes of ``field`` count against a limit at ``now``."""
    total = 0
    local_now = now.astimezone(SHANGHAI)
    for change in history:
        if change.field != field or change.at > now:
            continue
        at = change.at
        if window == "before_release":
            counted = released_at is None or at < released_at
        elif mode == "calendar":
            local = at.astimezone(SHANGHAI)
            counted = local.year == local_now.year and (window == "year" or local.month == local_now.month)
        else:
            counted = at > _months_back(now, 1 if window == "month" else 12)
        if counted:
            total += change.count
    return total


def profile_changes(answer: ProfileAnswer, at: datetime) -> list[ProfileChange]:
    """The changes a gate answer records (fields changed zero times are left out)."""
    counts = {
        "name": answer.name_changes,
        "avatar": answer.avatar_changes,
        "intro": answer.intro_changes,
        "categories": answer.category_changes,
    }
    return [ProfileChange(field, at, n) for field, n in counts.items() if n > 0]


def _problem(field: str, rule: str, zh: str, en: str) -> FormProblem:
    return FormProblem(field=field, rule=rule, message=f"{zh}（规则 {rule}） / {en} (rule {rule})")


def profile_problems(
    answer: ProfileAnswer,
    history: Iterable[ProfileChange],
    now: datetime,
    limits: ProfileLimits,
    released_at: datetime | None = None,
) -> list[FormProblem]:
    """Every change limit the answer would break, given the client's earlier changes."""
    history = list(history)
    mode = limits.windows
    found: list[FormProblem] = []
    n_categories = len(answer.categories)
    if n_categories > limits.categories_max:
        found.append(_problem(
            "categories", "profile-categories-max",
            f"服务类目 {n_categories} 个，最多 {limits.categories_max} 个",
            f"{n_categories} service categories; at most {limits.categories_max}",
        ))
    checks = (
        ("name_changes", "name", answer.name_changes, "before_release", limits.name_changes_before_release,
         "profile-name-changes", "小程序名称发布前", "name before release"),
        ("avatar_changes", "avatar", answer.avatar_changes, "year", limits.avatar_changes_per_year,
         "profile-avatar-changes", "头像每年", "avatar a year"),
        ("intro_changes", "intro", answer.intro_changes, "month", limits.intro_changes_per_month,
         "profile-intro-changes", "简介每月", "introduction a month"),
        ("category_changes", "categories", answer.category_changes, "month", limits.category_changes_per_month,
         "profile-category-changes", "服务类目每月", "service categories a month"),
    )
    for form_field, field, now_count, window, limit, rule, what_zh, what_en in checks:
        if now_count <= 0:
            continue
        before = changes_in_window(history, field, now, window, mode, released_at)
        if before + now_count > limit:
            found.append(_problem(
                form_field, rule,
                f"{what_zh}最多修改 {limit} 次：已修改 {before} 次，本次又登记 {now_count} 次",
                f"the {what_en} may change at most {limit} time(s): {before} already, {now_count} more recorded now",
            ))
    return found
