"""One deadline-watcher pass in a process of its own, started at an agreed moment, so that
two of them run at once: ``python -m tests.faults.watch_pass (--at EPOCH | --go FILE)
[--shift-hours H] [--no-repair]``. Prints ``ready`` once set up, then the pass's report as
JSON (launch.app.watcher.PassReport.to_json). With ``--go``, the pass starts as soon as FILE
exists: the caller creates it once every process has said ``ready`` (no guessing how long
an import takes on a loaded machine).

The process settings come from the environment (the stack's: store URL, notifiers file);
``--shift-hours`` runs the pass as if that much later (more alert rungs come due), which is
only for enqueue and delivery: with it, repairs are off.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--at", type=float, default=None, help="wall-clock epoch to start the pass at")
    ap.add_argument("--go", default=None, help="start the pass as soon as this file exists")
    ap.add_argument("--shift-hours", type=float, default=0.0)
    ap.add_argument("--no-repair", action="store_true")
    ap.add_argument("--worker-id", default=None)
    args = ap.parse_args()

    from launch.app import Resources
    from launch.app.watcher import watch_once

    res = Resources.from_settings()  # this process is an entry point of the stack's environment
    res.notifier  # reads the notifiers file, and opens the store: outside the race
    res.store.health()
    now = res.now() + timedelta(hours=args.shift_hours) if args.shift_hours else None
    if args.go:
        go = Path(args.go)
        late = go.exists()  # a signal given before this process was ready (never, by the caller's protocol)
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.005)
    else:
        print("ready", flush=True)
        wait = args.at - time.time()
        late = wait < 0
        if wait > 0:
            time.sleep(wait)
    report = watch_once(res, now, worker_id=args.worker_id, repair_runs=not (args.no_repair or args.shift_hours))
    out = report.to_json()
    out["started_late"] = late
    print(json.dumps(out, ensure_ascii=False))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
