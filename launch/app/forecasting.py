"""The forecast on the store: history adapter, commitments and the commitment risk alert.

    history_from_store(store, launch_id, catalogue, tz) -> LaunchHistory
    forecast_for(store, launch_id, *, catalogue, calendar, config, as_of, samples, seed) -> Forecast
    commit(store, launch_id, go_live, now=None) -> CommitmentRecord
    check_risk(store, launch_id, ...) / check_commitments(store, ...)   (the watcher, once a pass)
    forecast_lines(fc, commitment) -> list[str]                          (weapp-launch status)

The domain (``launch.domain.forecast``) knows nothing of the store; this module turns the
steps, branches and launch rows into a :class:`LaunchHistory` (dates in the calendar's
zone) and keeps a small in-process cache keyed by that history, so a watcher pass only
simulates a launch again when something happened to it (or the day changed).

Risk levels against a committed go-live date C: ``ok`` (P90 ≤ C), ``at-risk``
(P50 ≤ C < P90), ``late`` (C < P50). Each change of level (the first check included,
unless it is ``ok``) puts one alert in the outbox under
``{launch}:forecast-risk:{n}:{level}`` — n counts the changes (launch_commitments.risk_seq),
so the key never repeats and two watchers racing enqueue it once. Tags per level come
from the forecast file (``risk_tags``: the account manager ``ops``; ``late`` also
``manager``). Bilingual; the client's name as every alert shows it (masked for
individuals); nothing else about the client.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from launch.domain.forecast import (
    Forecast,
    ForecastConfig,
    GateActual,
    LaunchHistory,
    PhaseActual,
    forecast,
    load_forecast_config,
    risk_level,
)
from launch.domain.masking import mask_name

if TYPE_CHECKING:
    from launch.app.resources import Resources
    from launch.settings import Settings

__all__ = [
    "RISK_KEY",
    "RiskChange",
    "check_commitments",
    "check_risk",
    "commit",
    "config_from_settings",
    "forecast_for",
    "forecast_lines",
    "history_from_store",
    "risk_dedupe_key",
    "status_forecast",
]

log = logging.getLogger("weapp_launch.forecasting")

RISK_KEY = "forecast-risk"
LEVEL_LABELS: dict[str, tuple[str, str]] = {
    "ok": ("按期", "on track"),
    "at-risk": ("有风险", "at risk"),
    "late": ("将延期", "late"),
}
_SEVERITY = {"ok": ("info", "提示", "notice"), "at-risk": ("warning", "提醒", "reminder"),
             "late": ("urgent", "紧急", "urgent")}
_PASSED = "done"


# --------------------------------------------------------------------------- settings


_CONFIG_CACHE: dict[tuple[str, int], ForecastConfig] = {}


def config_from_settings(settings: Settings) -> ForecastConfig:
    """The packaged forecast file merged with ``settings.forecast_file``; parsed again only
    when that file changes."""
    path = settings.forecast_file
    try:
        stamp = (str(path), Path(path).stat().st_mtime_ns if path is not None else 0)
    except OSError:
        stamp = (str(path), -1)
    cfg = _CONFIG_CACHE.get(stamp)
    if cfg is None:
        cfg = load_forecast_config(path)
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[stamp] = cfg
    return cfg


# --------------------------------------------------------------------------- adapter


def _day(dt: datetime | None, tz: ZoneInfo) -> date | None:
    return dt.astimezone(tz).date() if dt is not None else None


def history_from_store(store: Any, launch_id: str, catalogue: Any, tz: Any = "Asia/Shanghai") -> LaunchHistory:
    """What the store knows of a launch, as the forecast needs it (dates in ``tz``)."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(str(tz))
    launch = store.get_launch(launch_id)
    if launch is None:
        raise LookupError(f"没有这个上线任务 / no launch {launch_id}")
    client = store.get_client(launch.client_id)
    subject_type = client.subject_type if client is not None else None
    steps = store.steps_for(launch_id)
    branches = {b.branch: b for b in store.branches_for(launch_id)}

    by_gate: dict[str, list[Any]] = {}
    for s in steps:
        by_gate.setdefault(s.step, []).append(s)
    gates: dict[str, GateActual] = {}
    for gate_id, rows in by_gate.items():
        rows.sort(key=lambda r: (r.attempt, r.started_at))
        open_rows = [r for r in rows if r.is_open]
        decided = [r for r in rows if not r.is_open and r.finished_at is not None and r.status != "skipped"]
        last_decided = max(decided, key=lambda r: (r.finished_at, r.attempt)) if decided else None
        gates[gate_id] = GateActual(
            attempts=max(r.attempt for r in rows),
            open_since=_day(open_rows[-1].started_at, zone) if open_rows else None,
            last_started=_day(rows[-1].started_at, zone),
            finished=_day(last_decided.finished_at, zone) if last_decided else None,
            last_passed=(last_decided.status == _PASSED) if last_decided else None,
            last_outcome=last_decided.outcome if last_decided else None,
            rejections=sum(1 for r in decided if r.status != _PASSED),
        )

    released = _day(launch.released_at, zone) if launch.status == "released" else None
    phase_of = {g.id: g.phase for g in catalogue.gates.values()}
    order = catalogue.phase_order()
    dependents: dict[str, list[str]] = {p.id: [] for p in order}
    for p in order:
        for d in p.after:
            dependents[d].append(p.id)
    starts: dict[str, date] = {}
    for s in steps:
        ph = phase_of.get(s.step)
        if ph is None or (s.step == "implementation" and s.attempt > 1):
            continue  # implementation-n fixes a failed review: part of the review loop
        d = _day(s.started_at, zone)
        if ph not in starts or d < starts[ph]:
            starts[ph] = d
    for p in order:
        if p.branch:
            b = branches.get(p.branch) or branches.get(f"{p.branch}-1")
            if b is not None:
                d = _day(b.started_at, zone)
                starts[p.id] = min(d, starts.get(p.id, d))

    phases: dict[str, PhaseActual] = {}
    for p in order:
        start = starts.get(p.id)
        finish: date | None = None
        rows = [s for s in steps if phase_of.get(s.step) == p.id
                and not (s.step == "implementation" and s.attempt > 1)]
        if p.branch:
            b = branches.get(p.branch) or branches.get(f"{p.branch}-1")
            if b is not None and b.status == "done":
                finish = _day(b.finished_at, zone)
        elif start is not None and rows and not any(r.is_open for r in rows):
            in_path = catalogue.gates_of(p.id, launch.registration_path, subject_type)
            last_gate = in_path[-1].id if in_path else None
            last = max((r for r in rows if r.step == last_gate), key=lambda r: r.attempt, default=None)
            if (last is not None and last.status == _PASSED) or any(starts.get(d) for d in dependents[p.id]):
                finish = max(_day(r.finished_at, zone) for r in rows if r.finished_at is not None)
        if released is not None and finish is None:
            finish = released
        if finish is not None and start is None:
            start = finish
        phases[p.id] = PhaseActual(start, finish)
    return LaunchHistory(
        launch_id=launch.id,
        start=_day(launch.created_at, zone),
        registration_path=launch.registration_path,
        subject_type=subject_type,
        phases=phases,
        gates=gates,
        finished=released,
    )


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 2048


