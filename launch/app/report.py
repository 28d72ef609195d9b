"""The portfolio view (issue 13, item 4): every open launch on one page.

    build_portfolio(store, catalogue=…, calendar=…, now=…)  -> Portfolio   (data: rows, at-risk list)
    render_png(portfolio)                                    -> bytes       (the Gantt chart, matplotlib)
    render_html(portfolio, png=…)                            -> str         (one self-contained page)
    summary_markdown(portfolio)                              -> str         (the watcher's daily artifact)

One row per open launch: a bar per phase (planned P50 lighter, actual darker), overdue
phases red, critical-path phases outlined, a thin band from the P50 to the P90 go-live, the
committed go-live (when the forecasting module keeps commitments) as a black tick. Beside
the chart: what each launch waits for, who must act and by when, and the at-risk list.

Every input is an argument (store, catalogue, calendar, clock, forecaster): the CLI and the
receiver pass their Resources' members, tests and the benchmark their own. The forecast comes
from ``launch.app.forecasting.forecast_for``; if it fails for a launch, from the catalogue's
estimates — the page says which.

Nothing personal: a launch is labelled by its id and mini-program name; for a client who is
an individual the mini-program name and the client name are masked (surname only, like
``launch_info``), and every label is scrubbed of anything that looks like a phone, ID number
or credit code. The HTML escapes everything (Jinja2 autoescape).
"""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from launch.app.presentation import zone_label
from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import Catalogue
from launch.domain.forecast import Forecast, StepForecast
from launch.domain.masking import mask_name, scrub_text

__all__ = [
    "CJK_FONT",
    "LaunchRow",
    "PhaseBar",
    "Portfolio",
    "Waiting",
    "build_portfolio",
    "cjk_font_path",
    "plan_forecast",
    "render_html",
    "render_png",
    "summary_markdown",
    "write_report",
]

log = logging.getLogger("weapp_launch.report")

CJK_FONT = "WenQuanYi Zen Hei"
# Tried in order for every glyph (matplotlib >= 3.6 falls back per glyph): CJK first, then Latin.
FONT_FAMILY = [CJK_FONT, "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Droid Sans Fallback",
               "DejaVu Sans"]
RISK_ORDER = {"late": 0, "at-risk": 1, "ok": 3, None: 4}
RISK_ZH = {"late": "已延误", "at-risk": "有风险", "ok": "正常"}
# Monte Carlo samples per launch on the page: at most this many (fewer if
# settings.forecast_samples says so). 10,000 (the forecast's default) costs ~80 ms a launch,
# 16 s for 200; 1,000 costs ~8 ms and moves a P50/P90 by a day at most now and then.
REPORT_SAMPLES = 1_000

# A forecaster takes (store, launch record, as_of) and answers a Forecast (or raises).
Forecaster = Callable[..., Forecast]


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class PhaseBar:
    phase: str
    name_zh: str
    name_en: str
    lane: int  # 0: the longest chain of phases; 1…: phases beside it (the ICP filing)
    start_p50: date
    finish_p50: date
    finish_p90: date
    actual_start: date | None
    actual_finish: date | None
    critical: bool
    overdue: bool  # an open gate of this phase is past its deadline


@dataclass(frozen=True)
class Waiting:
    gate: str
    name_zh: str
    name_en: str
    attempt: int
    actor_zh: str
    actor_en: str
    due_at: datetime | None
    due: str  # Beijing time, as people read it ("" without a deadline)
    overdue: bool
    provisional: bool


@dataclass(frozen=True)
class LaunchRow:
    launch_id: str
    mini_program: str  # masked for an individual
    client: str  # masked for an individual
    subject_type: str
    registration_path: str
    started: date
    phases: tuple[PhaseBar, ...]
    go_live_p50: date
    go_live_p90: date
    committed: date | None  # the committed go-live date, when commitments are kept
    risk: str | None  # ok | at-risk | late, when the forecasting module says so
    waiting: tuple[Waiting, ...]
    provisional: bool
    source: str  # "forecast" (Monte Carlo) or "plan" (catalogue estimates)

    @property
    def label(self) -> str:
        return f"{self.launch_id} · {self.mini_program}"

    @property
    def overdue(self) -> bool:
        return any(w.overdue for w in self.waiting)

    @property
    def at_risk(self) -> bool:
        return self.risk in ("late", "at-risk") or self.overdue

    @property
    def risk_reason(self) -> str:
        reasons = []
        if self.risk in ("late", "at-risk"):
            reasons.append(f"{RISK_ZH[self.risk]} / {self.risk}")
        if self.committed is not None and self.go_live_p90 > self.committed and self.risk is None:
            reasons.append("P90 晚于承诺 / P90 after commitment")
        late = [w for w in self.waiting if w.overdue]
        if late:
            reasons.append("逾期 / overdue: " + "、".join(f"{w.name_zh}" for w in late))
        return "；".join(reasons)


