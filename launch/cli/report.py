"""The portfolio report command of the CLI, as a sub-app the main CLI mounts:

    from launch.cli.report import register; register(app)

adds

    weapp-launch report [--out portfolio.html] [--png PATH] [--as-of DATE] [--json]
        one self-contained HTML page (the Gantt chart of every open launch, what each waits
        for and who must act, the at-risk list) and the same chart as a PNG next to it

Needs only the store (no Prefect). Nothing personal is written: see launch/app/report.py.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Optional

import typer

from launch.cli.common import resources

__all__ = ["register"]


def report(
    ctx: typer.Context,
    out: Path = typer.Option(Path("portfolio.html"), "--out", "-o", help="Where to write the HTML page."),
    png: Optional[Path] = typer.Option(None, "--png", help="Where to write the chart (default: --out with .png)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Report as of this Beijing date (YYYY-MM-DD; "
                                        "default now). Steps are read as they are now."),
    samples: Optional[int] = typer.Option(None, "--samples", min=50, help="Monte Carlo samples per launch "
                                          "(default 1000, or fewer if WEAPP_LAUNCH_FORECAST_SAMPLES says)."),
    as_json: bool = typer.Option(False, "--json", help="Also print the rows as JSON (paths included)."),
) -> None:
    """Portfolio report / 上线组合报告: every open launch on one page (HTML + PNG). Exit 2 on a bad date."""
    from launch.app.report import build_portfolio, write_report

    res = resources(ctx)
    now = res.now()
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            typer.echo(f"--as-of: 日期格式应为 YYYY-MM-DD / expected YYYY-MM-DD, got {as_of!r}", err=True)
            raise typer.Exit(2) from None
        now = datetime.combine(day, time(12, 0), tzinfo=res.calendar.tz)
    portfolio = build_portfolio(res.store, catalogue=res.catalogue, calendar=res.calendar,
                                now=now, settings=res.settings, samples=samples)
    html_path, png_path = write_report(portfolio, out, png)
    if as_json:
        data = portfolio.to_json()
        data.update({"html": str(html_path), "png": str(png_path)})
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    typer.echo(f"{len(portfolio.rows)} 个进行中的上线 / open launches, {len(portfolio.at_risk)} 有风险 / at risk")
    for row in portfolio.at_risk[:10]:
        typer.echo(f"  ! {row.launch_id} {row.mini_program}: {row.risk_reason}")
    if len(portfolio.at_risk) > 10:
        typer.echo(f"  … +{len(portfolio.at_risk) - 10}")
    if portfolio.errors:
        typer.echo(f"预测失败，改用估算 / forecast failed, plan estimate shown: {', '.join(portfolio.errors)}", err=True)
    typer.echo(f"HTML: {html_path}")
    typer.echo(f"PNG:  {png_path}")


def register(app: typer.Typer) -> None:
    """Add `report` to the main CLI."""
    app.command("report")(report)