def _history_key(h: LaunchHistory) -> tuple:
    return (h.launch_id, h.start, h.registration_path, h.subject_type, h.finished,
            tuple(sorted(h.phases.items())), tuple(sorted(h.gates.items())))


def forecast_for(
    store: Any,
    launch_id: str,
    *,
    catalogue: Any,
    calendar: Any,
    config: ForecastConfig,
    as_of: date,
    samples: int = 10_000,
    seed: int = 0,
) -> Forecast:
    """The forecast of a launch from the store. Cached in-process by (history, as_of,
    samples, seed, config, calendar, catalogue): asking again costs one read of its steps."""
    history = history_from_store(store, launch_id, catalogue, calendar.tz)
    key = (_history_key(history), as_of, samples, seed, id(config), id(calendar), id(catalogue))
    hit = _CACHE.get(key)
    if hit is not None and hit[1] is config and hit[2] is calendar and hit[3] is catalogue:
        _CACHE.move_to_end(key)
        return hit[0]
    fc = forecast(history, catalogue, calendar, config, as_of=as_of, samples=samples, seed=seed)
    _CACHE[key] = (fc, config, calendar, catalogue)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return fc


# --------------------------------------------------------------------------- commitments


def commit(store: Any, launch_id: str, go_live: date, now: datetime | None = None) -> Any:
    """Commit a launch to a go-live date (at start or later; again to move it)."""
    launch = store.get_launch(launch_id)
    if launch is None:
        raise LookupError(f"没有这个上线任务 / no launch {launch_id}")
    return store.set_commitment(launch_id, go_live, at=now)


def risk_dedupe_key(launch_id: str, seq: int, level: str) -> str:
    return f"{launch_id}:{RISK_KEY}:{seq}:{level}"