@dataclass(frozen=True)
class Portfolio:
    generated_at: datetime  # aware
    as_of: date  # the local date (the settings' time zone)
    rows: tuple[LaunchRow, ...]
    lanes: int
    phase_names: tuple[tuple[str, str, str], ...]  # (id, name_zh, name_en) in catalogue order
    errors: tuple[str, ...] = ()  # launches whose forecast failed (shown with the plan estimate)
    days_off: tuple[date, ...] = ()  # weekends and holidays in the chart's range (the calendar's)
    timings: dict = field(default_factory=dict, compare=False)
    chart: dict = field(default_factory=dict, compare=False)  # what render_png drew: rows, date ticks, font
    tz: str = "Asia/Shanghai"  # the time zone the dates above are in (from the calendar)

    @property
    def at_risk(self) -> tuple[LaunchRow, ...]:
        rows = [r for r in self.rows if r.at_risk or (r.committed is not None and r.go_live_p90 > r.committed)]
        return tuple(sorted(rows, key=lambda r: (RISK_ORDER.get(r.risk, 4), not r.overdue, r.go_live_p90,
                                                 r.launch_id)))

    @property
    def sources(self) -> set[str]:
        return {r.source for r in self.rows}

    @property
    def has_commitments(self) -> bool:
        return any(r.committed is not None or r.risk is not None for r in self.rows)

    def to_json(self) -> dict:
        def d(x):
            return x.isoformat() if x is not None else None

        return {
            "generated_at": self.generated_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "open_launches": len(self.rows),
            "at_risk": [r.launch_id for r in self.at_risk],
            "errors": list(self.errors),
            "launches": [
                {
                    "launch_id": r.launch_id,
                    "mini_program": r.mini_program,
                    "client": r.client,
                    "registration_path": r.registration_path,
                    "started": d(r.started),
                    "go_live": {"p50": d(r.go_live_p50), "p90": d(r.go_live_p90), "committed": d(r.committed)},
                    "risk": r.risk,
                    "overdue": r.overdue,
                    "provisional": r.provisional,
                    "source": r.source,
                    "waiting": [
                        {"gate": w.gate, "name_zh": w.name_zh, "attempt": w.attempt, "actor": w.actor_en,
                         "due": w.due_at.isoformat() if w.due_at else None, "overdue": w.overdue,
                         "provisional": w.provisional}
                        for w in r.waiting
                    ],
                    "phases": [
                        {"phase": p.phase, "start_p50": d(p.start_p50), "finish_p50": d(p.finish_p50),
                         "finish_p90": d(p.finish_p90), "actual_start": d(p.actual_start),
                         "actual_finish": d(p.actual_finish), "critical": p.critical, "overdue": p.overdue}
                        for p in r.phases
                    ],
                }
                for r in self.rows
            ],
        }


# --------------------------------------------------------------------------- building it


def _local_date(dt: datetime | None, tz: str) -> date | None:
    return dt.astimezone(ZoneInfo(tz)).date() if dt is not None else None


def _due_text(dt: datetime | None, tz: str) -> str:
    if dt is None:
        return ""
    from launch.app.presentation import due_when

    return due_when(dt, tz)


def phase_lanes(catalogue: Catalogue) -> dict[str, int]:
    """Lane of each phase inside a launch's row: the longest chain of phases (by count, ending
    at the last phase) on lane 0, every other phase on the first lane where it overlaps no
    phase it runs beside (neither depends on the other)."""
    order = catalogue.phase_order()
    ancestors: dict[str, set[str]] = {}
    for p in order:
        ancestors[p.id] = set(p.after).union(*(ancestors[a] for a in p.after)) if p.after else set()
    depth: dict[str, int] = {}
    for p in order:
        depth[p.id] = 1 + max((depth[a] for a in p.after), default=0)
    chain = []
    cur = order[-1].id if order else None
    while cur is not None:
        chain.append(cur)
        after = catalogue.phases[cur].after
        cur = max(after, key=lambda a: (depth[a], -list(catalogue.phases).index(a))) if after else None
    lanes = {p: 0 for p in chain}
    for p in order:
        if p.id in lanes:
            continue
        lane = 1
        while any(
            lanes[q] == lane and q not in ancestors[p.id] and p.id not in ancestors[q] for q in lanes
        ):
            lane += 1
        lanes[p.id] = lane
    return lanes


