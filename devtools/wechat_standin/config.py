"""What a stand-in is started with: the platform's push secrets, the receiver, lifetimes and
quotas (`StandinConfig`), and what WeChat's people decide next (`StandinScript`).

Every duration is in seconds of the stand-in's clock (`StandinClock`: the system clock plus
an offset the control API can move), so a test can let a token expire or a review finish
without waiting.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

# Defaults taken from WeChat's docs (oplatform "api_component_token", "api_authorizer_token",
# "component_verify_ticket", "createIcpVerifyTask"): tokens 7200 s, a ticket pushed every
# 10 minutes and valid 12 h, the face-check notice 24 h, the task 3 days.
TOKEN_LIFETIME = 7200
TICKET_EVERY = 600
TICKET_LIFETIME = 12 * 3600
PRE_AUTH_CODE_LIFETIME = 1800
AUTH_CODE_LIFETIME = 3600
VERIFY_NOTICE_LIFETIME = 24 * 3600
VERIFY_TASK_LIFETIME = 3 * 24 * 3600
REGISTER_LINK_LIFETIME = 24 * 3600  # fastregisterenterpriseweapp's authorisation link (new version, 24 h)


@dataclass
class StandinConfig:
    component_appid: str = "wx0000000000c0ffee"
    component_appsecret: str = "standin-secret"
    token: str = "weapp-test-token"  # the push token (same as the receiver's WEAPP_LAUNCH_WECHAT_TOKEN)
    encoding_aes_key: str = "a" * 43  # same as WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY
    receiver_url: str | None = None  # e.g. http://127.0.0.1:8000 ; None = pushes are logged, not sent
    token_lifetime: float = TOKEN_LIFETIME
    ticket_every: float | None = TICKET_EVERY  # None or 0: only on /_standin/ticket
    ticket_lifetime: float = TICKET_LIFETIME
    privacy_scan_seconds: float = 0.0  # submit_audit answers 61039 this long after a commit
    review_seconds: float = 2.0  # default time a review / a filing stage / a face check takes
    filing_seconds: float = 2.0
    face_seconds: float = 1.0
    register_seconds: float = 1.0
    audit_quota_per_month: int = 20  # platform-wide submit_audit quota (85085 beyond it)
    undo_per_day: int = 5  # undocodeaudit: 5 a day, 10 a month (doc: api_undocodeaudit)
    undo_per_month: int = 10
    legacy_fastregister_offline: bool = True  # fastregisterweapp answers -1 after 2026-04-30 12:00
    push_attempts: int = 4  # the first try and three retries ("总共重试三次", message push doc)
    push_retry_delay: float = 0.2  # WeChat waits 5 s; tests do not
    push_timeout: float = 5.0  # WeChat cuts the connection after 5 s
    tick_seconds: float = 0.05


class StandinClock:
    """time.time() plus an offset; `advance` moves it forward (tokens, reviews, tasks)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._offset += float(seconds)
            return self._offset


# Outcomes a script can name, per kind:
#   review: "pass" | "reject"             (weapp_audit_success / weapp_audit_fail)
#   filing: "filed" | "platform_reject" | "bureau_reject" | "sms_timeout"
#   face:   "pass" | "fail"               (notify_icpfiling_verify_result 3 / 2)
#   register: "ok" | "fail"               (notify_third_fasteregister status 0 / non-zero)
KINDS = {"review": {"pass", "reject"}, "filing": {"filed", "platform_reject", "bureau_reject", "sms_timeout"},
         "face": {"pass", "fail"}, "register": {"ok", "fail"}}


@dataclass
class Outcome:
    result: str
    after: float | None = None  # seconds after the call; None = the config's default; -1 = only on advance
    reason: str = ""
    audit_data: list[dict] = field(default_factory=list)  # filing rejections: [{key_name, error, suggest}]

    @classmethod
    def of(cls, value: Any) -> Outcome:
        if isinstance(value, Outcome):
            return value
        if isinstance(value, str):
            return cls(value)
        return cls(**value)

    @property
    def manual(self) -> bool:
        return self.after is not None and self.after < 0


class StandinScript:
    """Per appid (or "*" for any), the next outcomes of each kind, consumed in order; when a
    list is empty the outcome is a pass after the config's default time."""

    DEFAULTS = {"review": "pass", "filing": "filed", "face": "pass", "register": "ok"}

    def __init__(self, plan: dict[str, dict[str, list]] | None = None) -> None:
        self._lock = threading.Lock()
        self._plan: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
        for appid, kinds in (plan or {}).items():
            for kind, outcomes in kinds.items():
                for o in outcomes:
                    self.add(appid, kind, o)

    def add(self, appid: str, kind: str, outcome: Any) -> Outcome:
        o = Outcome.of(outcome)
        if kind not in KINDS or o.result not in KINDS[kind]:
            raise ValueError(f"unknown {kind} outcome {o.result!r}; one of {sorted(KINDS.get(kind, ()))}")
        with self._lock:
            self._plan[(appid, kind)].append(o)
        return o

    def next(self, appid: str, kind: str) -> Outcome:
        with self._lock:
            for key in ((appid, kind), ("*", kind)):
                if self._plan.get(key):
                    return self._plan[key].pop(0)
        return Outcome(self.DEFAULTS[kind])

    def pending(self) -> dict[str, dict[str, list[dict]]]:
        with self._lock:
            out: dict[str, dict[str, list[dict]]] = defaultdict(dict)
            for (appid, kind), items in self._plan.items():
                if items:
                    out[appid][kind] = [vars(o) for o in items]
            return dict(out)
