"""The portfolio report with 200 open launches: build (store + forecast), chart (PNG) and page
(HTML), against a naive report in the same run.

    .venv/bin/python bench/bench_report.py [--launches 200] [--repeat 3]

Seeds a throw-away SQLite store (a temp dir) with N running launches as tests/report does
(both registration paths, individuals, some waiting past a deadline), warms the imports and
the font cache on a small portfolio, then times, best of --repeat:

  report    launch.app.report: build_portfolio (Monte Carlo forecast per launch, REPORT_SAMPLES)
            + render_png + render_html — what `weapp-launch report` and GET /report do
  baseline  the same data drawn the obvious way: one ax.barh per bar, y tick labels, a minor
            tick per day, an axvspan per day off, default PNG compression; and the forecast
            at the forecast's own default of 10,000 samples per launch

Prints both, the split, the ratio, and the 5-second target. Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from launch.domain.calendar import WorkCalendar  # noqa: E402
from launch.domain.catalogue import default_catalogue  # noqa: E402
from launch.app.report import (  # noqa: E402
    FONT_FAMILY,
    build_portfolio,
    default_forecaster,
    render_html,
    render_png,
)
from launch.store import Store  # noqa: E402
from tests.support.portfolio import seed_portfolio  # noqa: E402

NOW = datetime(2026, 10, 20, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TARGET_S = 5.0


def forget_forecasts() -> None:
    """launch.app.forecasting keeps an in-process cache keyed by each launch's history: a second
    run would time dictionary look-ups. Every timed run starts without it."""
    from launch.app import forecasting

    forecasting._CACHE.clear()


def ours(store, cat, cal) -> dict:
    forget_forecasts()
    t0 = time.perf_counter()
    p = build_portfolio(store, catalogue=cat, calendar=cal, now=NOW)
    t1 = time.perf_counter()
    png = render_png(p)
    t2 = time.perf_counter()
    render_html(p, png=png)
    t3 = time.perf_counter()
    return {"total": t3 - t0, "build": t1 - t0, "forecast": p.timings["forecast_s"], "png": t2 - t1,
            "html": t3 - t2, "rows": len(p.rows), "png_bytes": len(png), "source": ",".join(sorted(p.sources))}


def naive(store, cat, cal) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    forget_forecasts()
    t0 = time.perf_counter()
    forecaster, _ = default_forecaster(catalogue=cat, calendar=cal, samples=10_000)
    p = build_portfolio(store, catalogue=cat, calendar=cal, now=NOW, forecaster=forecaster or False)
    t1 = time.perf_counter()
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": FONT_FAMILY}):
        n = len(p.rows)
        fig = Figure(figsize=(15, 2.1 + 0.42 * n), dpi=100)
        ax = fig.add_subplot()
        for i, r in enumerate(p.rows):
            for b in r.phases:
                ax.barh(i, (b.finish_p50 - b.start_p50).days or 0.8, left=mdates.date2num(b.start_p50), height=0.4,
                        color="#aec7e8", edgecolor="black" if b.critical else "none")
                if b.actual_start:
                    end = b.actual_finish or p.as_of
                    ax.barh(i, (end - b.actual_start).days or 0.8, left=mdates.date2num(b.actual_start), height=0.2,
                            color="red" if b.overdue else "#1f77b4")
            ax.barh(i + 0.35, (r.go_live_p90 - r.go_live_p50).days or 0.8, left=mdates.date2num(r.go_live_p50),
                    height=0.08, color="#34495e")
            if i % 2 == 0:
                ax.axhspan(i - 0.5, i + 0.5, color="#f3f5f7", zorder=0)
        for d in p.days_off:
            ax.axvspan(mdates.date2num(d), mdates.date2num(d) + 1, color="#e6eaee", zorder=0)
        ax.set_yticks(range(n))
        ax.set_yticklabels([r.label for r in p.rows])
        ax.xaxis_date()
        ax.xaxis.set_minor_locator(mdates.DayLocator())
        ax.tick_params(axis="x", which="both", top=True, labeltop=True)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    t2 = time.perf_counter()
    return {"total": t2 - t0, "build": t1 - t0, "forecast": p.timings["forecast_s"], "png": t2 - t1, "html": 0.0,
            "rows": n, "png_bytes": len(buf.getvalue()), "source": ",".join(sorted(p.sources))}


def best(fn, repeat: int, *args) -> tuple[dict, list[float]]:
    runs = [fn(*args) for _ in range(repeat)]
    return min(runs, key=lambda r: r["total"]), [r["total"] for r in runs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cat, cal = default_catalogue(), WorkCalendar()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db", Fernet.generate_key(), b"b" * 32)
        t = time.perf_counter()
        seed_portfolio(store, args.launches, now=NOW, catalogue=cat, calendar=cal)
        print(f"seeded {args.launches} open launches in {time.perf_counter() - t:.1f}s")
        cold = ours(store, cat, cal)  # first in the process: imports, font cache, numpy
        print(f"cold (first report in a fresh process, imports and fonts included): {cold['total']:.2f}s = build "
              f"{cold['build']:.2f}s (forecast {cold['forecast']:.2f}s) + png {cold['png']:.2f}s + html {cold['html']:.2f}s")
        mine, mine_all = best(ours, args.repeat, store, cat, cal)
        base, base_all = best(naive, max(1, min(args.repeat, 2)), store, cat, cal)
        store.close()

    def line(name, r, runs):
        return (f"{name:9s} total {r['total']:6.2f}s  = build {r['build']:5.2f}s (forecast {r['forecast']:5.2f}s, "
                f"{r['source']}) + png {r['png']:5.2f}s ({r['png_bytes'] / 1e6:.1f} MB) + html {r['html']:4.2f}s  "
                f"[runs: {', '.join(f'{x:.2f}' for x in runs)}; median {statistics.median(runs):.2f}s]")

    print(line("report", mine, mine_all))
    print(line("baseline", base, base_all))
    print(f"ratio     baseline / report = {base['total'] / mine['total']:.1f}x   "
          f"(chart alone {base['png'] / mine['png']:.1f}x, forecast alone {base['forecast'] / max(mine['forecast'], 1e-9):.1f}x)")
    verdict = "OK" if mine["total"] < TARGET_S else "OVER"
    print(f"target    {mine['rows']} launches in < {TARGET_S:.0f}s (warm): {mine['total']:.2f}s {verdict}; "
          f"cold {cold['total']:.2f}s")


if __name__ == "__main__":
    main()
