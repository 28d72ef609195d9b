"""The deadline watcher: deployed on a schedule (settings.watch_interval_seconds, default
every 5 minutes). Each run is one watcher pass: enqueue the alerts that came due, send
them, repair lost wake-ups. Two runs overlapping is safe (unique dedupe keys, SKIP LOCKED
claims), so no concurrency limit is needed. The heartbeat automation runs it with
revive_only=True when a run's heartbeats stop (deployments/serve.py)."""

from __future__ import annotations

from prefect import flow

from flows.wiring import current_run_id, watcher_tasks
from launch.app.watcher import DEFAULT_LIMIT


@flow(name="deadline-watcher", log_prints=False)
def deadline_watcher(limit: int = DEFAULT_LIMIT, revive_only: bool = False) -> dict:
    tasks = watcher_tasks()
    worker_id = f"watcher-{current_run_id() or 'local'}"
    if revive_only:
        revived = tasks["revive"](worker_id, limit)
        return {"repaired": revived["counts"]["repaired"], "errors": revived["errors"]}
    enqueued = tasks["enqueue"](worker_id, limit)
    delivered = tasks["deliver"](worker_id, limit)
    repaired = tasks["repair"](worker_id, limit)
    # The portfolio summary: a Markdown artifact `portfolio-summary`, once per day (the first
    # pass of the day writes it); its errors never fail the pass.
    summary = tasks["summary"]()
    return {
        "enqueued": enqueued["counts"]["enqueued"],
        "sent": delivered["counts"]["sent"],
        "retried": delivered["counts"]["retried"],
        "failed": delivered["counts"]["failed"],
        "waiting": delivered["counts"]["waiting"],  # held for a channel that is down
        "repaired": repaired["counts"]["repaired"],
        "errors": enqueued["errors"] + delivered["errors"] + repaired["errors"],
        "summary": summary,  # {"published": bool, "open": n, "at_risk": n, "errors": [...]}
    }
