"""The platform client against the local WeChat stand-in (devtools/wechat_standin, a real HTTP
server): authorisation, token expiry in the middle of calls, busy and rate limits retried,
85009 not retried, release with {} only, ICP hints, one refresher across two processes."""

from __future__ import annotations

import inspect
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.fernet import Fernet

from launch.store import Store
from launch.wechat.platform.auth import AuthApi
from launch.wechat.platform.code import CodeApi, CommitRequest, SubmitAuditRequest
from launch.wechat.platform.errors import (
    IcpFilingRejected,
    RateLimited,
    ReleaseError,
    ReviewError,
    WeChatBusy,
)
from launch.wechat.platform.icp import ApplyIcpFilingRequest, IcpApi, map_hints
from launch.wechat.platform.tokens import NoVerifyTicket, PlatformTokens, remember_ticket
from tests.support.standin import COMPONENT_APPID, SECRET

KEY = Fernet.generate_key()
INDEX = b"i" * 32


class Platform:
    """One 'process': its store, http client, tokens and APIs, with recorded backoff sleeps."""

    def __init__(self, standin, db_url: str, **client_options):
        self.store = Store(db_url, KEY, INDEX)
        self.http = httpx.Client(timeout=10)
        self.sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            time.sleep(seconds)

        self.tokens = PlatformTokens(
            self.store, component_appid=COMPONENT_APPID, component_secret=SECRET, base_url=standin.url,
            http=self.http, sleep=sleep, poll_seconds=0.02,
            client_options={"backoff": 0.05, "max_backoff": 0.4, **client_options},
        )
        self.client = self.tokens.client
        self.auth = AuthApi(self.tokens)
        self.code = CodeApi(self.client)
        self.icp = IcpApi(self.client)

    def close(self) -> None:
        self.http.close()
        self.store.close()


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def platform(standin, db):
    p = Platform(standin, db)
    yield p
    p.close()


