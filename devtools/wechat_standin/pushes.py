"""WeChat's pushes, sent to the receiver as WeChat sends them: the message as XML
(launch.wechat.events.to_xml), encrypted and signed in safe mode by launch.wechat.crypto
(one crypto for the receiver and the stand-in), POSTed with `signature`, `timestamp`,
`nonce`, `encrypt_type=aes`, `msg_signature`, and retried like WeChat when the answer is
not `success`.

Where each message's fields come from:
- component_verify_ticket, authorized, updateauthorized, unauthorized (InfoType, on the
  authorisation-event URL, envelope `<AppId>`): oplatform "component_verify_ticket" and
  "授权变更通知推送" (Third-party_Platforms/2.0/api/Before_Develop/authorize_event.html);
  wechatpy component.py (ComponentVerifyTicketMessage, ComponentAuthorizedMessage …).
- notify_icpfiling_verify_result {task_id, verify_appid, result}, notify_apply_icpfiling_result
  {authorizer_appid, beian_status}: WxJava WxOpenXmlMessage, SKIT (see launch/wechat/events.py).
- notify_third_fasteregister {appid, status, auth_code, msg, info}: registerMiniprogram doc,
  "注册审核事件推送".
- weapp_audit_success {SuccTime} / weapp_audit_fail {Reason, FailTime, ScreenShot} (Event, on
  the message-event URL /wechat/{appid}/events, envelope `<ToUserName>` = the original id):
  Third-party_Platforms/2.0/api/code/audit_event.html.
Retries: the message-push doc says WeChat cuts the connection after 5 s and retries three
times in all; the stand-in resends the same envelope (same nonce and signatures).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from launch.wechat.crypto import PushCrypto
from launch.wechat.events import to_xml

log = logging.getLogger("weapp_launch.standin")


@dataclass
class Push:
    id: int
    kind: str  # InfoType or Event
    path: str  # /wechat/auth or /wechat/{appid}/events
    message: dict
    envelope_id: str
    id_element: str  # "AppId" (authorisation events) or "ToUserName" (message events)
    appid: str | None = None
    status: str = "queued"  # queued | sent | dropped | failed | logged (no receiver)
    attempts: int = 0
    http_status: int | None = None
    answer: str | None = None
    created: float = field(default_factory=time.time)

    def summary(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "message"}
        # the ticket and auth codes are credentials: the log keeps their kind, not their value
        out["fields"] = sorted(self.message)
        return out


@dataclass
class DropRule:
    kind: str = "*"  # an InfoType / Event, or "*" for the next push of any kind
    appid: str | None = None
    count: int = 1

    def matches(self, push: Push) -> bool:
        return self.count > 0 and self.kind in ("*", push.kind) and (self.appid is None or self.appid == push.appid)


class Pusher:
    """A queue and one sender thread: pushes leave in the order they were made."""

    def __init__(self, crypto: PushCrypto, receiver_url: str | None, *, attempts: int, retry_delay: float,
                 timeout: float, client: httpx.Client | None = None):
        self.crypto = crypto
        self.receiver_url = receiver_url.rstrip("/") if receiver_url else None
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.timeout = timeout
        self._client = client or httpx.Client(timeout=timeout)
        self._queue: queue.Queue[Push | None] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._seq = 0
        self.log: list[Push] = []
        self.drops: list[DropRule] = []
        self.on_sent: Callable[[Push], None] | None = None
        self._thread = threading.Thread(target=self._run, name="standin-pusher", daemon=True)
        self._thread.start()

    # --- making pushes ---------------------------------------------------------------

    def auth_event(self, info_type: str, fields: dict[str, Any], *, appid: str | None = None,
                   create_time: int | None = None) -> Push:
        """An InfoType push to the authorisation-event URL (/wechat/auth)."""
        message = {"AppId": self.crypto.appid, "CreateTime": create_time or int(time.time()), "InfoType": info_type,
                   **fields}
        return self._enqueue(info_type, "/wechat/auth", message, self.crypto.appid, "AppId", appid)

    def message_event(self, event: str, appid: str, original_id: str, fields: dict[str, Any], *,
                      create_time: int | None = None) -> Push:
        """An Event push to the message-event URL (/wechat/{appid}/events)."""
        now = create_time or int(time.time())
        message = {"ToUserName": original_id, "FromUserName": "o" + secrets.token_hex(13)[:27],
                   "CreateTime": now, "MsgType": "event", "Event": event, **fields}
        return self._enqueue(event, f"/wechat/{appid}/events", message, original_id, "ToUserName", appid)

    def drop(self, kind: str = "*", appid: str | None = None, count: int = 1) -> DropRule:
        rule = DropRule(kind, appid, count)
        with self._lock:
            self.drops.append(rule)
        return rule

    def _enqueue(self, kind: str, path: str, message: dict, envelope_id: str, id_element: str,
                 appid: str | None) -> Push:
        with self._lock:
            self._seq += 1
            push = Push(self._seq, kind, path, message, envelope_id, id_element, appid)
            self.log.append(push)
            for rule in self.drops:
                if rule.matches(push):
                    rule.count -= 1
                    push.status = "dropped"
                    break
            self.drops = [r for r in self.drops if r.count > 0]
            if push.status == "dropped":
                log.info("stand-in: dropped push %s #%s on purpose", kind, push.id)
                return push
            self._busy += 1
        self._queue.put(push)
        return push

    # --- sending ---------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued push has been sent, dropped or given up on."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._client.close()

    def _run(self) -> None:
        while True:
            push = self._queue.get()
            if push is None:
                return
            try:
                self._send(push)
            except Exception:  # never let one push stop the sender
                log.exception("stand-in: push %s failed", push.kind)
                push.status = "failed"
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
            if self.on_sent is not None:
                self.on_sent(push)

    def _send(self, push: Push) -> None:
        if self.receiver_url is None:
            push.status = "logged"
            return
        nonce = secrets.token_hex(8)
        timestamp = str(int(time.time()))  # the real clock: the receiver checks its window against it
        env = self.crypto.envelope(to_xml(push.message).decode("utf-8"), push.envelope_id,
                                   id_element=push.id_element, nonce=nonce, timestamp=timestamp)
        params = {"signature": self.crypto.signature(timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "encrypt_type": "aes", "msg_signature": env.msg_signature}
        for attempt in range(1, self.attempts + 1):
            push.attempts = attempt
            try:
                response = self._client.post(self.receiver_url + push.path, params=params, content=env.body,
                                             headers={"Content-Type": "text/xml"}, timeout=self.timeout)
                push.http_status, push.answer = response.status_code, response.text[:200]
                # WeChat takes "success" (or an empty answer) as received
                if response.status_code == 200 and response.text.strip() in ("success", ""):
                    push.status = "sent"
                    return
            except httpx.HTTPError as exc:
                push.http_status, push.answer = None, type(exc).__name__
            if attempt < self.attempts:
                time.sleep(self.retry_delay)
        push.status = "failed"
