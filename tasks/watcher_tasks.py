"""Thin tasks of the deadline-watcher flow: each runs one phase of a watcher pass
(launch/app/watcher.py) and returns its report as JSON (keys, counts, channel names: nothing
personal). No caching: every run must look at the store as it is now.

Each phase gets resources of its own from `open_resources` (the notifiers file is read as it
is now, and the store is closed after the phase)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from launch.app import Resources, watcher
from launch.app.artifacts import publish_portfolio_summary


def _log(report: watcher.PassReport, phase: str) -> dict:
    logger = get_run_logger()
    logger.info("%s: %s", phase, report.summary())
    for note in report.notes:
        logger.info("%s: %s", phase, note)
    for error in report.errors:
        logger.warning("%s: %s", phase, error)
    return report.to_json()


def build_watcher_tasks(open_resources: Callable[[], AbstractContextManager[Resources]],
                        run_id: Callable[[], str | None]) -> dict[str, Task]:
    def phase(name: str, run: Callable[[Resources, str, int], watcher.PassReport], doc: str) -> Task:
        def body(worker_id: str, limit: int = watcher.DEFAULT_LIMIT) -> dict:
            with open_resources() as res:
                return _log(run(res, worker_id, limit), name)

        body.__doc__ = doc
        return task(body, name=f"watcher-{name}", cache_policy=NO_CACHE)

    def summary(force: bool = False) -> dict[str, Any]:
        """The daily portfolio summary (once per day) on the watcher's run. Never fails the
        watcher: an error comes back in "errors" (type only; nothing personal)."""
        try:
            with open_resources() as res:
                return {**publish_portfolio_summary(res, run_id(), force=force), "errors": []}
        except Exception as exc:  # noqa: BLE001 - a summary is worth less than the watcher's pass
            return {"published": False, "open": None, "at_risk": None,
                    "errors": [f"portfolio summary: {type(exc).__name__}"]}

    return {
        "enqueue": phase("enqueue", lambda res, w, n: watcher.enqueue_due(res, limit=n, worker_id=w),
                         "Enqueue the alert rungs that came due on open steps (indexed cursor query)."),
        "deliver": phase("deliver", lambda res, w, n: watcher.deliver_due(res, worker_id=w, limit=n),
                         "Claim and send due alerts through the notifiers outbox; record every channel result."),
        "repair": phase("repair", lambda res, w, n: watcher.repair(res, limit=n, worker_id=w),
                        "Apply pending inbox events, resume lost resumes, wake lost joins, purge old nonces."),
        "revive": phase("revive", lambda res, w, n: watcher.revive(res, limit=n, worker_id=w),
                        "Reschedule open runs whose process died (RUNNING, heartbeats stopped)."),
        "summary": task(summary, name="portfolio-summary", cache_policy=NO_CACHE),
    }
