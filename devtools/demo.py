"""`weapp-launch demo`: the whole product on one machine, with a simulated outside world.

Starts a local Prefect server on SQLite (home inside the project's working folder),
serves every deployment, registers the example client, starts its launch and plays
staff, client, WeChat, MIIT and the bureau — one design rework, one SMS timeout, one
bureau rejection and one review failure on the way. The filing runs in WeChat's order
(materials ready → face task → submission → first review → SMS); the SMS timeout is
followed by a resubmission and only then a new SMS; the client accepts the trial version
before each 提审. At the end the filing's order is printed as it happened.
Ctrl-C stops every process.
"""

from __future__ import annotations

import shutil
import signal
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from devtools.stack import ROOT, PortBusy, Stack, ensure_port_free, free_port

EXAMPLE = ROOT / "examples" / "client-acme.yaml"


def _port(preferred: int) -> int:
    """The demo's port: `preferred` if free, else any free one (the demo is throw-away; `up` never moves)."""
    try:
        ensure_port_free(preferred, "WEAPP_LAUNCH_PREFECT_PORT")
        return preferred
    except PortBusy:
        return free_port()


@contextmanager
def _signals_stop():
    """SIGTERM and SIGHUP end the stack like Ctrl-C does (KeyboardInterrupt), so the caller's
    `finally: stack.stop()` runs and no server, runner or receiver is left behind."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def missing_dev_extra() -> str | None:
    """Why the demo cannot run here (its mail sink needs aiosmtpd, in the `dev` extra), or None."""
    import importlib.util

    if importlib.util.find_spec("aiosmtpd") is not None:
        return None
    return ("`weapp-launch demo` 需要开发依赖 aiosmtpd（演示用的本地邮件接收器）：请运行 `pip install -e '.[dev]'`，"
            "或使用 `./dev demo` / `weapp-launch demo` needs the dev extra (aiosmtpd, the demo's local mail sink): "
            "run `pip install -e '.[dev]'`, or use `./dev demo`")


def _login_hint(stack: Stack) -> str:
    return (f"UI 登录口令在 / the UI asks once for the auth string in: {stack.auth_file} (mode 0600; "
            "CLI 在同一 WEAPP_LAUNCH_HOME 下自动读取 / the CLI reads it from the same WEAPP_LAUNCH_HOME)")


def run_demo(home: Path, keep_running: bool, timeout: float = 900) -> bool:
    import sys

    console = Console(width=None if sys.stdout.isatty() else 160)
    base = (home / "demo").resolve()
    shutil.rmtree(base, ignore_errors=True)  # a fresh world each time: quotas and ids start clean
    stack = Stack(base, port=_port(4200))
    wechat = stack.enable_wechat()
    from devtools.sinks import MailSink, PhoneSink, write_notifiers

    mail, phone = MailSink(base / "mail.log").start(), PhoneSink(base / "phone.log").start()
    stack.env["WEAPP_LAUNCH_NOTIFIERS_FILE"] = str(write_notifiers(base / "notifiers.yaml", mail, phone))
    # The demo runs watcher passes itself every few seconds (time compressed) instead of every 5 minutes.
    stack.env["WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS"] = "0"
    with _signals_stop():
        try:
            with console.status("启动 Prefect 服务器（SQLite）/ starting the Prefect server (SQLite)…"):
                stack.start_server()
            console.print(f"Prefect UI: [link]{stack.env['PREFECT_UI_URL']}[/link]")
            console.print(_login_hint(stack))
            stack.apply_env()
            with console.status("部署流程 / serving the deployments…"):
                stack.start_runner()
            with console.status("启动回调接收服务 / starting the callback receiver…"):
                receiver = stack.start_api()
            console.print(f"回调接收 / receiver: {receiver}  (微信推送经签名与 AES 加密 / pushes signed and AES-encrypted)")
            return _play(console, stack, timeout, keep_running, receiver, wechat, (mail, phone))
        except KeyboardInterrupt:
            console.print("已中断，正在停止 / interrupted, stopping…")
            return False
        finally:
            stack.stop()
            mail.stop()
            phone.stop()


def _play(console: Console, stack: Stack, timeout: float, keep_running: bool, receiver: str,
          wechat: dict[str, str], sinks) -> bool:
    from types import SimpleNamespace

    from launch.app import Resources
    from launch.domain.intake import load_intake
    from launch.app.launches import launch_detail, start_launch
    from launch.app.preflight import add_client
    from launch.app.presentation import progress_percent
    from devtools.simulator import BUMPY, Scenario, Simulator, WeChatPusher

    # This process plays CLI and outside world against the stack's store (apply_env pointed
    # WEAPP_LAUNCH_* at it): its resources are built from those settings, once.
    res = Resources.from_settings()
    intake = load_intake(EXAMPLE)
    client_id, _ = add_client(res, intake, res.now().date())
    started = start_launch(res, client_id)
    launch_id = started["launch_id"]
    console.print(f"上线任务 / launch [bold]{launch_id}[/bold] → {started['url']}")
    console.print("剧本 / story: 备案 材料齐备 → 人脸核身（通知 24 小时）→ 提交 → 初审 → 短信超时 → 重新提交 → 新短信 → "
                  "管局驳回 → 重新提交 → 通过；体验版验收后提审 / filing: materials → face task (24 h notice) → submit → "
                  "first review → SMS timeout → resubmit → new SMS → bureau rejects → resubmit → filed; the client "
                  "accepts the trial version before each review")

    # The bureau answers only once code review has passed, so release must wait for the filing.
    scenario = Scenario(answers=BUMPY, hold={"bureau-review": lambda sim: sim.decided("code-review", "passed")})
    # WeChat's answers travel as real pushes through the receiver; people's through the decision service.
    pusher = WeChatPusher(receiver, wechat["WEAPP_LAUNCH_WECHAT_TOKEN"], wechat["WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY"],
                          wechat["WEAPP_LAUNCH_WECHAT_COMPONENT_APPID"])
    sim = Simulator(launch_id, scenario, pusher=pusher, res=res)
    launch = res.store.get_launch(launch_id)
    # What the progress bar needs of the launch: which path and subject type its plan follows.
    info = SimpleNamespace(registration_path=launch.registration_path,
                           subject_type=res.store.get_client(launch.client_id).subject_type)
    from launch.app.watcher import watch_once

    next_watch = 0.0
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("模拟上线 / simulated launch", total=100)
        while time.monotonic() < deadline:
            seen = len(sim.answered)
            sim.tick()
            for gate, attempt, result in sim.answered[seen:]:
                how = "微信推送 / WeChat push" if result == "pushed" else result.message
                bar.console.print(f"  {gate} #{attempt}: {how}")
            if time.monotonic() >= next_watch:
                report = watch_once(res)  # the deadline watcher's pass: alerts enqueued, sent, repairs
                for sent in report.sent:
                    rung = sent.dedupe_key.split(":", 1)[-1]
                    bar.console.print(f"  ✉ 提醒 / alert {rung} → {', '.join(sent.channels)}")
                next_watch = time.monotonic() + 3
            steps = res.store.steps_for(launch_id)
            released = sim.released()
            bar.update(task, completed=progress_percent(info, steps, res.catalogue, released))
            if released:
                break
            time.sleep(0.5)
    watch_once(res)  # a last pass, so the alerts of the final gates go out too
    detail = launch_detail(res, launch_id)
    _summary(console, detail)
    _filing_order(console, res, launch_id)
    mail, phone = sinks
    console.print(f"告警 / alerts: {mail.count} 封邮件 / mails → {mail.log}；{phone.count} 条手机通知 / phone "
                  f"messages → {phone.log}")
    ok = detail["status"] == "released"
    console.print(("[green]已发布上线 / released[/green]" if ok else "[red]未在时限内完成 / did not finish in time[/red]")
                  + f" — 在 Prefect UI 查看 / see it in the Prefect UI: {detail['url']}")
    if keep_running and ok:
        console.print("服务仍在运行，按 Ctrl-C 停止 / the stack keeps running; Ctrl-C stops it")
        while True:
            time.sleep(3600)
    return ok


def _summary(console: Console, detail: dict) -> None:
    from launch.app.presentation import launch_detail_tables

    for table in launch_detail_tables(detail, f"步骤 / steps — {detail['client']} 「{detail['mini_program']}」"):
        console.print(table)


def filing_order(steps: list, catalogue) -> list[str]:
    """The filing branch's steps in the order they opened: ``gate#attempt (outcome)``."""
    filing = [s for s in steps if s.step in catalogue.gates and catalogue.gates[s.step].phase == "filing"]
    filing.sort(key=lambda s: (s.started_at, s.step, s.attempt))
    return [f"{s.step}#{s.attempt}" + (f" ({s.outcome})" if s.outcome else "") for s in filing]


