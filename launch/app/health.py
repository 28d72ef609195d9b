"""`weapp-launch health`: one line per part of the system, saying what is wrong.

Never starts a Prefect server of its own (the CLI turns Prefect's ephemeral mode off): without
an API URL the server line says what is missing and the lines that need Prefect are not
checked. A check that raises is a failed line, never a traceback.

    run_checks(res) -> list[Check]    (res: the CLI's Resources: settings, store, notifier)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from launch.app.resources import Resources

FLOW_NAMES = ("launch", "filing", "design", "implementation", "content")


@dataclass
class Check:
    part: str
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return {"part": self.part, "ok": self.ok, "detail": self.detail}


def _auth_string() -> str | None:
    value = os.environ.get("PREFECT_API_AUTH_STRING")
    if value:
        return value
    try:
        from prefect.settings import get_current_settings

        secret = get_current_settings().api.auth_string
        return secret.get_secret_value() if secret is not None else None
    except Exception:
        return None


def _server() -> Check:
    """Prefect's API: up, and refusing whoever lacks the auth string (an open API lets any web
    page a staff member opens list runs and resume gates, around our gate checks)."""
    from launch.orchestration.connect import missing_prefect_message, prefect_api_url, read_stack_file, stack_note

    url = prefect_api_url()
    if not url:
        return Check("server", False, missing_prefect_message())
    url = url.rstrip("/")
    try:
        r = httpx.get(f"{url}/health", timeout=5)
        if r.status_code != 200:
            return Check("server", False, f"{url} answered HTTP {r.status_code}")
        # /health is open to probes by design; any other path tells whether the API is locked.
        anonymous = httpx.get(f"{url}/admin/version", timeout=5)
        if anonymous.status_code != 401:
            return Check("server", False, f"{url} 未启用认证：任何能访问它的人都能读取并恢复运行 / NOT authenticated: "
                         "anyone who reaches it can read and resume runs (set PREFECT_SERVER_API_AUTH_STRING on the "
                         "server; `weapp-launch up` does)")
        auth = _auth_string()
        if not auth:
            return Check("server", False, f"{url} 需要认证，但未设置 PREFECT_API_AUTH_STRING / requires auth, but "
                         "PREFECT_API_AUTH_STRING is not set (`weapp-launch up` writes it to <home>/prefect-auth)")
        from launch.orchestration.connect import auth_header

        ours = httpx.get(f"{url}/admin/version", timeout=5, headers=auth_header(auth))
        if ours.status_code != 200:
            return Check("server", False, f"{url} 拒绝了 PREFECT_API_AUTH_STRING / refused our "
                         f"PREFECT_API_AUTH_STRING (HTTP {ours.status_code})")
        return Check("server", True, f"{url} 正常，已启用认证 / healthy, authenticated")
    except httpx.HTTPError as exc:
        note = stack_note(read_stack_file())
        return Check("server", False, f"{url} 无法连接 / unreachable: {type(exc).__name__}" + (f"; {note}" if note else ""))


def _workers() -> Check:
    from prefect.client.orchestration import get_client

    from launch.orchestration.names import deployment_of

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


def _receiver(res: Resources) -> Check:
    from launch.orchestration.connect import read_stack_file

    settings = res.settings
    url = settings.public_url.rstrip("/")
    stack = read_stack_file(settings.home)
    if "public_url" not in settings.model_fields_set and stack and stack.get("receiver_url"):
        url = stack["receiver_url"].rstrip("/")  # where this home's `up` started it
    try:
        r = httpx.get(f"{url}/healthz", timeout=5)
        ok = r.status_code == 200
        return Check("receiver", ok, f"{url} 正常 / healthy" if ok else f"{url}/healthz answered HTTP {r.status_code}")
    except httpx.HTTPError:
        return Check("receiver", False, f"{url} 无法连接 / unreachable (start `weapp-launch api`)")


def _watcher(res: Resources) -> Check:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    interval = res.settings.watch_interval_seconds
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
    age = datetime.now(timezone.utc) - last.end_time  # Prefect's end times are wall-clock: so is this
    ok = age <= timedelta(seconds=2 * interval + 60)
    minutes = int(age.total_seconds() // 60)
    return Check("watcher", ok, f"上次完成于 {minutes} 分钟前 / last pass {minutes} min ago"
                 + ("" if ok else f" (schedule: every {interval}s)"))


def _store(res: Resources) -> Check:
    try:
        info = res.store.health()
    except Exception as exc:
        return Check("store", False, f"无法打开存储 / cannot open the store: {type(exc).__name__}: {exc}")
    ok = bool(info.get("ok"))
    detail = f"{info.get('backend')} 迁移 / migration {info.get('current_revision')} (head {info.get('head_revision')})"
    return Check("store", ok, detail)


def _channels(res: Resources) -> list[Check]:
    """The alert configuration, then one line per channel: its breaker (down since, next
    probe) and how many alerts wait for it."""
    from notifiers.breaker import channel_health

    config, _note, error = res.notifier
    if error:
        return [Check("alerts", False, error)]
    if config is None or not config.channels:
        return [Check("alerts", False, "未配置告警渠道 / no alert channels: set WEAPP_LAUNCH_NOTIFIERS_FILE")]
    tags = sorted({t for c in config.channels for t in c.tags})
    lines = [Check("alerts", True, f"{len(config.channels)} 个渠道 / channels, tags: {', '.join(tags)}")]
    return lines + [Check(h.part, h.ok, h.detail) for h in channel_health(res.store, config)]


def _wechat_push(res: Resources) -> Check:
    if res.settings.wechat_allow_plaintext:
        return Check("wechat", False, "已允许明文推送（WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT）：仅限测试平台 / plaintext "
                     "pushes are allowed (WEAPP_LAUNCH_WECHAT_ALLOW_PLAINTEXT): for a test platform only")
    return Check("wechat", True, "只接受加密推送 / encrypted pushes only")


def _safely(part: str, check) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a health line, never a traceback
        return Check(part, False, f"检查出错 / check failed: {type(exc).__name__}")


def run_checks(res: Resources) -> list[Check]:
    from launch.orchestration.connect import prefect_api_url

    server = _safely("server", _server)
    if server.ok or (prefect_api_url() and "unreachable" not in server.detail):
        workers, watcher = _safely("workers", _workers), _safely("watcher", lambda: _watcher(res))
    else:  # asking a missing or dead API again only repeats the server line
        skipped = "未检查：Prefect API 不可用（见 server 一行）/ not checked: the Prefect API is not usable (see server)"
        workers, watcher = Check("workers", False, skipped), Check("watcher", False, skipped)
    try:
        alerts = _channels(res)
    except Exception as exc:  # noqa: BLE001 - a health line, never a traceback
        alerts = [Check("alerts", False, f"检查出错 / check failed: {type(exc).__name__}")]
    return [server, workers, _safely("receiver", lambda: _receiver(res)), watcher,
            _safely("store", lambda: _store(res)), _safely("wechat", lambda: _wechat_push(res)), *alerts]
