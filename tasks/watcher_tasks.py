"""Thin tasks of the deadline-watcher flow: each runs one phase of a watcher pass
(launch/app/watcher.py) and returns its report as JSON (keys, counts, channel names: nothing
personal). No caching: every run must look at the store as it is now."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from launch.app import watcher


def _log(report: watcher.PassReport, phase: str) -> dict:
    logger = get_run_logger()
    logger.info("%s: %s", phase, report.summary())
    for note in report.notes:
        logger.info("%s: %s", phase, note)
    for error in report.errors:
        logger.warning("%s: %s", phase, error)
    return report.to_json()


@task(name="watcher-enqueue", cache_policy=NO_CACHE)
def enqueue_alerts(worker_id: str, limit: int = watcher.DEFAULT_LIMIT) -> dict:
    """Enqueue the alert rungs that came due on open steps (indexed cursor query)."""
    return _log(watcher.enqueue_due(limit=limit, worker_id=worker_id), "enqueue")


@task(name="watcher-deliver", cache_policy=NO_CACHE)
def deliver_alerts(worker_id: str, limit: int = watcher.DEFAULT_LIMIT) -> dict:
    """Claim and send due alerts through the notifiers outbox; record every channel result."""
    return _log(watcher.deliver_due(worker_id=worker_id, limit=limit), "deliver")


@task(name="watcher-repair", cache_policy=NO_CACHE)
def repair_runs(worker_id: str, limit: int = watcher.DEFAULT_LIMIT) -> dict:
    """Apply pending inbox events, resume lost resumes, wake lost joins, purge old nonces."""
    return _log(watcher.repair(limit=limit, worker_id=worker_id), "repair")


@task(name="watcher-revive", cache_policy=NO_CACHE)
def revive_runs(worker_id: str, limit: int = watcher.DEFAULT_LIMIT) -> dict:
    """Reschedule open runs whose process died (RUNNING, heartbeats stopped)."""
    return _log(watcher.revive(limit=limit, worker_id=worker_id), "revive")
