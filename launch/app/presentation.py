"""What people read: gate descriptions, the steps table, the waiting note, progress.

Built from the catalogue and store rows only; nothing personal is in either
(client names of individuals are masked before they get here). Times are shown in the
zone given (``settings.timezone``, e.g. ``res.settings.timezone``), labelled as
``launch.domain.alerts.format_due`` labels them (北京时间 for Asia/Shanghai).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from launch.domain.alerts import format_due
from launch.domain.catalogue import Catalogue, Gate
from launch.domain.plan import Plan
from launch.app.views import LaunchInfo, OpenedGate

STATUS_ZH = {
    "waiting": "等待中",
    "running": "进行中",
    "done": "已完成",
    "rejected": "未通过",
    "failed": "失败",
    "skipped": "跳过",
    "expired": "已超时",
}


def when(dt: datetime | None, tz: str) -> str:
    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if dt else ""


def due_when(dt: datetime | None, tz: str) -> str:
    """A deadline at 00:00 is the end of the day before: shown as that day's 24:00."""
    if dt is None:
        return ""
    return format_due(dt, tz)[0].rsplit(" ", 1)[0]


def zone_label(tz: str) -> str:
    """How a time zone is named beside a time: 北京时间 for Asia/Shanghai, else its IANA name."""
    return format_due(datetime(2000, 1, 1, 12, tzinfo=ZoneInfo("UTC")), tz)[0].rsplit(" ", 1)[1]


def due_text(due_at: datetime | None, provisional: bool, tz: str) -> str:
    if due_at is None:
        return "无 / none"
    text = f"{due_when(due_at, tz)}（{zone_label(tz)}）"
    if provisional:
        text += " **[暂定 / provisional：节假日安排尚未公布]**"
    return text


def gate_markdown(info: LaunchInfo, gate: Gate, opened: OpenedGate, steps: list, catalogue: Catalogue, *,
                  tz: str) -> str:
    phase = catalogue.phases[gate.phase]
    actor = catalogue.actors[gate.actor]
    lines = [
        f"## {phase.name_zh} · {gate.name_zh}（第 {opened.attempt} 次）",
        f"*{phase.name_en} · {gate.name_en} (attempt {opened.attempt})*",
        "",
        f"- **客户 / client**：{info.client_name} · 小程序「{info.mini_program_name}」",
        f"- **上线编号 / launch**：`{info.launch_id}`",
        f"- **谁来处理 / who acts**：{actor.name_zh} / {actor.name_en}",
        f"- **截止 / due**：{due_text(opened.due_at, opened.provisional, tz)}",
        f"- **要做什么 / what to do**：{gate.todo_zh}",
    ]
    earlier = [s for s in steps if s.step == gate.id and s.attempt < opened.attempt]
    if earlier:
        last = max(earlier, key=lambda s: s.attempt)
        lines.append(f"- **上次结果 / last attempt**：{last.outcome or ''} {last.note or ''}".rstrip())
    current = next((s for s in steps if s.step == gate.id and s.attempt == opened.attempt), None)
    if current is not None and current.note:
        lines.append(f"- **上次提交未通过校验 / last form refused**：{current.note}")
    lines += [
        "",
        "填写「决定人」和结果后提交即可继续；也可以用命令行 / or from the command line:",
        f"`weapp-launch approve {info.launch_id} {gate.id} --by 姓名 --set outcome=…`",
    ]
    return "\n".join(lines)


def step_rows(steps: list, catalogue: Catalogue, plan: Plan | None, *, tz: str) -> list[dict]:
    windows = {p.phase: p for p in plan.phases} if plan else {}
    rows = []
    for s in steps:
        gate = catalogue.gates.get(s.step)
        phase_id = gate.phase if gate else ""
        window = windows.get(phase_id)
        rows.append(
            {
                "阶段 phase": catalogue.phases[phase_id].name_zh if phase_id else "",
                "关卡 gate": gate.name_zh if gate else s.step,
                "次数 attempt": s.attempt,
                "状态 status": STATUS_ZH.get(s.status, s.status),
                "计划 planned": f"{window.earliest_finish}～{window.latest_finish}" if window else "",
                "开始 opened": when(s.started_at, tz),
                "截止 due": due_when(s.due_at, tz) + (" 暂定" if s.provisional and s.due_at else ""),
                "完成 finished": when(s.finished_at, tz),
                "结果 outcome": s.outcome or "",
            }
        )
    return rows


def waiting_markdown(info: LaunchInfo, steps: list, catalogue: Catalogue, released: bool, *, tz: str) -> str:
    head = f"# {info.client_name} · 「{info.mini_program_name}」 上线进度 / launch `{info.launch_id}`\n"
    if released:
        return head + "\n**已发布上线 / released.**\n"
    waiting = [s for s in steps if s.status == "waiting"]
    if not waiting:
        return head + "\n当前没有等待中的关卡，流程正在推进 / nothing is waiting; the launch is moving.\n"
    lines = [head, "| 等待 waiting for | 谁处理 who | 截止 due |", "|---|---|---|"]
    for s in sorted(waiting, key=lambda s: (s.due_at is None, s.due_at)):
        gate = catalogue.gates[s.step]
        actor = catalogue.actors[gate.actor]
        lines.append(
            f"| {gate.name_zh}（第 {s.attempt} 次）/ {gate.name_en} | {actor.name_zh} / {actor.name_en} "
            f"| {due_text(s.due_at, s.provisional, tz)} |"
        )
    return "\n".join(lines) + "\n"


def progress_percent(info: LaunchInfo, steps: list, catalogue: Catalogue, released: bool) -> float:
    if released:
        return 100.0
    gates = {g.id for g in catalogue.gates_for(info.registration_path, info.subject_type)}
    passed = {
        s.step for s in steps if s.step in gates and s.status == "done"
    }
    return round(100.0 * len(passed) / max(len(gates), 1), 1)


def materials_markdown(materials: list) -> str:
    lines = ["# 材料清单 / materials", "", "| 材料 material | 必需 required | 已提供 provided | 说明 note |", "|---|---|---|---|"]
    for m in materials:
        lines.append(
            f"| {m.label_zh} / {m.label_en} | {'是' if m.required else '否'} | {'✅' if m.provided else '❌ 缺 missing'} "
            f"| {m.note or ''} |"
        )
    return "\n".join(lines) + "\n"


def launch_detail_tables(detail: dict, title: str = "步骤 / steps") -> list:
    """The steps and decisions of ``launch_detail(...)`` as two Rich tables (the CLI's `status`
    and the demo's closing summary print these)."""
    from rich.table import Table

    steps = Table(title=title)
    for col in ("关卡 gate", "次数", "状态 status", "开始 opened", "截止 due", "完成 finished", "结果 outcome"):
        steps.add_column(col)
    for s in detail["steps"]:
        steps.add_row(s["name"], str(s["attempt"]), s["status"], s["opened"], s["due"], s["finished"], s["outcome"])
    decisions = Table(title="决定 / decisions")
    for col in ("时间 at", "关卡 gate", "次数", "结果 outcome", "决定人 by", "渠道 channel"):
        decisions.add_column(col)
    for d in detail["decisions"]:
        decisions.add_row(d["decided_at"], d["gate"], str(d["attempt"]), d["outcome"], d["actor"], d["channel"])
    return [steps, decisions]