@dataclass(frozen=True)
class RiskChange:
    launch_id: str
    previous: str | None
    level: str
    seq: int
    committed: date
    p50: date
    p90: date
    provisional: bool
    severity: str
    tags: tuple[str, ...]
    alert_id: int | None  # None: an `ok` first check (nothing to say)
    dedupe_key: str | None


def _client_name(client: Any) -> str:
    if client is None:
        return "—"
    return mask_name(client.display_name) if client.subject_type == "individual" else client.display_name


def render_risk_alert(level: str, previous: str | None, *, client_name: str, mini_program_name: str,
                      committed: date, fc: Forecast) -> tuple[str, str]:
    """(title, body), Chinese first, English beneath; nothing personal beyond the names
    every alert shows (masked for an individual)."""
    from launch.domain.masking import scrub_text

    _, s_zh, s_en = _SEVERITY[level]
    l_zh, l_en = LEVEL_LABELS[level]
    client = scrub_text(client_name) or "—"
    mp = scrub_text(mini_program_name) or "—"
    mark = " [暂定 provisional]" if fc.provisional else ""
    title = f"【{s_zh} {s_en}】{client} · {mp} · 上线预测：{l_zh}{mark}"
    was_zh = f"（此前：{LEVEL_LABELS[previous][0]}）" if previous else ""
    was_en = f" (was: {LEVEL_LABELS[previous][1]})" if previous else ""
    crit = [s for s in fc.steps if s.critical and s.actual_finish is None]
    zh = [
        f"上线日期预测：{l_zh}{was_zh}",
        f"客户：{client}　小程序：{mp}",
        f"承诺上线日：{committed.isoformat()}",
        f"预测（{fc.as_of.isoformat()}，{fc.samples} 次模拟）：P50 {fc.p50.isoformat()}，P90 {fc.p90.isoformat()}{mark}",
    ]
    en = [
        f"Go-live forecast: {l_en}{was_en}",
        f"Client: {client}  Mini-program: {mp}",
        f"Committed go-live: {committed.isoformat()}",
        f"Forecast ({fc.as_of.isoformat()}, {fc.samples} runs): P50 {fc.p50.isoformat()}, P90 {fc.p90.isoformat()}{mark}",
    ]
    if crit:
        zh.append("关键路径：" + " → ".join(s.name_zh for s in crit))
        en.append("Critical path: " + " → ".join(s.name_en for s in crit))
    if fc.provisional:
        zh.append("（预测涉及尚未公布的节假日安排，为暂定。）")
        en.append("(The forecast reaches a year whose public holidays are not published yet: provisional.)")
    if level == "late":
        zh.append("本提醒已通知主管：请与客户沟通新的上线日期，或调整资源。")
        en.append("A manager has been told: agree a new date with the client, or add resources.")
    elif level == "at-risk":
        zh.append("承诺日期晚于 P50、早于 P90：请关注关键路径上的步骤。")
        en.append("The commitment lies between P50 and P90: watch the steps on the critical path.")
    else:
        zh.append("P90 已不晚于承诺日期。")
        en.append("P90 is no later than the commitment again.")
    return title, "\n".join(zh) + "\n\n" + "\n".join(en) + "\n"


def check_risk(
    store: Any,
    launch_id: str,
    *,
    catalogue: Any,
    calendar: Any,
    config: ForecastConfig,
    now: datetime,
    samples: int = 10_000,
    seed: int = 0,
    commitment: Any = None,
) -> RiskChange | None:
    """Forecast a committed launch; on a change of risk level, note it and enqueue its
    alert in one transaction. None: no commitment, or the level did not change."""
    commitment = commitment or store.get_commitment(launch_id)
    if commitment is None:
        return None
    as_of = now.astimezone(calendar.tz).date()
    fc = forecast_for(store, launch_id, catalogue=catalogue, calendar=calendar, config=config, as_of=as_of,
                      samples=samples, seed=seed)
    level = risk_level(fc, commitment.committed_go_live)
    previous = commitment.risk_level
    if level == previous and fc.p50 == commitment.last_p50 and fc.p90 == commitment.last_p90:
        return None  # nothing new to note
    severity = _SEVERITY[level][0]
    tags = tuple(config.risk_tags.get(level, ("ops",)))
    with store.session() as s:
        row = store.record_risk(launch_id, level, fc.p50, fc.p90, expected_level=previous,
                                expected_seq=commitment.risk_seq, at=now, session=s)
        if row is None or level == previous:
            return None
        if previous is None and level == "ok":
            return RiskChange(launch_id, previous, level, row.risk_seq, commitment.committed_go_live, fc.p50, fc.p90,
                              fc.provisional, severity, tags, None, None)
        launch = store.get_launch(launch_id, session=s)
        client = store.get_client(launch.client_id, session=s) if launch is not None else None
        title, body = render_risk_alert(
            level, previous, client_name=_client_name(client),
            mini_program_name=client.mini_program_name if client is not None else "—",
            committed=commitment.committed_go_live, fc=fc,
        )
        key = risk_dedupe_key(launch_id, row.risk_seq, level)
        alert, _ = store.enqueue_alert(dedupe_key=key, rung=f"{RISK_KEY}-{level}", title=title, body=body,
                                       launch_id=launch_id, tags=tags, send_after=now, created_at=now, session=s)
    return RiskChange(launch_id, previous, level, row.risk_seq, commitment.committed_go_live, fc.p50, fc.p90,
                      fc.provisional, severity, tags, alert.id, key)


