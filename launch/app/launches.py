"""Launch-level services for the CLI and the receiver: start one, read its state, list the gates."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING

from launch.app.presentation import STATUS_ZH, due_when, when
from launch.domain.masking import mask_name

if TYPE_CHECKING:
    from launch.app.resources import Resources


class LaunchRefused(ValueError):
    pass


def start_launch(res: Resources, client_id: str) -> dict:
    """Create the launch (or pick up one whose run was never created) and its flow run, once."""
    store = res.store
    client = store.get_client(client_id)
    if client is None:
        raise LaunchRefused(f"client_id: 没有这个客户 / no client {client_id}")
    if client.registration_path == "platform_fast_registration":
        from launch.wechat.platform.platform import platform_configured

        if not platform_configured(res.settings):
            raise LaunchRefused(
                "registration.path: 平台代注册（platform_fast_registration）须先配置第三方平台（"
                "WEAPP_LAUNCH_WECHAT_COMPONENT_APPID 与 _SECRET）/ platform_fast_registration needs a configured "
                "third-party platform (WEAPP_LAUNCH_WECHAT_COMPONENT_APPID and _SECRET)")
    active = [l for l in store.list_launches(status="running") if l.client_id == client_id]
    if active and active[0].flow_run_id:
        raise LaunchRefused(
            f"client_id: 该客户已有进行中的上线任务 {active[0].id} / client already has a running launch {active[0].id}"
        )
    launch = active[0] if active else store.create_launch(client_id)
    run_id = res.orchestrator.start_launch_run(launch.id)
    store.set_launch_flow_run(launch.id, run_id)
    return {"launch_id": launch.id, "client_id": client_id, "flow_run_id": run_id,
            "url": res.orchestrator.ui_url(run_id)}


def _display_name(client) -> str:
    return mask_name(client.display_name) if client.subject_type == "individual" else client.display_name


def launches_overview(res: Resources) -> list[dict]:
    store, cat, tz = res.store, res.catalogue, res.settings.timezone
    rows = []
    for launch in store.list_launches():
        client = store.get_client(launch.client_id)
        waiting = [
            {"gate": s.step, "name": cat.gates[s.step].name_zh if s.step in cat.gates else s.step,
             "attempt": s.attempt, "due": due_when(s.due_at, tz), "provisional": s.provisional}
            for s in store.steps_for(launch.id)
            if s.status == "waiting"
        ]
        rows.append({
            "launch_id": launch.id,
            "client_id": launch.client_id,
            "client": _display_name(client),
            "mini_program": client.mini_program_name,
            "status": launch.status,
            "waiting": waiting,
            "flow_run_id": launch.flow_run_id,
            "url": res.orchestrator.ui_url(launch.flow_run_id),
        })
    return rows


def launch_detail(res: Resources, launch_id: str) -> dict | None:
    store, cat, tz = res.store, res.catalogue, res.settings.timezone
    launch = store.get_launch(launch_id)
    if launch is None:
        return None
    client = store.get_client(launch.client_id)
    return {
        "launch_id": launch.id,
        "client_id": launch.client_id,
        "client": _display_name(client),
        "mini_program": client.mini_program_name,
        "registration_path": launch.registration_path,
        "status": launch.status,
        "flow_run_id": launch.flow_run_id,
        "url": res.orchestrator.ui_url(launch.flow_run_id),
        "steps": [
            {
                "gate": s.step,
                "name": cat.gates[s.step].name_zh if s.step in cat.gates else s.step,
                "attempt": s.attempt,
                "status": STATUS_ZH.get(s.status, s.status),
                "state": s.status,
                "opened": when(s.started_at, tz),
                "due": due_when(s.due_at, tz) + (" 暂定" if s.provisional and s.due_at else ""),
                "provisional": s.provisional,
                "finished": when(s.finished_at, tz),
                "outcome": s.outcome or "",
            }
            for s in store.steps_for(launch_id)
        ],
        "decisions": [
            {
                "gate": d.gate,
                "attempt": d.attempt,
                "outcome": d.outcome,
                "actor": d.actor,
                "channel": d.channel,
                "decided_at": when(d.decided_at, tz),
                "payload": d.payload,
            }
            for d in store.history(launch_id)
        ],
    }


def gate_catalogue(res: Resources) -> list[dict]:
    cat = res.catalogue
    rows = []
    for gate in cat.gates.values():
        fields = []
        for name, info in gate.form.model_fields.items():
            choices = list(typing.get_args(info.annotation)) if typing.get_origin(info.annotation) is typing.Literal else []
            fields.append({
                "name": name,
                "required": info.is_required(),
                "choices": [str(c) for c in choices],
                "default": None if info.is_required() else info.get_default(call_default_factory=True),
                "title": info.title or name,
                "description": info.description or "",
            })
        rows.append({
            "gate": gate.id,
            "phase": gate.phase,
            "name_zh": gate.name_zh,
            "name_en": gate.name_en,
            "actor": gate.actor,
            "path": gate.path,
            "deadline": gate.deadline.describe_zh(),
            "todo_zh": gate.todo_zh,
            "fields": fields,
        })
    return rows
