"""Monte Carlo forecast of a launch's go-live date (P50 / P90), in working days.

Pure domain code: no Prefect, no SQL, no clock (``as_of`` is passed in).

Model
-----
* Structure from the process catalogue: a phase starts when every phase in its ``after``
  has finished (registration → {filing, design → implementation → content → review} →
  release after review AND filing). Go-live is the finish of the phases nothing depends on.
* Each phase is a sequence of *stages* (``data/forecast.yaml``): a duration distribution in
  working days and the gates that make it up. A stage may have *loops*: with probability
  ``p`` its attempt is rejected, ``rework`` working days go by, and the launch goes back to
  stage ``back_to`` (default: the same stage) — the filing's first-review / SMS / bureau
  rejections, the design rework, a failed code review (implementation-n, then 提审 again).
  A phase the forecast file does not name gets one stage: a triangular distribution over
  the catalogue's ``estimate_wd`` (mode at the first third of the range).
* Time is a real number of working days on the calendar's workday index: a date ``d`` is
  position ``pos(d)`` = the number of working days up to and including ``d`` (so
  ``calendar.add_workdays(d, n)`` is position ``pos(d) + n``, as plan.py counts); a position
  ``t`` is the date of working day ``ceil(t)``. Holidays and adjusted workdays (调休) come in
  through the index only.
* What happened is taken as it happened: a finished phase finishes on its actual date; a
  running phase is located at its current stage (the open gate, or the rework after a
  rejected gate) and that stage's duration is drawn *conditionally* on the working days it
  has already taken (inverse CDF on [F(elapsed), 1]); a stage past the end of its
  distribution gets ``overdue_residual`` more. Nothing not started yet starts before ``as_of``.
* Deterministic: one ``random.Random(seed)``; the same inputs and seed give the same forecast.
  Pure Python (no numpy in the environment): durations are drawn column-wise (one list per
  stage over all samples) and only the samples that loop are walked one by one.
"""

from __future__ import annotations

import math
import random
import weakref
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from operator import add, mul
from pathlib import Path
from statistics import NormalDist
from typing import Any

import yaml

from launch.domain.yamltext import load_yaml

__all__ = [
    "DEFAULT_FORECAST_FILE",
    "Distribution",
    "Forecast",
    "ForecastConfig",
    "ForecastConfigError",
    "GateActual",
    "LaunchHistory",
    "Loop",
    "PhaseActual",
    "RISK_LEVELS",
    "Stage",
    "StepForecast",
    "default_forecast_config",
    "forecast",
    "load_forecast_config",
    "parse_forecast_config",
    "risk_level",
]

DEFAULT_FORECAST_FILE = "launch/domain/data/forecast.yaml"
RISK_LEVELS: tuple[str, ...] = ("ok", "at-risk", "late")
_EPS = 1e-9
_Z90 = NormalDist().inv_cdf(0.9)


# --------------------------------------------------------------------------- history (input)


@dataclass(frozen=True)
class PhaseActual:
    """What the store knows of one phase of one launch."""

    actual_start: date | None = None
    actual_finish: date | None = None


@dataclass(frozen=True)
class GateActual:
    """What the store knows of one gate of one launch (over all its attempts)."""

    attempts: int = 0
    open_since: date | None = None  # the open attempt's start, if one is open
    last_started: date | None = None  # start of the latest attempt
    finished: date | None = None  # finish of the latest decided attempt
    last_passed: bool | None = None  # did the latest decided attempt pass
    last_outcome: str | None = None  # its outcome (chooses the loop of a rejected gate)
    rejections: int = 0  # attempts decided as not passed


@dataclass(frozen=True)
class LaunchHistory:
    """A launch as the forecast needs it: its path, subject type, start, and per phase/gate
    the actual dates (built from the store by ``launch.app.forecasting.history_from_store``)."""

    launch_id: str
    start: date
    registration_path: str
    subject_type: str | None = None
    phases: Mapping[str, PhaseActual] = field(default_factory=dict)
    gates: Mapping[str, GateActual] = field(default_factory=dict)
    finished: date | None = None  # go-live date of a released launch


# --------------------------------------------------------------------------- forecast (output)


@dataclass(frozen=True)
class StepForecast:  # one phase of one launch
    phase: str
    name_zh: str
    name_en: str
    start_p50: date
    finish_p50: date
    finish_p90: date
    actual_start: date | None
    actual_finish: date | None
    critical: bool  # on the critical path to go-live (P50 path)

    def to_json(self) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d is not None else None  # noqa: E731
        return {
            "phase": self.phase, "name_zh": self.name_zh, "name_en": self.name_en,
            "start_p50": iso(self.start_p50), "finish_p50": iso(self.finish_p50), "finish_p90": iso(self.finish_p90),
            "actual_start": iso(self.actual_start), "actual_finish": iso(self.actual_finish), "critical": self.critical,
        }


