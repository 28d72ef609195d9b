"""Serve every deployment from this process against a running Prefect server.

    python -m deployments.serve            # or: weapp-launch serve

Suspended runs hold no process; a resumed run is picked up here and replays its
flow body, loading finished task results. A run whose process died (a killed
worker) stops sending heartbeats; the automation below puts it back to Scheduled
so a live runner replays it.
"""

from __future__ import annotations

import os
from datetime import timedelta

from deployments import DEPLOYMENT_NAME

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

    seconds = int(getattr(get_settings(), "watch_interval_seconds", 300) or 0)
    return {"interval": timedelta(seconds=seconds)} if seconds > 0 else {}


def ensure_zombie_automation(within_seconds: int = 3 * HEARTBEAT_SECONDS) -> None:
    """Reschedule a run whose heartbeats stopped, so a live runner replays it (idempotent)."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    try:
        Automation.read(name=ZOMBIE_AUTOMATION)
        return
    except ValueError:
        pass
    Automation(
        name=ZOMBIE_AUTOMATION,
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
        actions=[
            ChangeFlowRunState(
                state=StateType.SCHEDULED,
                message="进程已失联，重新调度 / the run's process died; rescheduled to replay",
            )
        ],
    ).create()


def main(limit: int | None = None) -> None:
    from prefect import serve

    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    ensure_zombie_automation()
    deployments = [
        f.to_deployment(name=DEPLOYMENT_NAME, tags=["weapp-launch"], **schedule_of(f)) for f in flows()
    ]
    serve(*deployments, limit=limit)


if __name__ == "__main__":
    main()
