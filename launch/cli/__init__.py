"""weapp-launch: the one command line.

Every command that prints data takes --json. Messages people read are in Chinese
and English; nothing personal is printed in the clear.

The composition root of the command line: each command builds its ``Resources`` once
(``launch.cli.common.resources``) and hands it to the application services. The commands
live here and in ``alerts.py`` (watch, alerts), ``forecast.py`` (forecast, commit) and
``report.py`` (report).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from launch.cli.common import emit_json as _emit_json
from launch.cli.common import err, out, resources
from launch.cli.common import fail as _fail

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help="WeChat mini-program launches on Prefect.")
client_app = typer.Typer(no_args_is_help=True, help="Clients / 客户")
workdays_app = typer.Typer(no_args_is_help=True, help="Working-day arithmetic / 工作日计算")
schema_app = typer.Typer(no_args_is_help=True, help="JSON Schemas for editors")
app.add_typer(client_app, name="client")
app.add_typer(workdays_app, name="workdays")
app.add_typer(schema_app, name="schema")


PREFECT_EXIT = 3  # a command that needs Prefect found no API URL, or the API did not answer / refused us


@app.callback()
def _startup() -> None:
    # A CLI in another shell reaches the `up` stack of its WEAPP_LAUNCH_HOME: API and UI URLs from
    # <home>/stack.json, the auth string from <home>/prefect-auth (an explicit PREFECT_API_URL wins).
    # See launch.orchestration.connect.use_local_stack_auth. And never Prefect's ephemeral server: a command that
    # needs Prefect and knows no API says what is missing instead.
    from launch.orchestration.connect import forbid_ephemeral_prefect, use_local_stack_auth

    forbid_ephemeral_prefect()
    use_local_stack_auth()


from launch.cli.alerts import register as _register_alerts  # noqa: E402  (watch, alerts)

_register_alerts(app)

from launch.cli.report import register as _register_report  # noqa: E402  (report)

_register_report(app)

from launch.cli.forecast import register as _register_forecast  # noqa: E402  (forecast, commit)

_register_forecast(app)

from launch.cli.wechat import register as _register_wechat  # noqa: E402  (wechat authorize/status/rollback/qrcode)

_register_wechat(app)

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of tables.")


def _need_prefect(as_json: bool = False) -> str:
    """The Prefect API URL a command will use; exit PREFECT_EXIT saying what is missing if none."""
    from launch.orchestration.connect import missing_prefect_message, prefect_api_url

    url = prefect_api_url()
    if not url:
        _fail(missing_prefect_message(), PREFECT_EXIT, as_json, reason="prefect-not-configured")
    return url


@contextmanager
def _prefect_errors(as_json: bool = False):
    """Prefect missing, down or refusing us: a bilingual line and exit PREFECT_EXIT, no traceback."""
    from launch.orchestration.connect import prefect_problem

    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:
        problem = prefect_problem(exc)
        if problem is None:
            raise
        _fail(problem, PREFECT_EXIT, as_json, reason="prefect-unavailable")


def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{field}: 日期格式应为 YYYY-MM-DD / date must be YYYY-MM-DD, got {value!r}") from None


# --------------------------------------------------------------------------- check / client


@app.command()
def check(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Client intake YAML"),
    as_json: bool = JsonOpt,
    today: Optional[str] = typer.Option(None, help="Check date (default: today, Asia/Shanghai)"),
) -> None:
    """Preflight a client's materials. Exit 0: no errors; 1: errors; 2: file unreadable or malformed."""
    from launch.domain.intake import IntakeFileError, load_intake
    from launch.app.preflight import check_intake

    try:
        intake = load_intake(file)
    except IntakeFileError as exc:
        _fail(str(exc), 2, as_json)
    res = resources(ctx)
    check_date = _parse_date(today, "--today") if today else _today(res)
    result = check_intake(res, intake, check_date)
    if as_json:
        _emit_json(_result_json(result))
    else:
        _print_check(result, intake)
    raise typer.Exit(0 if result.ok else 1)


def _today(res) -> date:
    return res.now().astimezone(res.tz).date()


def _result_json(result) -> dict:
    return {
        "ok": result.ok,
        "findings": [
            {"severity": f.severity, "rule": f.rule_id, "field": f.field, "message": f.message} for f in result.findings
        ],
        "materials": [
            {"kind": m.kind, "label_zh": m.label_zh, "label_en": m.label_en, "required": m.required,
             "provided": m.provided, "note": m.note}
            for m in result.materials
        ],
    }


