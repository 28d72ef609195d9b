"""Calibration of the forecast: a synthetic history of launches, replayed step by step.

    python -m launch.domain.forecast_backtest [--launches 200] [--samples 600] [--seed 13]

Generation (independent of the forecast's own sampler): each synthetic launch walks the
catalogue's phases in dependency order (branches in parallel, joins at the later one)
and each phase's stages gate by gate, with the forecast file's figures as the *nominal*
process plus noise the forecast does not model:

* a per-launch speed factor (lognormal, σ = ``launch_sigma``) on every duration, and a
  per-attempt factor (σ = ``stage_sigma``);
* long bureau reviews: the file's own long tail (its mixture), and on top of it, with
  probability ``long_bureau``, uniform(15, 25) working days instead of the nominal draw;
* rejections at the file's probabilities times ``reject_factor``, each with its rework,
  going back as the flows do (first review, SMS, bureau, design, code review).

Every gate attempt is recorded with its start and finish date and outcome, as the store
would hold it. Replay: for each launch, at its start and at the day each phase started,
the history known that day (attempts started by then; outcomes decided by then) is
forecast, and the real go-live is compared with P50 and P90 ("inside" = on or before).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from launch.domain.forecast import (
    ForecastConfig,
    GateActual,
    LaunchHistory,
    PhaseActual,
    Stage,
    _applies,
    _days,
    forecast,
)

__all__ = ["Attempt", "Calibration", "SyntheticLaunch", "calibrate", "generate", "history_at"]


@dataclass(frozen=True)
class Attempt:
    gate: str
    attempt: int
    started: date
    finished: date
    passed: bool
    outcome: str | None


@dataclass
class SyntheticLaunch:
    launch_id: str
    start: date
    registration_path: str
    subject_type: str
    phase_start: dict[str, date] = field(default_factory=dict)
    phase_finish: dict[str, date] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    go_live: date | None = None


def _lognormal_factor(rng: random.Random, sigma: float) -> float:
    return math.exp(rng.gauss(-sigma * sigma / 2, sigma)) if sigma > 0 else 1.0  # mean 1


def generate(
    catalogue, calendar, config: ForecastConfig, *, launches: int = 200, seed: int = 13,
    first: date = date(2025, 3, 3), last: date = date(2026, 5, 29),
    launch_sigma: float = 0.15, stage_sigma: float = 0.10, long_bureau: float = 0.01, reject_factor: float = 1.0,
) -> list[SyntheticLaunch]:
    rng = random.Random(seed)
    days = _days(calendar, first, last)
    lo, hi = days.pos(first), days.pos(last)
    out = []
    for n in range(launches):
        t0 = float(rng.randint(lo, hi))
        start = days.date_of(t0)
        path = "reuse_official_account" if rng.random() < 0.3 else "standalone"
        subject = "individual" if rng.random() < 0.1 else "enterprise"
        speed = _lognormal_factor(rng, launch_sigma)
        sl = SyntheticLaunch(f"l-syn{n:05d}", start, path, subject)
        counts: dict[str, int] = {}
        finish_t: dict[str, float] = {}
        for phase in catalogue.phase_order():
            stages = [s for s in config.stages(phase, path) if _applies(s, catalogue, subject)]
            t = max((finish_t[d] for d in phase.after), default=t0)
            sl.phase_start[phase.id] = days.date_of(t) if t > t0 else start
            i, loops = 0, 0
            while i < len(stages):
                st: Stage = stages[i]
                if st.id == "bureau" and rng.random() < long_bureau:
                    d = rng.uniform(15, 25)
                else:
                    d = st.duration.ppf(rng.random()) * speed * _lognormal_factor(rng, stage_sigma)
                gates = [g for g in st.gates if g in catalogue.gates
                         and subject not in catalogue.gates[g].skip_for_subject_types
                         and catalogue.gates[g].path in (None, path)]
                u = rng.random()
                chosen = None
                if loops < config.max_loops:
                    for lp in st.loops:
                        if u < lp.p * reject_factor:
                            chosen = lp
                            break
                        u -= lp.p * reject_factor
                share = d / max(len(gates), 1)
                for k, g in enumerate(gates):
                    counts[g] = counts.get(g, 0) + 1
                    a, b = t + k * share, t + (k + 1) * share
                    failed = chosen is not None and k == len(gates) - 1
                    sl.attempts.append(Attempt(g, counts[g], days.date_of(a) if a > t0 else start,
                                               days.date_of(b) if b > t0 else start, not failed,
                                               chosen.outcome if failed else "ok"))
                t += d
                if chosen is None:
                    i += 1
                    continue
                loops += 1
                if chosen.rework is not None:
                    t += chosen.rework.ppf(rng.random()) * speed
                i = chosen.back_to
            finish_t[phase.id] = t
            sl.phase_finish[phase.id] = days.date_of(t) if t > t0 else start
        depended = {d for p in catalogue.phase_order() for d in p.after}
        sinks = [p.id for p in catalogue.phase_order() if p.id not in depended]
        sl.go_live = max(sl.phase_finish[s] for s in sinks)
        out.append(sl)
    return out


def history_at(sl: SyntheticLaunch, as_of: date) -> LaunchHistory:
    """What the store would hold at the end of ``as_of``."""
    phases = {
        p: PhaseActual(s if s <= as_of else None,
                       sl.phase_finish[p] if s <= as_of and sl.phase_finish[p] <= as_of else None)
        for p, s in sl.phase_start.items()
    }
    gates: dict[str, GateActual] = {}
    by_gate: dict[str, list[Attempt]] = {}
    for a in sl.attempts:
        if a.started <= as_of:
            by_gate.setdefault(a.gate, []).append(a)
    for g, rows in by_gate.items():
        decided = [a for a in rows if a.finished <= as_of]
        open_ = [a for a in rows if a.finished > as_of]
        last = decided[-1] if decided else None
        gates[g] = GateActual(
            attempts=rows[-1].attempt,
            open_since=open_[-1].started if open_ else None,
            last_started=rows[-1].started,
            finished=last.finished if last else None,
            last_passed=last.passed if last else None,
            last_outcome=last.outcome if last else None,
            rejections=sum(1 for a in decided if not a.passed),
        )
    return LaunchHistory(sl.launch_id, sl.start, sl.registration_path, sl.subject_type, phases, gates,
                         sl.go_live if sl.go_live <= as_of else None)


@dataclass
class Calibration:
    launches: int
    samples: int
    seconds: float
    # checkpoint -> (forecasts, inside P50, inside P90, mean P50..P90 spread in working days)
    rows: dict[str, tuple[int, int, int, float]]

    def coverage(self, checkpoint: str) -> tuple[float, float]:
        n, c50, c90, _ = self.rows[checkpoint]
        return c50 / n, c90 / n

    @property
    def overall(self) -> tuple[float, float]:
        n = sum(r[0] for r in self.rows.values())
        return sum(r[1] for r in self.rows.values()) / n, sum(r[2] for r in self.rows.values()) / n

    def table(self) -> str:
        lines = ["| checkpoint (as of) | forecasts | inside P50 | inside P90 | mean P50→P90 (wd) |",
                 "|---|---|---|---|---|"]
        for cp, (n, c50, c90, spread) in self.rows.items():
            lines.append(f"| {cp} | {n} | {c50 / n:.0%} | {c90 / n:.0%} | {spread:.1f} |")
        o50, o90 = self.overall
        lines.append(f"| all | {sum(r[0] for r in self.rows.values())} | {o50:.0%} | {o90:.0%} | |")
        return "\n".join(lines)


def calibrate(catalogue, calendar, config: ForecastConfig, *, launches: int = 200, samples: int = 600,
              seed: int = 13, checkpoints: Sequence[str] | None = None, **noise) -> Calibration:
    began = time.perf_counter()
    synth = generate(catalogue, calendar, config, launches=launches, seed=seed, **noise)
    order = [p.id for p in catalogue.phase_order()]
    cps = list(checkpoints) if checkpoints is not None else ["start", *order[1:]]
    acc: dict[str, list[float]] = {cp: [0, 0, 0, 0.0] for cp in cps}
    for k, sl in enumerate(synth):
        for cp in cps:
            as_of = sl.start if cp == "start" else sl.phase_start[cp]
            if as_of >= sl.go_live:
                continue
            fc = forecast(history_at(sl, as_of), catalogue, calendar, config, as_of=as_of, samples=samples, seed=k)
            row = acc[cp]
            row[0] += 1
            row[1] += sl.go_live <= fc.p50
            row[2] += sl.go_live <= fc.p90
            row[3] += calendar.workdays_between(fc.p50, fc.p90).value
    rows = {cp: (int(r[0]), int(r[1]), int(r[2]), r[3] / r[0] if r[0] else 0.0) for cp, r in acc.items() if r[0]}
    return Calibration(launches, samples, time.perf_counter() - began, rows)


def main(argv: Sequence[str] | None = None) -> None:
    from launch.domain.calendar import WorkCalendar
    from launch.domain.catalogue import default_catalogue
    from launch.domain.forecast import default_forecast_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launches", type=int, default=200)
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    cal = calibrate(default_catalogue(), WorkCalendar(), default_forecast_config(),
                    launches=args.launches, samples=args.samples, seed=args.seed)
    print(cal.table())
    print(f"({cal.launches} synthetic launches, {cal.samples} samples per forecast, {cal.seconds:.1f} s)")


if __name__ == "__main__":
    main()