def _expected_gates(catalogue: Catalogue, phase: str, path: str, subject_type: str) -> list[str]:
    return [g.id for g in catalogue.gates_of(phase, path, subject_type)]


def plan_forecast(store, launch, *, catalogue: Catalogue, calendar: WorkCalendar, as_of: date,
                  steps=None, subject_type: str = "enterprise") -> Forecast:
    """A forecast from the catalogue's estimates and what the store already knows, for when the
    Monte Carlo forecast is not there: P50 from the middle of each phase's estimate, P90 from
    its top; a phase that has started starts when it did, one that is done ends when it did,
    nothing still open ends before ``as_of``; the critical path walks back from the last phase
    through the dependency that finishes last."""
    steps = store.steps_for(launch.id) if steps is None else steps
    tz = calendar.tz_name
    start = _local_date(launch.created_at, tz)
    by_phase: dict[str, list] = {}
    for s in steps:
        gate = catalogue.gates.get(s.step)
        if gate is not None:
            by_phase.setdefault(gate.phase, []).append(s)
    done: dict[str, StepForecast] = {}
    provisional = False
    for phase in catalogue.phase_order():
        low, high = phase.estimate(launch.registration_path)
        mine = by_phase.get(phase.id, [])
        actual_start = min((_local_date(s.started_at, tz) for s in mine), default=None)
        actual_finish = None
        if mine and not any(s.is_open for s in mine):
            expected = _expected_gates(catalogue, phase.id, launch.registration_path, subject_type)
            last = expected[-1] if expected else None
            latest = {}
            for s in mine:
                if s.step not in latest or s.attempt > latest[s.step].attempt:
                    latest[s.step] = s
            if last is None or (last in latest and latest[last].status in ("done", "skipped")):
                actual_finish = max((_local_date(s.finished_at, tz) for s in mine if s.finished_at), default=None)
        deps = [done[a] for a in phase.after]
        dep50 = max((d.finish_p50 for d in deps), default=start)
        dep90 = max((d.finish_p90 for d in deps), default=start)
        if actual_finish is not None:
            start50 = actual_start or dep50
            finish50 = finish90 = actual_finish
        else:
            if actual_start is not None:
                start50, start90 = actual_start, actual_start
            else:
                start50, start90 = max(dep50, as_of), max(dep90, as_of)
            mid = calendar.add_workdays(start50, (low + high + 1) // 2)
            top = calendar.add_workdays(start90, high)
            provisional = provisional or mid.provisional or top.provisional
            finish50 = max(mid.value, as_of)
            finish90 = max(top.value, finish50)
        done[phase.id] = StepForecast(
            phase=phase.id, name_zh=phase.name_zh, name_en=phase.name_en, start_p50=start50,
            finish_p50=finish50, finish_p90=finish90, actual_start=actual_start, actual_finish=actual_finish,
            critical=False,
        )
    order = [p.id for p in catalogue.phase_order()]
    critical = set()
    cur = order[-1] if order else None
    while cur is not None:
        critical.add(cur)
        after = catalogue.phases[cur].after
        cur = max(after, key=lambda a: done[a].finish_p50) if after else None
    phases = tuple(replace(done[p], critical=p in critical) for p in order)
    last = phases[-1]
    return Forecast(launch_id=launch.id, as_of=as_of, p50=last.finish_p50, p90=last.finish_p90, samples=0, seed=0,
                    steps=phases, provisional=provisional)


def default_forecaster(*, catalogue: Catalogue, calendar: WorkCalendar, config=None, settings=None,
                       samples: int | None = None) -> tuple[Forecaster | None, str]:
    """The Monte Carlo forecaster of launch/app/forecasting.py bound to these arguments (config from
    ``settings.forecast_file`` unless given, the packaged one without settings; samples:
    ``samples``, else the smaller of REPORT_SAMPLES and ``settings.forecast_samples``), and ""
    (the second member says why there is none; the report then uses plan_forecast)."""
    from launch.app.forecasting import config_from_settings, forecast_for
    from launch.domain.forecast import default_forecast_config

    if config is None:
        config = config_from_settings(settings) if settings is not None else default_forecast_config()
    if samples is None:
        samples = min(REPORT_SAMPLES, settings.forecast_samples) if settings is not None else REPORT_SAMPLES

    def run(store, launch, as_of: date) -> Forecast:
        return forecast_for(store, launch.id, catalogue=catalogue, calendar=calendar, config=config,
                            as_of=as_of, samples=samples, seed=0)

    return run, ""


def _commitments(store) -> dict[str, object]:
    """Committed go-live dates of running launches by launch id: {} until the store keeps them
    (no method, or no table yet)."""
    fn = getattr(store, "open_commitments", None)
    if not callable(fn):
        return {}
    try:
        return {c.launch_id: c for c in fn(100_000)}
    except Exception as exc:  # noqa: BLE001 - an older database without the table: no commitments
        log.info("no commitments: %s", type(exc).__name__)
        return {}


def _risk(fc: Forecast, committed: date | None) -> str | None:
    """ok (P90 ≤ commitment), at-risk (P50 ≤ commitment < P90), late (commitment < P50): the
    forecasting module's rule, recomputed against the forecast this page shows."""
    if committed is None:
        return None
    try:
        from launch.domain.forecast import risk_level  # noqa: PLC0415
    except ImportError:
        return "ok" if fc.p90 <= committed else "at-risk" if fc.p50 <= committed else "late"
    return risk_level(fc, committed)


def _labels(client) -> tuple[str, str]:
    """(mini-program, client) as the report shows them: surname-only for an individual."""
    if client is None:
        return "?", "?"
    if client.subject_type == "individual":
        return scrub_text(mask_name(client.mini_program_name)), scrub_text(mask_name(client.display_name))
    return scrub_text(client.mini_program_name), scrub_text(client.display_name)


def build_portfolio(
    store,
    *,
    catalogue: Catalogue,
    calendar: WorkCalendar,
    now: datetime,
    config=None,
    settings=None,
    forecaster: Forecaster | None | bool = None,
    samples: int | None = None,
    launches: Iterable | None = None,
) -> Portfolio:
    """Rows for every open (running) launch, built from the store.

    ``forecaster``: None picks launch.app.forecasting's when it exists, else the plan estimate;
    False forces the plan estimate; a callable (store, launch, as_of) -> Forecast is used as
    given. A launch whose forecast raises is shown with the plan estimate and named in
    ``errors``."""
    t0 = time.perf_counter()
    tz = calendar.tz_name  # the settings' time zone (Resources builds the calendar with it)
    as_of = now.astimezone(ZoneInfo(tz)).date()
    if forecaster is None:
        forecaster, _why = default_forecaster(catalogue=catalogue, calendar=calendar, config=config,
                                              settings=settings, samples=samples)
    elif forecaster is False:
        forecaster = None
    lanes = phase_lanes(catalogue)
    launches = list(store.list_launches(status="running") if launches is None else launches)
    commitments = _commitments(store)
    clients: dict[str, object] = {}
    rows: list[LaunchRow] = []
    errors: list[str] = []
    t_forecast = 0.0
    for launch in launches:
        client = clients.get(launch.client_id)
        if client is None:
            client = clients[launch.client_id] = store.get_client(launch.client_id)
        subject_type = getattr(client, "subject_type", "enterprise")
        steps = store.steps_for(launch.id)
        tf = time.perf_counter()
        fc, source = None, "plan"
        if forecaster is not None:
            try:
                fc, source = forecaster(store, launch, as_of), "forecast"
            except Exception as exc:  # noqa: BLE001 - one launch's forecast must not sink the page
                errors.append(f"{launch.id}: {type(exc).__name__}")
                log.warning("forecast of %s failed: %s", launch.id, type(exc).__name__)
        if fc is None:
            fc = plan_forecast(store, launch, catalogue=catalogue, calendar=calendar, as_of=as_of, steps=steps,
                               subject_type=subject_type)
        t_forecast += time.perf_counter() - tf
        waiting = []
        overdue_phases = set()
        for s in steps:
            if s.status != "waiting":
                continue
            gate = catalogue.gates.get(s.step)
            actor = catalogue.actors.get(gate.actor) if gate else None
            late = s.due_at is not None and s.due_at <= now
            if late and gate is not None:
                overdue_phases.add(gate.phase)
            waiting.append(Waiting(
                gate=s.step,
                name_zh=gate.name_zh if gate else s.step,
                name_en=gate.name_en if gate else s.step,
                attempt=s.attempt,
                actor_zh=actor.name_zh if actor else "",
                actor_en=actor.name_en if actor else "",
                due_at=s.due_at,
                due=_due_text(s.due_at, tz),
                overdue=late,
                provisional=bool(s.provisional),
            ))
        waiting.sort(key=lambda w: (w.due_at is None, w.due_at or now))
        phases = tuple(
            PhaseBar(
                phase=p.phase, name_zh=p.name_zh, name_en=p.name_en, lane=lanes.get(p.phase, 0),
                start_p50=p.start_p50, finish_p50=p.finish_p50, finish_p90=p.finish_p90,
                actual_start=p.actual_start, actual_finish=p.actual_finish, critical=p.critical,
                overdue=p.phase in overdue_phases,
            )
            for p in fc.steps
        )
        commitment = commitments.get(launch.id)
        committed = getattr(commitment, "committed_go_live", None)
        risk = _risk(fc, committed)
        mini, client_label = _labels(client)
        rows.append(LaunchRow(
            launch_id=launch.id, mini_program=mini, client=client_label, subject_type=subject_type,
            registration_path=launch.registration_path, started=_local_date(launch.created_at, tz),
            phases=phases, go_live_p50=fc.p50, go_live_p90=fc.p90, committed=committed, risk=risk,
            waiting=tuple(waiting), provisional=bool(fc.provisional) or any(w.provisional for w in waiting),
            source=source,
        ))
    rows.sort(key=lambda r: (r.started, r.launch_id))
    return Portfolio(
        generated_at=now, as_of=as_of, tz=tz, rows=tuple(rows), lanes=max(lanes.values(), default=0) + 1,
        phase_names=tuple((p.id, p.name_zh, p.name_en) for p in catalogue.phase_order()),
        errors=tuple(errors),
        days_off=_days_off(calendar, rows, as_of),
        timings={"build_s": time.perf_counter() - t0, "forecast_s": t_forecast},
    )


# --------------------------------------------------------------------------- the chart

# (planned = light, actual = dark) per phase, in catalogue order; red is kept for overdue.
_PALETTE = [("#aec7e8", "#1f77b4"), ("#c5b0d5", "#6a3d9a"), ("#ffd8a8", "#e67e00"), ("#98df8a", "#2ca02c"),
            ("#9edae5", "#138d9c"), ("#dbdb8d", "#8c8c17"), ("#c49c94", "#8c564b"), ("#c7c7c7", "#5f5f5f")]
OVERDUE = "#d62728"
BAND = "#34495e"


@lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    """The file of the CJK font the chart uses, or None when none of FONT_FAMILY's CJK faces is
    installed (the chart then shows boxes for Chinese: apt-get install fonts-wqy-zenhei)."""
    from matplotlib import font_manager

    for family in FONT_FAMILY[:-1]:
        try:
            found = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            return str(getattr(found, "path", found))  # matplotlib >= 3.11 answers a FontPath
        except ValueError:
            continue
    return None


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=False)
    # "findfont: Failed to find font weight normal … now using 500": WenQuanYi has one weight
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot  # noqa: F401 - registers the backends

    return matplotlib