def _print_check(result, intake) -> None:
    if result.findings:
        table = Table(title="检查结果 / findings")
        for col in ("级别 severity", "规则 rule", "字段 field", "说明 message"):
            table.add_column(col)
        for f in result.findings:
            colour = "red" if f.severity == "error" else "yellow"
            table.add_row(f"[{colour}]{f.severity}[/{colour}]", f.rule_id, f.field, f.message)
        out.print(table)
    table = Table(title="材料 / materials")
    for col in ("材料 material", "必需 required", "已提供 provided", "说明 note"):
        table.add_column(col)
    for m in result.materials:
        table.add_row(f"{m.label_zh} / {m.label_en}", "是" if m.required else "否",
                      "[green]✔[/green]" if m.provided else "[red]✘ 缺 missing[/red]", m.note or "")
    out.print(table)
    errors = sum(f.severity == "error" for f in result.findings)
    warnings = len(result.findings) - errors
    verdict = "[green]可以提交 / ready[/green]" if result.ok else "[red]有错误，请先修正 / fix the errors first[/red]"
    out.print(f"{verdict}  errors={errors} warnings={warnings}")


@client_app.command("add")
def client_add(ctx: typer.Context, file: Path = typer.Argument(..., help="Client intake YAML"),
               as_json: bool = JsonOpt) -> None:
    """Register a client whose intake has no errors; prints the new client id."""
    from launch.domain.intake import IntakeFileError, load_intake
    from launch.app.preflight import ClientRefused, add_client

    try:
        intake = load_intake(file)
    except IntakeFileError as exc:
        _fail(str(exc), 2, as_json)
    try:
        res = resources(ctx)
        client_id, result = add_client(res, intake, _today(res))
    except ClientRefused as exc:
        if as_json:
            _emit_json({"ok": False, "error": str(exc), **_result_json(exc.result)})
        else:
            _print_check(exc.result, intake)
            err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1)
    if as_json:
        _emit_json({"ok": True, "client_id": client_id, **_result_json(result)})
    else:
        out.print(client_id)


@client_app.command("list")
def client_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Registered clients (nothing personal shown)."""
    rows = [
        {"client_id": c.id, "code": c.code, "name": c.display_name, "mini_program": c.mini_program_name,
         "province": c.province, "subject_type": c.subject_type, "registration_path": c.registration_path}
        for c in resources(ctx).store.list_clients()
    ]
    if as_json:
        _emit_json(rows)
        return
    table = Table(title="客户 / clients")
    for col in ("client_id", "code", "name", "mini_program", "province", "registration_path"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("client_id", "code", "name", "mini_program", "province", "registration_path")))
    out.print(table)


@schema_app.command("intake")
def schema_intake() -> None:
    """Print the intake's JSON Schema (for editors' YAML validation)."""
    from launch.domain.intake import intake_json_schema

    _emit_json(intake_json_schema())


# --------------------------------------------------------------------------- calendar / plan


def _provisional_note(provisional: bool) -> None:
    if provisional:
        err.print("注意：结果涉及尚未公布节假日安排的年份，为暂定值 / provisional: reaches a year whose holiday "
                  "schedule is not published yet (weekends and fixed holidays only)")


@workdays_app.command("add")
def workdays_add(ctx: typer.Context, start: str, n: int, as_json: bool = JsonOpt) -> None:
    """The date N working days after START."""
    answer = resources(ctx).calendar.add_workdays(_parse_date(start, "DATE"), n)
    if as_json:
        _emit_json({"start": start, "workdays": n, "date": answer.value.isoformat(), "provisional": answer.provisional})
    else:
        out.print(answer.value.isoformat())
    _provisional_note(answer.provisional)


@workdays_app.command("between")
def workdays_between(ctx: typer.Context, a: str, b: str, as_json: bool = JsonOpt) -> None:
    """Working days after A up to and including B."""
    answer = resources(ctx).calendar.workdays_between(_parse_date(a, "A"), _parse_date(b, "B"))
    if as_json:
        _emit_json({"from": a, "to": b, "workdays": answer.value, "provisional": answer.provisional})
    else:
        out.print(str(answer.value))
    _provisional_note(answer.provisional)


@app.command()
def plan(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="Intake YAML file or client id"),
    start: Optional[str] = typer.Option(None, "--start", help="Start date (default today)"),
    as_json: bool = JsonOpt,
) -> None:
    """Each phase's earliest and latest finish from START, and the go-live window."""
    from launch.domain.plan import make_plan

    res = resources(ctx)
    path = _registration_path_of(res, target, as_json)
    begin = _parse_date(start, "--start") if start else _today(res)
    result = make_plan(res.catalogue, res.calendar, begin, path)
    if as_json:
        _emit_json(result.to_json())
    else:
        table = Table(title=f"计划 / plan from {begin} ({path})")
        for col in ("阶段 phase", "负责 owner", "估计 estimate (wd)", "依赖 after", "最早完成 earliest", "最晚完成 latest"):
            table.add_column(col)
        for p in result.phases:
            table.add_row(f"{p.name_zh} / {p.name_en}", p.owner, f"{p.estimate_wd[0]}–{p.estimate_wd[1]}",
                          ", ".join(p.after), p.earliest_finish.isoformat(),
                          p.latest_finish.isoformat() + (" *" if p.provisional else ""))
        out.print(table)
        out.print(f"上线窗口 / go-live window: [bold]{result.go_live_earliest} ～ {result.go_live_latest}[/bold]")
    _provisional_note(result.provisional)


