"""A client connects its mini program to the platform, against the WeChat stand-in over real
HTTP and a receiver on uvicorn in this process: `weapp-launch wechat authorize` → the start
page → WeChat's consent (the stand-in's control API) → GET /wechat/authorized stores the
authorizer encrypted and links the launch; bad, replayed and unknown codes are refused with a
page; `wechat rollback` calls revertcoderelease once and only when confirmed; `wechat status`
prints no secret."""

from __future__ import annotations

import html
import re
import threading
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from launch.app import SystemClock
from launch.cli import app as cli
from launch.store.models import WeChatAuthorizer
from launch.wechat.platform.code import CommitRequest, SubmitAuditRequest
from launch.wechat.platform.tokens import remember_ticket
from tests.support.resources import make_resources
from devtools.stack import free_port
from tests.support.standin import AES_KEY, COMPONENT_APPID, SECRET, TOKEN

APPID = "wx0123456789abcdef"
runner = CliRunner()


class Receiver:
    def __init__(self, res, port: int):
        import uvicorn

        from launch.receiver.app import create_app

        self.res = res
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(res, applier=False), host="127.0.0.1", port=port,
                                                    access_log=False, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="authorisation-receiver", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("receiver did not start")
            time.sleep(0.05)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(15)


def _res(tmp_path, **settings):
    """Resources whose public_url is the receiver's own address (WeChat's redirect_uri), and that port."""
    port = free_port()
    return make_resources(tmp_path / "home", clock=SystemClock(), database_url=f"sqlite:///{tmp_path / 'store.db'}",
                          public_url=f"http://127.0.0.1:{port}", **settings), port


