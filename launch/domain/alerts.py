"""Alert ladders (提醒阶梯): which alerts a gate's deadline raises, when, and what they say.

Pure domain code: no Prefect, no database, no Apprise, no clock (``now`` is passed in).

Ladders are data: the packaged ``data/ladders.yaml`` (format documented there), merged
with an optional user YAML of the same shape (:func:`load_ladders`). Each gate of the
process catalogue names its ladder (``ladder: standard`` / ``ladder: sms``).

The deadline watcher calls :func:`due_rungs` on every pass for every open gate and
enqueues each returned :class:`Rung` under :func:`alert_dedupe_key`
(``{launch_id}:{gate}:{attempt}:{rung_id}``); the outbox's unique key makes each rung
fire exactly once. Everything is deterministic: the same inputs give the same rung ids
and the same moments, pass after pass, process after process.

Moments
-------
- ``at_open``: the moment the gate opened (the clock started).
- ``fraction: f``: for a workday deadline, the moment the share ``f`` of the WORKING time
  of the window has elapsed (:meth:`WorkCalendar.workday_fraction_point`, so it never
  lands on a day off); for an hours/days deadline, ``opened_at + f × (due − opened_at)``.
- ``before_due_hours: h`` / ``at_due`` / ``after_due_hours: h``: clock time around the
  deadline.
- A repeating rung (``repeat_every_hours: r``) fires at ``when``, ``when + r``, … as
  ``<id>-1``, ``<id>-2``, … until the gate closes (or ``max_repeats``). Each pass gets every
  occurrence whose moment has come plus the single next one, never more.

A rung whose moment is before the gate opened is left out (e.g. "12 h left" of a 6-hour
window); a rung at or after ``closed_at`` is left out (nothing fires for a finished step).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from launch.domain.calendar import DeadlineAnswer, WorkCalendar, _DuplicateKey, _StrictLoader
from launch.domain.catalogue import Catalogue, Gate, default_catalogue
from launch.domain.masking import scrub_text

__all__ = [
    "PACKAGED_LADDERS",
    "SEVERITIES",
    "WHEN_KINDS",
    "Ladder",
    "LadderError",
    "LadderSet",
    "Rung",
    "RungRule",
    "When",
    "alert_dedupe_key",
    "client_tag",
    "default_ladders",
    "due_rungs",
    "format_due",
    "load_ladders",
    "parse_ladders",
    "planned_rungs",
    "render_alert",
]

PACKAGED_LADDERS = "launch/domain/data/ladders.yaml"

SEVERITIES: tuple[str, ...] = ("info", "warning", "urgent", "overdue")
WHEN_KINDS: tuple[str, ...] = ("at_open", "fraction", "before_due_hours", "at_due", "after_due_hours")
_FLAG_KINDS = ("at_open", "at_due")
_REPEATABLE_KINDS = ("at_due", "after_due_hours")
MIN_REPEAT_HOURS = 0.25

SEVERITY_LABELS: dict[str, tuple[str, str]] = {
    "info": ("提示", "notice"),
    "warning": ("提醒", "reminder"),
    "urgent": ("紧急", "urgent"),
    "overdue": ("逾期", "overdue"),
}

_ID_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.:-]*")
_RUNG_KEYS = ("id", "when", "severity", "escalate", "repeat_every_hours", "max_repeats", "label_zh", "label_en")
_TOP_KEYS = ("escalate_to", "ladders")
_UTC = timezone.utc


# --------------------------------------------------------------------------- errors


class LadderError(ValueError):
    """A ladders file breaks a rule. Names the file, the key path and the rule, zh + en.

    Attributes: ``path`` (file label), ``key`` (e.g. ``ladders.sms[2].when``), ``rule``
    (short English code such as ``"bad-severity"``).
    """

    def __init__(self, path: str | Path, key: str | None, rule: str, zh: str, en: str) -> None:
        self.path = str(path)
        self.key = key
        self.rule = rule
        where_zh = f"提醒阶梯文件 {path}" + (f"，键 {key}" if key else "")
        where_en = f"ladders file {path}" + (f", key {key}" if key else "")
        super().__init__(f"{where_zh}：{zh} / {where_en}: {en} [{rule}]")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class When:
    kind: str  # one of WHEN_KINDS
    value: float | None = None  # the fraction or the hours; None for at_open / at_due

    def default_labels(self) -> tuple[str, str]:
        v = self.value
        if self.kind == "at_open":
            return "计时开始", "clock started"
        if self.kind == "fraction":
            return f"时间已用 {v * 100:g}%", f"{v * 100:g}% of the time used"
        if self.kind == "before_due_hours":
            return f"剩余 {v:g} 小时", f"{v:g} h left"
        if self.kind == "at_due":
            return "现已到期", "due now"
        return (f"已逾期 {v:g} 小时", f"overdue by {v:g} h") if v else ("已逾期", "overdue")


@dataclass(frozen=True, slots=True)
class RungRule:
    """One rung of a ladder as configured."""

    id: str
    when: When
    severity: str
    escalate: bool = False
    repeat_every_hours: float | None = None
    max_repeats: int | None = None
    label_zh: str | None = None
    label_en: str | None = None

    @property
    def labels(self) -> tuple[str, str]:
        zh, en = self.when.default_labels()
        return self.label_zh or zh, self.label_en or en


@dataclass(frozen=True, slots=True)
class Ladder:
    name: str
    rungs: tuple[RungRule, ...]
    escalate_to: str = "manager"


@dataclass(frozen=True)
class LadderSet:
    ladders: Mapping[str, Ladder]
    escalate_to: str = "manager"
    source: str = PACKAGED_LADDERS

    def __getitem__(self, name: str) -> Ladder:
        try:
            return self.ladders[name]
        except KeyError:
            raise KeyError(
                f"未知的提醒阶梯 {name!r} / unknown alert ladder {name!r}; known: {', '.join(self.ladders)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.ladders

    def check_catalogue(self, catalogue: Catalogue) -> None:
        """Every gate's ``ladder`` must exist here; raises :class:`LadderError` otherwise."""
        for gate in catalogue.gates.values():
            if gate.ladder not in self.ladders:
                raise LadderError(
                    self.source, "ladders", "unknown-ladder",
                    f"流程目录中关卡 {gate.id} 使用的提醒阶梯 {gate.ladder!r} 未定义（已有：{', '.join(self.ladders)}）",
                    f"gate {gate.id} of the process catalogue uses ladder {gate.ladder!r}, which is not defined "
                    f"(known: {', '.join(self.ladders)})",
                )


