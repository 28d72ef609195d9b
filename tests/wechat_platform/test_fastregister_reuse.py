"""Registration reusing a verified 公众号's qualifications, through the platform, on the in-memory
orchestrator with a receiver on uvicorn and the WeChat stand-in over real HTTP: the gate
official-account-authorization sends the 公众号's admin WeChat's fastregisterauth link; WeChat's
redirect with the ticket lands on /wechat/fastregistered/{launch}/{state}, which calls
account/fastregister once, decides both gates (channel wechat-api) and has the new mini program
authorised; a forged state and a replayed ticket are refused with a page and WeChat is not asked;
a 公众号 without permission set 27 leaves the gate manual with a note; an answer without the 认证
opens the 认证 gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import inspect, text

from devtools.stack import free_port
from launch.app.fastregister_reuse import AUTH_GATE, RESULT_GATE
from launch.app.links import DEAD_LINK_TEXT, render_links
from launch.store.alerts import _BARE_TOKEN as BARE_TOKEN
from launch.wechat.platform.tokens import remember_ticket
from tests.support.memory_env import World
from tests.support.standin import AES_KEY, COMPONENT_APPID, SECRET, TOKEN
from tests.wechat_platform.test_authorisation_flow import Receiver

FASTREGISTER = "/cgi-bin/account/fastregister"
OA_APPID = "wx0123456789abcdef"  # examples/client-reuse.yaml's 公众号


@pytest.fixture
def world(tmp_path, standin):
    port = free_port()
    w = World(tmp_path, wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
              wechat_api_base=standin.url, wechat_token=TOKEN, wechat_encoding_aes_key=AES_KEY,
              public_url=f"http://127.0.0.1:{port}")
    remember_ticket(w.res.store, standin.ticket(), datetime.now(UTC), component_appid=COMPONENT_APPID)
    w.rec = Receiver(w.res, port)
    yield w
    w.rec.close()
    w.res.close()


def gates(w: World) -> list[str]:
    return sorted(k for k in w.orch.parked().values()
                  if not k.startswith(("join-", "design", "filing", "implementation", "content")))


def authorise_official_account(w: World, standin, scopes: list[int] | None = None) -> None:
    """The 公众号's admin authorised the platform (all permission sets, or ``scopes``)."""
    consent = standin.control("authorize", appid=OA_APPID, func_scopes=scopes, push=False)
    w.res.wechat.auth.query_auth(consent["auth_code"])


def the_link(w: World, launch_id: str) -> str:
    """The link as the admin receives it: the outbox keeps a placeholder (the redirect's state is a
    credential), the deliverer renders WeChat's link with a state signed at send time."""
    [alert] = [a for a in w.res.store.list_alerts(launch_id=launch_id) if a.dedupe_key.endswith("fastregister-link")]
    assert "client" in alert.tags and "管理员" in alert.body and "administrator" in alert.body
    assert "fastregisterauth" not in alert.body and not BARE_TOKEN.search(alert.body)
    sent = render_links(w.res, alert.body, dedupe_key=alert.dedupe_key)
    links = {w[w.index("https://"):] for w in sent.split() if "fastregisterauth?" in w}
    [link] = links  # the same link in Chinese and English
    return link


def stored_text(store) -> str:
    """Every value of every row of every table, as text."""
    with store.engine.connect() as conn:
        return "\n".join(str(v) for table in inspect(conn).get_table_names()
                         for row in conn.execute(text(f'SELECT * FROM "{table}"')) for v in row)