def authorise(standin, p: Platform) -> str:
    """The whole authorisation: ticket pushed -> pre-auth code -> the admin consents -> callback."""
    remember_ticket(p.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    pre = p.auth.create_preauthcode()
    link = p.auth.authorization_link(pre.pre_auth_code, "https://agency.example/wechat/authorized")
    assert link.startswith("https://mp.weixin.qq.com/cgi-bin/componentloginpage?") and "auth_type=2" in link
    consent = standin.control("authorize", pre_auth_code=pre.pre_auth_code)
    info = p.auth.query_auth(consent["auth_code"])
    assert "refresh" not in repr(info).lower() or "authorizer_refresh_token=" not in repr(info)
    return info.authorizer_appid


def commit(p: Platform, appid: str, version: str = "1.0.0") -> None:
    p.code.commit(appid, CommitRequest(template_id=1, ext_json={"extAppid": appid}, user_version=version,
                                       user_desc="第一版"))


def test_no_ticket_no_token(platform):
    with pytest.raises(NoVerifyTicket):
        platform.tokens.component_token()


def test_authorisation_stores_encrypted_tokens(standin, platform):
    appid = authorise(standin, platform)
    state = platform.store.authorizer_state(appid)
    assert state.refresh_token.startswith("refreshtoken@@@") and state.token
    assert 18 in state.func_info
    assert standin.calls("/cgi-bin/component/api_component_token") == 1


def test_an_unexchanged_authorisation_is_recovered_from_wechats_list(standin, platform):
    """A consent whose auth code was never exchanged: recover() pages through
    api_get_authorizer_list, stores the refresh token (encrypted) and the permission sets from
    api_get_authorizer_info, and the account's calls work; an account WeChat does not list is
    not invented."""
    remember_ticket(platform.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    for _ in range(2):
        standin.control("authorize", push=False)  # other clients, listed first
    lost = standin.control("authorize", push=False, func_scopes=[18, 156, 30])
    assert platform.auth.recover(lost["appid"], page=1) is True
    assert standin.calls("/cgi-bin/component/api_get_authorizer_list") == 3  # page by page, to the third
    state = platform.store.authorizer_state(lost["appid"])
    assert state.refresh_token.startswith("refreshtoken@@@") and state.func_info == [18, 30, 156]
    commit(platform, lost["appid"])  # its token comes from the recovered refresh token
    assert standin.calls("/cgi-bin/component/api_authorizer_token") == 1
    assert platform.auth.recover("wx00000000000000ff", page=2) is False
    assert platform.store.authorizer_state("wx00000000000000ff") is None


def test_token_expiry_mid_launch_refreshes_once(standin, platform):
    appid = authorise(standin, platform)
    commit(platform, appid)
    standin.control("expire_tokens", appid=appid, kind="authorizer")
    commit(platform, appid, "1.0.1")  # 42001 -> one refresh -> success
    assert standin.calls("/cgi-bin/component/api_authorizer_token") == 1
    assert standin.calls("/wxa/commit") == 3  # ok, 42001 (no appid: the token was refused), ok
    assert platform.sleeps == []  # a token refresh is not a backoff
    # every token expired at once: the authorizer refresh meets 42001 on the component token too
    standin.control("expire_tokens")
    commit(platform, appid, "1.0.2")
    assert standin.calls("/cgi-bin/component/api_component_token") == 2
    # the authorizer refresh: refused once (42001 on the component token), then answered
    assert standin.calls("/cgi-bin/component/api_authorizer_token") == 3
    assert len(standin.standin.calls_to("/cgi-bin/component/api_authorizer_token", ok=True)) == 2


def test_busy_retried_then_success_and_bounded(standin, platform):
    appid = authorise(standin, platform)
    standin.control("fail", path="/wxa/commit", errcode=-1, count=2)
    commit(platform, appid)
    assert standin.calls("/wxa/commit", appid) == 3
    assert platform.sleeps == [0.05, 0.1]
    standin.control("fail", path="/wxa/commit", errcode=-1, count=10)
    with pytest.raises(WeChatBusy):
        commit(platform, appid)
    assert standin.calls("/wxa/commit", appid) == 3 + 4  # the first try and three retries


@pytest.mark.parametrize("errcode", [45011, 45009])
def test_rate_limits_retried_then_success(standin, platform, errcode):
    appid = authorise(standin, platform)
    standin.control("rate_limit", path="/wxa/commit", calls=1, window=0.12, errcode=errcode)
    commit(platform, appid)
    commit(platform, appid, "1.0.1")  # over the limit: backoff until the window has passed
    assert platform.sleeps and sum(platform.sleeps) >= 0.1
    standin.control("rate_limit", path="/wxa/commit", calls=1, window=60, errcode=errcode)
    with pytest.raises(RateLimited) as caught:
        commit(platform, appid, "1.0.2")
    assert caught.value.errcode == errcode


def test_review_in_progress_is_not_retried(standin, platform):
    appid = authorise(standin, platform)
    commit(platform, appid)
    auditid = platform.code.submit_audit(appid, SubmitAuditRequest(version_desc="首次提审"))
    assert auditid > 0
    with pytest.raises(ReviewError) as caught:
        platform.code.submit_audit(appid, SubmitAuditRequest(version_desc="again"))
    assert caught.value.errcode == 85009 and "审核中" in caught.value.zh
    assert standin.calls("/wxa/submit_audit", appid) == 2 and platform.sleeps == []
    assert platform.code.get_latest_auditstatus(appid).auditid == auditid


def test_release_sends_the_empty_object(standin, platform):
    assert list(inspect.signature(CodeApi.release).parameters) == ["self", "appid"]  # no body to get wrong
    appid = authorise(standin, platform)
    commit(platform, appid)
    auditid = platform.code.submit_audit(appid, SubmitAuditRequest())
    standin.advance()  # the review finishes (passes by default)
    assert platform.code.get_auditstatus(appid, auditid).status == 0
    token = platform.store.authorizer_state(appid).token
    bare = standin.call("/wxa/release", token, content=b"")  # what an empty body earns
    assert bare["errcode"] == 44002
    platform.code.release(appid)
    with pytest.raises(ReleaseError) as caught:
        platform.code.release(appid)
    assert caught.value.errcode == 85052


def test_icp_hints_are_mapped(standin, platform):
    appid = authorise(standin, platform)
    request = ApplyIcpFilingRequest.model_validate({
        "icp_subject": {"base_info": {"type": 1}, "principal_info": {"name": "张三"}},
        "icp_applets": {
            "base_info": {"service_content_types": [1], "nrlx_details": [{"type": 24}],
                          "comment": "这是一个用于测试备案提示的小程序备注内容"},
            "principal_info": {"name": "张三"},
        },
    })
    with pytest.raises(IcpFilingRejected) as caught:
        platform.icp.apply_icp_filing(appid, request)
    err = caught.value
    assert err.hints and all(h.err_field for h in err.hints)
    mapped = map_hints(err, {"icp_subject": "subject", "icp_applets": "applet"})
    assert set(mapped) <= {"subject", "applet", "icp_materials"} | {h.err_field for h in err.hints}
    assert platform.icp.get_icp_entrance_info(appid).status == 1024


def test_lookups_cached(standin, platform):
    appid = authorise(standin, platform)
    first = platform.icp.service_content_types(appid)
    assert first and platform.icp.service_content_types(appid) == first
    assert standin.calls("/wxa/icp/query_icp_service_content_types") == 1


def test_one_refresh_across_two_processes(standin, db):
    a, b = Platform(standin, db), Platform(standin, db)
    try:
        appid = authorise(standin, a)
        standin.control("expire_tokens", appid=appid, kind="authorizer")
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def work(p: Platform) -> None:
            try:
                barrier.wait()
                p.icp.get_icp_entrance_info(appid)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(p,)) for p in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert standin.calls("/cgi-bin/component/api_authorizer_token") == 1
        assert a.tokens.refreshes + b.tokens.refreshes == 2  # the component token (a) + one authorizer token
    finally:
        a.close()
        b.close()


def test_registration_new_enterprise_call_and_reuse_path(standin, platform):
    from launch.wechat.platform.registration import EnterpriseRegistration, RegistrationApi

    mp_appid = authorise(standin, platform)  # the 公众号 whose qualifications are reused
    reg = RegistrationApi(platform.client, COMPONENT_APPID)
    task = reg.create_enterprise(EnterpriseRegistration(name="某某科技有限公司", code="91440300MA5XXXXX0A",
                                                        component_phone="13800000000"))
    assert task.taskid and task.authorize_url
    assert reg.query_enterprise(task.taskid).taskid == task.taskid
    with pytest.raises(ValueError):
        EnterpriseRegistration(name="x", code="12345", component_phone="1")  # 18-digit credit code only
    link = reg.fastregisterauth_link(mp_appid, "https://agency.example/fastregister")
    assert "copy_wx_verify=1" in link and f"component_appid={COMPONENT_APPID}" in link
    ticket = standin.control("fastregisterauth", appid=mp_appid)["ticket"]
    created = reg.fastregister(mp_appid, ticket)
    assert created.is_wx_verify_succ is True and created.appid != mp_appid
    platform.auth.query_auth(created.authorization_code)
    assert platform.store.authorizer_state(created.appid).refresh_token