@dataclass(frozen=True, slots=True)
class Rung:
    """One alert of one gate attempt: fire it once at ``fire_at``."""

    rung_id: str  # e.g. "half", "left-4h", "overdue-repeat-3"
    fire_at: datetime  # aware, in the calendar's zone
    severity: str
    tags: tuple[str, ...]  # actor tags (+ client contact) + escalation tag when escalated
    provisional: bool  # the deadline (or this moment) rests on an unpublished calendar year
    escalated: bool = False
    base_id: str = ""  # the configured rung id ("overdue-repeat" for "overdue-repeat-3")
    occurrence: int | None = None  # 1, 2, … for a repeating rung
    label_zh: str = ""
    label_en: str = ""
    ladder: str = ""


# --------------------------------------------------------------------------- loading


def _read_yaml(path: Path | None, label: str, text: str | None = None) -> Any:
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    except (OSError, UnicodeDecodeError) as exc:
        raise LadderError(label, None, "unreadable", f"无法读取文件（{exc}）", f"cannot read the file ({exc})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except _DuplicateKey as exc:
        raise LadderError(
            label, str(exc.key), "duplicate-key", f"第 {exc.line} 行：键 {exc.key!r} 重复出现",
            f"line {exc.line}: key {exc.key!r} appears twice",
        ) from None
    except yaml.YAMLError as exc:
        raise LadderError(label, None, "yaml-syntax", f"YAML 语法错误：{exc}", f"YAML syntax error: {exc}") from None


def _check_top(data: Any, label: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LadderError(label, None, "not-a-mapping", "顶层必须是映射（escalate_to、ladders）",
                          "the top level must be a mapping (escalate_to, ladders)")
    for k in data:
        if k not in _TOP_KEYS:
            raise LadderError(label, str(k), "unknown-key", f"未知的键 {k!r}（只允许 escalate_to、ladders）",
                              f"unknown key {k!r} (only escalate_to and ladders are allowed)")
    ladders = data.get("ladders")
    if ladders is not None and not isinstance(ladders, dict):
        raise LadderError(label, "ladders", "not-a-mapping", "ladders 应为映射：阶梯名 → 梯级列表",
                          "ladders must be a mapping: ladder name -> list of rungs")
    return data


def _check_entries(name: Any, entries: Any, label: str, *, allow_drop: bool) -> None:
    key = f"ladders.{name}"
    if not isinstance(name, str) or not _ID_RE.fullmatch(name):
        raise LadderError(label, key, "bad-ladder-name", "阶梯名只能用小写字母、数字和短横线",
                          "a ladder name uses lowercase letters, digits and dashes only")
    if not isinstance(entries, list):
        raise LadderError(label, key, "not-a-list", "阶梯应为梯级列表", "a ladder must be a list of rungs")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise LadderError(label, f"{key}[{i}]", "rung-not-a-mapping", "梯级应为映射（id、when、severity…）",
                              "a rung must be a mapping (id, when, severity, …)")
        if "id" not in entry:
            raise LadderError(label, f"{key}[{i}].id", "missing-id", "梯级缺少 id", "the rung has no id")
        if "drop" in entry and not allow_drop:
            raise LadderError(label, f"{key}[{i}].drop", "unknown-key", "drop 只能用于覆盖文件",
                              "drop is only meaningful in an override file")


def _merge(base: dict, override: dict, base_label: str, over_label: str) -> tuple[dict, dict]:
    """Merge an override document into the packaged one; returns (merged, origin).

    origin maps a ladder name (whole ladder new) or (name, rung id) to the file label
    that last touched it, so errors name the right file.
    """
    merged = copy.deepcopy(base)
    origin: dict[Any, str] = {}
    if "escalate_to" in override:
        merged["escalate_to"] = override["escalate_to"]
        origin["escalate_to"] = over_label
    ladders = merged.setdefault("ladders", {}) or {}
    merged["ladders"] = ladders
    for name, entries in (override.get("ladders") or {}).items():
        _check_entries(name, entries, over_label, allow_drop=True)
        if name not in ladders:
            ladders[name] = [{k: v for k, v in e.items() if k != "drop"} for e in entries if not e.get("drop")]
            origin[name] = over_label
            continue
        current: list[dict] = ladders[name]
        for e in entries:
            idx = next((j for j, r in enumerate(current) if r.get("id") == e["id"]), None)
            if e.get("drop"):
                if idx is not None:
                    current.pop(idx)
                continue
            fields_ = {k: v for k, v in e.items() if k != "drop"}
            if idx is None:
                current.append(fields_)
            else:
                current[idx] = {**current[idx], **fields_}  # `when` replaced as a whole
            origin[(name, e["id"])] = over_label
    return merged, origin


def _number(value: Any, label: str, key: str, *, lo: float, hi: float | None = None, lo_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (hi is None or value <= hi)
    if not ok:
        rng_zh = f"{'>' if lo_open else '≥'} {lo:g}" + (f" 且 ≤ {hi:g}" if hi is not None else "")
        rng_en = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
        raise LadderError(label, key, "bad-number", f"应为数字，{rng_zh}（收到 {value!r}）",
                          f"must be a number {rng_en} (got {value!r})")
    return float(value)


def _parse_when(raw: Any, label: str, key: str) -> When:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise LadderError(
            label, key, "bad-when",
            "when 须为且仅为以下之一：{at_open: true}、{fraction: 0.5}、{before_due_hours: 4}、{at_due: true}、{after_due_hours: 24}",
            "when must be exactly one of {at_open: true}, {fraction: 0.5}, {before_due_hours: 4}, "
            "{at_due: true}, {after_due_hours: 24}",
        )
    ((kind, value),) = raw.items()
    if kind not in WHEN_KINDS:
        raise LadderError(label, f"{key}.{kind}", "bad-when", f"未知的时点 {kind!r}（可用：{', '.join(WHEN_KINDS)}）",
                          f"unknown moment {kind!r} (use one of {', '.join(WHEN_KINDS)})")
    if kind in _FLAG_KINDS:
        if value is not True:
            raise LadderError(label, f"{key}.{kind}", "bad-when", f"{kind} 的值只能是 true", f"{kind} takes the value true")
        return When(kind)
    if kind == "fraction":
        return When(kind, _number(value, label, f"{key}.{kind}", lo=0.0, hi=1.0))
    return When(kind, _number(value, label, f"{key}.{kind}", lo=0.0))


def _parse_rung(entry: dict, label: str, key: str) -> RungRule:
    for k in entry:
        if k not in _RUNG_KEYS:
            raise LadderError(label, f"{key}.{k}", "unknown-key", f"未知的键 {k!r}（可用：{', '.join(_RUNG_KEYS)}）",
                              f"unknown key {k!r} (allowed: {', '.join(_RUNG_KEYS)})")
    rid = entry["id"]
    if not isinstance(rid, str) or not _ID_RE.fullmatch(rid):
        raise LadderError(label, f"{key}.id", "bad-id", f"id {rid!r} 只能用小写字母、数字和短横线（如 left-4h）",
                          f"id {rid!r} must use lowercase letters, digits and dashes (e.g. left-4h)")
    if "when" not in entry:
        raise LadderError(label, f"{key}.when", "missing-when", "梯级缺少 when", "the rung has no when")
    when = _parse_when(entry["when"], label, f"{key}.when")
    sev = entry.get("severity")
    if sev not in SEVERITIES:
        raise LadderError(label, f"{key}.severity", "bad-severity",
                          f"severity 应为 {' | '.join(SEVERITIES)} 之一（收到 {sev!r}）",
                          f"severity must be one of {' | '.join(SEVERITIES)} (got {sev!r})")
    esc = entry.get("escalate", False)
    if not isinstance(esc, bool):
        raise LadderError(label, f"{key}.escalate", "bad-bool", "escalate 应为 true 或 false", "escalate must be true or false")
    rep = entry.get("repeat_every_hours")
    if rep is not None:
        rep = _number(rep, label, f"{key}.repeat_every_hours", lo=MIN_REPEAT_HOURS)
        if when.kind not in _REPEATABLE_KINDS:
            raise LadderError(label, f"{key}.repeat_every_hours", "repeat-needs-after-due",
                              "只有 at_due 或 after_due_hours 的梯级可以重复",
                              "only a rung at at_due or after_due_hours may repeat")
    maxr = entry.get("max_repeats")
    if maxr is not None:
        if rep is None:
            raise LadderError(label, f"{key}.max_repeats", "max-without-repeat", "max_repeats 需要 repeat_every_hours",
                              "max_repeats needs repeat_every_hours")
        if isinstance(maxr, bool) or not isinstance(maxr, int) or maxr < 1:
            raise LadderError(label, f"{key}.max_repeats", "bad-number", "max_repeats 应为 ≥ 1 的整数",
                              "max_repeats must be an integer >= 1")
    labels = {}
    for k in ("label_zh", "label_en"):
        v = entry.get(k)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise LadderError(label, f"{key}.{k}", "bad-label", f"{k} 应为非空文字", f"{k} must be non-empty text")
        labels[k] = v.strip() if isinstance(v, str) else None
    return RungRule(rid, when, sev, esc, rep, maxr, labels["label_zh"], labels["label_en"])


def _check_tag(value: Any, label: str, key: str) -> str:
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value):
        raise LadderError(label, key, "bad-tag", f"标签 {value!r} 只能用小写字母、数字和 - _ . :",
                          f"tag {value!r} must use lowercase letters, digits and - _ . :")
    return value


def parse_ladders(data: Any, source: str | Path = PACKAGED_LADDERS, *, origin: Mapping[Any, str] | None = None) -> LadderSet:
    """Validate a loaded (already merged) ladders document."""
    src = str(source)
    origin = origin or {}
    data = _check_top(data, src)
    esc = _check_tag(data.get("escalate_to", "manager"), origin.get("escalate_to", src), "escalate_to")
    raw = data.get("ladders") or {}
    if not raw:
        raise LadderError(src, "ladders", "no-ladders", "至少需要一个提醒阶梯", "at least one ladder is needed")
    out: dict[str, Ladder] = {}
    for name, entries in raw.items():
        label = origin.get(name, src)
        _check_entries(name, entries, label, allow_drop=False)
        if not entries:
            raise LadderError(label, f"ladders.{name}", "empty-ladder", "阶梯不能为空", "a ladder cannot be empty")
        rungs: list[RungRule] = []
        for i, entry in enumerate(entries):
            rl = origin.get((name, entry.get("id")), label)
            rungs.append(_parse_rung(entry, rl, f"ladders.{name}[{i}]"))
        ids = [r.id for r in rungs]
        for i, r in enumerate(rungs):
            key = f"ladders.{name}[{i}].id"
            rl = origin.get((name, r.id), label)
            if ids.index(r.id) != i:
                raise LadderError(rl, key, "duplicate-id", f"id {r.id!r} 在阶梯 {name} 中重复",
                                  f"id {r.id!r} appears twice in ladder {name}")
            if r.repeat_every_hours is not None:
                pat = re.compile(re.escape(r.id) + r"-\d+")
                clash = [o for o in ids if pat.fullmatch(o)]
                if clash:
                    raise LadderError(rl, key, "id-clash",
                                      f"重复梯级 {r.id} 会生成 {r.id}-1、{r.id}-2…，与梯级 {clash[0]} 冲突",
                                      f"repeating rung {r.id} generates {r.id}-1, {r.id}-2, …, which clashes with rung {clash[0]}")
        out[name] = Ladder(name, tuple(rungs), esc)
    return LadderSet(out, esc, src)


def load_ladders(override_file: Path | str | None = None, *, catalogue: Catalogue | None = None) -> LadderSet:
    """The packaged ladders, merged with an optional user YAML (same shape, only changes).

    With ``catalogue``, also checks that every gate's ladder exists.
    """
    text = resources.files("launch.domain").joinpath("data/ladders.yaml").read_text(encoding="utf-8")
    data = _check_top(_read_yaml(None, PACKAGED_LADDERS, text), PACKAGED_LADDERS)
    origin: dict[Any, str] = {}
    source = PACKAGED_LADDERS
    if override_file is not None:
        p = Path(override_file)
        over = _check_top(_read_yaml(p, str(p)), str(p))
        data, origin = _merge(data, over, PACKAGED_LADDERS, str(p))
        source = f"{p} (over {PACKAGED_LADDERS})"
    result = parse_ladders(data, PACKAGED_LADDERS if override_file is None else source, origin=origin)
    if catalogue is not None:
        result.check_catalogue(catalogue)
    return result


@lru_cache
def default_ladders() -> LadderSet:
    return load_ladders()


# --------------------------------------------------------------------------- planning


def client_tag(client_id: str) -> str:
    """The tag of a client's own contact channels: ``client-<client_id>`` (lowercased)."""
    cid = re.sub(r"[^a-z0-9_.:-]+", "-", str(client_id).strip().lower()).strip("-")
    if not cid:
        raise ValueError("client_id is empty")
    return f"client-{cid}"


def alert_dedupe_key(launch_id: str, gate_id: str, attempt: int, rung_id: str) -> str:
    """The outbox key that makes a rung of a gate attempt fire exactly once."""
    return f"{launch_id}:{gate_id}:{attempt}:{rung_id}"


def _aware(name: str, dt: Any) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a timezone-aware datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} 必须带时区 / {name} must be timezone-aware (got {dt.isoformat()})")
    return dt


def _resolve_ladder(gate: Gate, ladder: Ladder | str | None, ladders: LadderSet | None) -> Ladder:
    if isinstance(ladder, Ladder):
        return ladder
    return (ladders or default_ladders())[ladder if ladder is not None else gate.ladder]


def _tags(gate: Gate, catalogue: Catalogue, client_id: str | None) -> tuple[str, ...]:
    try:
        actor = catalogue.actors[gate.actor]
    except KeyError:
        raise KeyError(f"未知的角色 {gate.actor} / unknown actor {gate.actor}") from None
    tags = list(actor.tags)
    if client_id is not None and "client" in tags:
        tags.append(client_tag(client_id))
    return tuple(dict.fromkeys(tags))


def _moment(
    rule: RungRule, gate: Gate, opened_at: datetime, due: DeadlineAnswer, calendar: WorkCalendar
) -> tuple[datetime, bool]:
    w = rule.when
    tz = calendar.tz
    if w.kind == "at_open":
        return opened_at.astimezone(tz), False
    if w.kind == "fraction":
        if gate.deadline.workdays is not None:
            ans = calendar.workday_fraction_point(opened_at, gate.deadline.workdays, w.value)  # type: ignore[arg-type]
            return ans.at, ans.provisional
        span = due.at.astimezone(_UTC) - opened_at.astimezone(_UTC)
        return (opened_at.astimezone(_UTC) + span * w.value).astimezone(tz), False  # type: ignore[operator]
    if w.kind == "before_due_hours":
        return (due.at.astimezone(_UTC) - timedelta(hours=w.value)).astimezone(tz), False  # type: ignore[arg-type]
    if w.kind == "at_due":
        return due.at.astimezone(tz), False
    return (due.at.astimezone(_UTC) + timedelta(hours=w.value)).astimezone(tz), False  # type: ignore[arg-type]


def planned_rungs(
    gate: Gate,
    opened_at: datetime,
    due: DeadlineAnswer,
    calendar: WorkCalendar,
    ladder: Ladder | str | None,
    now: datetime,
    *,
    catalogue: Catalogue | None = None,
    ladders: LadderSet | None = None,
    client_id: str | None = None,
    closed_at: datetime | None = None,
) -> list[Rung]:
    """Every rung of the gate attempt's ladder, in firing order.

    ``ladder``: a :class:`Ladder`, a ladder name, or None for the gate's own (``gate.ladder``),
    names resolved in ``ladders`` (default: the packaged ladders). Tags are the actor's
    tags from ``catalogue`` (default: the packaged one), plus ``client-<client_id>`` when
    the actor carries the ``client`` tag and ``client_id`` is given, plus the ladder's
    escalation tag for an escalated rung. A repeating rung yields its occurrences up to
    ``now`` plus the next one. Rungs at or after ``closed_at`` are left out.
    """
    _aware("opened_at", opened_at)
    _aware("now", now)
    _aware("due.at", due.at)
    if closed_at is not None:
        _aware("closed_at", closed_at)
    lad = _resolve_ladder(gate, ladder, ladders)
    base_tags = _tags(gate, catalogue or default_catalogue(), client_id)
    esc_tags = tuple(dict.fromkeys(base_tags + (lad.escalate_to,)))
    tz = calendar.tz
    now_u = now.astimezone(_UTC)
    open_u = opened_at.astimezone(_UTC)
    close_u = closed_at.astimezone(_UTC) if closed_at is not None else None
    keyed: list[tuple[datetime, int, int, Rung]] = []

    for order, rule in enumerate(lad.rungs):
        at, prov = _moment(rule, gate, opened_at, due, calendar)
        at_u = at.astimezone(_UTC)
        if at_u < open_u:
            continue  # the window is shorter than this rung's lead time
        zh, en = rule.labels
        common = dict(
            severity=rule.severity,
            tags=esc_tags if rule.escalate else base_tags,
            provisional=bool(due.provisional or prov),
            escalated=rule.escalate,
            base_id=rule.id,
            label_zh=zh,
            label_en=en,
            ladder=lad.name,
        )
        if rule.repeat_every_hours is None:
            if close_u is not None and at_u >= close_u:
                continue
            keyed.append((at_u, order, 0, Rung(rule.id, at, **common)))
            continue
        step = timedelta(hours=rule.repeat_every_hours)
        past = 0 if now_u < at_u else (now_u - at_u) // step + 1  # occurrences whose moment has come
        count = past + 1  # plus the next one
        if rule.max_repeats is not None:
            count = min(count, rule.max_repeats)
        for k in range(1, count + 1):
            occ_u = at_u + (k - 1) * step
            if close_u is not None and occ_u >= close_u:
                break
            keyed.append(
                (occ_u, order, k, Rung(f"{rule.id}-{k}", occ_u.astimezone(tz), occurrence=k, **common))
            )
    keyed.sort(key=lambda t: t[:3])
    return [r for *_, r in keyed]


def due_rungs(
    gate: Gate,
    opened_at: datetime,
    due: DeadlineAnswer,
    calendar: WorkCalendar,
    ladder: Ladder | str | None,
    now: datetime,
    **kwargs: Any,
) -> list[Rung]:
    """The planned rungs whose moment has come (``fire_at <= now``); same keywords as
    :func:`planned_rungs`. The watcher enqueues those not enqueued yet (dedupe key)."""
    now_u = _aware("now", now).astimezone(_UTC)
    return [
        r for r in planned_rungs(gate, opened_at, due, calendar, ladder, now, **kwargs)
        if r.fire_at.astimezone(_UTC) <= now_u
    ]


# --------------------------------------------------------------------------- rendering


def format_due(due_at: datetime, tz: str = "Asia/Shanghai") -> tuple[str, str]:
    """The deadline as people read it: ``("2026-10-09 18:00 北京时间", "2026-10-09 18:00 Beijing time")``.

    A deadline at exactly 00:00 is the end of the day before and is shown as that day's
    24:00 (a workday deadline is "the end of the nth working day").
    """
    local = _aware("due_at", due_at).astimezone(ZoneInfo(tz))
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        text = f"{(local - timedelta(days=1)).date().isoformat()} 24:00"
    else:
        text = local.strftime("%Y-%m-%d %H:%M")
    if tz == "Asia/Shanghai":
        return f"{text} 北京时间", f"{text} Beijing time (UTC+8)"
    return f"{text} {tz}", f"{text} {tz}"


_URL_PIECE = re.compile(r"[^/?&=#;]+")
_NUMERIC = re.compile(r"\+?[0-9]+[Xx]?")


def _scrub_url(url: str) -> str:
    """Mask a URL piece (path segment, query value) that is wholly an ID number or a phone,
    and leave tokens alone (an 11-digit run inside a signature is not a phone)."""
    url = url.strip()
    if any(c in url for c in " \n\r\t"):
        return scrub_text(url)
    return _URL_PIECE.sub(lambda m: scrub_text(m.group(0)) if _NUMERIC.fullmatch(m.group(0)) else m.group(0), url)


def _clean(text: Any) -> str:
    return scrub_text(" ".join(str(text or "").split())) if text is not None else ""


def render_alert(
    rung: Rung,
    *,
    client_name: str,
    mini_program_name: str,
    gate_name_zh: str,
    gate_name_en: str,
    todo_zh: str,
    attempt: int,
    due_at: datetime,
    provisional: bool,
    launch_url: str,
    action_url: str | None = None,
    reason: str | None = None,
    tz: str = "Asia/Shanghai",
) -> tuple[str, str]:
    """(title, body) of an alert: Chinese first, English beneath.

    Every free-text input passes through :func:`scrub_text` (URLs piece by piece), so no
    raw ID number or phone reaches a channel. ``provisional`` (or the rung's) marks the
    deadline "[暂定 provisional]" in the title and the body.
    """
    prov = bool(provisional or rung.provisional)
    mark = " [暂定 provisional]" if prov else ""
    client = _clean(client_name) or "—"
    mp = _clean(mini_program_name) or "—"
    g_zh, g_en = _clean(gate_name_zh), _clean(gate_name_en)
    todo = scrub_text(str(todo_zh or "").strip())
    why = scrub_text(str(reason).strip()) if reason else ""
    l_zh, l_en = _clean(rung.label_zh or rung.rung_id), _clean(rung.label_en or rung.rung_id)
    s_zh, s_en = SEVERITY_LABELS.get(rung.severity, (rung.severity, rung.severity))
    due_zh, due_en = format_due(due_at, tz)
    run = _scrub_url(launch_url) if launch_url else ""
    act = _scrub_url(action_url) if action_url else ""

    title = f"【{s_zh} {s_en}】{client} · {mp} · {g_zh}：{l_zh}{mark}"
    zh = [
        f"{l_zh}：{g_zh}（第 {attempt} 轮）",
        f"客户：{client}　小程序：{mp}",
        f"截止：{due_zh}{mark}",
    ]
    if prov:
        zh.append("（截止时间涉及尚未公布的节假日安排，为暂定，公布后以新日历为准。）")
    zh.append(f"待办：{todo}" if todo else "待办：—")
    if why:
        zh.append(f"说明：{why}")
    if run:
        zh.append(f"流程运行（Prefect）：{run}")
    if act:
        zh.append(f"处理链接（已签名）：{act}")
    if rung.escalated:
        zh.append("本提醒已升级通知主管。")
    en = [
        f"{l_en}: {g_en} (attempt {attempt})",
        f"Client: {client}  Mini-program: {mp}",
        f"Due: {due_en}{mark}",
    ]
    if prov:
        en.append("(The deadline reaches a year whose public holidays are not published yet: provisional.)")
    en.append("To do: see the Chinese text above.")
    if why:
        en.append("Note: see 说明 above.")
    if run:
        en.append(f"Launch run (Prefect UI): {run}")
    if act:
        en.append(f"Action link (signed): {act}")
    if rung.escalated:
        en.append("This alert has been escalated to a manager.")
    body = "\n".join(zh) + "\n\n" + "\n".join(en) + "\n"
    return title, body