def render_png(portfolio: Portfolio, *, dpi: int = 100) -> bytes:
    """The Gantt chart as PNG bytes: one row per launch, dates on both axes."""
    mpl = _mpl()
    import matplotlib.dates as mdates
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t0 = time.perf_counter()
    rows = portfolio.rows
    n = max(len(rows), 1)
    row_in = 0.42
    top_in, bottom_in, left_in, right_in = 1.35, 0.75, 3.6, 0.35
    width_in = 15.0
    height_in = top_in + bottom_in + n * row_in
    max_px = 60_000  # Agg's limit is 2**16 per side
    if height_in * dpi > max_px:
        dpi = max(20, int(max_px / height_in))
    rc = {
        "font.family": "sans-serif",
        "font.sans-serif": FONT_FAMILY,
        "axes.unicode_minus": False,
        "font.size": 9,
    }
    with mpl.rc_context(rc):
        fig = Figure(figsize=(width_in, height_in), dpi=dpi)
        fig.subplots_adjust(left=left_in / width_in, right=1 - right_in / width_in,
                            top=1 - top_in / height_in, bottom=bottom_in / height_in)
        ax = fig.add_subplot(1, 1, 1)
        lo, hi = _chart_range(rows, portfolio.as_of)
        x0 = mdates.date2num(lo)
        x1 = mdates.date2num(hi)

        def num(d: date) -> float:
            return mdates.date2num(d)

        lanes = max(portfolio.lanes, 1)
        # a row spans i-0.5 … i+0.5 (y grows downwards): lane 0 on top, the other lanes share
        # 0.24 below it, the go-live band under them
        lane_h = [0.40] + [0.24 / max(lanes - 1, 1) - 0.02 * (lanes > 2)] * (lanes - 1)
        lane_top = [-0.41]
        for h in lane_h[:-1]:
            lane_top.append(lane_top[-1] + h + 0.04)
        colours = {pid: _PALETTE[i % len(_PALETTE)] for i, (pid, _, _) in enumerate(portfolio.phase_names)}

        planned, planned_c, planned_e, planned_w = [], [], [], []
        actual, actual_c = [], []
        bands, band_marks = [], []

        def rect(a: float, b: float, y: float, h: float):
            return [(a, y), (b, y), (b, y + h), (a, y + h)]

        today = num(portfolio.as_of) + 0.5
        for i, r in enumerate(rows):
            for p in r.phases:
                y, h = i + lane_top[min(p.lane, lanes - 1)], lane_h[min(p.lane, lanes - 1)]
                light, dark = colours.get(p.phase, _PALETTE[-1])
                a, b = num(p.start_p50), max(num(p.finish_p50), num(p.start_p50) + 0.8)
                planned.append(rect(a, b, y, h))
                planned_c.append(light)
                planned_e.append("#111111" if p.critical else "none")
                planned_w.append(1.6 if p.critical else 0.0)
                if p.actual_start is not None:
                    end = num(p.actual_finish) + 1 if p.actual_finish is not None else today
                    aa = num(p.actual_start)
                    actual.append(rect(aa, max(end, aa + 0.8), y + h * 0.22, h * 0.56))
                    actual_c.append(OVERDUE if p.overdue else dark)
                elif p.overdue:
                    actual.append(rect(a, max(today, a + 0.8), y + h * 0.22, h * 0.56))
                    actual_c.append(OVERDUE)
            # the forecast band to go-live: P50 -> P90, a thin strip under the row's bars
            yb = i + 0.37
            bands.append(rect(num(r.go_live_p50), max(num(r.go_live_p90), num(r.go_live_p50) + 0.8), yb - 0.04, 0.08))
            band_marks.append((num(r.go_live_p50), yb))
        # zebra rows and non-working days behind everything (one collection each: 200 patches
        # drawn one by one cost more than all the bars)
        zebra = [rect(x0, x1, i - 0.5, 1.0) for i in range(0, len(rows), 2)]
        if zebra:
            ax.add_collection(PolyCollection(zebra, facecolors="#f3f5f7", edgecolors="none", zorder=0))
        off = [rect(num(a), num(b) + 1, -0.5, n) for a, b in _runs(portfolio.days_off)]
        if off:
            ax.add_collection(PolyCollection(off, facecolors="#e6eaee", edgecolors="none", alpha=0.75, zorder=0.5))
        ax.add_collection(PolyCollection(planned, facecolors=planned_c, edgecolors=planned_e, linewidths=planned_w,
                                         zorder=2))
        if actual:
            ax.add_collection(PolyCollection(actual, facecolors=actual_c, edgecolors="none", zorder=3))
        ax.add_collection(PolyCollection(bands, facecolors=BAND, edgecolors="none", alpha=0.55, zorder=3))
        if band_marks:
            xs, ys = zip(*band_marks)
            ax.plot(xs, ys, linestyle="none", marker="D", markersize=4.5, color=BAND, zorder=4)
        commits = [(num(r.committed) + 0.5, i) for i, r in enumerate(rows) if r.committed is not None]
        if commits:
            xs, ys = zip(*commits)
            ax.plot(xs, ys, linestyle="none", marker="|", markersize=16, markeredgewidth=2.2, color="#000000",
                    zorder=5)
        ax.axvline(today, color=OVERDUE, linestyle="--", linewidth=1.1, zorder=6)

        ax.set_xlim(x0, x1)
        ax.set_ylim(n - 0.5, -0.5)
        # launch labels as plain texts left of the axes (200 y-ticks cost twice as much to draw)
        ax.set_yticks([])
        at_left = ax.get_yaxis_transform()  # x in axes fraction, y in data
        for i, r in enumerate(rows):
            colour, weight = "#1d2329", "normal"
            if r.risk == "late" or r.overdue:
                colour, weight = OVERDUE, "bold"
            elif r.at_risk:
                colour = "#b35c00"
            ax.text(-0.008, i, _short(r.label, 36), transform=at_left, ha="right", va="center", fontsize=9.5,
                    color=colour, fontweight=weight, parse_math=False, clip_on=False)
        locator = mdates.AutoDateLocator(minticks=6, maxticks=16)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
            locator,
            formats=["%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M", "%S"],
            zero_formats=["", "%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M"],
            offset_formats=["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d"],
        ))
        ax.tick_params(axis="x", which="both", top=True, labeltop=True, labelsize=9.5)
        ax.grid(axis="x", which="major", color="#c8ccd0", linewidth=0.7, zorder=1)
        ax.set_axisbelow(True)
        for side in ("left", "right"):
            ax.spines[side].set_visible(False)
        title = (f"上线组合 / Portfolio — {len(rows)} 个进行中的上线 / open launches · "
                 f"截至 / as of {portfolio.as_of.isoformat()}")
        fig.text(left_in / width_in, 1 - 0.22 / height_in, title, fontsize=12, fontweight="bold", va="top")
        handles = [Patch(facecolor=colours[pid][0], edgecolor="none", label=f"{zh} {en}")
                   for pid, zh, en in portfolio.phase_names]
        handles += [
            Patch(facecolor="#888888", edgecolor="#111111", linewidth=1.6, label="关键路径 critical path"),
            Patch(facecolor="#5f5f5f", label="实际 actual (深 dark)"),
            Patch(facecolor=OVERDUE, label="逾期 overdue"),
            Patch(facecolor=BAND, alpha=0.55, label="上线 go-live P50–P90"),
            Line2D([], [], color="#000000", marker="|", linestyle="none", markersize=12, markeredgewidth=2,
                   label="承诺 committed"),
            Line2D([], [], color=OVERDUE, linestyle="--", label="今天 today"),
        ]
        fig.legend(handles=handles, loc="upper left", ncol=7, fontsize=8, frameon=False,
                   bbox_to_anchor=(left_in / width_in - 0.01, 1 - 0.42 / height_in))
        if not rows:
            ax.text(0.5, 0.5, "没有进行中的上线 / no open launches", transform=ax.transAxes, ha="center", va="center",
                    fontsize=12, color="#666666")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
        portfolio.chart.update({
            "rows": len(rows),
            "labels": [t.get_text() for t in ax.texts if t.get_transform() is at_left],
            "date_ticks": [t.get_text() for t in ax.get_xticklabels() if t.get_text()],
            "date_offset": ax.xaxis.get_major_formatter().get_offset(),
            "size_px": (round(width_in * dpi), round(height_in * dpi)),
            "font": cjk_font_path(),
        })
    portfolio.timings["png_s"] = time.perf_counter() - t0
    return buf.getvalue()


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chart_range(rows, as_of: date) -> tuple[date, date]:
    dates = [as_of]
    for r in rows:
        dates += [r.started, r.go_live_p90] + ([r.committed] if r.committed else [])
    return min(dates) - timedelta(days=2), max(dates) + timedelta(days=4)


