"""`weapp-launch health`: one line per part of the system, saying what is wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx

from launch import runtime

FLOW_NAMES = ("launch", "filing", "design", "implementation", "content")


@dataclass
class Check:
    part: str
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return {"part": self.part, "ok": self.ok, "detail": self.detail}


def _server() -> Check:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return Check("server", False, "PREFECT_API_URL 未设置 / not set: point it at your `prefect server`")
    try:
        r = httpx.get(f"{url.rstrip('/')}/health", timeout=5)
        ok = r.status_code == 200
        return Check("server", ok, f"{url} 正常 / healthy" if ok else f"{url} answered HTTP {r.status_code}")
    except httpx.HTTPError as exc:
        return Check("server", False, f"{url} 无法连接 / unreachable: {type(exc).__name__}")


def _workers() -> Check:
    from prefect.client.orchestration import get_client

    from deployments import deployment_of

    try:
        with get_client(sync_client=True) as client:
            missing, not_ready = [], []
            for name in FLOW_NAMES:
                try:
                    dep = client.read_deployment_by_name(deployment_of(name))
                except Exception:
                    missing.append(name)
                    continue
                if getattr(dep, "status", None) is not None and str(dep.status.value).upper() != "READY":
                    not_ready.append(name)
    except Exception as exc:  # server down: already reported by the server line
        return Check("workers", False, f"无法读取部署 / cannot read deployments: {type(exc).__name__}")
    if missing:
        return Check("workers", False, f"缺少部署 / deployments missing: {', '.join(missing)} (run `weapp-launch serve`)")
    if not_ready:
        return Check("workers", False, f"无进程轮询 / no runner polling: {', '.join(not_ready)} (start `weapp-launch serve`)")
    return Check("workers", True, f"{len(FLOW_NAMES)} 个部署有进程在轮询 / deployments polled by a runner")


def _receiver() -> Check:
    url = runtime.settings().public_url.rstrip("/")
    try:
        r = httpx.get(f"{url}/healthz", timeout=5)
        ok = r.status_code == 200
        return Check("receiver", ok, f"{url} 正常 / healthy" if ok else f"{url}/healthz answered HTTP {r.status_code}")
    except httpx.HTTPError:
        return Check("receiver", False, f"{url} 无法连接 / unreachable (start `weapp-launch api`)")


def _watcher() -> Check:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    interval = runtime.settings().watch_interval_seconds
    try:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["default"])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))),
                sort=FlowRunSort.END_TIME_DESC,
                limit=50,
            )
            flows = {f.id: f.name for f in client.read_flows()}
    except Exception as exc:
        return Check("watcher", False, f"无法读取运行记录 / cannot read runs: {type(exc).__name__}")
    last = next((r for r in runs if flows.get(r.flow_id) == "deadline-watcher" and r.end_time), None)
    if last is None:
        return Check("watcher", False, "截止监视从未完成 / the deadline watcher never completed a pass")
    age = datetime.now(timezone.utc) - last.end_time
    ok = age <= timedelta(seconds=2 * interval + 60)
    minutes = int(age.total_seconds() // 60)
    return Check("watcher", ok, f"上次完成于 {minutes} 分钟前 / last pass {minutes} min ago"
                 + ("" if ok else f" (schedule: every {interval}s)"))


def _store() -> Check:
    try:
        info = runtime.store().health()
    except Exception as exc:
        return Check("store", False, f"无法打开存储 / cannot open the store: {type(exc).__name__}: {exc}")
    ok = bool(info.get("ok"))
    detail = f"{info.get('backend')} 迁移 / migration {info.get('current_revision')} (head {info.get('head_revision')})"
    return Check("store", ok, detail)


def _channels() -> Check:
    path = runtime.settings().notifiers_file
    if path is None:
        default = runtime.settings().home / "notifiers.yaml"
        path = default if default.exists() else None
    if path is None:
        return Check("alerts", False, "未配置告警渠道 / no alert channels: set WEAPP_LAUNCH_NOTIFIERS_FILE")
    try:
        from notifiers.config import load_config

        config = load_config(path)
    except Exception as exc:
        return Check("alerts", False, f"{path}: {exc}")
    tags = sorted({t for c in config.channels for t in c.tags})
    return Check("alerts", bool(config.channels), f"{len(config.channels)} 个渠道 / channels, tags: {', '.join(tags)}")


def run_checks() -> list[Check]:
    return [_server(), _workers(), _receiver(), _watcher(), _store(), _channels()]
