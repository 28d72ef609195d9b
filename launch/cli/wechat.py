"""`weapp-launch wechat …`: the client's mini program and the third-party platform (issue 12).

    weapp-launch wechat authorize <launch-or-client>   the links (and a QR when a QR library is
                                                       installed) the client's admin opens
    weapp-launch wechat status [<launch>]              authorised mini programs, ticket age, token expiry
    weapp-launch wechat rollback <launch> [--yes]      revertcoderelease (asks first)
    weapp-launch wechat qrcode <launch> --out qr.png   the trial version's QR code

Registered by launch/cli/__init__.py (`register(app)`). Needs the store and, except for
`status`, a configured platform (WEAPP_LAUNCH_WECHAT_COMPONENT_APPID / _COMPONENT_SECRET).
Never prints a ticket, a token, a refresh token or the secret: only ages and expiry times.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from launch.cli.common import emit_json, err, fail, out, resources

__all__ = ["register", "wechat_app"]

wechat_app = typer.Typer(no_args_is_help=True,
                         help="WeChat third-party platform: authorisation, status, rollback, trial QR / 微信第三方平台")

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of text.")


def register(app: typer.Typer) -> None:
    app.add_typer(wechat_app, name="wechat")


# ---------------------------------------------------------------- helpers


def _platform(res) -> Any:
    platform = res.wechat
    if platform is None:
        from launch.receiver.routes.platform import missing_settings

        missing = ", ".join(missing_settings(res.settings))
        fail(f"未配置微信第三方平台，缺少设置：{missing} / the WeChat third-party platform is not configured; missing "
             f"settings: {missing}", 2)
    return platform


def _wechat_error(exc: Exception) -> str:
    """A failed platform call in Chinese and English (WeChat's code and message when it answered)."""
    from launch.wechat.platform.errors import WeChatApiError, WeChatTransportError

    if isinstance(exc, WeChatApiError):
        return f"微信拒绝 / WeChat refused: {exc.zh} / {exc.en} (errcode {exc.errcode}: {exc.errmsg})"
    if isinstance(exc, WeChatTransportError):
        return f"{exc.zh} / {exc.en}"
    return str(exc)


def _platform_errors() -> tuple[type[BaseException], ...]:
    from launch.wechat.platform.errors import WeChatApiError, WeChatTransportError
    from launch.wechat.platform.tokens import NotAuthorized, NoVerifyTicket, TokenRefreshTimeout

    return (WeChatApiError, WeChatTransportError, NoVerifyTicket, NotAuthorized, TokenRefreshTimeout)


def _resolve(res, target: str):
    """(launch or None, client or None) for a launch id, a client code or a client id."""
    store = res.store
    launch = store.get_launch(target)
    if launch is not None:
        return launch, store.get_client(launch.client_id)
    client = store.get_client_by_code(target) or store.get_client(target)
    if client is None:
        fail(f"没有这个上线任务或客户：{target} / no launch or client {target!r}", 2)
    running = [lt for lt in store.list_launches(client_id=client.id) if lt.status == "running"]
    return (running[-1] if len(running) == 1 else None), client


def _launch_appid(res, launch_id: str) -> str:
    launch = res.store.get_launch(launch_id)
    if launch is None:
        fail(f"没有这个上线任务：{launch_id} / no launch {launch_id!r}", 2)
    if not launch.appid:
        fail(f"上线任务 {launch_id} 还没有小程序 AppID（尚未注册或尚未授权）/ launch {launch_id} has no mini program "
             "app id yet (not registered or not authorised): run `weapp-launch wechat authorize` first", 2)
    return launch.appid


def _terminal_qr(text: str) -> bool:
    """Print `text` as a QR code when a QR library is installed (none is a dependency)."""
    if importlib.util.find_spec("segno") is not None:
        import segno

        segno.make(text, error="l").terminal(compact=True)
        return True
    if importlib.util.find_spec("qrcode") is not None:
        import qrcode

        qr = qrcode.QRCode(border=1)
        qr.add_data(text)
        qr.print_ascii(invert=True)
        return True
    return False


def _age(res, when) -> str:
    if when is None:
        return "—"
    seconds = int((res.now() - when).total_seconds())
    if seconds < 0:
        return f"in {-seconds // 60} min"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# ---------------------------------------------------------------- commands


@wechat_app.command("authorize")
def authorize(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A launch id, or a client code / id"),
    as_json: bool = JsonOpt,
) -> None:
    """The links the client's admin opens to authorise our platform / 客户管理员授权链接。"""
    from launch.receiver.routes.platform import (REQUIRED_SETS, permission_rows, redirect_uri, signed_state,
                                                start_link)

    res = resources(ctx)
    launch, client = _resolve(res, target)
    platform = _platform(res)
    biz_appid = launch.appid if launch is not None else None
    subject, token = signed_state(res, launch.id if launch is not None else None)
    start, back = start_link(res, subject, token), redirect_uri(res, subject, token)
    try:
        pre = platform.auth.create_preauthcode()
    except _platform_errors() as exc:
        fail(_wechat_error(exc), 1, as_json)
    pc = platform.auth.authorization_link(pre.pre_auth_code, back, biz_appid=biz_appid)
    mobile = platform.auth.authorization_link(pre.pre_auth_code, back, mobile=True, biz_appid=biz_appid)
    minutes = max(1, pre.expires_in // 60)
    if as_json:
        emit_json({"ok": True, "launch_id": launch.id if launch else None, "client": client.code if client else None,
                   "biz_appid": biz_appid, "start_page": start, "pc_link": pc, "mobile_link": mobile,
                   "expires_in": pre.expires_in, "redirect_uri": back})
        return
    who = f"{client.mini_program_name}（{client.code}）" if client else target
    out.print(f"[bold]授权第三方平台 / Authorise our platform[/bold] — {escape(who)}"
              + (f", launch {launch.id}" if launch else "") + (f", AppID {biz_appid}" if biz_appid else ""))
    out.print("请把下面的链接发给客户小程序的[bold]管理员[/bold] / Send these to the [bold]administrator[/bold] of the "
              "client's mini program:")
    out.print("\n[bold]电脑 / On a computer[/bold]: 打开此页面，点击按钮，用管理员微信扫码并确认授权 / open this page, "
              "click the button, scan with the administrator's WeChat and confirm:")
    out.print(start, soft_wrap=True, markup=False)
    out.print("\n[bold]手机 / On a phone[/bold]: 在微信中打开此链接（或扫描下方二维码）并确认授权 / open this link inside "
              f"WeChat (or scan the QR code below) and confirm — valid {minutes} min:")
    out.print(mobile, soft_wrap=True, markup=False)
    if not _terminal_qr(mobile):
        out.print("（未安装二维码库，请直接发送链接 / no QR library installed: send the link itself）")
    required = "、".join(f"{zh}（{i}）" for i, zh, _ in permission_rows(REQUIRED_SETS))
    required_en = ", ".join(f"{en} ({i})" for i, _, en in permission_rows(REQUIRED_SETS))
    out.print(f"\n须勾选的权限 / permissions to keep ticked: {required} / {required_en}")
    out.print("授权后微信把管理员带回 / after consenting WeChat sends the admin back to "
              f"{back.rsplit('/', 2)[0]}/…, which stores the authorisation; check with `weapp-launch wechat status`.")
    out.print("[dim]微信授权页（须从上面的电脑页面打开，直接输入地址会被微信拒绝）/ WeChat's page itself (open it "
              "through the computer page above; WeChat refuses it typed into the address bar):[/dim]")
    out.print(pc, soft_wrap=True, markup=False, style="dim")


@wechat_app.command("status")
def status(
    ctx: typer.Context,
    launch_id: Optional[str] = typer.Argument(None, help="Only this launch's mini program"),
    as_json: bool = JsonOpt,
) -> None:
    """Authorised mini programs, the ticket's age and token expiry (never their values) / 授权状态。"""
    from launch.receiver.routes.platform import REQUIRED_SETS, missing_settings, permission_rows
    from launch.wechat.platform.platform import platform_configured

    res = resources(ctx)
    store = res.store
    configured = platform_configured(res.settings)
    component = store.component_state()
    if launch_id is not None:
        launch = store.get_launch(launch_id)
        if launch is None:
            fail(f"没有这个上线任务：{launch_id} / no launch {launch_id!r}", 2, as_json)
        appids = [launch.appid] if launch.appid else []
    else:
        appids = store.authorizer_appids(include_revoked=True)
    rows = []
    for appid in appids:
        st = store.authorizer_state(appid)
        found = store.find_launch_by_appid(appid)
        rows.append({
            "appid": appid,
            "authorized": st is not None and st.revoked_at is None,
            "authorized_at": res.local(st.authorized_at) if st else None,
            "revoked_at": res.local(st.revoked_at) if st and st.revoked_at else None,
            "permission_sets": st.func_info if st else [],
            "missing_permission_sets": [i for i in REQUIRED_SETS if not st or i not in st.func_info],
            "token_expires_at": res.local(st.token_expires_at) if st and st.token_expires_at else None,
            "launch_id": found.id if found else None,
        })
    data = {
        "configured": configured,
        "missing_settings": missing_settings(res.settings),
        "component_appid": res.settings.wechat_component_appid,
        "ticket_received_at": res.local(component.ticket_at) if component and component.ticket_at else None,
        "ticket_age": _age(res, component.ticket_at) if component and component.ticket_at else None,
        "component_token_expires_at": (res.local(component.token_expires_at)
                                       if component and component.token_expires_at else None),
        "authorizers": rows,
    }
    if as_json:
        emit_json(data)
        return
    if configured:
        out.print(f"第三方平台 / platform: {escape(res.settings.wechat_component_appid or '')}")
    else:
        out.print("[yellow]未配置第三方平台，微信侧步骤保持人工 / no platform configured: WeChat-side steps stay manual "
                  f"(missing: {', '.join(data['missing_settings'])})[/yellow]")
    if data["ticket_received_at"]:
        out.print(f"component_verify_ticket: 收到于 / received {data['ticket_received_at']} "
                  f"({data['ticket_age']} ago; WeChat pushes one every 10 min, valid 12 h)")
    else:
        out.print("component_verify_ticket: 尚未收到 / none received yet (WeChat pushes one every 10 minutes to "
                  "/wechat/auth)")
    out.print("component_access_token: " + (f"到期 / expires {data['component_token_expires_at']}"
                                             if data["component_token_expires_at"] else "— (none yet)"))
    if not rows:
        msg = ("该上线任务还没有小程序 AppID / this launch has no mini program app id yet" if launch_id
               else "还没有已授权的小程序 / no mini program has authorised the platform yet")
        out.print(msg + " — `weapp-launch wechat authorize <launch-or-client>`")
        return
    table = Table("AppID", "授权 / authorised", "权限集 / permission sets", "token 到期 / expires", "launch")
    for r in rows:
        state = r["authorized_at"] if r["authorized"] else (
            f"[red]已取消 / withdrawn {r['revoked_at']}[/red]" if r["revoked_at"] else "[red]未授权 / not authorised[/red]")
        sets = ", ".join(f"{i} {zh}" for i, zh, _ in permission_rows(r["permission_sets"])) or "—"
        if r["authorized"] and r["missing_permission_sets"]:
            sets += f" [red](缺 / missing {', '.join(map(str, r['missing_permission_sets']))})[/red]"
        table.add_row(r["appid"], state, sets, r["token_expires_at"] or "—", r["launch_id"] or "—")
    out.print(table)


@wechat_app.command("rollback")
def rollback(
    ctx: typer.Context,
    launch_id: str = typer.Argument(..., help="The launch whose mini program goes back to its previous release"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    as_json: bool = JsonOpt,
) -> None:
    """Roll the live version back to the previous release (revertcoderelease) / 版本回退。"""
    res = resources(ctx)
    appid = _launch_appid(res, launch_id)
    platform = _platform(res)
    if not yes:
        confirmed = typer.confirm(
            f"把小程序 {appid} 的线上版本回退到上一个版本？/ Roll mini program {appid} back to its previous release?",
            default=False)
        if not confirmed:
            err.print("未回退 / not rolled back")
            raise typer.Exit(1)
    try:
        platform.code.revertcoderelease(appid)
    except _platform_errors() as exc:
        fail(_wechat_error(exc), 1, as_json, appid=appid)
    if as_json:
        emit_json({"ok": True, "launch_id": launch_id, "appid": appid})
        return
    out.print(f"[green]已回退 / rolled back[/green]: {appid} 线上版本回到上一个版本 / is live on its previous release")


@wechat_app.command("qrcode")
def qrcode_cmd(
    ctx: typer.Context,
    launch_id: str = typer.Argument(..., help="The launch whose trial version to show"),
    out_path: Path = typer.Option(Path("trial-qrcode.png"), "--out", "-o", help="Where to write the image"),
    path: Optional[str] = typer.Option(None, "--path", help="Page to open, e.g. pages/index/index?x=1"),
) -> None:
    """The trial version's QR code (for the client's trial acceptance) / 体验版二维码。"""
    res = resources(ctx)
    appid = _launch_appid(res, launch_id)
    platform = _platform(res)
    try:
        image = platform.code.get_qrcode(appid, path)
    except _platform_errors() as exc:
        fail(_wechat_error(exc), 1)
    out_path.write_bytes(image)
    out.print(f"体验版二维码 / trial QR code: {out_path} ({len(image)} bytes) — 体验者须已添加为体验成员 / testers "
              "must be added as trial members")
