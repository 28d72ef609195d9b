"""What a late alert says: "delayed by …", or that its moment has passed.

Pure: no store, no Apprise, no clock (``now`` is passed in). The deliverer
(``notifiers.outbox.deliver_alert``) puts the note in front of the title and the body of
every try, so an alert that waited out an outage does not arrive as if it were new.

What "its moment has passed" means per rung (ladders: ``launch/domain/data/ladders.yaml``):

- the step is closed (decided, done, expired …) -> any rung: "the step was closed at …,
  nothing left to do";
- a rung that speaks of the time LEFT (``at_open``, ``fraction``, ``before_due_hours``:
  "SMS sent, verify within 24 hours", "12 hours left", "80 % of the time used") delivered
  after the deadline -> "the deadline passed at …"; on the SMS ladder: "the SMS window
  closed at …";
- a rung at or after the deadline (``at_due``, ``after_due_hours``: "due now", "overdue",
  "expired") stays true while the step is open: only "delayed by …".

Any of these also says "delayed by …" when the alert goes out more than
``delayed_after_seconds`` after its own due moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from launch.domain.alerts import format_due

__all__ = ["BEFORE_DUE_KINDS", "AlertMoment", "format_span", "late_note"]

BEFORE_DUE_KINDS = ("at_open", "fraction", "before_due_hours")


@dataclass(frozen=True, slots=True)
class AlertMoment:
    """What the deliverer knows about the moment an alert speaks of (all optional)."""

    due_at: datetime | None = None  # the step's deadline
    before_due: bool = False  # the rung speaks of the time left before the deadline
    sms_window: bool = False  # that deadline is the 12381 SMS window (the sms ladder)
    closed_at: datetime | None = None  # the step was closed (decided) then; None: still open


def format_span(seconds: float) -> tuple[str, str]:
    """A duration as people read it: ("1 天 3 小时", "1 d 3 h"), ("2 小时 5 分钟", "2 h 5 min")."""
    minutes = int(max(0, seconds) // 60)
    if minutes < 1:
        return "不到 1 分钟", "under a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    zh, en = [], []
    if days:
        zh.append(f"{days} 天")
        en.append(f"{days} d")
    if hours:
        zh.append(f"{hours} 小时")
        en.append(f"{hours} h")
    if mins and not days:
        zh.append(f"{mins} 分钟")
        en.append(f"{mins} min")
    return " ".join(zh), " ".join(en)


def _aware(dt: datetime | None) -> bool:
    return isinstance(dt, datetime) and dt.tzinfo is not None and dt.utcoffset() is not None


def late_note(
    fire_at: datetime | None,
    now: datetime,
    moment: AlertMoment | None = None,
    *,
    delayed_after_seconds: float = 900.0,
    tz: str = "Asia/Shanghai",
) -> tuple[str, str] | None:
    """(title prefix, body prefix) for an alert due at ``fire_at`` going out at ``now``, or
    None when it is on time and its moment has not passed."""
    if not _aware(now):
        raise ValueError("now must be timezone-aware / now 必须带时区")
    moment = moment or AlertMoment()
    late = (now - fire_at).total_seconds() if _aware(fire_at) else 0.0
    delayed = late > delayed_after_seconds
    span_zh, span_en = format_span(late)
    lines_zh: list[str] = []
    lines_en: list[str] = []
    if delayed:
        fz, fe = format_due(fire_at, tz)  # type: ignore[arg-type]
        lines_zh.append(f"（此提醒原定 {fz} 发出，延迟 {span_zh} 送达。）")
        lines_en.append(f"(delayed by {span_en}: this alert was due at {fe}.)")

    tag: tuple[str, str] | None = None
    if _aware(moment.closed_at) and moment.closed_at <= now:  # type: ignore[operator]
        cz, ce = format_due(moment.closed_at, tz)  # type: ignore[arg-type]
        tag = ("已过时", "out of date")
        lines_zh.append(f"⚠ 该步骤已于 {cz} 结束，此提醒已过时，无需再处理。")
        lines_en.append(f"⚠ The step was already closed at {ce}: this alert is out of date, nothing left to do.")
    elif moment.before_due and _aware(moment.due_at) and moment.due_at <= now:  # type: ignore[operator]
        dz, de = format_due(moment.due_at, tz)  # type: ignore[arg-type]
        if moment.sms_window:
            tag = ("短信核验窗口已关闭", "SMS window closed")
            lines_zh.append(f"⚠ 短信核验窗口已于 {dz} 关闭，以下提示已过时：请按超时处理（备案将被退回，需重新提交）。")
            lines_en.append(f"⚠ The SMS window closed at {de}: the text below is out of date; handle it as expired "
                            "(the filing is returned and must be submitted again).")
        else:
            tag = ("已过截止时间", "deadline passed")
            lines_zh.append(f"⚠ 截止时间 {dz} 已过，以下提示已过时，请按逾期处理。")
            lines_en.append(f"⚠ The deadline {de} has passed: the text below is out of date; handle it as overdue.")

    if tag is None and not delayed:
        return None
    if tag is not None:
        title = f"【{tag[0]} {tag[1]}】"
    else:
        title = f"【延迟 {span_zh} delayed by {span_en}】"
    body = "\n".join(lines_zh) + "\n" + "\n".join(lines_en) + "\n\n"
    return title, body
