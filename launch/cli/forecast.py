"""The forecast and commitment commands of the CLI, as pieces the main CLI mounts:

    from launch.cli.forecast import register as _register_forecast; _register_forecast(app)

adds

    weapp-launch forecast LAUNCH_ID [--as-of D] [--samples N] [--seed S] [--json]
                                      go-live P50/P90 and each phase's dates (Monte Carlo)
    weapp-launch commit LAUNCH_ID 2027-01-15 [--json]   commit the launch to a go-live date
    weapp-launch commit LAUNCH_ID --clear               remove the commitment

and, for ``weapp-launch status LAUNCH_ID``, :func:`status_forecast_lines` (plain lines)
and :func:`status_forecast_json` (a dict for ``--json``); :func:`commit_at_start` for a
``--commit-date`` option of ``start`` (each takes the command's ``Resources`` first).
Nothing personal is printed.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape

from launch.cli.common import emit_json as _emit_json
from launch.cli.common import fail as _fail
from launch.cli.common import out as _out
from launch.cli.common import resources

if TYPE_CHECKING:
    from launch.app import Resources

__all__ = ["commit_at_start", "register", "status_forecast_json", "status_forecast_lines"]


def _date(text: str, what: str, as_json: bool) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{what}: 日期格式应为 YYYY-MM-DD / {what} must be a date YYYY-MM-DD (got {text!r})", 2, as_json)
        raise  # unreachable


def status_forecast_json(res: Resources, launch_id: str) -> dict | None:
    """``{"forecast", "commitment", "risk", "lines"}`` for ``status LAUNCH --json``; None for an
    unknown launch; ``{"error": ...}`` when the forecast cannot be made (status still prints)."""
    from launch.app.forecasting import status_forecast

    try:
        return status_forecast(res, launch_id)
    except Exception as exc:  # noqa: BLE001 - a broken forecast file must not break `status`
        from launch.domain.masking import scrub_text

        return {"error": scrub_text(f"{type(exc).__name__}: {exc}")[:500]}


def status_forecast_lines(res: Resources, launch_id: str) -> list[str]:
    """The forecast lines of ``status LAUNCH`` (plain text, no Rich markup)."""
    data = status_forecast_json(res, launch_id)
    if data is None:
        return []
    if "error" in data:
        return [f"上线预测不可用 / forecast unavailable: {data['error']}"]
    return list(data["lines"])


def commit_at_start(res: Resources, launch_id: str, commit_date: str | None) -> dict | None:
    """For ``start --commit-date``: commit the launch just started (None when not given).
    Raises ValueError on a malformed date (check it before starting)."""
    if not commit_date:
        return None
    from launch.app.forecasting import commit

    c = commit(res.store, launch_id, date.fromisoformat(commit_date), res.now())
    return {"launch_id": launch_id, "committed_go_live": c.committed_go_live.isoformat()}


def forecast_cmd(
    ctx: typer.Context,
    launch_id: str = typer.Argument(..., help="l-…"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Forecast as known on this date (default today)."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Default WEAPP_LAUNCH_FORECAST_SAMPLES."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of lines."),
) -> None:
    """Go-live forecast of a launch: P50 / P90 by Monte Carlo over the process, in working days."""
    from launch.app.forecasting import config_from_settings, forecast_for, forecast_lines

    res = resources(ctx)
    store, cal, settings = res.store, res.calendar, res.settings
    if store.get_launch(launch_id) is None:
        _fail(f"没有这个上线任务 / no launch {launch_id}", 1, as_json)
    day = _date(as_of, "--as-of", as_json) if as_of else res.now().astimezone(cal.tz).date()
    fc = forecast_for(store, launch_id, catalogue=res.catalogue, calendar=cal,
                      config=config_from_settings(settings), as_of=day,
                      samples=samples or settings.forecast_samples, seed=seed)
    c = store.get_commitment(launch_id)
    if as_json:
        from launch.domain.forecast import risk_level

        _emit_json({**fc.to_json(), "commitment": c.committed_go_live.isoformat() if c else None,
                    "risk": risk_level(fc, c.committed_go_live) if c else None})
        return
    for line in forecast_lines(fc, c):
        _out.print(escape(line))


def commit_cmd(
    ctx: typer.Context,
    launch_id: str = typer.Argument(..., help="l-…"),
    go_live: Optional[str] = typer.Argument(None, help="Committed go-live date, YYYY-MM-DD."),
    clear: bool = typer.Option(False, "--clear", help="Remove the commitment."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Commit a launch to a go-live date (at start or later; again to move it). When the
    forecast's P90 passes it, the account manager is alerted (and a manager when P50 does)."""
    from launch.app.forecasting import commit

    res = resources(ctx)
    store = res.store
    if store.get_launch(launch_id) is None:
        _fail(f"没有这个上线任务 / no launch {launch_id}", 1, as_json)
    if clear:
        removed = store.clear_commitment(launch_id)
        if as_json:
            _emit_json({"ok": True, "launch_id": launch_id, "removed": removed})
        else:
            _out.print("已取消承诺上线日 / commitment removed" if removed else "没有承诺上线日 / no commitment")
        return
    if go_live is None:
        _fail("请给出承诺上线日 YYYY-MM-DD，或 --clear / give the committed date YYYY-MM-DD, or --clear", 2, as_json)
    day = _date(go_live, "go_live", as_json)
    c = commit(store, launch_id, day, res.now())
    if as_json:
        _emit_json({"ok": True, "launch_id": launch_id, "committed_go_live": c.committed_go_live.isoformat()})
        return
    _out.print(f"承诺上线日 / committed go-live: {c.committed_go_live.isoformat()} ({launch_id})")
    for line in status_forecast_lines(res, launch_id)[:2]:
        _out.print(escape(line))


def register(app: typer.Typer) -> None:
    """Add ``forecast`` and ``commit`` to the main CLI."""
    app.command("forecast")(forecast_cmd)
    app.command("commit")(commit_cmd)
