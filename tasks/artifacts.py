"""Artifacts on the launch's own flow run, refreshed whenever a gate opens or is decided.

Branch runs write to the launch run too (by its id), so the launch page in the
Prefect UI always shows the whole picture: progress, a table of steps, what is
waiting on whom and by when, and the materials checklist.
"""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate

from launch import runtime
from launch.domain.plan import make_plan
from launch.app.presentation import materials_markdown, progress_percent, step_rows, waiting_markdown


def artifact_keys(launch_id: str) -> dict[str, str]:
    return {kind: f"{launch_id}-{kind}" for kind in ("progress", "steps", "waiting", "materials", "forecast")}


@task
def refresh_artifacts(launch_id: str, reason: str) -> None:
    """`reason` makes each refresh a distinct cached task, so a replay does not repeat it."""
    from tasks.gates import launch_info

    info = launch_info.fn(launch_id)
    if not info.flow_run_id:
        return
    store = runtime.store()
    cat = runtime.catalogue()
    launch = store.get_launch(launch_id)
    steps = store.steps_for(launch_id)
    released = launch.status == "released"
    plan = make_plan(cat, runtime.calendar(), launch.created_at.date(), info.registration_path)
    keys = artifact_keys(launch_id)
    run_id = UUID(info.flow_run_id)
    artifacts = [
        ArtifactCreate(
            key=keys["progress"], type="progress", flow_run_id=run_id,
            data=progress_percent(info, steps, cat, released), description="上线进度 / launch progress",
        ),
        ArtifactCreate(
            key=keys["steps"], type="table", flow_run_id=run_id,
            data=json.dumps(step_rows(steps, cat, plan, tz=runtime.settings().timezone), ensure_ascii=False),
            description="步骤：计划、实际、状态、次数 / steps: planned, actual, status, attempt",
        ),
        ArtifactCreate(
            key=keys["waiting"], type="markdown", flow_run_id=run_id,
            data=waiting_markdown(info, steps, cat, released, tz=runtime.settings().timezone), description="正在等待 / waiting for",
        ),
    ]
    materials = _materials(info.client_id)
    if materials is not None:
        artifacts.append(
            ArtifactCreate(
                key=keys["materials"], type="markdown", flow_run_id=run_id,
                data=materials_markdown(materials), description="材料清单 / materials checklist",
            )
        )
    forecast = _forecast_markdown(launch_id)
    if forecast is not None:
        artifacts.append(
            ArtifactCreate(
                key=keys["forecast"], type="markdown", flow_run_id=run_id,
                data=forecast, description="上线日期预测 P50 / P90 / go-live forecast",
            )
        )
    with get_client(sync_client=True) as client:
        for artifact in artifacts:
            client.create_artifact(artifact)


def _forecast_markdown(launch_id: str) -> str | None:
    """The go-live forecast (issue 13) as markdown; None when it cannot be made (a broken
    forecast file must not stop the launch)."""
    from launch.app.forecasting import status_forecast

    try:
        data = status_forecast(launch_id)
    except Exception:  # noqa: BLE001
        return None
    if data is None:
        return None
    return forecast_markdown(data)


def forecast_markdown(data: dict) -> str:
    """Markdown of ``launch.app.forecasting.status_forecast(...)``: go-live P50/P90, the
    commitment and its risk level, a table of phases (critical path in bold)."""
    fc = data["forecast"]
    mark = " *(暂定 provisional)*" if fc["provisional"] else ""
    lines = [
        "### 上线日期预测 / Go-live forecast",
        "",
        f"- P50 **{fc['p50']}**, P90 **{fc['p90']}**{mark} — as of {fc['as_of']}, {fc['samples']} Monte Carlo runs",
    ]
    if data.get("commitment"):
        c = data["commitment"]
        lines.append(f"- 承诺上线日 / committed: {c['committed_go_live']} — {c['risk_level']}")
    lines += ["", "| 阶段 phase | 开始 start | P50 | P90 | 实际 actual |", "|---|---|---|---|---|"]
    for s in fc["steps"]:
        name = f"{s['name_zh']} / {s['name_en']}"
        name = f"**{name}**" if s["critical"] else name
        actual = " → ".join(x for x in (s["actual_start"], s["actual_finish"]) if x) or "—"
        lines.append(f"| {name} | {s['start_p50']} | {s['finish_p50']} | {s['finish_p90']} | {actual} |")
    lines += ["", "粗体：P50 关键路径 / bold: the critical path at P50"]
    return "\n".join(lines) + "\n"


def _materials(client_id: str):
    from launch.app.preflight import check_client

    result = check_client(runtime.resources(), client_id, runtime.now().date())
    return result.materials if result else None


# --------------------------------------------------------------------------- portfolio summary (issue 13)
#
# The deadline watcher publishes a Markdown summary of every open launch (counts, the at-risk
# list, who must act) once per Beijing day, under one key: the Prefect UI's Artifacts page
# shows the latest, and its history one version a day. The artifact itself is the record of
# "published today": the newest version's creation time is read back before writing.

PORTFOLIO_SUMMARY_KEY = "portfolio-summary"


def summary_due(last_published: datetime | None, now: datetime, tz: str = "Asia/Shanghai") -> bool:
    """Whether today's (Beijing) summary is still to be published."""
    if last_published is None:
        return True
    zone = ZoneInfo(tz)
    return last_published.astimezone(zone).date() < now.astimezone(zone).date()


def _last_summary_at(client) -> datetime | None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[PORTFOLIO_SUMMARY_KEY])),
        sort=ArtifactSort.CREATED_DESC,
        limit=1,
    )
    return found[0].created if found else None


def publish_summary(client, *, now: datetime, flow_run_id: UUID | None = None, force: bool = False) -> dict:
    """Publish the summary through ``client`` (a sync Prefect client) unless one was published
    already on this Beijing day. Returns {"published": bool, "open": n, "at_risk": n}."""
    from launch.app.report import build_portfolio, summary_markdown

    settings = runtime.settings()
    if not force and not summary_due(_last_summary_at(client), now, settings.timezone):
        return {"published": False, "open": None, "at_risk": None}
    portfolio = build_portfolio(runtime.store(), catalogue=runtime.catalogue(), calendar=runtime.calendar(),
                                now=now, settings=settings)
    client.create_artifact(ArtifactCreate(
        key=PORTFOLIO_SUMMARY_KEY, type="markdown", flow_run_id=flow_run_id,
        data=summary_markdown(portfolio),
        description=f"上线组合日报 / portfolio summary {portfolio.as_of.isoformat()}",
    ))
    return {"published": True, "open": len(portfolio.rows), "at_risk": len(portfolio.at_risk)}


@task(name="portfolio-summary", cache_policy=NO_CACHE)
def publish_portfolio_summary(force: bool = False) -> dict:
    """The daily portfolio summary (once per Beijing day) on the watcher's run. Never fails the
    watcher: an error comes back in "errors" (type only; nothing personal)."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    try:
        with get_client(sync_client=True) as client:
            result = publish_summary(client, now=runtime.now(), flow_run_id=UUID(run_id) if run_id else None,
                                     force=force)
        return {**result, "errors": []}
    except Exception as exc:  # noqa: BLE001 - a summary is worth less than the watcher's pass
        return {"published": False, "open": None, "at_risk": None,
                "errors": [f"portfolio summary: {type(exc).__name__}"]}
