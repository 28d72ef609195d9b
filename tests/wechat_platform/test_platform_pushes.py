"""Pushes about the platform itself through a running receiver (real HTTP, the stand-in signs
and encrypts): the component_verify_ticket is kept encrypted for the token life cycle and the
inbox keeps no copy of it; an `unauthorized` push revokes that mini-program's authorisation."""

from __future__ import annotations

import json
import time

from sqlalchemy import text

from tests.support.standin import standin_receiver  # noqa: F401 (fixture)


def _wait(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_pushed_ticket_is_kept_encrypted_and_not_in_the_inbox(standin_receiver):
    ticket = standin_receiver.standin.ticket()  # the stand-in pushes it to the receiver
    store = standin_receiver.res.store
    state = _wait(lambda: store.component_state())
    assert state.ticket == ticket
    with store.engine.connect() as conn:
        raw = " ".join(str(v) for row in conn.execute(text("SELECT * FROM wechat_component")) for v in row)
    inbox = " ".join(json.dumps(r.payload, ensure_ascii=False) for r in standin_receiver.inbox())
    assert ticket not in raw  # encrypted at rest
    assert ticket not in inbox and "component_verify_ticket" in inbox  # acknowledged, no copy kept


def test_an_unauthorized_push_revokes_the_authorisation(standin_receiver):
    import httpx

    from launch.wechat.platform.auth import AuthApi
    from launch.wechat.platform.tokens import PlatformTokens
    from tests.support.standin import COMPONENT_APPID, SECRET

    res = standin_receiver.res
    standin_receiver.standin.ticket()
    _wait(lambda: res.store.component_state())
    with httpx.Client(timeout=10) as http:
        tokens = PlatformTokens(res.store, component_appid=COMPONENT_APPID, component_secret=SECRET,
                                base_url=standin_receiver.standin.url, http=http)
        auth = AuthApi(tokens)
        pre = auth.create_preauthcode()
        consent = standin_receiver.standin.control("authorize", pre_auth_code=pre.pre_auth_code)
        appid = auth.query_auth(consent["auth_code"]).authorizer_appid
    assert appid in res.store.authorizer_appids()
    standin_receiver.standin.control("unauthorize", appid=appid)
    _wait(lambda: appid not in res.store.authorizer_appids())


def test_a_fast_registration_push_authorises_the_new_mini_program(standin_receiver):
    """notify_third_fasteregister through the running receiver: its auth_code is exchanged
    (api_query_auth, off the writer thread that answers WeChat), so the new mini program is
    authorised to the platform; the inbox keeps no copy of the code."""
    import random

    from launch.wechat.platform.platform import build_platform
    from launch.wechat.platform.registration import EnterpriseRegistration
    from tests.support.intakes import fresh_credit_code
    from tests.support.standin import SECRET

    res = standin_receiver.res
    standin = standin_receiver.standin
    settings = res.settings.model_copy(update={"wechat_component_secret": SECRET, "wechat_api_base": standin.url})
    res.__dict__["wechat"] = build_platform(settings, res.store)  # the receiver's platform, on the stand-in
    standin.ticket()
    _wait(lambda: res.store.component_state())
    standin.control("script", kind="register", result="ok", after=-1)  # waits for the legal person
    task = res.wechat.registration.create_enterprise(EnterpriseRegistration(
        name="示例科技有限公司", code=fresh_credit_code(random.Random(7)), component_phone="020-88886666"))
    answer = standin.control("legal_person", taskid=task.taskid)
    appid = answer["appid"]
    _wait(lambda: appid in res.store.authorizer_appids())
    assert standin.state(appid)["authorized"] is True
    [push] = standin.pushes("notify_third_fasteregister")
    assert push["status"] == "sent"
    code = [p for p in standin.standin.pusher.log if p.kind == "notify_third_fasteregister"][0].message["auth_code"]
    inbox = " ".join(json.dumps(r.payload, ensure_ascii=False) for r in standin_receiver.inbox())
    assert code not in inbox and "fast_register" in inbox