@pytest.fixture
def receiver(tmp_path, standin):
    """A receiver whose platform is the stand-in, a ticket already pushed, and one launch."""
    res, port = _res(tmp_path, wechat_token=TOKEN, wechat_encoding_aes_key=AES_KEY,
                     wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
                     wechat_api_base=standin.url)
    rec = Receiver(res, port)
    remember_ticket(res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    client_id = res.store.add_client("acme", "广州云端咖啡有限公司", "云端咖啡", "广东", "enterprise", "standalone", {})
    rec.launch_id = res.store.create_launch(client_id).id
    yield rec
    rec.close()
    res.close()


def _invoke(res, *args, input: str | None = None):
    return runner.invoke(cli, list(args), obj=res, input=input)


def _consent_link(page: str) -> str:
    """The componentloginpage link of the start page (its button)."""
    m = re.search(r'href="(https://mp\.weixin\.qq\.com/cgi-bin/componentloginpage\?[^"]+)"', page)
    assert m, page
    return html.unescape(m.group(1))


def _authorise(rec: Receiver, standin, appid: str = APPID, func_scopes: list[int] | None = None) -> httpx.Response:
    """The whole round trip as the admin lives it; returns the callback's answer."""
    result = _invoke(rec.res, "wechat", "authorize", rec.launch_id, "--json")
    assert result.exit_code == 0, result.output
    import json

    links = json.loads(result.stdout)
    start = rec.http.get(links["start_page"].removeprefix(rec.url))
    assert start.status_code == 200, start.text
    assert "管理员" in start.text and "administrator" in start.text
    assert 'referrerpolicy="origin"' in start.text  # WeChat checks where the admin came from
    query = parse_qs(urlsplit(_consent_link(start.text)).query)
    assert query["component_appid"] == [COMPONENT_APPID] and query["auth_type"] == ["2"]
    back = query["redirect_uri"][0]
    assert back.startswith(f"{rec.url}/wechat/authorized/{rec.launch_id}/") and "?" not in back
    consent = standin.control("authorize", appid=appid, pre_auth_code=query["pre_auth_code"][0],
                              func_scopes=func_scopes)
    return rec.http.get(back.removeprefix(rec.url), params={"auth_code": consent["auth_code"], "expires_in": 600})


def test_the_authorisation_round_trip_stores_the_authorizer_encrypted(receiver, standin):
    text = _invoke(receiver.res, "wechat", "authorize", receiver.launch_id)
    assert text.exit_code == 0, text.output
    assert "管理员" in text.stdout and "administrator" in text.stdout
    assert "/wechat/authorize?" in text.stdout and "bindcomponent" in text.stdout and "componentloginpage" in text.stdout

    page = _authorise(receiver, standin)
    assert page.status_code == 200, page.text
    assert "授权成功" in page.text and "Authorisation received" in page.text and APPID in page.text
    assert page.headers["content-type"].startswith("text/html")

    store = receiver.res.store
    kept = store.authorizer_state(APPID)
    assert kept is not None and {18, 156} <= set(kept.func_info)
    refresh = standin.standin.world.authorizers[APPID].refresh_token  # what WeChat handed over
    assert refresh.startswith("refreshtoken@@@") and kept.refresh_token == refresh
    with store.session() as s:  # at rest only the sealed form
        row = s.scalar(select(WeChatAuthorizer).where(WeChatAuthorizer.appid == APPID))
        assert refresh not in row.refresh_token_enc and kept.token not in (row.token_enc or "")
    assert store.get_launch(receiver.launch_id).appid == APPID  # the launch now knows its mini program
    assert refresh not in page.text and kept.token not in page.text

    again = receiver.http.get(str(page.request.url).removeprefix(receiver.url))
    assert again.status_code == 409 and "already used" in again.text


def test_bad_auth_codes_are_refused_with_a_page(receiver, standin):
    http = receiver.http
    missing = http.get("/wechat/authorized?expires_in=600")
    assert missing.status_code == 400 and "auth_code" in missing.text and "缺少授权码" in missing.text
    unknown = http.get("/wechat/authorized?auth_code=queryauthcode@@@nosuchcode12345&expires_in=600")
    assert unknown.status_code == 400 and "expired" in unknown.text and "已过期" in unknown.text
    malformed = http.get("/wechat/authorized", params={"auth_code": "<script>alert(1)</script>"})
    assert malformed.status_code == 400 and "<script>" not in malformed.text
    forged = http.get(f"/wechat/authorized/{receiver.launch_id}/k0.forged.sig?auth_code=queryauthcode@@@abcdefgh")
    assert forged.status_code == 400
    start = http.get("/wechat/authorize")
    assert start.status_code == 400 and "authorisation link" in start.text
    for r in (missing, unknown, malformed, forged, start):
        assert r.headers["content-type"].startswith("text/html") and "Traceback" not in r.text
    assert receiver.res.store.authorizer_appids() == []


def test_without_a_platform_the_callback_names_the_missing_settings(tmp_path):
    res, port = _res(tmp_path)
    rec = Receiver(res, port)
    try:
        r = rec.http.get("/wechat/authorized?auth_code=queryauthcode@@@abcdefgh&expires_in=600")
        assert r.status_code == 409
        for name in ("WEAPP_LAUNCH_WECHAT_COMPONENT_APPID", "WEAPP_LAUNCH_WECHAT_COMPONENT_SECRET"):
            assert name in r.text
        cli_answer = _invoke(res, "wechat", "status")
        assert cli_answer.exit_code == 0 and "manual" in cli_answer.stdout
    finally:
        rec.close()
        res.close()


def _release(platform, standin, version: str) -> None:
    platform.code.commit(APPID, CommitRequest(template_id=1, ext_json={"extAppid": APPID}, user_version=version,
                                              user_desc=f"版本 {version}"))
    platform.code.submit_audit(APPID, SubmitAuditRequest(version_desc=version))
    standin.advance(appid=APPID, kind="review")
    platform.code.release(APPID)


def test_rollback_asks_first_and_calls_revertcoderelease_once(receiver, standin):
    assert _authorise(receiver, standin).status_code == 200
    res = receiver.res
    # no previous release: WeChat refuses, the typed error is printed in both languages
    refused = _invoke(res, "wechat", "rollback", receiver.launch_id, "--yes")
    assert refused.exit_code == 1 and "87012" in refused.output and "回退" in refused.output \
        and "rolled back" in refused.output
    assert standin.calls("/wxa/revertcoderelease", APPID) == 1

    _release(res.wechat, standin, "1.0.0")
    _release(res.wechat, standin, "1.0.1")
    declined = _invoke(res, "wechat", "rollback", receiver.launch_id, input="n\n")
    assert declined.exit_code == 1 and "not rolled back" in declined.output
    assert standin.calls("/wxa/revertcoderelease", APPID) == 1  # nothing asked of WeChat

    done = _invoke(res, "wechat", "rollback", receiver.launch_id, input="y\n")
    assert done.exit_code == 0, done.output
    assert "rolled back" in done.stdout
    assert standin.calls("/wxa/revertcoderelease", APPID) == 2


def test_status_prints_no_secret(receiver, standin, tmp_path):
    assert _authorise(receiver, standin).status_code == 200
    res = receiver.res
    qr = _invoke(res, "wechat", "qrcode", receiver.launch_id, "--out", str(tmp_path / "qr.png"))
    assert qr.exit_code == 0, qr.output
    assert (tmp_path / "qr.png").read_bytes().startswith(b"\x89PNG")
    component = res.store.component_state()
    kept = res.store.authorizer_state(APPID)
    secrets = [component.ticket, component.token, kept.token, kept.refresh_token, SECRET, TOKEN, AES_KEY]
    assert all(secrets)
    for args in (("wechat", "status"), ("wechat", "status", "--json"), ("wechat", "status", receiver.launch_id)):
        result = _invoke(res, *args)
        assert result.exit_code == 0, result.output
        assert APPID in result.stdout and "156" in result.stdout
        for secret in secrets:
            assert secret not in result.output
    text = _invoke(res, "wechat", "status").stdout
    assert "component_verify_ticket" in text and "min" in text  # its age, not its value


def test_a_permission_set_left_unticked_is_named_on_the_page_and_in_status(receiver, standin):
    """The admin unticks 30 (basic information): the return page and `wechat status` say so;
    the tool's profile and 认证 poll would otherwise fail with WeChat's permission error."""
    import json

    page = _authorise(receiver, standin, func_scopes=[18, 156])
    assert page.status_code == 200, page.text
    assert "These permissions are missing" in page.text and "小程序基本信息管理" in page.text and "（30）" in page.text
    missing = page.text.split("These permissions are missing", 1)[1].split("</ul>", 1)[0]
    assert missing.count("<li>") == 1  # 30 only: 18 and 156 were granted
    status = _invoke(receiver.res, "wechat", "status", "--json")
    assert status.exit_code == 0, status.output
    [row] = [r for r in json.loads(status.stdout)["authorizers"] if r["appid"] == APPID]
    assert row["missing_permission_sets"] == [30] and row["permission_sets"] == [18, 156]


def test_every_set_ticked_nothing_missing(receiver, standin):
    import json

    page = _authorise(receiver, standin)
    assert page.status_code == 200 and "These permissions are missing" not in page.text
    status = json.loads(_invoke(receiver.res, "wechat", "status", "--json").stdout)
    [row] = [r for r in status["authorizers"] if r["appid"] == APPID]
    assert row["missing_permission_sets"] == []