def admin_confirms(w: World, standin, link: str, *, copy_wx_verify: bool = True) -> str:
    """The admin opens WeChat's page (the stand-in's) and confirms: the redirect back, as a path."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["appid"] == OA_APPID and query["component_appid"] == COMPONENT_APPID
    if not copy_wx_verify:
        query["copy_wx_verify"] = "0"
    answer = httpx.get(f"{standin.url}/cgi-bin/fastregisterauth", params=query, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    back = answer.headers["location"]
    assert back.startswith(f"{w.rec.url}/wechat/fastregistered/")
    return back.removeprefix(w.rec.url)


def test_the_admins_confirmation_registers_and_decides_both_gates(world, standin):
    authorise_official_account(world, standin)
    launch_id = world.new_launch(path="reuse_official_account")
    assert gates(world) == [f"{AUTH_GATE}-1"]
    link = the_link(world, launch_id)
    assert "/wechat/fastregistered/" + launch_id in parse_qs(urlsplit(link).query)["redirect_uri"][0]

    back = admin_confirms(world, standin, link)
    ticket = parse_qs(urlsplit(back).query)["ticket"][0]
    page = world.rec.http.get(back)
    assert page.status_code == 200, page.text
    assert "已注册" in page.text and "registered" in page.text
    assert standin.calls(FASTREGISTER) == 1
    world.orch.drain()

    auth = world.res.store.get_decision(launch_id, AUTH_GATE, 1)
    fast = world.res.store.get_decision(launch_id, RESULT_GATE, 1)
    assert (auth.outcome, auth.channel) == ("done", "wechat-api")
    assert (fast.outcome, fast.channel) == ("succeeded", "wechat-api")
    appid = fast.payload["appid"]
    assert world.res.store.get_launch(launch_id).appid == appid
    assert appid in world.res.store.authorizer_appids()  # authorization_code exchanged
    assert gates(world) == ["admin-binding-1"]  # no staff decision on the two gates; verified: no 认证
    # neither the ticket nor the authorization code is anywhere Prefect, a decision or an alert sees
    seen = json.dumps([r.parameters for r in world.orch.runs.values()], ensure_ascii=False)
    seen += json.dumps([d.payload for d in world.res.store.history(launch_id)], ensure_ascii=False)
    seen += "".join(a.body for a in world.res.store.list_alerts())
    assert ticket not in seen
    # nothing at rest holds the redirect's signed state, and the alert sent now says the link is done
    state = urlsplit(back).path.rsplit("/", 1)[1]
    stored = stored_text(world.res.store)
    assert state not in stored and state.split(".")[2] not in stored and not BARE_TOKEN.search(stored)
    [alert] = [a for a in world.res.store.list_alerts(launch_id=launch_id) if a.dedupe_key.endswith("fastregister-link")]
    late = render_links(world.res, alert.body, dedupe_key=alert.dedupe_key)
    assert DEAD_LINK_TEXT in late and "fastregisterauth" not in late

    # the same redirect again (a reload): nothing is asked of WeChat twice
    again = world.rec.http.get(back)
    assert again.status_code == 409 and "已处理过" in again.text and "already" in again.text
    assert standin.calls(FASTREGISTER) == 1


def test_a_forged_or_foreign_state_is_refused_and_wechat_not_asked(world, standin):
    authorise_official_account(world, standin)
    launch_id = world.new_launch(path="reuse_official_account")
    back = admin_confirms(world, standin, the_link(world, launch_id))
    path, query = back.split("?", 1)
    state = path.rsplit("/", 1)[1]
    forged = state[:-3] + ("AAA" if not state.endswith("AAA") else "BBB")
    page = world.rec.http.get(f"/wechat/fastregistered/{launch_id}/{forged}?{query}")
    assert page.status_code == 400 and "链接无效" in page.text and "Link not valid" in page.text
    other = world.rec.http.get(f"/wechat/fastregistered/l-someone-else/{state}?{query}")
    assert other.status_code == 400
    assert world.rec.http.get(path).status_code == 400  # no ticket
    assert standin.calls(FASTREGISTER) == 0
    assert world.res.store.get_decision(launch_id, AUTH_GATE, 1) is None
    # the genuine one still works
    assert world.rec.http.get(back).status_code == 200
    assert standin.calls(FASTREGISTER) == 1


def test_a_replayed_ticket_is_used_once(world, standin):
    authorise_official_account(world, standin)
    launch_id = world.new_launch(path="reuse_official_account")
    link = the_link(world, launch_id)
    back = admin_confirms(world, standin, link)
    first = world.rec.http.get(back)
    assert first.status_code == 200
    second = world.rec.http.get(back)
    assert second.status_code == 409 and "已处理过" in second.text and "already" in second.text
    assert standin.calls(FASTREGISTER) == 1
    # a fresh ticket through the same link after the registration passed: WeChat is not asked again
    fresh = admin_confirms(world, standin, link)
    third = world.rec.http.get(fresh)
    assert third.status_code == 409 and "快速注册已完成" in third.text
    assert standin.calls(FASTREGISTER) == 1


def test_a_ticket_wechat_refuses_is_a_note_not_a_decision(world, standin):
    authorise_official_account(world, standin)
    launch_id = world.new_launch(path="reuse_official_account")
    link = the_link(world, launch_id)
    path = admin_confirms(world, standin, link).split("?", 1)[0]
    page = world.rec.http.get(path, params={"ticket": "0123456789abcdef0123456789abcdef"})  # not WeChat's
    assert page.status_code == 400 and "61058" in page.text and "open the authorisation link again" in page.text
    assert world.res.store.get_decision(launch_id, AUTH_GATE, 1) is None
    assert "61058" in world.res.store.get_step(launch_id, AUTH_GATE, 1).note
    # the same refused ticket again: WeChat is not asked twice, the page says to start again
    again = world.rec.http.get(path, params={"ticket": "0123456789abcdef0123456789abcdef"})
    assert again.status_code == 409 and "重新打开授权链接" in again.text and "open the authorisation link again" in again.text
    assert standin.calls(FASTREGISTER) == 1


@pytest.mark.parametrize("scopes", [None, [18, 30]])
def test_a_official_account_not_authorised_leaves_the_gate_manual_with_a_note(world, standin, scopes):
    if scopes is not None:
        authorise_official_account(world, standin, scopes)  # authorised, without set 27
    launch_id = world.new_launch(path="reuse_official_account")
    assert gates(world) == [f"{AUTH_GATE}-1"]
    note = world.res.store.get_step(launch_id, AUTH_GATE, 1).note
    assert "27" in note and "公众号" in note and "permission set 27" in note and " / " in note
    assert not [a for a in world.res.store.list_alerts(launch_id=launch_id) if "fastregister" in a.dedupe_key]
    # staff decide it, as before
    world.decide(launch_id, AUTH_GATE)
    assert gates(world) == [f"{RESULT_GATE}-1"]


def test_registered_without_the_verification_opens_the_verification_gate(world, standin):
    authorise_official_account(world, standin)
    launch_id = world.new_launch(path="reuse_official_account")
    page = world.rec.http.get(admin_confirms(world, standin, the_link(world, launch_id), copy_wx_verify=False))
    assert page.status_code == 200 and "认证" in page.text
    world.orch.drain()
    fast = world.res.store.get_decision(launch_id, RESULT_GATE, 1)
    assert fast.outcome == "registered_unverified" and fast.channel == "wechat-api"
    assert gates(world) == ["admin-binding-1"]
    world.decide(launch_id, "admin-binding")
    assert gates(world) == ["wechat-verification-1"]


def test_an_expired_state_is_refused_and_wechat_not_asked(world, standin):
    authorise_official_account(world, standin)
    launch_id = world.new_launch(path="reuse_official_account")
    back = admin_confirms(world, standin, the_link(world, launch_id))
    world.clock.advance(seconds=world.res.settings.link_ttl_hours * 3600 + 60)
    page = world.rec.http.get(back)
    assert page.status_code == 400 and "链接无效" in page.text
    assert standin.calls(FASTREGISTER) == 0
