"""Serve every deployment from this process against a running Prefect server.

    python -m deployments.serve            # or: weapp-launch serve

Suspended runs hold no process; a resumed run is picked up here and replays its
flow body, loading finished task results. A run whose process died (a killed
worker) stops sending heartbeats; the deadline watcher puts it back to Scheduled so a
live runner replays it, on its schedule and, sooner, when the automation below asks.
A decision recorded while the Prefect API was down is delivered by a small loop here
(start_resume_retry) within seconds of the API answering again.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta

from launch.orchestration.names import DEPLOYMENT_NAME

HEARTBEAT_SECONDS = 30  # Prefect's minimum for flow run heartbeats
ZOMBIE_AUTOMATION = "weapp-launch: restart runs whose process died"


WATCHER = "deadline-watcher"  # the one scheduled deployment


def flows():
    from flows.build_flows import content, design, implementation
    from flows.filing_flow import filing
    from flows.launch_flow import launch
    from flows.watcher_flow import deadline_watcher

    return [launch, filing, design, implementation, content, deadline_watcher]


def schedule_of(flow) -> dict:
    """to_deployment() keywords for a flow's schedule: the deadline watcher runs every
    settings.watch_interval_seconds (default 300; 0 or less: deployed without a schedule,
    run it by hand or with `weapp-launch watch`). The other flows are started on demand."""
    if flow.name != WATCHER:
        return {}
    from launch.settings import get_settings

    seconds = max(int(get_settings().watch_interval_seconds), 0)
    return {"interval": timedelta(seconds=seconds)} if seconds > 0 else {}


def ensure_zombie_automation(within_seconds: int | None = None) -> None:
    """When a run's heartbeats stop, run a revive-only watcher pass (idempotent; replaces an
    older version of this automation).

    The pass reschedules the run only if it is still RUNNING and silent
    (launch.orchestrator.revive_dead_runs). Changing the state from the automation itself,
    Prefect's recipe, also hits live and parked runs whenever the server misses the event
    that closes the window, as a busy SQLite server does: parked launches were rescheduled
    and live ones failed ("Flow run cannot be suspended").
    """
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    from launch.orchestration.names import deployment_of
    from launch.settings import get_settings

    # A little past the reviver's own threshold, so the pass it starts finds the run silent long enough.
    within_seconds = within_seconds or get_settings().dead_run_seconds + HEARTBEAT_SECONDS // 2
    with get_client(sync_client=True) as client:
        watcher_id = client.read_deployment_by_name(deployment_of(WATCHER)).id
    action = RunDeployment(source="selected", deployment_id=watcher_id, parameters={"revive_only": True})
    try:
        existing = Automation.read(name=ZOMBIE_AUTOMATION)
    except ValueError:
        existing = None
    if existing is not None:
        if (
            [a.model_dump(mode="json") for a in existing.actions] == [action.model_dump(mode="json")]
            and existing.trigger.within == timedelta(seconds=within_seconds)
        ):
            return
        existing.delete()
    Automation(
        name=ZOMBIE_AUTOMATION,
        description="心跳停止时检查并重新调度失联的运行 / when heartbeats stop, check the run and reschedule it "
        "if its process died",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
                "prefect.flow-run.Suspended",
                "prefect.flow-run.Paused",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_seconds),
        ),
        actions=[action],
    ).create()


def start_resume_retry(interval: float | None = None) -> threading.Event | None:
    """Every `interval` seconds (settings.resume_retry_seconds, default 5), resume the runs parked at
    a gate whose decision is recorded but never reached them — `approve` (or a push, a link)
    recorded it while the Prefect API was down. Applied as soon as the API answers again, not at
    the watcher's next pass. A daemon thread beside the flows; set the returned event to stop it.

    Each round is one indexed store query (waiting steps with an unconsumed decision) and Prefect
    calls only for what it finds (launch.app.decisions.resume_recorded, the watcher's repair logic).
    """
    from prefect.logging import get_logger

    from launch.settings import get_settings

    interval = float(get_settings().resume_retry_seconds if interval is None else interval)
    if interval <= 0:
        return None
    logger = get_logger("weapp_launch.resume_retry")
    stop = threading.Event()

    def loop() -> None:
        from launch.app import Resources
        from launch.app.decisions import resume_recorded

        res = Resources.from_settings()  # this thread's store, clock, catalogue and orchestrator

        failing = False
        while not stop.wait(interval):
            try:
                # a decision younger than one round may still be resuming its run through its sender
                report = resume_recorded(res, grace_seconds=interval)
            except Exception as exc:  # noqa: BLE001 - store briefly unavailable: next round
                report, error = None, f"{type(exc).__name__}"
            else:
                error = report.errors[0] if report.errors else None
            for repair in report.repaired if report else ():
                logger.info("决定已送达 / delivered a recorded decision: %s", repair.detail)
            if error and not failing:
                logger.warning("记录的决定暂时无法送达，稍后重试 / recorded decisions not delivered yet, retrying: %s", error)
            elif failing and not error:
                logger.info("已恢复送达 / delivering recorded decisions again")
            failing = bool(error)

    threading.Thread(target=loop, name="weapp-resume-retry", daemon=True).start()
    return stop


def main(limit: int | None = None) -> None:
    from prefect import serve

    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    deployments = [
        f.to_deployment(name=DEPLOYMENT_NAME, tags=["weapp-launch"], **schedule_of(f)) for f in flows()
    ]
    try:
        # The automation runs the watcher deployment, so that one must exist first (serve() updates it).
        next(d for d in deployments if d.flow_name == WATCHER).apply()
        ensure_zombie_automation()
    except Exception as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) == 401:
            raise SystemExit(
                "Prefect API 拒绝访问（401）：请设置 PREFECT_API_AUTH_STRING（`weapp-launch up` 写在 <home>/prefect-auth）/ "
                "the Prefect API refused us (401): set PREFECT_API_AUTH_STRING (`weapp-launch up` keeps it in "
                "<home>/prefect-auth; see docs/scale-out.md)"
            ) from None
        raise
    start_resume_retry()
    serve(*deployments, limit=limit)


if __name__ == "__main__":
    main()
