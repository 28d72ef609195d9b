"""The outside world, played from a script: staff, client, designers, WeChat, MIIT, the bureau.

Used by the demo (time compressed) and by the end-to-end tests. It watches the
store for gates that are waiting and answers each with the scenario's decision
for that attempt, or a passing one. A scenario can hold a gate back until a
condition holds (e.g. keep the bureau busy until code review has passed).

Against the WeChat stand-in (`OnWeChat`, the demo's default) it answers only what people
do: the gates WeChat decides (face result, first review, SMS, code review, the bureau's
verdict) and the gates the tool acts on itself (a catalogue `action`: the profile, review
submission, release, …) are never answered here. For those the people on WeChat's side act on the
stand-in instead (the admin's face check, the principal's 12381 SMS, WeChat's and the
bureau's reviewers finishing), and WeChat's push or the watcher's poll decides the gate.
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
    "platform-registration": {"outcome": "registered", "appid": "wx0123456789abcdef", "original_id": "gh_0123456789ab"},
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
        wechat: "OnWeChat | None" = None,
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
        # The people on WeChat's side, against the stand-in (None: the simulator answers every gate).
        self.wechat = wechat

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
            if self.wechat is not None and self.wechat.owns(step.step):
                self.wechat.play(step.step, step.attempt)  # WeChat's side moves; its push or poll decides
                continue
            hold = self.scenario.hold.get(step.step)
            if hold is not None and not hold(self):
                continue
            answer = self.scenario.answer(step.step, step.attempt)
            if (step.step, step.attempt) in self.pushed:
                continue  # pushed already; the receiver applies it
            if self.pusher is not None and self._push(step.step, step.attempt, answer):
                continue
            if self.wechat is not None:
                self.wechat.before(step.step, step.attempt, answer)
            result = self.submit(step.step, answer, step.attempt)
            self.answered.append((step.step, step.attempt, result))
            done.append(result)
            if self.wechat is not None:
                self.wechat.after(step.step, step.attempt, answer)
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


# --- Against the WeChat stand-in: people answer only what people do ---------------------------

# The demo's story against the stand-in. People: one design rework, and the developers deliver
# 1.0.0 then 1.0.1 after WeChat's review failure. WeChat's side (scripted on the stand-in, see
# OnWeChat.authorise): the bureau rejects the first application, the first code review fails —
# and that result's push is dropped on purpose, so the watcher's poll must find it.
PEOPLE: dict[str, list[dict]] = {
    "design-confirmation": BUMPY["design-confirmation"],
    "implementation": BUMPY["implementation"],
}

# Gates WeChat (or the bureau, through WeChat's filing platform) decides: by a push, or by the
# watcher asking WeChat's API. With a platform the simulator never answers them; the people on
# WeChat's side act on the stand-in instead (OnWeChat.play).
WECHAT_DECIDES = ("face-verification", "first-review", "sms-verification", "code-review", "bureau-review",
                  "wechat-verification")

# The stand-in's filing statuses and face-task states (getIcpEntranceInfo, queryIcpVerifyTask).
_PLATFORM_REVIEW, _BUREAU_REVIEW = 2, 4
_SMS_WAITING, _SMS_DONE = 1, 2


class OnWeChat:
    """The people and reviewers on WeChat's side of one launch, against a running stand-in (its
    base URL; its control API under /_standin/), and the developers who commit the code.

    - the platform's registration (platform_fast_registration): the legal person opens WeChat's
      link for the task the tool created (/_standin/legal_person); WeChat pushes the result with
      the new app id and an auth code the receiver exchanges: the platform is authorised with no
      admin scan. On the standalone path instead, after `subject-info` tells the app id, the
      client's admin consents to the platform (the receiver's start page → /_standin/authorize →
      the receiver's callback). Either way WeChat's side is then scripted: the face check and the
      filing wait for the people below, the bureau rejects the first application, the first code
      review fails and its push is dropped;
    - the 认证: the client pays and submits it, WeChat's reviewer approves on the stand-in
      (/_standin/verify); the watcher's poll of getaccountbasicinfo decides the gate;
    - `implementation`: the developers commit the version to WeChat (/wxa/commit);
    - waiting gates WeChat decides (`owns`): the admin does the face check; WeChat's first
      reviewers finish; the principal answers 12381's SMS; the bureau decides — each once per
      attempt, on the stand-in; WeChat's push (or, where no push carries it, the watcher's poll)
      then decides the gate. The bureau's approval too: on WeChat's "filed" push (or poll) the
      tool asks WeChat for the filing number (get_online_icp_order) and approves with it.
    Everything done here is kept in `log` as (gate, attempt, who, what) for the demo's printout.
    """

    def __init__(self, res: Resources, launch_id: str, standin_url: str, *, drop: str = "weapp_audit_fail"):
        import httpx

        self.res = res
        self.launch_id = launch_id
        self.control = httpx.Client(base_url=standin_url.rstrip("/") + "/_standin", timeout=30)
        self.drop_kind = drop
        self.appid: str | None = None
        self.original_id: str | None = None
        self.played: set[tuple[str, int]] = set()
        self.log: list[tuple[str, int, str, str]] = []

    # --- which gates are WeChat's ------------------------------------------------------------

    def tool_acts(self, gate: str) -> bool:
        """Whether the tool performs this gate itself (a catalogue action it knows)."""
        from launch.app.wechat_actions import ACTIONS

        action = self.res.catalogue.gates[gate].action if gate in self.res.catalogue.gates else None
        return bool(action) and action in ACTIONS

    def owns(self, gate: str) -> bool:
        return gate in WECHAT_DECIDES or self.tool_acts(gate)

    # --- the stand-in ------------------------------------------------------------------------

    def _post(self, name: str, **body) -> dict:
        r = self.control.post(name, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"stand-in /_standin/{name}: HTTP {r.status_code} {r.text[:200]}")
        return r.json()

    def snapshot(self) -> dict:
        if self.appid is None:
            return {}
        r = self.control.get(f"authorizers/{self.appid}")
        return r.json() if r.status_code == 200 else {}

    def filing(self) -> dict:
        return self.snapshot().get("filing") or {}

    def _note(self, gate: str, attempt: int, who: str, what: str) -> None:
        self.log.append((gate, attempt, who, what))

    # --- around people's answers -------------------------------------------------------------

    def before(self, gate: str, attempt: int, answer: dict) -> None:
        self._discover()
        if gate == "implementation" and self.appid:
            from launch.wechat.platform.code import CommitRequest

            version = answer.get("version") or "1.0.0"
            self.res.wechat.code.commit(self.appid, CommitRequest(
                template_id=1, ext_json={"extAppid": self.appid}, user_version=version,
                user_desc=f"示例小程序 {version} / sample mini-program {version}"))
            self._note(gate, attempt, "开发 / developers",
                       f"提交代码 {version} 到微信 / committed {version} to WeChat (/wxa/commit)")

    def after(self, gate: str, attempt: int, answer: dict) -> None:
        if gate == "subject-info" and answer.get("appid") and self.appid is None:
            self.authorise(answer["appid"], answer.get("original_id"))

    def authorise(self, appid: str, original_id: str | None) -> None:
        """The client's admin authorises the platform for the new mini-program, as the receiver
        offers it: staff's signed start link → the start page (a fresh pre-auth code) → consent on
        WeChat (the stand-in's /_standin/authorize) → WeChat's redirect to the receiver's
        /wechat/authorized, which runs query_auth and keeps the authorizer. Then WeChat's side
        of the story is scripted for the mini-program."""
        import html
        import re
        from urllib.parse import parse_qs, urlsplit

        import httpx

        from launch.receiver.routes.platform import signed_state, start_link

        subject, token = signed_state(self.res, self.launch_id)
        start = httpx.get(start_link(self.res, subject, token), timeout=30)
        found = re.search(r'href="(https://mp\.weixin\.qq\.com/cgi-bin/componentloginpage\?[^"]+)"', start.text)
        if start.status_code != 200 or found is None:
            raise RuntimeError(f"the receiver's authorisation start page: HTTP {start.status_code}")
        query = parse_qs(urlsplit(html.unescape(found.group(1))).query)
        consent = self._post("authorize", appid=appid, original_id=original_id,
                             pre_auth_code=query["pre_auth_code"][0])
        back = httpx.get(query["redirect_uri"][0], params={"auth_code": consent["auth_code"], "expires_in": 600},
                         timeout=30)
        if back.status_code != 200:
            raise RuntimeError(f"the receiver's authorisation callback: HTTP {back.status_code}")
        self._note("subject-info", 1, "客户管理员 / client's admin",
                   "打开授权页并同意授权第三方平台；回调 /wechat/authorized 保存授权 / opened the start page and "
                   "authorised the platform; the receiver's /wechat/authorized kept the authorisation")
        self.script_wechat_side(appid, original_id)

    def _discover(self) -> None:
        """The app id the platform's registration recorded on the launch (WeChat's push), once."""
        if self.appid is not None:
            return
        launch = self.res.store.get_launch(self.launch_id)
        if launch is None or not launch.appid:
            return
        snap = self.control.get(f"authorizers/{launch.appid}")
        original_id = snap.json().get("original_id") if snap.status_code == 200 else None
        self.script_wechat_side(launch.appid, original_id)

    def script_wechat_side(self, appid: str, original_id: str | None) -> None:
        """WeChat's side of the story for the mini program, on the stand-in."""
        self.appid, self.original_id = appid, original_id
        # WeChat's side: the face check and each filing stage wait for the people who do them …
        self._post("script", appid=appid, kind="face", result="pass", after=-1)
        self._post("script", appid=appid, kind="filing", result="bureau_reject", after=-1,
                   reason="备注未说明服务内容 / the remark does not describe the service")
        self._post("script", appid=appid, kind="filing", result="filed", after=-1)
        # … the first review fails, the second passes (WeChat's reviewers, on the stand-in's clock) …
        self._post("script", appid=appid, kind="review", result="reject",
                   reason="类目与内容不符 / category does not match the content")
        self._post("script", appid=appid, kind="review", result="pass")
        # … and the first review result's push is lost.
        self._post("drop", kind=self.drop_kind, appid=appid, count=1)

    # --- WeChat's side of a waiting gate -----------------------------------------------------

    def play(self, gate: str, attempt: int) -> None:
        """Move WeChat's side for a gate that waits on it, once per attempt, when it is due."""
        key = (gate, attempt)
        if key in self.played:
            return
        if gate == "platform-registration":
            from launch.app.wechat_actions import registration_task

            task = registration_task(self.res, self.launch_id, attempt)
            if task is None:
                return  # the tool has not created the task yet
            self._post("legal_person", taskid=task[1])
            self._note(gate, attempt, "法人 / legal person",
                       "用本人微信打开微信的授权链接并完成验证 / opened WeChat's link in their own WeChat and "
                       "confirmed the registration")
            self.played.add(key)
            return
        self._discover()
        if self.appid is None:
            return
        snap = self.snapshot()
        filing = snap.get("filing") or {}
        if gate == "wechat-verification":
            self._post("verify", appid=self.appid, result="pass")
            self._note(gate, attempt, "客户 + 微信认证审核 / client + WeChat's 认证 review",
                       "客户支付认证费并提交，微信审核通过 / the client paid and submitted the 认证; WeChat's reviewer "
                       "approved it")
        elif gate == "face-verification":
            if any(not t["is_finish"] for t in snap.get("tasks", [])):
                self._post("advance", appid=self.appid, kind="face")
                self._note(gate, attempt, "客户管理员 / client's admin",
                           "在微信完成人脸核身 / did the face check in WeChat")
            else:
                return  # the tool has not created the task yet
        elif gate == "first-review":
            if filing.get("status") != _PLATFORM_REVIEW:
                return
            self._post("advance", appid=self.appid, kind="filing")
            self._note(gate, attempt, "微信初审 / WeChat's first review", "审核完成 / finished")
        elif gate == "sms-verification":
            if filing.get("status") != _BUREAU_REVIEW or filing.get("sms_verify_status") != _SMS_WAITING:
                return
            self._post("sms", appid=self.appid, status=_SMS_DONE)
            self._note(gate, attempt, "主体负责人 / principal", "回复工信部 12381 短信 / answered MIIT's 12381 SMS")
        elif gate == "bureau-review":
            if filing.get("status") != _BUREAU_REVIEW:
                return
            self._post("advance", appid=self.appid, kind="filing")
            self._note(gate, attempt, "管局 / bureau", "审核完成 / decided")
        else:
            return  # code review runs on the stand-in's clock; the tool's own steps need nobody
        self.played.add(key)

    def pushes(self) -> list[dict]:
        r = self.control.get("pushes")
        return r.json()["pushes"] if r.status_code == 200 else []

    def calls(self) -> list[dict]:
        r = self.control.get("calls")
        return r.json()["calls"] if r.status_code == 200 else []

    def close(self) -> None:
        self.control.close()
