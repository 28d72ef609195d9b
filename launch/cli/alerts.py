"""The watcher and alert commands of the CLI, as a sub-app the main CLI mounts:

    from launch.cli.alerts import register; register(app)

adds

    weapp-launch watch --once [--json]        one watcher pass; prints what it enqueued and sent
    weapp-launch watch                        a pass every WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS (Ctrl-C stops)
    weapp-launch alerts [--status S] [--json] pending, waiting, sent and failed alerts with each channel's result
    weapp-launch alerts test [--tag TAG]      a test message to each configured channel, with each result
    weapp-launch alerts retry [ID ...] [--state failed|waiting] [--json]
                                              put alerts back in the queue (waiting: their channels are probed now)
    weapp-launch alerts channels [--json]     each channel: up or down (circuit breaker), alerts waiting for it

Nothing personal is printed: alert titles are already masked and scrubbed; bodies (which
carry signed links, i.e. credentials) and channel URLs (secrets) are never printed.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

import typer
from rich.table import Table

from launch.cli.common import emit_json as _emit_json
from launch.cli.common import err as _err
from launch.cli.common import resources
from launch.store import AlertStatus
from launch.cli.common import out as _out

__all__ = ["register"]

# every status, in the order a queue is read (the vocabulary itself is launch.store.AlertStatus)
_STATUSES = (AlertStatus.PENDING, AlertStatus.SENDING, AlertStatus.WAITING, AlertStatus.SENT, AlertStatus.FAILED)


def _key_parts(key: str) -> tuple[str, str, str, str]:
    """launch, gate, attempt, rung of a dedupe key ``{launch}:{gate}:{attempt}:{rung}``."""
    parts = key.split(":")
    if len(parts) >= 4:
        return parts[0], parts[1], parts[2], ":".join(parts[3:])
    return "", "", "", key


def _print_report(res, report) -> None:
    if report.enqueued:
        table = Table(title="新提醒 / enqueued")
        for col in ("上线 launch", "关卡 gate", "轮 #", "梯级 rung", "级别 severity", "时点 fire at", "标签 tags"):
            table.add_column(col)
        for e in report.enqueued:
            table.add_row(e.launch_id, e.gate, str(e.attempt), e.rung, e.severity,
                          res.local(e.fire_at) + (" 暂定" if e.provisional else ""), ", ".join(e.tags))
        _out.print(table)
    if report.sent or report.retried or report.failed or report.waiting:
        table = Table(title="发送 / deliveries")
        for col in ("提醒 alert", "结果 result", "已送达 delivered", "未送达 failed", "下次 next try"):
            table.add_column(col)
        for s in report.sent:
            table.add_row(s.dedupe_key, "[green]sent[/green]", ", ".join(s.channels), ", ".join(s.failed_channels), "")
        for r in report.retried:
            table.add_row(r.dedupe_key, "[yellow]retry[/yellow]", ", ".join(r.channels), ", ".join(r.failed_channels),
                          res.local(r.retry_at))
        for f in report.failed:
            table.add_row(f.dedupe_key, "[red]failed[/red]", ", ".join(f.fallback_channels) + " (fallback)"
                          if f.fallback_channels else "", ", ".join(f.failed_channels), "")
        for w in report.waiting:
            got = ", ".join(w.channels) + (f" + {', '.join(w.fallback_channels)} (fallback)"
                                           if w.fallback_channels else "")
            table.add_row(w.dedupe_key, "[magenta]waiting[/magenta]", got.strip(" +"),
                          ", ".join(w.waiting_for) + " (down)", "")
        _out.print(table)
    for e in report.channel_events:
        colour = "red" if e.change == "down" else "green"
        _out.print(f"[{colour}]渠道 channel {e.channel}: {e.change}[/{colour}]"
                   + (f" — 补发 releasing {e.released}" if e.change == "up" else ""))
    for r in report.repaired:
        _out.print(f"修复 repaired [{r.kind}] {r.launch_id or ''} {r.detail}")
    for note in report.notes:
        _out.print(f"[yellow]{note}[/yellow]")
    for error in report.errors:
        _err.print(f"[red]{error}[/red]")
    _out.print(report.summary())


def watch(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    limit: int = typer.Option(2000, min=1, help="Steps, alerts and repairs handled per pass."),
) -> None:
    """Deadline watcher: enqueue due alerts, send them, repair lost wake-ups. Exit 1 if a pass had errors."""
    from launch.app.watcher import watch_once

    res = resources(ctx)
    interval = max(1, res.settings.watch_interval_seconds)
    try:
        while True:
            # each pass reads the notifiers file as it is now (the store, calendar and catalogue stay)
            report = watch_once(replace(res, _store=res.store, _calendar=res.calendar, _catalogue=res.catalogue),
                                limit=limit)
            if as_json:
                _emit_json(report.to_json())
            else:
                _print_report(res, report)
            if once:
                raise typer.Exit(0 if report.ok else 1)
            time.sleep(interval)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _alert_rows(res, status: str | None, launch_id: str | None, limit: int) -> list[dict]:
    store = res.store
    statuses = [status] if status else list(_STATUSES)
    rows = []
    for st in statuses:
        for a in store.list_alerts(st, launch_id=launch_id):
            launch, gate, attempt, rung = _key_parts(a.dedupe_key)
            rows.append({
                "id": a.id,
                "key": a.dedupe_key,
                "launch_id": a.launch_id,
                "gate": gate,
                "attempt": attempt,
                "rung": a.rung,
                "status": a.status,
                "title": a.title,  # masked and scrubbed at rendering
                "tags": list(a.tags),
                "attempts": a.attempts,
                "due_at": a.send_after.isoformat(),
                "next_attempt_at": a.next_attempt_at.isoformat() if a.status == "pending" else None,
                "sent_at": a.sent_at.isoformat() if a.sent_at else None,
                "last_error": a.last_error,  # masked by the notifiers
                "waiting_for": list(a.waiting_for),  # channels down it waits for (status waiting)
                "deliveries": [
                    {"channel": d.channel, "ok": d.ok, "error": d.error, "at": d.at.isoformat()}
                    for d in store.deliveries_for(a.id)
                ],
            })
    rows.sort(key=lambda r: r["id"], reverse=True)
    return rows[:limit]


def alerts(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status",
                                         help="pending | sending | waiting | sent | failed (default: all)"),
    launch_id: Optional[str] = typer.Option(None, "--launch", help="Only this launch's alerts."),
    limit: int = typer.Option(100, min=1, help="Newest N alerts."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Alerts in the outbox: pending, waiting, sent and failed, with each channel's result."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in _STATUSES:
        raise typer.BadParameter(f"--status: 应为 {' | '.join(_STATUSES)} / must be one of {', '.join(_STATUSES)}")
    res = resources(ctx)
    rows = _alert_rows(res, status, launch_id, limit)
    if as_json:
        _emit_json({"alerts": rows})
        return
    if not rows:
        _out.print("没有提醒 / no alerts")
        return
    table = Table(title="提醒 / alerts")
    for col in ("#", "状态 status", "标题 title", "到期 due", "尝试 tries", "渠道结果 channels"):
        table.add_column(col)
    colours = {"sent": "green", "failed": "red", "pending": "yellow", "sending": "cyan", "waiting": "magenta"}
    for r in rows:
        chans = "; ".join(
            f"{d['channel']} {'✔' if d['ok'] else '✘'}" + ("" if d["ok"] else f" ({(d['error'] or '')[:60]})")
            for d in r["deliveries"]
        )
        if r["waiting_for"]:
            chans += ("; " if chans else "") + "等待 waiting for: " + ", ".join(r["waiting_for"])
        c = colours.get(r["status"], "white")
        table.add_row(str(r["id"]), f"[{c}]{r['status']}[/{c}]", r["title"],
                      res.local(_parse(r["due_at"])), str(r["attempts"]), chans or "—")
    _out.print(table)


def _parse(iso: str):
    from datetime import datetime

    return datetime.fromisoformat(iso)


def alerts_test(
    ctx: typer.Context,
    tag: Optional[str] = typer.Option(None, "--tag", help="Only the channels carrying this tag."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Send a test message to each configured channel and show each result. Exit 1 if any failed."""
    from notifiers.deliver import send_test

    config, note, error = resources(ctx).notifier
    if config is None:
        message = error or note or "no notifiers"
        if as_json:
            _emit_json({"ok": False, "error": message, "results": []})
        else:
            _err.print(f"[red]{message}[/red]")
        raise typer.Exit(2)
    results = send_test(config, tag)
    ok = all(r.ok for r in results)
    if as_json:
        _emit_json({"ok": ok, "results": [{"channel": r.name, "ok": r.ok, "error": r.error} for r in results]})
    else:
        table = Table(title="测试消息 / test messages")
        for col in ("渠道 channel", "结果 result", "原因 error"):
            table.add_column(col)
        for r in results:
            table.add_row(r.name, "[green]✔ ok[/green]" if r.ok else "[red]✘ failed[/red]", r.error or "")
        _out.print(table)
    raise typer.Exit(0 if ok else 1)


