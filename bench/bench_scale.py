"""The scale-out's large numbers: N launches to release across two workers (PostgreSQL, a
process work pool, prefect.yaml's deployments), against a baseline of one launch measured in
the same run on the same machine.

    .venv/bin/python bench/bench_scale.py [--launches 20] [--baseline 1]

Runs tests/scale/test_two_workers.py twice (WEAPP_LAUNCH_SCALE_DEPTH=release: every gate's
decision recorded up front, each launch run to release, with all the test's assertions:
every gate once, every effect once, both workers used), first with `--baseline` launches,
then with `--launches`, and prints each run's figures and the ratios: wall seconds per
launch, CPU seconds per launch, flow-run process starts per launch. Linear scale-out keeps
the per-launch ratios near 1. Not run in CI (CI runs the test with 4 launches, past design).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SECONDS = re.compile(r"^\s+(setup total|start -> all \w+)\s+([\d.]+) s", re.M)
STARTS = re.compile(r"flow runs (\d+), process starts (\d+)")
CPU = re.compile(r"CPU seconds: (.*)")


def run(launches: int, timeout: float) -> dict[str, float]:
    env = {**os.environ, "WEAPP_LAUNCH_SCALE_LAUNCHES": str(launches), "WEAPP_LAUNCH_SCALE_DEPTH": "release",
           "WEAPP_LAUNCH_SCALE_TIMEOUT": str(timeout),
           # no cap on flow-run processes per worker (the CI size caps it at 3 to spread four launches)
           "WEAPP_LAUNCH_SCALE_WORKER_LIMIT": os.environ.get("WEAPP_LAUNCH_SCALE_WORKER_LIMIT", "0")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/scale/test_two_workers.py",
         "-o", f"timeout={int(timeout) + 600}"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    out = done.stdout
    if done.returncode != 0:
        sys.exit(f"the scale test failed with {launches} launches:\n{out[-6000:]}\n{done.stderr[-3000:]}")
    figures = {name: float(v) for name, v in SECONDS.findall(out)}
    runs, starts = STARTS.search(out).groups()
    cpu = {k.strip(): float(v) for k, v in (p.rsplit(" ", 1) for p in CPU.search(out).group(1).split(", "))}
    wall = next(v for k, v in figures.items() if k.startswith("start -> all"))
    return {"launches": launches, "setup_s": figures["setup total"], "run_s": wall, "flow_runs": int(runs),
            "process_starts": int(starts), "cpu_s": sum(v for k, v in cpu.items() if k != "test process")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launches", type=int, default=20)
    ap.add_argument("--baseline", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds for the large run's launches")
    args = ap.parse_args()

    base = run(args.baseline, 900)
    big = run(args.launches, args.timeout)
    print(f"scale-out to release, 2 workers, PostgreSQL: {args.baseline} launch(es) vs {args.launches}")
    print(f"  {'':<24s} {'baseline':>10s} {'large':>10s} {'ratio':>8s}")
    for key, label in (("setup_s", "setup (s)"), ("run_s", "start -> released (s)"), ("flow_runs", "flow runs"),
                       ("process_starts", "process starts"), ("cpu_s", "CPU, server+workers (s)")):
        print(f"  {label:<24s} {base[key]:>10.1f} {big[key]:>10.1f} {big[key] / base[key]:>7.2f}x")
    print("  per launch:")
    for key, label in (("run_s", "wall (s)"), ("process_starts", "process starts"), ("cpu_s", "CPU (s)")):
        b, g = base[key] / base["launches"], big[key] / big["launches"]
        print(f"  {label:<24s} {b:>10.2f} {g:>10.2f} {g / b:>7.2f}x")


if __name__ == "__main__":
    main()