def _days_off(calendar: WorkCalendar, rows, as_of: date) -> tuple[date, ...]:
    lo, hi = _chart_range(rows, as_of)
    if (hi - lo).days > 3 * 366:  # a runaway forecast: do not shade years of days
        return ()
    out, d = [], lo
    while d <= hi:
        if not calendar.is_workday(d).value:
            out.append(d)
        d += timedelta(days=1)
    return tuple(out)


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days merged: [(first, last), …] (weekends and holidays shade as one span)."""
    runs: list[list[date]] = []
    for d in days:
        if runs and (d - runs[-1][1]).days == 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return [(a, b) for a, b in runs]


# --------------------------------------------------------------------------- the page


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("launch", "templates"),
        autoescape=True,  # every value is escaped; the template marks nothing safe but the data: URI
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render_html(portfolio: Portfolio, *, png: bytes | None = None, nonce: str | None = None) -> str:
    """One self-contained page (inline CSS, the chart as a data: URI; no request leaves it).
    ``nonce``: the CSP nonce of the inline style when a server sends the page."""
    t0 = time.perf_counter()
    if png is None:
        png = render_png(portfolio)
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    colours = {pid: _PALETTE[i % len(_PALETTE)] for i, (pid, _, _) in enumerate(portfolio.phase_names)}
    sources = portfolio.sources
    page = _environment().get_template("report.html.j2").render(
        p=portfolio,
        rows=portfolio.rows,
        at_risk=portfolio.at_risk,
        chart=data_uri,
        nonce=nonce,
        generated=portfolio.generated_at.astimezone(ZoneInfo(portfolio.tz)).strftime("%Y-%m-%d %H:%M"),
        risk_zh=RISK_ZH,
        colours=colours,
        overdue_colour=OVERDUE,
        band_colour=BAND,
        plan_only=sources == {"plan"},
        mixed=len(sources) > 1,
        show_commitments=portfolio.has_commitments,
        overdue_count=sum(1 for r in portfolio.rows if r.overdue),
    )
    portfolio.timings["html_s"] = time.perf_counter() - t0
    return page


def write_report(portfolio: Portfolio, html_path: Path, png_path: Path | None = None) -> tuple[Path, Path]:
    """Write the page and the chart next to it (same name, .png); returns both paths."""
    html_path = Path(html_path)
    png_path = Path(png_path) if png_path is not None else html_path.with_suffix(".png")
    png = render_png(portfolio)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(png)
    html_path.write_text(render_html(portfolio, png=png), encoding="utf-8")
    return html_path, png_path


# --------------------------------------------------------------------------- the watcher's summary


def _md(text: str) -> str:
    """Plain text safe inside a Markdown table cell."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")
            .replace(">", "&gt;").replace("`", "'").replace("*", "\\*").replace("_", "\\_")
            .replace("[", "\\[").replace("]", "\\]"))


