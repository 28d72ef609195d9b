"""`weapp-launch demo`: the whole product on one machine, with a simulated outside world.

Starts a local Prefect server on SQLite (home inside the project's working folder),
serves every deployment, starts the receiver, registers the example client and starts its
launch.

By default WeChat is the local stand-in (devtools.wechat_standin, real HTTP beside the
stack) and the tool operates it as a third-party platform: the example client registers on
the platform's path (platform_fast_registration): the tool creates WeChat's registration
task, the legal person opens the link, WeChat pushes the new app id with an auth code that
authorises the platform; the 认证 is asked of WeChat (getaccountbasicinfo); the tool creates
the face-check task, files, submits for review (with feedback on the resubmission) and
releases by itself; the bureau's approval comes with the filing number the tool asks of WeChat
(get_online_icp_order); WeChat's results arrive as the stand-in's signed pushes; one push (the
first code-review result) is dropped on purpose and the watcher's poll of WeChat's API
recovers it. The simulator answers only what people do (client, staff, designers,
developers); the legal person's authorisation, the admin's face check, the principal's 12381
SMS and WeChat's and the bureau's reviewers act on the stand-in. At the end a table says who
decided every step: the tool itself, WeChat's push, the tool asking WeChat, or a person; the same
record (with WeChat's own call and push logs) is written to <home>/demo/demo-record.json, which
tests/e2e checks.

`--manual` (`run_demo(manual=True)`): no platform, every gate manual as for an agency
working in the console by hand; the simulator plays staff, client, WeChat (pushes it makes
itself), MIIT and the bureau — one design rework, one SMS timeout, one bureau rejection and
one review failure on the way.

The filing runs in WeChat's order (materials ready → face task → submission → first review
→ SMS → bureau); the client accepts the trial version before each 提审. At the end the
filing's order is printed as it happened. Ctrl-C stops every process.
"""

from __future__ import annotations

import json
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


# The watcher asks WeChat about a gate whose push has not come after this long (the demo's
# compressed time; 1800 s in real use).
RECONCILE_SECONDS = 15
# Second-level service content types the stand-in's look-up lists (devtools/wechat_standin/lookups.py).
STANDIN_SERVICE_TYPES = ["点餐", "会员服务"]
# The platform's contact phone the registration call needs (a sample value; an agency's own in use).
DEMO_PLATFORM_PHONE = "020-88886666"


def _start_standin(wechat: dict[str, str]):
    """The WeChat stand-in on a free loopback port (a thread of this process), pushing to the
    demo's receiver with the receiver's token, AES key and component app id. Returns it and the
    settings the stack's processes need to call it as their platform."""
    import secrets

    from devtools.wechat_standin import StandinConfig, start_in_thread

    secret = secrets.token_hex(16)
    config = StandinConfig(
        component_appid=wechat["WEAPP_LAUNCH_WECHAT_COMPONENT_APPID"], component_appsecret=secret,
        token=wechat["WEAPP_LAUNCH_WECHAT_TOKEN"], encoding_aes_key=wechat["WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY"],
        receiver_url=wechat["WEAPP_LAUNCH_PUBLIC_URL"],
        ticket_every=None,  # one ticket once the receiver is up (WeChat: every 10 minutes, valid 12 h)
        review_seconds=3.0, filing_seconds=2.0, face_seconds=1.0, push_retry_delay=1.0,
        register_seconds=10 ** 7,  # a registration waits for the legal person (OnWeChat plays them)
    )
    running = start_in_thread(config)
    env = {"WEAPP_LAUNCH_WECHAT_COMPONENT_SECRET": secret, "WEAPP_LAUNCH_WECHAT_API_BASE": running.url,
           "WEAPP_LAUNCH_WECHAT_RECONCILE_SECONDS": str(RECONCILE_SECONDS)}
    return running, env


def _client_files(home: Path, intake) -> None:
    """The client's scanned documents and avatar, where the tool's filing application and profile
    action read them (the example names paths under the agency's home): small fictional sample
    files."""
    from devtools.wechat_standin.app import QR_PNG

    files = [doc.file for doc in intake.documents]
    files.append(intake.mini_program.avatar)  # the avatar the tool sets (mini-program-profile)
    for file in files:
        if file and not Path(file).is_absolute():
            path = home / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"%PDF-1.4\n% sample\n%%EOF\n" if path.suffix.lower() == ".pdf" else QR_PNG)