def _filing_order(console: Console, res, launch_id: str) -> None:
    order = filing_order(res.store.steps_for(launch_id), res.catalogue)
    console.print("备案顺序 / filing order: " + " → ".join(order))


def run_up(home: Path) -> bool:
    """`weapp-launch up`: the same stack for real use — no simulator, kept until Ctrl-C or SIGTERM.

    Prefect's home and database stay in <home>/stack between runs; WeChat and alert
    settings come from the environment (WEAPP_LAUNCH_*). The Prefect server listens on
    127.0.0.1:WEAPP_LAUNCH_PREFECT_PORT (a busy port raises PortBusy: never a silent move)
    with the auth string of <home>/prefect-auth; a port left in TIME_WAIT by the previous `up`
    is free (the probe binds with SO_REUSEADDR, as the server does), so a restart keeps it.
    Once everything is up, <home>/stack.json records the URLs and this pid for every CLI; it
    is marked stopped on exit. Ctrl-C, SIGTERM and SIGHUP stop every process it started.
    False if one of them died on its own.
    """
    import sys

    from launch.settings import get_settings

    console = Console(width=None if sys.stdout.isatty() else 160)
    settings = get_settings()
    ensure_port_free(settings.prefect_port, "WEAPP_LAUNCH_PREFECT_PORT")
    if settings.wechat_token is not None:
        ensure_port_free(settings.api_port, "WEAPP_LAUNCH_API_PORT", host=settings.api_host)
    # Our store stays where every other weapp-launch command looks for it (WEAPP_LAUNCH_HOME).
    stack = Stack((home / "stack").resolve(), port=settings.prefect_port, weapp_home=home, poll_seconds=5)
    stack.env.setdefault("WEAPP_LAUNCH_API_PORT", str(settings.api_port))
    with _signals_stop():
        try:
            with console.status("启动 Prefect 服务器 / starting the Prefect server…"):
                stack.start_server()
            stack.apply_env()
            with console.status("部署流程 / serving the deployments…"):
                stack.start_runner()
            receiver = None
            if settings.wechat_token is not None:
                with console.status("启动回调接收服务 / starting the callback receiver…"):
                    stack.start_api()
                host = settings.api_host if settings.api_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
                receiver = f"http://{host}:{settings.api_port}"
            # Every weapp-launch with this WEAPP_LAUNCH_HOME finds the stack here, without an export.
            stack_file = stack.record(receiver)
            console.print(f"Prefect UI:   {stack.ui_url}")
            console.print(f"Prefect API:  {stack.api_url}  (需要认证 / basic auth; CORS: {stack.ui_url} only; CSRF on)")
            console.print(f"auth string:  {stack.auth_file}  (UI 登录时输入其内容 / paste its content at the UI's "
                          "login prompt once)")
            console.print(f"CLI:          同一 WEAPP_LAUNCH_HOME 下的 weapp-launch 自动使用它 / weapp-launch with the same "
                          f"WEAPP_LAUNCH_HOME ({home}) uses it; other tools: PREFECT_API_URL={stack.api_url} and "
                          "PREFECT_API_AUTH_STRING from that file")
            console.print(f"receiver:     {receiver or '未启动：未设置 WEAPP_LAUNCH_WECHAT_TOKEN / not started: no WeChat token set'}")
            console.print(f"stack file:   {stack_file}  (地址与进程 / URLs and pid, for every CLI)")
            console.print(f"logs:         {stack.base}")
            console.print("按 Ctrl-C 停止 / Ctrl-C stops everything")
            sys.stdout.flush()
            while all(p is None or p.poll() is None for p in (stack.server, stack.runner, stack.api)):
                time.sleep(2)
            console.print("[red]有进程退出，正在停止 / a process exited; stopping[/red]")
            return False
        except KeyboardInterrupt:
            console.print("正在停止 / stopping…")
            return True
        finally:
            stack.stop()
            stack.mark_stopped()
            console.print("已停止 / stopped")
