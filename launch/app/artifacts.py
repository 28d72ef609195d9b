"""What the launch's own flow run shows as artifacts, refreshed whenever a gate opens or is
decided: progress, a table of steps, what is waiting on whom and by when, the materials
checklist and the go-live forecast. Branch runs publish onto the launch run too (by its id),
so the launch page always shows the whole picture. Publishing is the orchestrator's."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from launch.app.presentation import materials_markdown, progress_percent, step_rows, waiting_markdown
from launch.app.resources import Resources
from launch.app.views import LaunchInfo
from launch.domain.plan import make_plan


def artifact_keys(launch_id: str) -> dict[str, str]:
    return {kind: f"{launch_id}-{kind}" for kind in ("progress", "steps", "waiting", "materials", "forecast")}


def launch_artifacts(res: Resources, info: LaunchInfo) -> list[dict]:
    """The artifacts of a launch as dicts of key, type, data, description."""
    store, cat, tz = res.store, res.catalogue, res.settings.timezone
    launch = store.get_launch(info.launch_id)
    steps = store.steps_for(info.launch_id)
    released = launch.status == "released"
    plan = make_plan(cat, res.calendar, launch.created_at.date(), info.registration_path)
    keys = artifact_keys(info.launch_id)
    artifacts = [
        dict(key=keys["progress"], type="progress", data=progress_percent(info, steps, cat, released),
             description="上线进度 / launch progress"),
        dict(key=keys["steps"], type="table", data=json.dumps(step_rows(steps, cat, plan, tz=tz), ensure_ascii=False),
             description="步骤：计划、实际、状态、次数 / steps: planned, actual, status, attempt"),
        dict(key=keys["waiting"], type="markdown", data=waiting_markdown(info, steps, cat, released, tz=tz),
             description="正在等待 / waiting for"),
    ]
    materials = _materials(res, info.client_id)
    if materials is not None:
        artifacts.append(dict(key=keys["materials"], type="markdown", data=materials_markdown(materials),
                              description="材料清单 / materials checklist"))
    forecast = _forecast_markdown(res, info.launch_id)
    if forecast is not None:
        artifacts.append(dict(key=keys["forecast"], type="markdown", data=forecast,
                              description="上线日期预测 P50 / P90 / go-live forecast"))
    return artifacts


def _forecast_markdown(res: Resources, launch_id: str) -> str | None:
    """The go-live forecast as markdown; None when it cannot be made (a broken forecast file
    must not stop the launch)."""
    from launch.app.forecasting import status_forecast

    try:
        data = status_forecast(res, launch_id)
    except Exception:  # noqa: BLE001
        return None
    return forecast_markdown(data) if data is not None else None


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


def _materials(res: Resources, client_id: str):
    from launch.app.preflight import check_client

    result = check_client(res, client_id, res.now().date())
    return result.materials if result else None


# --------------------------------------------------------------------------- portfolio summary
#
# The deadline watcher publishes a Markdown summary of every open launch (counts, the at-risk
# list, who must act) once per Beijing day, under one key: the Prefect UI's Artifacts page
# shows the latest, and its history one version a day. The artifact itself is the record of
# "published today": the newest version's creation time is read back before writing.

PORTFOLIO_SUMMARY_KEY = "portfolio-summary"


def summary_due(last_published: datetime | None, now: datetime, tz: str) -> bool:
    """Whether today's summary (in the configured time zone) is still to be published."""
    if last_published is None:
        return True
    zone = ZoneInfo(tz)
    return last_published.astimezone(zone).date() < now.astimezone(zone).date()


def publish_portfolio_summary(res: Resources, flow_run_id: str | None = None, *, force: bool = False) -> dict:
    """Publish the summary unless one was published already today. Returns {"published": bool,
    "open": n, "at_risk": n}."""
    from launch.app.report import build_portfolio, summary_markdown

    now = res.now()
    last = res.orchestrator.latest_artifact_at(PORTFOLIO_SUMMARY_KEY)
    if not force and not summary_due(last, now, res.settings.timezone):
        return {"published": False, "open": None, "at_risk": None}
    portfolio = build_portfolio(res.store, catalogue=res.catalogue, calendar=res.calendar, now=now,
                                settings=res.settings)
    res.orchestrator.publish_artifacts(flow_run_id, [dict(
        key=PORTFOLIO_SUMMARY_KEY, type="markdown", data=summary_markdown(portfolio),
        description=f"上线组合日报 / portfolio summary {portfolio.as_of.isoformat()}",
    )])
    return {"published": True, "open": len(portfolio.rows), "at_risk": len(portfolio.at_risk)}
