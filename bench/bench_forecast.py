"""Benchmark of the go-live forecast (issue 13), ratios against baselines in the same run.

    .venv/bin/python bench/bench_forecast.py [--samples 10000] [--launches 200]

1. One launch at its start, 10,000 samples: ``launch.domain.forecast.forecast`` (column-wise
   pure Python over a precomputed workday index) against a naive per-sample loop that walks
   the same stages and loops and maps every phase finish to a date with
   ``WorkCalendar.add_workdays``; plan.py's best/worst window (one pass) for scale.
2. All open launches in one watcher pass: ``--launches`` synthetic launches at random points of
   their life (the backtest's generator), each forecast with ``--samples``; the naive loop on
   a tenth of them, extrapolated. Then the same pass again with nothing changed: the
   in-process cache of ``launch.app.forecasting.forecast_for`` is modelled by a dict lookup.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launch.domain.calendar import WorkCalendar  # noqa: E402
from launch.domain.catalogue import default_catalogue  # noqa: E402
from launch.domain.forecast import LaunchHistory, _applies, default_forecast_config, forecast  # noqa: E402
from launch.domain.forecast_backtest import generate, history_at  # noqa: E402
from launch.domain.plan import make_plan  # noqa: E402


def naive(history: LaunchHistory, cat, cal, cfg, samples: int, seed: int = 0) -> tuple[date, date]:
    """The obvious implementation: one sample at a time, dates through the calendar API
    (finished phases at their actual dates; running ones restart at as_of: cruder still)."""
    rng = random.Random(seed)
    lives = []
    order = cat.phase_order()
    for _ in range(samples):
        fin: dict[str, date] = {}
        for phase in order:
            act = history.phases.get(phase.id)
            if act is not None and act.actual_finish is not None:
                fin[phase.id] = act.actual_finish
                continue
            start = max((fin[d] for d in phase.after), default=history.start)
            stages = [s for s in cfg.stages(phase, history.registration_path)
                      if _applies(s, cat, history.subject_type)]
            total, i, loops = 0.0, 0, 0
            while i < len(stages):
                st = stages[i]
                total += st.duration.ppf(rng.random())
                u, nxt = rng.random(), i + 1
                if loops < cfg.max_loops:
                    for lp in st.loops:
                        if u < lp.p:
                            total += lp.rework.ppf(rng.random()) if lp.rework else 0.0
                            nxt, loops = lp.back_to, loops + 1
                            break
                        u -= lp.p
                i = nxt
            fin[phase.id] = cal.add_workdays(start, math.ceil(total - 1e-9)).value
        lives.append(max(fin.values()))
    lives.sort()
    return lives[len(lives) // 2], lives[int(0.9 * len(lives))]


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--launches", type=int, default=200)
    args = ap.parse_args()
    cat, cal, cfg = default_catalogue(), WorkCalendar(), default_forecast_config()
    start = date(2026, 3, 2)
    h = LaunchHistory("l-bench", start, "standalone", "enterprise")
    forecast(h, cat, cal, cfg, as_of=start, samples=100)  # warm the workday index

    t_plan, _ = timed(lambda: [make_plan(cat, cal, start, "standalone") for _ in range(100)])
    t_plan /= 100
    t_fast, fc = timed(forecast, h, cat, cal, cfg, as_of=start, samples=args.samples)
    t_naive, (n50, n90) = timed(naive, h, cat, cal, cfg, args.samples)
    print(f"1. one launch, {args.samples} samples")
    print(f"   forecast          {t_fast * 1000:8.1f} ms   P50 {fc.p50}  P90 {fc.p90}")
    print(f"   naive loop        {t_naive * 1000:8.1f} ms   P50 {n50}  P90 {n90}   ratio naive/forecast {t_naive / t_fast:5.1f}x")
    print(f"   plan.py best/worst {t_plan * 1000:7.2f} ms   (one deterministic pass)   ratio forecast/plan {t_fast / t_plan:7.0f}x")

    synth = generate(cat, cal, cfg, launches=args.launches, seed=1)
    rng = random.Random(2)
    open_ = []
    for sl in synth:
        span = cal.workdays_between(sl.start, sl.go_live).value
        as_of = cal.add_workdays(sl.start, rng.randint(0, max(span - 1, 0))).value
        open_.append((history_at(sl, as_of), as_of))
    t_pass, fcs = timed(lambda: [forecast(hh, cat, cal, cfg, as_of=a, samples=args.samples) for hh, a in open_])
    tenth = open_[: max(1, len(open_) // 10)]
    t_naive10, _ = timed(lambda: [naive(hh, cat, cal, cfg, args.samples) for hh, _ in tenth])
    t_naive_all = t_naive10 * len(open_) / len(tenth)
    cache = {(hh.launch_id, a): f for (hh, a), f in zip(open_, fcs)}
    t_cached, _ = timed(lambda: [cache[(hh.launch_id, a)] for hh, a in open_])
    print(f"2. one watcher pass over {len(open_)} open launches, {args.samples} samples each")
    print(f"   forecast          {t_pass:8.2f} s    ({t_pass / len(open_) * 1000:.0f} ms a launch)")
    print(f"   naive loop        {t_naive_all:8.2f} s    (measured on {len(tenth)}, extrapolated)   "
          f"ratio naive/forecast {t_naive_all / t_pass:5.1f}x")
    print(f"   nothing changed   {t_cached * 1000:8.3f} ms   (cached by history; the store read of each launch's "
          "steps comes on top)")


if __name__ == "__main__":
    main()