def run_demo(home: Path, keep_running: bool, timeout: float = 900, manual: bool = False) -> bool:
    """The demo against the WeChat stand-in, or (`manual`) with every gate manual."""
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
    standin = None
    with _signals_stop():
        try:
            if not manual:
                standin, platform_env = _start_standin(wechat)
                stack.env.update(platform_env)  # the runner's flow runs, the receiver and this process
                console.print(f"微信模拟平台 / WeChat stand-in: {standin.url}  (第三方平台接口与推送 / the third-party "
                              "platform's API and pushes)")
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
            if standin is not None:
                import httpx

                # WeChat pushes the component_verify_ticket; the receiver keeps it for the platform's tokens.
                httpx.post(standin.url + "/_standin/ticket", timeout=30).raise_for_status()
            return _play(console, stack, timeout, keep_running, receiver, wechat, (mail, phone), standin)
        except KeyboardInterrupt:
            console.print("已中断，正在停止 / interrupted, stopping…")
            return False
        finally:
            stack.stop()
            if standin is not None:
                standin.stop()
            mail.stop()
            phone.stop()


def _play(console: Console, stack: Stack, timeout: float, keep_running: bool, receiver: str,
          wechat: dict[str, str], sinks, standin=None) -> bool:
    from types import SimpleNamespace

    from launch.app import Resources
    from launch.domain.intake import load_intake
    from launch.app.launches import launch_detail, start_launch
    from launch.app.preflight import add_client
    from launch.app.presentation import progress_percent
    from devtools.simulator import BUMPY, PEOPLE, OnWeChat, Scenario, Simulator, WeChatPusher

    # This process plays CLI and outside world against the stack's store (apply_env pointed
    # WEAPP_LAUNCH_* at it): its resources are built from those settings, once.
    res = Resources.from_settings()
    intake = load_intake(EXAMPLE)
    if standin is not None:
        _client_files(Path(res.settings.home), intake)  # the filing application uploads them
        # The tool files with WeChat's own service content types (its look-up, matched by name);
        # the stand-in's look-up lists only a few, so the example client picks two of those.
        mp = intake.mini_program.model_copy(update={"service_types": STANDIN_SERVICE_TYPES})
        # With a platform the tool registers the mini program itself (the legal person authorises).
        from launch.domain.intake import Intake

        data = intake.model_copy(update={"mini_program": mp}).model_dump(mode="json")
        data["registration"] = {"path": "platform_fast_registration", "component_phone": DEMO_PLATFORM_PHONE}
        intake = Intake.model_validate(data)
    client_id, _ = add_client(res, intake, res.now().date())
    started = start_launch(res, client_id)
    launch_id = started["launch_id"]
    console.print(f"上线任务 / launch [bold]{launch_id}[/bold] → {started['url']}")
    on_wechat = None
    if standin is None:
        console.print("剧本 / story: 备案 材料齐备 → 人脸核身（通知 24 小时）→ 提交 → 初审 → 短信超时 → 重新提交 → 新短信 → "
                      "管局驳回 → 重新提交 → 通过；体验版验收后提审 / filing: materials → face task (24 h notice) → submit "
                      "→ first review → SMS timeout → resubmit → new SMS → bureau rejects → resubmit → filed; the client "
                      "accepts the trial version before each review")
        # The bureau answers only once code review has passed, so release must wait for the filing.
        scenario = Scenario(answers=BUMPY, hold={"bureau-review": lambda sim: sim.decided("code-review", "passed")})
        # WeChat's answers travel as real pushes through the receiver; people's through the decision service.
        pusher = WeChatPusher(receiver, wechat["WEAPP_LAUNCH_WECHAT_TOKEN"],
                              wechat["WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY"], wechat["WEAPP_LAUNCH_WECHAT_COMPONENT_APPID"])
        sim = Simulator(launch_id, scenario, pusher=pusher, res=res)
    else:
        console.print("剧本 / story: 工具向微信发起代注册，法人打开授权链接后微信推送新 AppID 并授权平台；认证结果向微信查询；"
                      "工具自己发起人脸核身、提交备案、提审（重新提审附说明）与发布；管局驳回一次，通过后备案号向微信查询；"
                      "首次代码审核未通过，其推送被故意丢弃，由巡检向微信查询补回 / the tool registers the mini program "
                      "through WeChat; once the legal person opens the link WeChat pushes the new app id and authorises "
                      "the platform; the 认证 is asked of WeChat; the tool creates the face-check task, files, submits "
                      "for review (with feedback on the resubmission) and releases by itself; the bureau rejects once, "
                      "and its approval's filing number is asked of WeChat; the first code review fails and its push "
                      "is dropped on purpose: the watcher's poll of WeChat recovers it")
        on_wechat = OnWeChat(res, launch_id, standin.url)
        sim = Simulator(launch_id, Scenario(answers=PEOPLE), res=res, wechat=on_wechat)
    seen_decisions: set[int] = set()
    seen_log = 0
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
            if on_wechat is None:
                for gate, attempt, result in sim.answered[seen:]:
                    how = "微信推送 / WeChat push" if result == "pushed" else result.message
                    bar.console.print(f"  {gate} #{attempt}: {how}")
            else:
                for gate, attempt, who, what in on_wechat.log[seen_log:]:
                    bar.console.print(f"  · {who}: {what}  [{gate} #{attempt}]")
                seen_log = len(on_wechat.log)
                for d in res.store.history(launch_id):
                    if d.id not in seen_decisions:
                        seen_decisions.add(d.id)
                        bar.console.print(f"  {d.gate} #{d.attempt}: {d.outcome} — {_who(d, res.catalogue)[0]}")
            if time.monotonic() >= next_watch:
                report = watch_once(res)  # the deadline watcher's pass: alerts enqueued, sent, repairs
                for sent in report.sent:
                    rung = sent.dedupe_key.split(":", 1)[-1]
                    bar.console.print(f"  ✉ 提醒 / alert {rung} → {', '.join(sent.channels)}")
                for repaired in report.repaired:
                    if repaired.kind == "reconcile":
                        bar.console.print(f"  ⟳ 巡检 / watcher: {repaired.detail}")
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
    ok = detail["status"] == "released"
    if on_wechat is not None:
        record = who_decided(res, launch_id, on_wechat.calls(), on_wechat.pushes())
        _print_who_decided(console, record)
        on_wechat.close()
        record.update(launch_id=launch_id, released=ok, mails=mail.count, phone_messages=phone.count)
        (stack.base / RECORD_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    console.print(f"告警 / alerts: {mail.count} 封邮件 / mails → {mail.log}；{phone.count} 条手机通知 / phone "
                  f"messages → {phone.log}")
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


def _who(d, catalogue) -> tuple[str, str]:
    """Who decided a step, from its decision's channel: (label, kind) with kind one of
    tool (the tool's own API call), push (WeChat's push), poll (the tool asked WeChat's API),
    person (the simulator, playing a person), other."""
    from launch.app.wechat_actions import ACTOR

    if d.channel == "wechat-api":
        if (d.payload.get("decided_by") or d.actor) == ACTOR:
            action = catalogue.gates[d.gate].action
            return f"工具自己 / the tool itself ({action})", "tool"
        return "工具向微信查询 / the tool asked WeChat (watcher's poll)", "poll"
    if d.channel == "wechat":
        return "微信推送 / WeChat's push", "push"
    if d.channel == "simulator":
        actor_id = catalogue.gates[d.gate].actor
        actor = catalogue.actors[actor_id]
        if actor_id in ("wechat", "bureau"):  # WeChat's or the bureau's result, entered by staff
            return f"人 / a person: 运营登记{actor.name_zh}结果 / staff enter {actor.name_en}'s result", "person"
        return f"人 / a person: {actor.name_zh} / {actor.name_en}", "person"
    return d.channel, "other"


# WeChat's pushes by the gates they decide (launch/wechat/mapping.py).
_PUSH_GATES = {"weapp_audit_success": ("code-review",), "weapp_audit_fail": ("code-review",),
               "notify_icpfiling_verify_result": ("face-verification",),
               "notify_apply_icpfiling_result": ("first-review", "sms-verification", "bureau-review"),
               "notify_third_fasteregister": ("platform-registration",)}


ACTS = ("fastregisterenterpriseweapp", "api_query_auth", "addcategory", "modifysignature", "upload",
        "modifyheadimage", "setnickname", "create_icp_verifytask", "upload_icp_media", "apply_icp_filing",
        "submit_audit", "release")
POLLS = ("get_latest_auditstatus", "get_icp_entrance_info", "query_icp_verifytask", "get_online_icp_order",
         "getaccountbasicinfo", "getallcategories", "getcategory", "checkwxverifynickname", "api_wxa_querynickname")
RECORD_FILE = "demo-record.json"  # beside the stack's logs: what the printout says, for a test or a script


def who_decided(res, launch_id: str, calls: list[dict], pushes: list[dict]) -> dict:
    """What happened on WeChat's side of one launch, from the store and the stand-in's own logs
    (``calls``, ``pushes``): per decision who made it (tool, push, poll, person) with a note, the
    WeChat calls the tool made and how often (WeChat's errcode 0 only; the developers' /wxa/commit
    aside), the calls WeChat refused (by errcode), which dropped push was recovered by the
    watcher's poll, and the WeChat-side steps a person entered."""
    catalogue = res.catalogue
    dropped = [p for p in pushes if p["status"] == "dropped"]
    unmatched = list(dropped)
    history = sorted(res.store.history(launch_id), key=lambda d: (d.decided_at, d.id))
    rows: list[dict] = []
    counts: dict[str, int] = {}
    recovered: list[dict] = []
    for d in history:
        label, kind = _who(d, catalogue)
        counts[kind] = counts.get(kind, 0) + 1
        note = ""
        if kind == "poll":
            lost = [p for p in unmatched if d.gate in _PUSH_GATES.get(p["kind"], ())]
            if lost:
                p = lost[0]
                note = f"推送 {p['kind']} #{p['id']} 被故意丢弃，巡检补回 / push {p['kind']} #{p['id']} dropped on purpose; recovered"
                recovered.append({"push": p["kind"], "id": p["id"], "gate": d.gate, "attempt": d.attempt,
                                  "outcome": d.outcome})
                unmatched.remove(p)
            elif d.gate == "sms-verification":
                note = "短信结果无推送，查询 get_icp_entrance_info / no push carries the SMS result"
            elif d.gate == "wechat-verification":
                note = "认证结果向微信查询 getaccountbasicinfo / the 认证 asked of WeChat (getaccountbasicinfo)"
        if d.gate == "bureau-review" and d.outcome == "approved" and kind in ("push", "poll"):
            note = (f"备案号 {d.payload.get('filing_number')} 由工具向微信查询（get_online_icp_order）/ the filing number "
                    "asked of WeChat (get_online_icp_order)")
        elif kind == "push" and d.gate == "platform-registration" and d.outcome == "registered":
            note = ("微信推送新 AppID 与授权码，平台已获授权 / WeChat pushed the new app id and an auth code: the "
                    "platform is authorised")
        elif kind == "person" and d.gate == "wechat-verification":
            note = "认证结果由运营登记 / the 认证 result entered by staff"
        rows.append({"gate": d.gate, "attempt": d.attempt, "outcome": d.outcome, "label": label, "kind": kind,
                     "channel": d.channel, "note": note})
    made: dict[str, int] = {}
    refused: dict[str, list[int]] = {}
    for c in calls:
        name = c["path"].rsplit("/", 1)[-1]
        if c["errcode"] == 0 and c["path"] != "/wxa/commit":
            made[name] = made.get(name, 0) + 1
        elif c["errcode"] != 0:
            refused.setdefault(name, []).append(c["errcode"])
    wechat_side = [f"{d.gate} #{d.attempt}" for d in history if _who(d, catalogue)[1] == "person"
                   and (catalogue.gates[d.gate].actor in ("wechat", "bureau") or catalogue.gates[d.gate].action)]
    return {"decisions": rows, "counts": counts, "calls": made, "refused": refused,
            "dropped": [{"push": p["kind"], "id": p["id"]} for p in dropped], "recovered": recovered,
            "not_recovered": [p["kind"] for p in unmatched], "wechat_side_by_person": wechat_side}


def _print_who_decided(console: Console, record: dict) -> None:
    """Per step, who decided it (channel), what the tool did on WeChat, and the push that was
    dropped and how it was recovered."""
    from rich.table import Table

    table = Table(title="谁决定了每一步 / who decided each step")
    for column in ("步骤 / step", "结果 / outcome", "决定者 / decided by", "渠道 / channel", "说明 / note"):
        table.add_column(column)
    for row in record["decisions"]:
        table.add_row(f"{row['gate']} #{row['attempt']}", row["outcome"], row["label"], row["channel"], row["note"])
    console.print(table)
    calls, counts = record["calls"], record["counts"]
    console.print("工具自己在微信上做的 / what the tool did on WeChat itself: "
                  + ", ".join(f"{k} ×{calls[k]}" for k in ACTS if k in calls)
                  + "；查询 / asked: " + ", ".join(f"{k} ×{calls[k]}" for k in POLLS if k in calls))
    console.print(f"决定 / decisions: 工具自己 / by the tool itself {counts.get('tool', 0)}, 微信推送 / by WeChat's push "
                  f"{counts.get('push', 0)}, 工具向微信查询 / by the tool asking WeChat {counts.get('poll', 0)}, "
                  f"人 / by a person {counts.get('person', 0)}")
    wechat_side = record["wechat_side_by_person"]
    console.print("由人登记的微信侧步骤 / WeChat-side steps entered by a person: "
                  + (", ".join(wechat_side) if wechat_side else "无 / none"))
    recovered = [f"{r['push']} (#{r['id']}) → {r['gate']} #{r['attempt']} {r['outcome']}" for r in record["recovered"]]
    lost = record["not_recovered"]
    console.print("丢弃并补回的推送 / push dropped and recovered: " + ("; ".join(recovered) if recovered else
                  "无 / none") + (f"；未补回 / not recovered: {', '.join(lost)}" if lost else ""))


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