def check_commitments(
    store: Any,
    *,
    catalogue: Any,
    calendar: Any,
    config: ForecastConfig,
    now: datetime,
    samples: int = 10_000,
    seed: int = 0,
    limit: int = 5000,
) -> tuple[list[RiskChange], list[str]]:
    """Every running launch with a commitment: (changes, errors). One bad launch does not
    stop the others."""
    from launch.domain.masking import scrub_text

    changes: list[RiskChange] = []
    errors: list[str] = []
    for c in store.open_commitments(limit):
        try:
            change = check_risk(store, c.launch_id, catalogue=catalogue, calendar=calendar, config=config, now=now,
                                samples=samples, seed=seed, commitment=c)
            if change is not None:
                changes.append(change)
        except Exception as exc:  # noqa: BLE001
            log.warning("forecast risk: %s: %s", c.launch_id, type(exc).__name__)
            errors.append(scrub_text(f"forecast risk {c.launch_id}: {type(exc).__name__}: {exc}")[:500])
    return changes, errors


# --------------------------------------------------------------------------- presentation


def forecast_lines(fc: Forecast, commitment: Any = None) -> list[str]:
    """Plain lines (no markup) for ``weapp-launch status LAUNCH``: go-live P50/P90, the
    commitment and its risk level, each phase's P50/P90 finish (actual when done)."""
    mark = " [暂定 provisional]" if fc.provisional else ""
    lines = [f"上线预测 / go-live forecast ({fc.as_of.isoformat()}, {fc.samples} runs): "
             f"P50 {fc.p50.isoformat()}  P90 {fc.p90.isoformat()}{mark}"]
    if commitment is not None:
        level = risk_level(fc, commitment.committed_go_live)
        zh, en = LEVEL_LABELS[level]
        lines.append(f"承诺上线日 / committed: {commitment.committed_go_live.isoformat()} — {zh} / {en}")
    for s in fc.steps:
        star = "*" if s.critical else " "
        if s.actual_finish is not None:
            when = f"完成 done {s.actual_finish.isoformat()}"
        else:
            began = f"started {s.actual_start.isoformat()}, " if s.actual_start else f"start ~{s.start_p50.isoformat()}, "
            when = f"{began}P50 {s.finish_p50.isoformat()}  P90 {s.finish_p90.isoformat()}"
        lines.append(f" {star} {s.name_zh} / {s.name_en}: {when}")
    lines.append("   (* 关键路径 / critical path at P50)")
    return lines


def status_forecast(res: Resources, launch_id: str, *, as_of: date | None = None) -> dict[str, Any] | None:
    """For ``weapp-launch status LAUNCH``: ``{"forecast": {...}, "commitment": {...}|None,
    "risk": level|None, "lines": [...]}`` from the resources' store, catalogue, calendar and
    settings; None for an unknown launch. JSON-ready (the CLI prints ``lines``, or puts the
    rest under ``forecast`` in --json)."""
    store, cal = res.store, res.calendar
    if store.get_launch(launch_id) is None:
        return None
    as_of = as_of or res.now().astimezone(cal.tz).date()
    fc = forecast_for(store, launch_id, catalogue=res.catalogue, calendar=cal,
                      config=config_from_settings(res.settings), as_of=as_of, samples=res.settings.forecast_samples)
    c = store.get_commitment(launch_id)
    return {
        "forecast": fc.to_json(),
        "commitment": None if c is None else {
            "committed_go_live": c.committed_go_live.isoformat(),
            "committed_at": c.committed_at.isoformat(),
            "risk_level": risk_level(fc, c.committed_go_live),
        },
        "risk": risk_level(fc, c.committed_go_live) if c is not None else None,
        "lines": forecast_lines(fc, c),
    }