@dataclass(frozen=True)
class Forecast:
    launch_id: str
    as_of: date
    p50: date
    p90: date
    samples: int
    seed: int
    steps: tuple[StepForecast, ...]
    provisional: bool  # a date falls in a year whose holidays are not published

    def to_json(self) -> dict[str, Any]:
        return {
            "launch_id": self.launch_id, "as_of": self.as_of.isoformat(), "p50": self.p50.isoformat(),
            "p90": self.p90.isoformat(), "samples": self.samples, "seed": self.seed,
            "provisional": self.provisional, "steps": [s.to_json() for s in self.steps],
        }


def risk_level(fc: Forecast, committed: date | None) -> str | None:
    """ok (P90 ≤ commitment), at-risk (P50 ≤ commitment < P90), late (commitment < P50);
    None without a commitment."""
    if committed is None:
        return None
    if fc.p90 <= committed:
        return "ok"
    if fc.p50 <= committed:
        return "at-risk"
    return "late"


# --------------------------------------------------------------------------- distributions


class ForecastConfigError(ValueError):
    """The forecast file breaks a rule; the message names the file and the key (zh / en)."""

    def __init__(self, source: str, key: str, zh: str, en: str) -> None:
        self.source, self.key = source, key
        super().__init__(f"预测配置 {source}，键 {key}：{zh} / forecast file {source}, key {key}: {en}")