def _registration_path_of(res, target: str, as_json: bool) -> str:
    candidate = Path(target)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        from launch.domain.intake import IntakeFileError, load_intake

        try:
            return load_intake(candidate).registration.path
        except IntakeFileError as exc:
            _fail(str(exc), 2, as_json)
    client = res.store.get_client(target)
    if client is None:
        _fail(f"没有这个客户或文件 / no client or file {target!r}", 2, as_json)
    return client.registration_path


def main() -> None:  # pragma: no cover - console entry
    app()


# --------------------------------------------------------------------------- launches


@app.command()
def start(
    ctx: typer.Context,
    client_id: str,
    commit_date: Optional[str] = typer.Option(
        None, "--commit-date", help="Committed go-live date YYYY-MM-DD / 承诺上线日期 (risk alerts when P90 passes it)"
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Start a launch for a registered client; prints launch id, flow run id and the run's UI URL.

    Exit 0 started; 1 refused; 2 a bad --commit-date; 3 no Prefect API known, or it did not
    answer (the launch is kept in the store, and `start` again picks it up)."""
    from launch.app.launches import LaunchRefused, start_launch

    if commit_date is not None:
        try:
            date.fromisoformat(commit_date)
        except ValueError:
            _fail(f"--commit-date 须为 YYYY-MM-DD / --commit-date must be a date YYYY-MM-DD: {commit_date!r}", 2, as_json)
    _need_prefect(as_json)
    try:
        with _prefect_errors(as_json):
            started = start_launch(resources(ctx), client_id)
    except LaunchRefused as exc:
        _fail(str(exc), 1, as_json)
    if commit_date is not None:
        from launch.cli.forecast import commit_at_start

        commit_at_start(resources(ctx), started["launch_id"], commit_date)
    if as_json:
        _emit_json(started)
    else:
        out.print(f"launch_id    {started['launch_id']}")
        out.print(f"flow_run_id  {started['flow_run_id']}")
        out.print(f"url          {started['url']}")


@app.command()
def status(ctx: typer.Context, launch_id: Optional[str] = typer.Argument(None), as_json: bool = JsonOpt) -> None:
    """All launches, or one launch with its steps and decisions."""
    from launch.app.launches import launch_detail, launches_overview

    res = resources(ctx)
    if launch_id is None:
        rows = launches_overview(res)
        if as_json:
            _emit_json(rows)
            return
        table = Table(title="上线任务 / launches")
        for col in ("launch", "客户 client", "小程序 mini-program", "状态 status", "等待 waiting for", "截止 due", "url"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["launch_id"], r["client"], r["mini_program"], r["status"],
                          ", ".join(w["gate"] for w in r["waiting"]),
                          ", ".join(w["due"] for w in r["waiting"]), r["url"])
        out.print(table)
        return
    from launch.cli.forecast import status_forecast_json, status_forecast_lines

    detail = launch_detail(res, launch_id)
    if detail is None:
        _fail(f"没有这个上线任务 / no launch {launch_id}", 1, as_json)
    if as_json:
        detail["forecast"] = status_forecast_json(res, launch_id)
        _emit_json(detail)
        return
    out.print(f"[bold]{detail['client']}[/bold] 「{detail['mini_program']}」 {detail['launch_id']} "
              f"· {detail['status']} · {detail['url']}")
    from launch.app.presentation import launch_detail_tables

    for table in launch_detail_tables(detail):
        out.print(table)
    for line in status_forecast_lines(res, launch_id):
        out.print(line, markup=False)  # "[暂定 provisional]" is text, not Rich markup


@app.command()
def gates(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Every gate, its phase, who acts, its deadline and the fields its form asks."""
    from launch.app.launches import gate_catalogue

    rows = gate_catalogue(resources(ctx))
    if as_json:
        _emit_json(rows)
        return
    table = Table(title="关卡 / gates")
    for col in ("gate", "阶段 phase", "名称 name", "谁 who", "期限 deadline", "字段 fields"):
        table.add_column(col)
    for g in rows:
        fields = "; ".join(
            f"{f['name']}{'*' if f['required'] else ''}" + (f"={'|'.join(f['choices'])}" if f["choices"] else "")
            for f in g["fields"]
            if f["name"] not in ("decided_by", "note")
        )
        table.add_row(g["gate"], g["phase"], g["name_zh"], g["actor"], g["deadline"], fields)
    out.print(table)
    out.print("* 必填 / required. 每个表单都要填写 decided_by（决定人），可选 note / every form asks decided_by and an optional note.")


@app.command()
def approve(
    ctx: typer.Context,
    launch_id: str,
    gate: str,
    by: str = typer.Option(..., "--by", help="Who decided / 决定人"),
    set_: list[str] = typer.Option([], "--set", help="field=value, repeatable"),
    attempt: Optional[int] = typer.Option(None, "--attempt", help="Attempt (default: the one waiting or next)"),
    as_json: bool = JsonOpt,
) -> None:
    """Record a gate decision (validated against the gate's form) and resume the run if it is parked there.

    Exit 0: recorded (or already recorded); 1: refused; 2: malformed --set. The store is written
    first: if the Prefect API is down (or unknown), the decision stays recorded, the message says
    so, and the runner applies it within seconds of the API answering (JSON: "resume_pending": true).
    Approving the same gate again says it is already recorded and retries the resume."""
    from launch.app.decisions import DecisionRefused, submit_decision

    data: dict = {"decided_by": by}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--set {item!r}: 应为 字段=值 / must be field=value", 2, as_json)
        key = key.strip()
        if key == "screenshots":
            data[key] = [v for v in value.split("|") if v]
        else:
            data[key] = value
    try:
        result = submit_decision(resources(ctx), launch_id, gate, data, "cli", attempt=attempt)
    except DecisionRefused as exc:
        problems = [p.model_dump() for p in exc.problems]
        if as_json:
            _emit_json({"ok": False, "status": "refused", "problems": problems})
        else:
            for p in exc.problems:
                err.print(f"[red]{p.field}[/red] ({p.rule}): {p.message}")
        raise typer.Exit(1)
    hint = _pending_hint(result) if result.resume_error else None
    if as_json:
        _emit_json({"ok": True, **result.to_json(), **({"hint": hint} if hint else {})})
    else:
        colour = "green" if result.status == "recorded" else "yellow"
        out.print(f"[{colour}]{result.status}[/{colour}] {result.message}")
        if hint:
            err.print(f"[yellow]{hint}[/yellow]")


def _pending_hint(result) -> str:
    """Why the recorded decision has not reached its run yet, and that nothing more is needed."""
    from launch.orchestration.connect import missing_prefect_message, prefect_api_url, unreachable_message

    why = unreachable_message() if prefect_api_url() else missing_prefect_message()
    return (f"已记录，Prefect 恢复后将自动继续（无需再次审批）/ recorded; it will be applied as soon as the "
            f"Prefect API answers (no need to approve again). {why}")


@app.command()
def serve() -> None:
    """Serve every flow deployment against the Prefect server at PREFECT_API_URL (exit 3: none known)."""
    from deployments.serve import main as serve_main

    _need_prefect()
    with _prefect_errors():
        serve_main()


@app.command()
def automation() -> None:
    """Create, once per Prefect server, the automation that asks the watcher to check a run whose
    heartbeats stopped (and reschedule it if its process died).

    `serve` creates it itself; a worker setup (`prefect deploy --all` + `prefect worker start`) needs
    this, after `prefect deploy`: it runs the deadline-watcher deployment.
    """
    from prefect.exceptions import ObjectNotFound

    from deployments.serve import ZOMBIE_AUTOMATION, ensure_zombie_automation

    _need_prefect()
    try:
        with _prefect_errors():
            ensure_zombie_automation()
    except ObjectNotFound:
        _fail("没有 deadline-watcher 部署，请先运行 `prefect deploy --all` / no deadline-watcher deployment on "
              "this Prefect server: run `prefect deploy --all` first")
    out.print(f"[green]✔[/green] {ZOMBIE_AUTOMATION}")


@app.command()
def demo(
    ctx: typer.Context,
    keep: Optional[bool] = typer.Option(None, "--keep/--no-keep",
                                        help="Keep the stack running after the launch (default: when interactive)"),
    timeout: float = typer.Option(900, help="Seconds the simulated launch may take"),
    manual: bool = typer.Option(False, "--manual",
                                help="No WeChat platform: every gate manual, the simulator answers all of them "
                                     "(default: the tool operates the local WeChat stand-in)"),
) -> None:
    """The whole product locally: Prefect server on SQLite, deployments, a simulated launch end to end."""
    from devtools.demo import missing_dev_extra, run_demo

    if (missing := missing_dev_extra()) is not None:
        _fail(missing)
    keep_running = sys.stdin.isatty() if keep is None else keep
    ok = run_demo(resources(ctx).settings.home, keep_running, timeout, manual=manual)
    raise typer.Exit(0 if ok else 1)


@app.command("api")
def api() -> None:
    """Run the callback receiver (WeChat pushes, staff callbacks and signed links)."""
    from launch.receiver.server import api_command

    api_command()


@app.command("wechat-standin")
def wechat_standin(
    ctx: typer.Context,
    port: int = typer.Option(8090, "--port", help="Port of the stand-in (127.0.0.1)"),
    receiver_url: Optional[str] = typer.Option(None, "--receiver-url",
                                               help="Base URL of the receiver to push to, e.g. http://127.0.0.1:8000"),
    ticket_every: float = typer.Option(600, "--ticket-every", help="Seconds between component_verify_ticket pushes"),
    component_secret: str = typer.Option("standin-secret", "--component-secret",
                                         envvar="WEAPP_LAUNCH_WECHAT_COMPONENT_SECRET",
                                         help="The component appsecret the stand-in accepts"),
) -> None:
    """A local WeChat third-party platform (dev only): WeChat's API plus pushes to the receiver / 本地微信替身。"""
    from devtools.wechat_standin import StandinConfig, serve

    s = resources(ctx).settings
    config = StandinConfig(receiver_url=receiver_url, ticket_every=ticket_every, component_appsecret=component_secret)
    if s.wechat_token and s.wechat_encoding_aes_key and s.wechat_component_appid:  # push as the receiver expects
        config.token = s.wechat_token.get_secret_value()
        config.encoding_aes_key = s.wechat_encoding_aes_key.get_secret_value()
        config.component_appid = s.wechat_component_appid
    else:
        err.print("WEAPP_LAUNCH_WECHAT_TOKEN / _ENCODING_AES_KEY / _COMPONENT_APPID 未设置，使用替身默认值 / not set: "
                  "the stand-in uses its own defaults")
    serve(config, port=port)


@app.command()
def health(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Check server, workers, receiver, watcher, store migrations and alert channels (one line each).

    Exit 0 when every check passes, 1 when any fails (for a supervisor or an uptime check; --json
    for machines). Never starts a Prefect server of its own: without one it says what is missing."""
    from launch.app.health import run_checks

    checks = run_checks(resources(ctx))
    if as_json:
        _emit_json({"ok": all(c.ok for c in checks), "checks": [c.to_json() for c in checks]})
    else:
        for c in checks:
            mark = "[green]✔[/green]" if c.ok else "[red]✘[/red]"
            out.print(f"{mark} {c.part:<9} {c.detail}")
    raise typer.Exit(0 if all(c.ok for c in checks) else 1)


@app.command()
def up(ctx: typer.Context) -> None:
    """The local stack for real use (server, deployments, receiver), no simulator; Ctrl-C or SIGTERM stops it.

    Prefect's API needs the auth string in <home>/prefect-auth; the port is WEAPP_LAUNCH_PREFECT_PORT
    (busy: exit 1, never another port; one in TIME_WAIT after a restart is free). <home>/stack.json
    tells every CLI with this WEAPP_LAUNCH_HOME where the stack runs; it is marked stopped on exit."""
    from devtools.demo import run_up
    from devtools.stack import PortBusy

    try:
        ok = run_up(resources(ctx).settings.home)
    except PortBusy as exc:
        _fail(str(exc))
    raise typer.Exit(0 if ok else 1)