def summary_markdown(portfolio: Portfolio, *, limit: int = 50) -> str:
    """The daily Markdown summary: counts, the at-risk list, and what each waits for."""
    rows = portfolio.rows
    at_risk = portfolio.at_risk
    overdue = sum(1 for r in rows if r.overdue)
    lines = [
        f"# 上线组合日报 / portfolio summary — {portfolio.as_of.isoformat()}",
        "",
        f"- 进行中 / open launches: **{len(rows)}**",
        f"- 有风险 / at risk: **{len(at_risk)}** (其中逾期 / overdue: {overdue})",
        f"- 生成于 / generated: {portfolio.generated_at.astimezone(ZoneInfo(portfolio.tz)).strftime('%Y-%m-%d %H:%M')} "
        f"{zone_label(portfolio.tz)}",
    ]
    if portfolio.sources == {"plan"}:
        lines.append("- 上线日期按流程目录估算 / go-live dates are plan estimates (no Monte Carlo forecast yet)")
    lines += ["", "## 有风险 / at risk", ""]
    if not at_risk:
        lines.append("没有 / none.")
    else:
        lines += ["| 上线 launch | 小程序 mini-program | 风险 risk | P50 | P90 | 承诺 committed | 等待 waiting for "
                  "| 谁处理 who | 截止 due |", "|---|---|---|---|---|---|---|---|---|"]
        for r in at_risk[:limit]:
            w = r.waiting[0] if r.waiting else None
            lines.append(
                f"| `{r.launch_id}` | {_md(r.mini_program)} | {_md(r.risk_reason or '')} | {r.go_live_p50} "
                f"| {r.go_live_p90} | {r.committed or '—'} | {_md(w.name_zh) if w else '—'} "
                f"| {_md(w.actor_zh + ' / ' + w.actor_en) if w else '—'} "
                f"| {(('**' + w.due + ' 逾期**') if w.overdue else w.due) if w and w.due else '—'} |"
            )
        if len(at_risk) > limit:
            lines.append(f"\n…另有 {len(at_risk) - limit} 个 / and {len(at_risk) - limit} more.")
    waiting = [(r, w) for r in rows for w in r.waiting]
    by_actor: dict[str, int] = {}
    for _, w in waiting:
        key = f"{w.actor_zh} / {w.actor_en}" if w.actor_zh else "—"
        by_actor[key] = by_actor.get(key, 0) + 1
    lines += ["", "## 谁需要处理 / who must act", ""]
    if not by_actor:
        lines.append("没有等待中的关卡 / no gate is waiting.")
    else:
        lines += ["| 谁 who | 等待中的关卡 gates waiting |", "|---|---|"]
        for actor, count in sorted(by_actor.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"| {_md(actor)} | {count} |")
    lines += ["", "完整图表 / full chart: `weapp-launch report`，或接收服务的 `GET /report`（API 密钥）/ "
              "or the receiver's `GET /report` (API key)."]
    return "\n".join(lines) + "\n"
