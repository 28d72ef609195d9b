"""The outside world, played from a script: staff, client, designers, WeChat, MIIT, the bureau.

Used by the demo (time compressed) and by the end-to-end tests. It watches the
store for gates that are waiting and answers each with the scenario's decision
for that attempt, or a passing one. A scenario can hold a gate back until a
condition holds (e.g. keep the bureau busy until code review has passed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from launch.app import Resources
from launch.app.decisions import DecisionResult, submit_decision

# A passing answer for every gate; the one place tests and the demo take them from.
PASSING: dict[str, dict] = {
    "email-activation": {"outcome": "done"},
    "subject-info": {"outcome": "submitted", "appid": "wx0123456789abcdef", "original_id": "gh_0123456789ab"},
    "wechat-verification": {"outcome": "passed"},
    "official-account-authorization": {"outcome": "done"},
    "fast-registration": {"outcome": "succeeded", "appid": "wx0123456789abcdef", "original_id": "gh_0123456789ab"},
    "admin-binding": {"outcome": "done"},
    # first setting of each field (no changes counted against WeChat's limits)
    "mini-program-profile": {"outcome": "set", "name": "示例小程序", "avatar_set": True,
                             "intro": "示例门店的点餐与会员服务 / ordering and membership", "categories": ["餐饮服务"]},
    "filing-materials": {"outcome": "confirmed"},
    "face-verification": {"outcome": "passed"},
    "filing-submission": {"outcome": "done"},
    "first-review": {"outcome": "passed"},
    "sms-verification": {"outcome": "verified"},
    "filing-resubmission": {"outcome": "resubmitted"},
    "bureau-review": {"outcome": "approved", "filing_number": "粤ICP备2026012345号-1X"},
    "design-draft": {"outcome": "done"},
    "design-confirmation": {"outcome": "confirmed"},
    "implementation": {"outcome": "done", "version": "1.0.0"},
    "content": {"outcome": "done"},
    "trial-acceptance": {"outcome": "accepted", "trial_members": ["客户体验员 / client tester"], "qr_shared": True},
    "review-submission": {"outcome": "submitted", "version": "1.0.0"},
    "code-review": {"outcome": "passed"},
    "release": {"outcome": "released"},
}

# The demo's story: one bureau rejection, one SMS timeout, one design rework, one review failure.
# The filing goes materials → face task → submission → first review → SMS; the SMS times
# out (timed_out), staff resubmit (filing-resubmission, PASSING), a new SMS arrives and is
# verified (sms-verification #2, PASSING); the bureau rejects once, the filing is resubmitted
# (the face task, still inside its 3 days, is reused) and goes through first review and the
# SMS again.
BUMPY: dict[str, list[dict]] = {
    "design-confirmation": [{"outcome": "rework", "feedback": "首页配色改为品牌橙色 / brand orange on the home page"}],
    "sms-verification": [{"outcome": "timed_out"}],
    "bureau-review": [{"outcome": "rejected", "reason": "备注未说明服务内容 / remark does not describe the service"}],
    "code-review": [{"outcome": "failed", "reason": "类目与内容不符 / category does not match the content"}],
    "review-submission": [{"outcome": "submitted", "version": "1.0.0"},
                          {"outcome": "submitted", "version": "1.0.1", "feedback": "已按审核意见调整类目"}],
    "implementation": [{"outcome": "done", "version": "1.0.0"}, {"outcome": "done", "version": "1.0.1"}],
}


@dataclass
class Scenario:
    answers: dict[str, list[dict]] = field(default_factory=dict)
    hold: dict[str, Callable[["Simulator"], bool]] = field(default_factory=dict)
    actor: str = "模拟员工"

    def answer(self, gate: str, attempt: int) -> dict:
        scripted = self.answers.get(gate, [])
        chosen = scripted[attempt - 1] if attempt <= len(scripted) else PASSING[gate]
        return {"decided_by": self.actor, **chosen}


def push_for(gate: str, answer: dict, appid: str | None, original_id: str | None, component_appid: str,
             credit_code: str | None = None) -> tuple[str, dict] | None:
    """The WeChat push that carries this answer, as (path, message); None where people answer.

    The inverse of launch/wechat/mapping.py: what WeChat would send for the outcome.
    A bureau approval needs the filing number, which no push carries: staff enter it.
    """
    now = int(time.time())
    outcome = answer["outcome"]
    icp = {"AppId": component_appid, "CreateTime": now}
    if gate == "face-verification" and appid:
        return "/wechat/auth", {**icp, "InfoType": "notify_icpfiling_verify_result", "task_id": f"task-{appid}-{now}",
                                "verify_appid": appid, "result": 3 if outcome == "passed" else 2}
    filing = {**icp, "InfoType": "notify_apply_icpfiling_result", "authorizer_appid": appid}
    if gate == "first-review" and appid:
        return "/wechat/auth", {**filing, "beian_status": 4 if outcome == "passed" else 3,
                                **({"sms_verify_status": 1} if outcome == "passed" else {})}
    if gate == "sms-verification" and appid and outcome in ("verified", "timed_out"):
        return "/wechat/auth", {**filing, "beian_status": 4, "sms_verify_status": 2 if outcome == "verified" else 3}
    if gate == "bureau-review" and appid and outcome == "rejected":
        return "/wechat/auth", {**filing, "beian_status": 5}
    if gate == "code-review" and appid and original_id:
        event = {"ToUserName": original_id, "FromUserName": "simulator", "CreateTime": now, "MsgType": "event"}
        if outcome == "passed":
            return f"/wechat/{appid}/events", {**event, "Event": "weapp_audit_success", "SuccTime": now}
        return f"/wechat/{appid}/events", {**event, "Event": "weapp_audit_fail", "Reason": answer.get("reason", ""),
                                           "FailTime": now, "ScreenShot": ""}
    # fast-registration: the reuse path's account/fastregister answers at once (no push);
    # notify_third_fasteregister belongs to the legal person's face-check registration.
    return None


class WeChatPusher:
    """Sends pushes to the real receiver, signed and AES-encrypted as WeChat would."""

    def __init__(self, receiver_url: str, token: str, encoding_aes_key: str, component_appid: str):
        from launch.wechat.crypto import PushCrypto

        self.url = receiver_url.rstrip("/")
        self.crypto = PushCrypto(token, encoding_aes_key, component_appid)
        self.component_appid = component_appid

    def send(self, path: str, message: dict) -> int:
        import secrets

        import httpx

        from launch.wechat.events import to_xml

        nonce, timestamp = secrets.token_hex(8), str(int(time.time()))
        env = self.crypto.envelope(to_xml(message).decode(), message.get("ToUserName"), nonce=nonce,
                                   timestamp=timestamp)
        params = {"signature": self.crypto.signature(timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "encrypt_type": "aes", "msg_signature": env.msg_signature}
        return httpx.post(self.url + path, params=params, content=env.body, timeout=30).status_code


class Simulator:
    def __init__(
        self,
        launch_id: str,
        scenario: Scenario | None = None,
        channel: str = "simulator",
        submit: Callable[..., DecisionResult] | None = None,
        pusher: WeChatPusher | None = None,
        repair_every: float | None = None,
        res: Resources | None = None,
    ):
        # The test or demo process's own view of the store: built from WEAPP_LAUNCH_* unless given.
        self.res = res or Resources.from_settings()
        self.launch_id = launch_id
        self.scenario = scenario or Scenario()
        self.channel = channel
        self.pusher = pusher
        self.submit = submit or (lambda gate, data, attempt: submit_decision(
            self.res, self.launch_id, gate, data, self.channel, attempt=attempt))
        self.answered: list[tuple[str, int, DecisionResult | str]] = []
        self.pushed: set[tuple[str, int]] = set()
        # The deadline watcher's repair pass, as its schedule would run it (None: never).
        self.repair_every = repair_every
        self.repairs: list = []
        self._last_repair = time.monotonic()

    def decided(self, gate: str, outcome: str | None = None) -> bool:
        return any(
            d.gate == gate and (outcome is None or d.outcome == outcome)
            for d in self.res.store.history(self.launch_id)
        )

    def released(self) -> bool:
        launch = self.res.store.get_launch(self.launch_id)
        return launch is not None and launch.status == "released"

    def tick(self) -> list[DecisionResult]:
        done = []
        store = self.res.store
        known = {(d.gate, d.attempt) for d in store.history(self.launch_id)}
        for step in store.steps_for(self.launch_id):
            if step.status != "waiting" or (step.step, step.attempt) in known:
                continue
            hold = self.scenario.hold.get(step.step)
            if hold is not None and not hold(self):
                continue
            answer = self.scenario.answer(step.step, step.attempt)
            if (step.step, step.attempt) in self.pushed:
                continue  # pushed already; the receiver applies it
            if self.pusher is not None and self._push(step.step, step.attempt, answer):
                continue
            result = self.submit(step.step, answer, step.attempt)
            self.answered.append((step.step, step.attempt, result))
            done.append(result)
        return done

    def _push(self, gate: str, attempt: int, answer: dict) -> bool:
        store = self.res.store
        launch = store.get_launch(self.launch_id)
        credit_code = None
        if gate == "fast-registration":
            credit_code = (store.client_intake(launch.client_id).get("subject") or {}).get("credit_code")
        push = push_for(gate, answer, launch.appid, launch.original_id, self.pusher.component_appid, credit_code)
        if push is None:
            return False
        status = self.pusher.send(*push)
        if status != 200:
            raise RuntimeError(f"the receiver refused a simulated push for {gate}: HTTP {status}")
        self.pushed.add((gate, attempt))
        self.answered.append((gate, attempt, "pushed"))
        return True

    def run(self, timeout: float, until: Callable[[], bool] | None = None, interval: float = 0.5) -> bool:
        until = until or self.released
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            if until():
                return True
            self._maybe_repair()
            time.sleep(interval)
        return False

    def _maybe_repair(self) -> None:
        if self.repair_every is None or time.monotonic() - self._last_repair < self.repair_every:
            return
        from launch.app.watcher import repair

        self.repairs += repair(self.res).repaired
        self._last_repair = time.monotonic()