@dataclass(frozen=True)
class Distribution:
    """Duration in working days: fixed | uniform | triangular | lognormal (truncated) |
    mixture (weighted components: the bureau's usual week and its long reviews)."""

    kind: str
    params: tuple[Any, ...]  # mixture: ((weight, Distribution), ...), weights summing to 1

    # lognormal params: (mu, sigma, F(min), F(max), min, max)
    def ppf(self, u: float) -> float:
        """Inverse CDF; for a mixture, a sampler (u picks the component, then its quantile)."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "mixture":
            for w, comp in p:
                if u < w:
                    return comp.ppf(u / w)
                u -= w
            w, comp = p[-1]
            return comp.ppf(min(max(u / w + 1.0, 0.0), 1.0))
        if k == "uniform":
            return p[0] + u * (p[1] - p[0])
        if k == "triangular":
            a, c, b = p
            if b == a:
                return a
            fc = (c - a) / (b - a)
            if u < fc:
                return a + math.sqrt(u * (b - a) * (c - a))
            return b - math.sqrt((1.0 - u) * (b - a) * (b - c))
        mu, sigma, flo, fhi, _, _ = p
        v = flo + u * (fhi - flo)
        v = min(max(v, 1e-12), 1.0 - 1e-12)
        return math.exp(mu + sigma * _inv_cdf(v))

    def cdf(self, x: float) -> float:
        k, p = self.kind, self.params
        if k == "fixed":
            return 1.0 if x >= p[0] else 0.0
        if k == "mixture":
            return sum(w * comp.cdf(x) for w, comp in p)
        if k == "uniform":
            a, b = p
            if x <= a:
                return 0.0
            return 1.0 if x >= b else (x - a) / (b - a)
        if k == "triangular":
            a, c, b = p
            if x <= a:
                return 0.0
            if x >= b:
                return 1.0
            if x <= c:
                return (x - a) ** 2 / ((b - a) * (c - a))
            return 1.0 - (b - x) ** 2 / ((b - a) * (b - c))
        mu, sigma, flo, fhi, lo, hi = p
        if x <= lo:
            return 0.0
        if hi is not None and x >= hi:
            return 1.0
        f = _cdf((math.log(x) - mu) / sigma)
        return (f - flo) / (fhi - flo)



_ND = NormalDist()
_inv_cdf = _ND.inv_cdf
_cdf = _ND.cdf


def _num(v: Any, source: str, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ForecastConfigError(source, key, f"应为非负数（收到 {v!r}）", f"must be a number >= 0 (got {v!r})")
    return float(v)


_DIST_KINDS = ("fixed", "uniform", "triangular", "lognormal", "mixture")


def parse_distribution(raw: Mapping[str, Any], source: str, key: str) -> Distribution:
    found = [k for k in _DIST_KINDS if k in raw]
    if len(found) != 1:
        raise ForecastConfigError(
            source, key, "须且仅须给出一种分布：fixed、uniform、triangular、lognormal",
            "give exactly one distribution: fixed, uniform, triangular or lognormal",
        )
    kind = found[0]
    v = raw[kind]
    k = f"{key}.{kind}"
    if kind == "fixed":
        return Distribution("fixed", (_num(v, source, k),))
    if kind == "mixture":
        if not isinstance(v, list) or not v or not all(isinstance(c, Mapping) and "weight" in c for c in v):
            raise ForecastConfigError(source, k, "应为分量列表，每项含 weight 与一种分布",
                                      "must be a list of components, each with a weight and one distribution")
        comps = []
        for i, c in enumerate(v):
            w = _num(c["weight"], source, f"{k}[{i}].weight")
            rest = {kk: vv for kk, vv in c.items() if kk != "weight"}
            if "mixture" in rest:
                raise ForecastConfigError(source, f"{k}[{i}]", "分量不能再是混合分布", "a component cannot be a mixture")
            comps.append((w, parse_distribution(rest, source, f"{k}[{i}]")))
        total = sum(w for w, _ in comps)
        if total <= 0:
            raise ForecastConfigError(source, k, "权重之和须大于 0", "the weights must sum to more than 0")
        return Distribution("mixture", tuple((w / total, d) for w, d in comps))
    if kind == "uniform":
        if not isinstance(v, list) or len(v) != 2:
            raise ForecastConfigError(source, k, "应为 [最小, 最大]", "must be [min, max]")
        a, b = (_num(x, source, k) for x in v)
        if a > b:
            raise ForecastConfigError(source, k, "最小值大于最大值", "min is greater than max")
        return Distribution("uniform", (a, b))
    if kind == "triangular":
        if not isinstance(v, list) or len(v) != 3:
            raise ForecastConfigError(source, k, "应为 [最小, 最可能, 最大]", "must be [min, mode, max]")
        a, c, b = (_num(x, source, k) for x in v)
        if not a <= c <= b:
            raise ForecastConfigError(source, k, "须满足 最小 ≤ 最可能 ≤ 最大", "needs min <= mode <= max")
        return Distribution("triangular", (a, c, b))
    if not isinstance(v, Mapping) or "median" not in v or "p90" not in v:
        raise ForecastConfigError(source, k, "应为 {median, p90, min?, max?}", "must be {median, p90, min?, max?}")
    unknown = set(v) - {"median", "p90", "min", "max"}
    if unknown:
        raise ForecastConfigError(source, k, f"未知的键 {sorted(unknown)}", f"unknown keys {sorted(unknown)}")
    med, p90 = _num(v["median"], source, k), _num(v["p90"], source, k)
    lo = _num(v.get("min", 0), source, k)
    hi = _num(v["max"], source, k) if v.get("max") is not None else None
    if not 0 < med < p90 or (hi is not None and not lo < med < hi) or lo >= med:
        raise ForecastConfigError(source, k, "须满足 min < median < p90 且 median < max",
                                  "needs min < median < p90, and median < max")
    mu = math.log(med)
    sigma = (math.log(p90) - mu) / _Z90
    flo = _cdf((math.log(lo) - mu) / sigma) if lo > 0 else 0.0
    fhi = _cdf((math.log(hi) - mu) / sigma) if hi is not None else 1.0
    return Distribution("lognormal", (mu, sigma, flo, fhi, lo, hi))


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Loop:
    p: float  # probability that an attempt of the stage ends this way
    rework: Distribution | None  # working days before the launch goes back
    back_to: int  # stage index to go back to
    outcome: str | None = None  # documentation: the gate outcome this loop stands for


@dataclass(frozen=True)
class Stage:
    id: str
    gates: tuple[str, ...]
    duration: Distribution
    loops: tuple[Loop, ...] = ()

    @property
    def p_loop(self) -> float:
        return sum(lp.p for lp in self.loops)


@dataclass(frozen=True)
class ForecastConfig:
    """Stages per phase (per registration path where they differ), loop cap, overdue
    residual, risk alert tags. Build with :func:`load_forecast_config`."""

    phases: Mapping[str, Mapping[str, tuple[Stage, ...]]] = field(default_factory=dict)  # phase -> path|"*" -> stages
    max_loops: int = 6
    overdue_residual: Distribution = Distribution("uniform", (0.5, 2.0))
    risk_tags: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"ok": ("ops",), "at-risk": ("ops",), "late": ("ops", "manager")}
    )
    source: str = DEFAULT_FORECAST_FILE
    speed_sigma: float = 0.0  # per-launch pace: every duration of a sample × lognormal(σ), mean 1

    def stages(self, phase: Any, path: str) -> tuple[Stage, ...]:
        """The stages of a catalogue phase on a registration path (default: one stage over
        the catalogue's estimate range)."""
        by_path = self.phases.get(phase.id)
        if by_path is not None:
            if path in by_path:
                return by_path[path]
            if "*" in by_path:
                return by_path["*"]
        low, high = phase.estimate(path)
        if low == high:
            dist = Distribution("fixed", (float(low),))
        else:
            dist = Distribution("triangular", (float(low), low + (high - low) / 3.0, float(high)))
        return (Stage(phase.id, (), dist),)


def _parse_stages(raw: Any, source: str, key: str) -> tuple[Stage, ...]:
    if not isinstance(raw, list) or not raw:
        raise ForecastConfigError(source, key, "应为非空的阶段列表", "must be a non-empty list of stages")
    ids = []
    for i, st in enumerate(raw):
        if not isinstance(st, Mapping) or not isinstance(st.get("stage"), str):
            raise ForecastConfigError(source, f"{key}[{i}]", "阶段须为映射并有 stage 名", "a stage is a mapping with a name (stage)")
        ids.append(st["stage"])
    if len(set(ids)) != len(ids):
        raise ForecastConfigError(source, key, "阶段名重复", "a stage name appears twice")
    stages = []
    for i, st in enumerate(raw):
        k = f"{key}[{i}]"
        unknown = set(st) - {"stage", "gates", "loops", *_DIST_KINDS}
        if unknown:
            raise ForecastConfigError(source, k, f"未知的键 {sorted(unknown)}", f"unknown keys {sorted(unknown)}")
        gates = st.get("gates") or []
        if not isinstance(gates, list) or not all(isinstance(g, str) for g in gates):
            raise ForecastConfigError(source, f"{k}.gates", "应为关卡 id 列表", "must be a list of gate ids")
        loops = []
        for j, lp in enumerate(st.get("loops") or []):
            lk = f"{k}.loops[{j}]"
            if not isinstance(lp, Mapping) or "p" not in lp:
                raise ForecastConfigError(source, lk, "循环须有概率 p", "a loop needs its probability p")
            unknown = set(lp) - {"p", "rework", "back_to", "outcome"}
            if unknown:
                raise ForecastConfigError(source, lk, f"未知的键 {sorted(unknown)}", f"unknown keys {sorted(unknown)}")
            p = _num(lp["p"], source, f"{lk}.p")
            back = lp.get("back_to", st["stage"])
            if back not in ids[: i + 1]:
                raise ForecastConfigError(source, f"{lk}.back_to", f"只能回到本阶段或之前的阶段（收到 {back!r}）",
                                          f"can only go back to this stage or an earlier one (got {back!r})")
            rework = parse_distribution(lp["rework"], source, f"{lk}.rework") if lp.get("rework") is not None else None
            loops.append(Loop(p, rework, ids.index(back), lp.get("outcome")))
        if sum(lp.p for lp in loops) >= 1.0:
            raise ForecastConfigError(source, f"{k}.loops", "各循环概率之和须小于 1", "the loops' probabilities must sum to < 1")
        stages.append(Stage(st["stage"], tuple(gates), parse_distribution(st, source, k), tuple(loops)))
    return tuple(stages)


def parse_forecast_config(data: Any, source: str = DEFAULT_FORECAST_FILE) -> ForecastConfig:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ForecastConfigError(source, "(top)", "顶层必须是映射", "the top level must be a mapping")
    unknown = set(data) - {"phases", "max_loops", "overdue_residual", "risk_tags", "speed_sigma"}
    if unknown:
        raise ForecastConfigError(source, "(top)", f"未知的键 {sorted(unknown)}", f"unknown keys {sorted(unknown)}")
    phases: dict[str, dict[str, tuple[Stage, ...]]] = {}
    for phase, spec in (data.get("phases") or {}).items():
        key = f"phases.{phase}"
        if isinstance(spec, Mapping) and "paths" in spec:
            if set(spec) != {"paths"} or not isinstance(spec["paths"], Mapping):
                raise ForecastConfigError(source, key, "paths 应为 路径 → 阶段列表", "paths must map a path to its stages")
            phases[phase] = {path: _parse_stages(st, source, f"{key}.paths.{path}") for path, st in spec["paths"].items()}
        else:
            phases[phase] = {"*": _parse_stages(spec, source, key)}
    max_loops = data.get("max_loops", 6)
    if isinstance(max_loops, bool) or not isinstance(max_loops, int) or max_loops < 0:
        raise ForecastConfigError(source, "max_loops", "应为非负整数", "must be an integer >= 0")
    residual = (parse_distribution(data["overdue_residual"], source, "overdue_residual")
                if data.get("overdue_residual") is not None else Distribution("uniform", (0.5, 2.0)))
    tags = {"ok": ("ops",), "at-risk": ("ops",), "late": ("ops", "manager")}
    for level, value in (data.get("risk_tags") or {}).items():
        if level not in RISK_LEVELS or not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ForecastConfigError(source, f"risk_tags.{level}", f"风险级别为 {RISK_LEVELS}，值为标签列表",
                                      f"levels are {RISK_LEVELS}, each a list of tags")
        tags[level] = tuple(value)
    speed = _num(data.get("speed_sigma", 0.0), source, "speed_sigma")
    if speed > 1:
        raise ForecastConfigError(source, "speed_sigma", "应在 0 到 1 之间", "must be between 0 and 1")
    return ForecastConfig(phases, max_loops, residual, tags, source, speed)


def _deep_merge(base: dict, override: Mapping) -> dict:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _packaged() -> dict:
    text = resources.files("launch.domain").joinpath("data/forecast.yaml").read_text(encoding="utf-8")
    return load_yaml(text) or {}


def load_forecast_config(path: Path | str | None = None) -> ForecastConfig:
    """The packaged ``data/forecast.yaml``, with an optional YAML overlay (same shape; a
    phase given there replaces the packaged phase as a whole, other keys merge)."""
    data = _packaged()
    source = DEFAULT_FORECAST_FILE
    if path is not None:
        try:
            over = load_yaml(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ForecastConfigError(str(path), "(file)", f"无法读取：{exc}", f"cannot read: {exc}") from None
        except yaml.YAMLError as exc:
            raise ForecastConfigError(str(path), "(file)", f"不是有效的 YAML：{exc}", f"not valid YAML: {exc}") from None
        if over is not None and not isinstance(over, Mapping):
            raise ForecastConfigError(str(path), "(top)", "顶层必须是映射", "the top level must be a mapping")
        over = dict(over or {})
        phases = {**(data.get("phases") or {}), **(over.pop("phases", None) or {})}
        data = _deep_merge(data, over)
        data["phases"] = phases
        source = f"{path} (over {DEFAULT_FORECAST_FILE})"
    return parse_forecast_config(data, source)


@lru_cache
def default_forecast_config() -> ForecastConfig:
    return load_forecast_config()


# --------------------------------------------------------------------------- workday index


class _Days:
    """Working-day ordinals of a span of years, precomputed once per calendar."""

    def __init__(self, calendar: Any, first_year: int, last_year: int) -> None:
        self.calendar = calendar
        self.first_year = first_year
        self.last_year = first_year - 1
        self.ords: list[int] = []
        self.extend(last_year)

    def extend(self, last_year: int) -> None:
        for y in range(self.last_year + 1, last_year + 1):
            o = date(y, 1, 1).toordinal()
            end = date(y, 12, 31).toordinal()
            while o <= end:
                if self.calendar.is_workday(date.fromordinal(o)).value:
                    self.ords.append(o)
                o += 1
        self.last_year = max(self.last_year, last_year)

    def pos(self, d: date) -> int:
        """Working days from the index's start up to and including d."""
        if d.year > self.last_year:
            self.extend(d.year + 1)
        return bisect_right(self.ords, d.toordinal())

    def date_of(self, t: float) -> date:
        i = max(math.ceil(t - _EPS), 1)
        while i > len(self.ords):
            self.extend(self.last_year + 2)
        return date.fromordinal(self.ords[i - 1])


_DAYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _days(calendar: Any, first: date, last: date) -> _Days:
    first_year = first.year - 1
    try:
        cached = _DAYS.get(calendar)
    except TypeError:  # not weak-referenceable: no cache
        cached = None
    if cached is None or cached.first_year > first_year:
        cached = _Days(calendar, first_year, max(last.year + 2, first.year + 3))
        try:
            _DAYS[calendar] = cached
        except TypeError:
            pass
    elif cached.last_year < last.year + 2:
        cached.extend(last.year + 2)
    return cached


# --------------------------------------------------------------------------- simulation


def _applies(stage: Stage, catalogue: Any, subject_type: str | None) -> bool:
    """A stage whose gates are all skipped for the subject type (认证 of an individual) is left out."""
    if not stage.gates or subject_type is None:
        return True
    for g in stage.gates:
        gate = catalogue.gates.get(g)
        if gate is None or subject_type not in gate.skip_for_subject_types:
            return True
    return False


class _Sim:
    def __init__(self, rng: random.Random, config: ForecastConfig, n: int) -> None:
        self.rng = rng
        self.config = config
        sigma = config.speed_sigma
        if sigma > 0:  # one pace per simulated launch, mean 1
            gauss, mu = rng.gauss, -sigma * sigma / 2
            self.speed: list[float] | None = [math.exp(gauss(mu, sigma)) for _ in range(n)]
        else:
            self.speed = None

    def draws(self, dist: Distribution, n: int) -> list[float]:
        """n draws of ``dist``; the common kinds inline (no call per sample), the same
        numbers as ``dist.ppf`` on the same uniforms."""
        k, p = dist.kind, dist.params
        if k == "fixed":
            return [p[0]] * n
        r = self.rng.random
        us = [r() for _ in range(n)]
        if k == "uniform":
            a, w = p[0], p[1] - p[0]
            return [a + u * w for u in us]
        if k == "triangular":
            a, c, b = p
            if b == a:
                return [a] * n
            fc, k1, k2, sqrt = (c - a) / (b - a), (b - a) * (c - a), (b - a) * (b - c), math.sqrt
            return [a + sqrt(u * k1) if u < fc else b - sqrt((1.0 - u) * k2) for u in us]
        ppf = dist.ppf
        return [ppf(u) for u in us]

    def conditional(self, dist: Distribution, elapsed: float) -> float:
        """A duration drawn given that it is longer than ``elapsed``."""
        if dist.kind == "mixture" and elapsed > 0:
            alive = [(w * (1.0 - comp.cdf(elapsed)), comp) for w, comp in dist.params]
            total = sum(a for a, _ in alive)
            if total > 1e-12:
                u = self.rng.random() * total
                for a, comp in alive:
                    if u < a:
                        return self.conditional(comp, elapsed)
                    u -= a
                return self.conditional(alive[-1][1], elapsed)
        f = dist.cdf(elapsed) if elapsed > 0 else 0.0
        if f >= 1.0 - 1e-9:
            return elapsed + self.config.overdue_residual.ppf(self.rng.random())
        return max(dist.ppf(f + self.rng.random() * (1.0 - f)), elapsed)

    def run_range(self, stages: Sequence[Stage], a: int, j: int, t: float, loops_left: int,
                  f: float = 1.0) -> tuple[float, int]:
        """Run stages a..j (with their loops) from position t at pace f; the time when stage j passes."""
        rnd = self.rng.random
        i = a
        while i <= j:
            st = stages[i]
            t += st.duration.ppf(rnd()) * f
            i, t, loops_left = self.after_attempt(st, i, t, loops_left, f)
        return t, loops_left

    def after_attempt(self, st: Stage, i: int, t: float, loops_left: int, f: float = 1.0) -> tuple[int, float, int]:
        """An attempt of stage i ended at t: pass (i + 1) or a loop (rework, back_to)."""
        if not st.loops or loops_left <= 0:
            return i + 1, t, loops_left
        u = self.rng.random()
        for lp in st.loops:
            if u < lp.p:
                if lp.rework is not None:
                    t += lp.rework.ppf(self.rng.random()) * f
                return lp.back_to, t, loops_left - 1
            u -= lp.p
        return i + 1, t, loops_left

    def stages_column(self, stages: Sequence[Stage], first: int, col: list[float], loops_left: int) -> list[float]:
        """Run stages[first:] for every sample, column by column; a sample that loops is
        walked alone back to the stage that rejected it."""
        n = len(col)
        for j in range(first, len(stages)):
            st = stages[j]
            if st.duration.kind == "fixed":
                v = st.duration.params[0]
                if v:
                    col = [x + v for x in col]
            elif self.speed is not None:
                col = list(map(add, col, map(mul, self.draws(st.duration, n), self.speed)))
            else:
                col = list(map(add, col, self.draws(st.duration, n)))
            self.loop_column(stages, j, col, loops_left)
        return col

    def loop_column(self, stages: Sequence[Stage], j: int, col: list[float], loops_left: int) -> None:
        """Stage j's attempt ended at col[i] for every sample: the samples it rejects are
        walked alone back to j (in place)."""
        st = stages[j]
        if not st.loops or loops_left <= 0:
            return
        p = st.p_loop
        rnd = self.rng.random
        hits = [i for i, u in enumerate([rnd() for _ in range(len(col))]) if u < p]
        for i in hits:
            col[i] = self._loop_from(stages, j, col[i], loops_left, forced=True,
                                     f=self.speed[i] if self.speed is not None else 1.0)

    def conditional_draws(self, dist: Distribution, elapsed: float, n: int) -> list[float]:
        """n durations drawn given that each is longer than ``elapsed`` (column-wise
        :meth:`conditional`)."""
        if elapsed <= 0:
            return self.draws(dist, n)
        r = self.rng.random
        resid = self.config.overdue_residual.ppf
        if dist.kind == "mixture":
            alive = [(w * (1.0 - comp.cdf(elapsed)), comp) for w, comp in dist.params]
            total = sum(a for a, _ in alive)
            if total <= 1e-12:
                return [elapsed + resid(r()) for _ in range(n)]
            parts = [(a / total, comp, comp.cdf(elapsed)) for a, comp in alive if a > 0]
            out = []
            for _ in range(n):
                u = r()
                w, comp, f = parts[-1]
                for part in parts:
                    if u < part[0]:
                        w, comp, f = part
                        break
                    u -= part[0]
                out.append(max(comp.ppf(f + r() * (1.0 - f)), elapsed))
            return out
        f = dist.cdf(elapsed)
        if f >= 1.0 - 1e-9:
            return [elapsed + resid(r()) for _ in range(n)]
        ppf, span = dist.ppf, 1.0 - f
        return [max(ppf(f + r() * span), elapsed) for _ in range(n)]

    def pace(self, i: int) -> float:
        return self.speed[i] if self.speed is not None else 1.0

    def _loop_from(self, stages: Sequence[Stage], j: int, t: float, loops_left: int, *, forced: bool,
                   f: float = 1.0) -> float:
        """Stage j's attempt ended at t and (forced) was rejected: pick the loop, rework,
        and run back to j until it passes."""
        st = stages[j]
        if forced:
            u = self.rng.random() * st.p_loop
            lp = st.loops[-1]
            for cand in st.loops:
                if u < cand.p:
                    lp = cand
                    break
                u -= cand.p
            if lp.rework is not None:
                t += lp.rework.ppf(self.rng.random()) * f
            back, loops_left = lp.back_to, loops_left - 1
        else:
            back = j
        t, _ = self.run_range(stages, back, j, t, loops_left, f)
        return t


@dataclass
class _Where:
    """Where a running phase is: stage index and state, with the position its clock started."""

    stage: int
    since: float  # position the current stage (or rework) started
    rework: Loop | None = None  # in the rework of this loop of stage `stage`


def _locate(stages: Sequence[Stage], history: LaunchHistory, days: _Days, phase_start: float) -> _Where:
    gates = history.gates
    index = {g: i for i, st in enumerate(stages) for g in st.gates}
    open_ = [(gates[g].open_since, g) for g in index if g in gates and gates[g].open_since is not None]
    if open_:
        since_d, g = max(open_)
        i = index[g]
        # the stage started with the earliest of its gates (up to g) started after the last
        # gate of another stage of this phase finished
        bound = max((gates[o].finished for o in index if o in gates and index[o] != i and gates[o].finished),
                    default=None)
        starts = [gates[o].last_started for o in stages[i].gates[: stages[i].gates.index(g) + 1]
                  if o in gates and gates[o].last_started is not None
                  and (bound is None or gates[o].last_started >= bound)]
        start_d = min(starts, default=since_d)
        return _Where(i, float(days.pos(min(start_d, since_d))))
    done = [(gates[g].finished, index[g], g) for g in index if g in gates and gates[g].finished is not None]
    if done:
        fin, i, g = max(done)
        t = float(days.pos(fin))
        if gates[g].last_passed is False and stages[i].loops:
            loops = stages[i].loops
            lp = next((x for x in loops if x.outcome is not None and x.outcome == gates[g].last_outcome), loops[0])
            return _Where(i, t, lp)
        return _Where(i + 1, t)
    return _Where(0, phase_start)


def _quantile(sorted_vals: Sequence[float], q: float) -> float:
    n = len(sorted_vals)
    return sorted_vals[min(max(math.ceil(q * n) - 1, 0), n - 1)]


def forecast(
    history: LaunchHistory,
    catalogue: Any,
    calendar: Any,
    config: ForecastConfig,
    *,
    as_of: date,
    samples: int = 10_000,
    seed: int = 0,
) -> Forecast:
    """P50 / P90 go-live and per-phase dates of one launch, as known on ``as_of``."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    rng = random.Random(seed)
    sim = _Sim(rng, config, samples)
    start = history.start
    days = _days(calendar, min(start, as_of), max(start, as_of))
    t0 = float(days.pos(start))
    t_asof = float(max(days.pos(as_of), t0))
    n = samples
    order = catalogue.phase_order()
    finish: dict[str, list[float]] = {}
    begin: dict[str, list[float]] = {}
    released = history.finished
    for phase in order:
        act = history.phases.get(phase.id, PhaseActual())
        stages = tuple(s for s in config.stages(phase, history.registration_path)
                       if _applies(s, catalogue, history.subject_type))
        deps = [finish[d] for d in phase.after]
        if act.actual_finish is not None or released is not None:
            fin_d = act.actual_finish or released
            st_d = act.actual_start or fin_d
            begin[phase.id] = [float(days.pos(st_d))] * n
            finish[phase.id] = [float(days.pos(fin_d))] * n
            continue
        if act.actual_start is not None:
            ts = float(days.pos(act.actual_start))
            begin[phase.id] = [ts] * n
            where = _locate(stages, history, days, ts)
            col = [0.0] * n
            if where.stage >= len(stages):
                # every stage done but the phase not marked finished: it ends any moment
                finish[phase.id] = [max(t_asof, where.since)] * n
                continue
            st = stages[where.stage]
            elapsed = max(t_asof - where.since, 0.0)
            loops_left = config.max_loops
            if where.rework is not None:
                lp = where.rework
                for i in range(n):
                    if lp.rework is not None:
                        t = where.since + sim.conditional(lp.rework, elapsed)
                    else:
                        t = max(where.since, t_asof)
                    col[i], _ = sim.run_range(stages, lp.back_to, where.stage, t, loops_left - 1, sim.pace(i))
            else:
                since = where.since
                col = [since + d for d in sim.conditional_draws(st.duration, elapsed, n)]
                sim.loop_column(stages, where.stage, col, loops_left)
            finish[phase.id] = sim.stages_column(stages, where.stage + 1, col, loops_left)
            continue
        # not started: after every dependency, and not before as_of
        if deps:
            col = list(map(max, *deps)) if len(deps) > 1 else list(deps[0])
            col = [x if x > t_asof else t_asof for x in col]
        else:
            col = [max(t0, t_asof)] * n
        begin[phase.id] = col
        finish[phase.id] = sim.stages_column(stages, 0, col, config.max_loops)

    depended = {d for p in order for d in p.after}
    sinks = [p.id for p in order if p.id not in depended] or [order[-1].id]
    live = list(map(max, *(finish[s] for s in sinks))) if len(sinks) > 1 else finish[sinks[0]]
    live_sorted = sorted(live)
    p50_t, p90_t = _quantile(live_sorted, 0.5), _quantile(live_sorted, 0.9)

    def to_date(t: float, floor: date) -> date:
        return max(days.date_of(t), floor)

    # the P50 path: back from go-live along the dependency that finishes last at the median
    med_finish = {p: _quantile(sorted(c), 0.5) for p, c in finish.items()}
    critical: set[str] = set()
    stack = [max(sinks, key=lambda s: med_finish[s])]
    by_id = {p.id: p for p in order}
    while stack:
        pid = stack.pop()
        if pid in critical:
            continue
        critical.add(pid)
        deps = by_id[pid].after
        if deps:
            top = max(med_finish[d] for d in deps)
            stack.extend(d for d in deps if med_finish[d] >= top - _EPS)

    steps = []
    for phase in order:
        act = history.phases.get(phase.id, PhaseActual())
        fin = sorted(finish[phase.id])
        st_p50 = act.actual_start or to_date(_quantile(sorted(begin[phase.id]), 0.5), start)
        f50 = act.actual_finish or to_date(_quantile(fin, 0.5), st_p50)
        f90 = act.actual_finish or to_date(_quantile(fin, 0.9), f50)
        steps.append(StepForecast(
            phase=phase.id, name_zh=phase.name_zh, name_en=phase.name_en,
            start_p50=st_p50, finish_p50=f50, finish_p90=f90,
            actual_start=act.actual_start, actual_finish=act.actual_finish,
            critical=phase.id in critical,
        ))
    if released is not None:
        p50 = p90 = released
    else:
        p50 = to_date(p50_t, start)
        p90 = to_date(p90_t, p50)
    latest = max([p90, *(s.finish_p90 for s in steps)])
    provisional = not calendar.is_known(latest)
    return Forecast(history.launch_id, as_of, p50, p90, samples, seed, tuple(steps), provisional)