def alerts_retry(
    ctx: typer.Context,
    ids: Optional[list[int]] = typer.Argument(None, help="Alert ids (see `weapp-launch alerts`)."),
    state: Optional[str] = typer.Option(None, "--state", help="Every alert in this state: failed | waiting."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Put alerts back in the queue, by id or by state. failed: a fresh retry budget; waiting:
    the channels they wait for are probed at the next pass. Oldest go first."""
    if state is not None and state not in ("failed", "waiting"):
        raise typer.BadParameter("--state: 应为 failed 或 waiting / must be failed or waiting")
    if not ids and state is None:
        _err.print("[red]请给出提醒编号或 --state failed|waiting / give alert ids or --state failed|waiting[/red]")
        raise typer.Exit(2)
    if ids and state is not None:
        _err.print("[red]编号与 --state 只能选一种 / give ids or --state, not both[/red]")
        raise typer.Exit(2)
    res = resources(ctx)
    results = res.store.requeue_alerts(ids or (), status=state, now=res.now())
    requeued = [r for r in results if r[2] is not None]
    if as_json:
        _emit_json({"ok": True, "requeued": len(requeued), "results": [
            {"id": i, "before": before, "after": after} for i, before, after in results]})
        return
    reasons = {
        "sent": "已发送，无需重发 / already sent",
        "sending": "正在发送 / being sent right now",
        "unknown": "没有此提醒 / no such alert",
    }
    for i, before, after in results:
        if after is None:
            _out.print(f"#{i} 未改动 / left as is: {reasons.get(before, before)}")
        else:
            _out.print(f"#{i} {before} → {after}")
    _out.print(f"重新排队 / re-queued: {len(requeued)}"
               + ("；下一轮监视即发送 / they go out at the next watcher pass" if requeued else ""))


def alerts_channels(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Each channel's circuit breaker (up / down since, next probe) and the alerts waiting for it.
    Exit 1 if a channel is down."""
    from notifiers.breaker import channel_health

    res = resources(ctx)
    config, note, error = res.notifier
    if error:
        _err.print(f"[red]{error}[/red]")
    rows = channel_health(res.store, config)
    ok = all(h.ok for h in rows)
    if as_json:
        _emit_json({"ok": ok, "note": note or error, "channels": [h.to_json() for h in rows]})
    else:
        table = Table(title="通知渠道 / channels")
        for col in ("渠道 channel", "类型 kind", "状态 state", "等待 waiting", "说明 detail"):
            table.add_column(col)
        for h in rows:
            colour = "green" if h.ok else "red"
            table.add_row(h.channel, h.kind, f"[{colour}]{h.state}[/{colour}]", str(h.waiting), h.detail)
        _out.print(table)
        if note:
            _out.print(f"[yellow]{note}[/yellow]")
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    """Add `watch` and the `alerts` group (list; `alerts test`, `alerts retry`, `alerts
    channels`) to the main CLI."""
    app.command("watch")(watch)
    group = typer.Typer(help="Alerts / 提醒: the outbox and the channels", invoke_without_command=True)
    group.callback(invoke_without_command=True)(alerts)
    group.command("test")(alerts_test)
    group.command("retry")(alerts_retry)
    group.command("channels")(alerts_channels)
    app.add_typer(group, name="alerts")
