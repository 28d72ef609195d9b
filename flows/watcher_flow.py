"""The deadline watcher: deployed on a schedule (settings.watch_interval_seconds, default
every 5 minutes). Each run is one watcher pass: enqueue the alerts that came due, send
them, repair lost wake-ups. Two runs overlapping is safe (unique dedupe keys, SKIP LOCKED
claims), so no concurrency limit is needed. The heartbeat automation runs it with
revive_only=True when a run's heartbeats stop (deployments/serve.py)."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from launch.app.watcher import DEFAULT_LIMIT
from tasks.artifacts import publish_portfolio_summary
from tasks.watcher_tasks import deliver_alerts, enqueue_alerts, repair_runs, revive_runs


@flow(name="deadline-watcher", log_prints=False)
def deadline_watcher(limit: int = DEFAULT_LIMIT, revive_only: bool = False) -> dict:
    worker_id = f"watcher-{flow_run.get_id() or 'local'}"
    if revive_only:
        revived = revive_runs(worker_id, limit)
        return {"repaired": revived["counts"]["repaired"], "errors": revived["errors"]}
    enqueued = enqueue_alerts(worker_id, limit)
    delivered = deliver_alerts(worker_id, limit)
    repaired = repair_runs(worker_id, limit)
    # --- the portfolio summary (issue 13): a Markdown artifact `portfolio-summary`, once per
    # Beijing day (the first pass of the day writes it); its errors never fail the pass. ---
    summary = publish_portfolio_summary()
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
