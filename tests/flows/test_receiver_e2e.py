"""WeChat pushes over real HTTP to a running receiver resume the right gates of a running launch."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
import uvicorn

from launch import runtime
from devtools.simulator import PASSING, Scenario, Simulator, WeChatPusher, push_for
from tests.api.conftest import AES_KEY, COMPONENT_APPID, TOKEN, free_port
from tests.flows.helpers import attempts, new_launch, pause_keys_seen, wait_for, waiting_at

pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]  # slow beside the scale test

WECHAT_GATES = ("face-verification", "first-review", "sms-verification", "code-review")


@pytest.fixture(scope="module")
def receiver(stack):
    mp = pytest.MonkeyPatch()
    for key, value in {
        "WEAPP_LAUNCH_WECHAT_TOKEN": TOKEN,
        "WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY": AES_KEY,
        "WEAPP_LAUNCH_WECHAT_COMPONENT_APPID": COMPONENT_APPID,
    }.items():
        mp.setenv(key, value)
    runtime.reset()
    from launch.app import Resources
    from launch.receiver.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Resources.from_settings(), applier_interval=1.0), host="127.0.0.1", port=port,
                                           access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the receiver")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)
    mp.undo()
    runtime.reset()


def test_pushes_drive_the_wechat_gates(stack, receiver):
    started, _ = new_launch("client-acme.yaml")
    launch_id = started["launch_id"]
    store = runtime.store()
    appid, original_id = "wx" + uuid.uuid4().hex[:16], "gh_" + uuid.uuid4().hex[:12]
    pusher = WeChatPusher(receiver, TOKEN, AES_KEY, COMPONENT_APPID)
    face_pushed = threading.Event()

    def materials_may_be_confirmed(sim):
        return face_pushed.is_set()

    answers = {"subject-info": [{**PASSING["subject-info"], "appid": appid, "original_id": original_id}]}
    # People answer through the service; WeChat's gates are never answered by hand here.
    never = {gate: (lambda sim: False) for gate in WECHAT_GATES}
    sim = Simulator(launch_id, Scenario(answers=answers, hold={**never, "filing-materials": materials_may_be_confirmed}),
                    repair_every=30)
    assert sim.run(360, until=lambda: store.get_launch(launch_id).appid == appid)

    # An early push: face verification passes before the face gate (after the materials) is reached.
    path, message = push_for("face-verification", {"outcome": "passed"}, appid, original_id, COMPONENT_APPID)
    assert pusher.send(path, message) == 200
    wait_for(lambda: store.get_decision(launch_id, "face-verification", 1), 30, "the early push to be recorded")
    early = store.get_decision(launch_id, "face-verification", 1)
    assert early.channel == "wechat" and early.consumed_at is None
    face_pushed.set()

    def answer_by_push(gate: str, outcome: str, attempt: int = 1, **extra) -> None:
        sim.run(300, until=lambda: waiting_at(launch_id, gate, attempt))
        push = push_for(gate, {"outcome": outcome, **extra}, appid, original_id, COMPONENT_APPID)
        assert pusher.send(*push) == 200
        wait_for(lambda: (store.get_step(launch_id, gate, attempt).status != "waiting"), 240, f"{gate} to be taken")

    answer_by_push("first-review", "passed")
    # The same push delivered twice (WeChat retries) changes nothing.
    push = push_for("sms-verification", {"outcome": "verified"}, appid, original_id, COMPONENT_APPID)
    sim.run(300, until=lambda: waiting_at(launch_id, "sms-verification"))
    assert pusher.send(*push) == 200 and pusher.send(*push) == 200
    wait_for(lambda: store.get_step(launch_id, "sms-verification", 1).status == "done", 240, "sms verified")
    answer_by_push("code-review", "failed", reason="页面存在未完成功能")
    answer_by_push("code-review", "passed", attempt=2)

    assert sim.run(600), attempts(launch_id)

    # The early face-verification push was taken at the gate without a suspend.
    filing_run = store.get_branch(launch_id, "filing").flow_run_id
    assert "face-verification-1" not in pause_keys_seen(filing_run)
    by_gate = {(d.gate, d.attempt): d for d in store.history(launch_id)}
    for key in [("face-verification", 1), ("first-review", 1), ("sms-verification", 1), ("code-review", 1),
                ("code-review", 2)]:
        assert by_gate[key].channel == "wechat", key
    assert by_gate[("code-review", 1)].payload["reason"] == "页面存在未完成功能"
    assert len([d for d in store.history(launch_id) if d.gate == "sms-verification"]) == 1
    events = store.events_for(launch_id)
    sms_rows = [e for e in events if e.kind == "icp_filing_result" and e.payload["event"].get("sms_verify_status") == 2]
    assert len(sms_rows) == 1
    assert events and all(e.applied_at is not None for e in events)
    # The resent SMS push has one inbox row: the same event key is stored once.
    # A forged push changes nothing in the launch.
    before = len(store.history(launch_id))
    r = httpx.post(f"{receiver}/wechat/auth", params={"signature": "0" * 40, "timestamp": str(int(time.time())),
                                                     "nonce": "forged", "encrypt_type": "aes",
                                                     "msg_signature": "0" * 40},
                   content=b"<xml><Encrypt>AAAA</Encrypt></xml>")
    assert r.status_code in (400, 401, 403) and len(store.history(launch_id)) == before
