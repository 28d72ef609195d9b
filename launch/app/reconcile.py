"""Reconciliation: ask WeChat about gates whose push never came.

A push that is lost (the receiver was down, WeChat gave up retrying, a dropped packet) leaves
a gate waiting forever: WeChat pushes once. The watcher's repair pass therefore asks WeChat,
for every launch that has waited on WeChat longer than ``WEAPP_LAUNCH_WECHAT_RECONCILE_SECONDS``:

    code-review                     GET  /wxa/get_latest_auditstatus          (CodeApi)
    face-verification               POST /wxa/icp/query_icp_verifytask        (IcpApi; the task id the
                                                                               step's action noted)
    first-review, sms-verification, GET  /wxa/icp/get_icp_entrance_info       (IcpApi: status,
    bureau-review                                                              sms_verify_status, audit_data)
    bureau-review, once filed (6)   GET  /wxa/icp/get_online_icp_order        (IcpApi: the filing number)
    wechat-verification (认证)       POST /cgi-bin/account/getaccountbasicinfo   (AccountApi: passed once
                                                                              wx_verify_info.qualification_verify;
                                                                              authorised mini programs only)
    platform-registration           POST /wxa/component/fastregisterenterpriseweapp?action=query
                                                                              (RegistrationApi; the task id
                                                                               the action kept in the ledger)

and decides the gate exactly as the push would have: the answer goes through the SAME mapping
(``launch.wechat.mapping.review_plan / face_plan / filing_plan``), decided_by "微信接口查询 /
WeChat API", channel ``wechat-api``, through ``launch.app.decisions.submit_decision`` with the
open step's attempt (insert-or-get per attempt). So a decision is never made twice: a push
arriving later finds it there (duplicate), and a push that came first leaves no waiting step
without a decision for the pass to find (the query skips decided attempts; were it to race, the
insert-or-get answers duplicate).

A "filed" status (6) approves the bureau review only WITH the filing number, which neither the
push nor get_icp_entrance_info carries: ``filed_decision`` asks get_online_icp_order for it
(icp_applets[].base_info.record_number). The inbox's applier uses the same function for the
status-6 push, so push and poll decide the gate alike; when asking fails the gate keeps waiting
with a note, and the next pass asks again (nothing is lost, nothing decided without a number).

Only gates that are OPEN (a waiting step with no decision) and have waited longer than the
interval are decided; a WeChat status that also answers a later gate (status 4 with the SMS
done) decides that gate when it opens and has waited in turn — WeChat's API gives a state,
not an event, so nothing is recorded ahead for an attempt that does not exist yet.

Within WeChat's limits: each mini-program is asked at most once per API per pass (a launch's
open steps are grouped by appid); a pass makes at most ``budget`` calls and says what it left
for the next pass; a rate limit (45009 / 45011, after the client's own bounded retries) stops
that API for the rest of the pass. Errors are reported per launch (the error's type and our
Chinese / English message: never a token), never raised out of the pass.

Without a platform (``platform`` None: no component app id / secret) nothing is asked: the
manual gates stay exactly as they are.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from launch.domain.masking import scrub_text
from launch.domain.vocabulary import DecisionChannel, DecisionStatus
from launch.wechat.mapping import (
    DECIDED_BY_API,
    registration_task_plan,
    verification_plan,
    FILED_NOTE,
    Plan,
    bureau_approved_plan,
    face_plan,
    filing_plan,
    review_plan,
)

if TYPE_CHECKING:
    from launch.app.resources import Resources
    from launch.store import StepRecord

__all__ = [
    "DEFAULT_BUDGET",
    "FACE_GATES",
    "FILING_GATES",
    "RECONCILED_GATES",
    "REVIEW_GATES",
    "ReconcileError",
    "ReconcileReport",
    "Reconciled",
    "face_task_id",
    "filed_decision",
    "reconcile",
]

log = logging.getLogger("weapp_launch.reconcile")

REVIEW_GATES = ("code-review",)
FACE_GATES = ("face-verification",)
FILING_GATES = ("first-review", "sms-verification", "bureau-review")
REGISTRATION_GATES = ("platform-registration",)  # asked before the mini program exists (no appid)
VERIFY_GATES = ("wechat-verification",)
RECONCILED_GATES = REVIEW_GATES + FACE_GATES + FILING_GATES + VERIFY_GATES

# The APIs asked, by the family of gates they answer (a rate limit stops one API, not the others).
REVIEW, FACE, FILING = "get_latest_auditstatus", "query_icp_verifytask", "get_icp_entrance_info"
ONLINE_ORDER = "get_online_icp_order"
REGISTRATION = "fastregisterenterpriseweapp"
AUTHORIZERS = "api_get_authorizer_list"
ACCOUNT = "getaccountbasicinfo"
BUREAU_GATE = "bureau-review"
NO_NUMBER_NOTE = ("微信称已备案，但已备案详情中没有小程序备案号；请在管局审核关卡登记 / WeChat says filed but its filed "
                  "details (get_online_icp_order) hold no mini-program filing number: enter it at the bureau-review gate")

# WeChat's read APIs allow thousands of calls a day per mini-program; a pass every few minutes
# asking each waiting mini-program at most once per API stays far below. The budget caps one
# pass (a backlog after an outage is worked off over several passes, oldest waits first).
DEFAULT_BUDGET = 500
DEFAULT_LIMIT = 2000

_TASK_ID = re.compile(r"task_id[=:：]\s*([A-Za-z0-9_\-]+)")


@dataclass(frozen=True)
class Reconciled:
    launch_id: str
    gate: str
    attempt: int
    outcome: str
    status: str  # recorded | duplicate
    resumed: bool = False


@dataclass(frozen=True)
class ReconcileError:
    launch_id: str
    gate: str
    api: str
    kind: str  # the error's type, e.g. RateLimited, NotAuthorized, WeChatTransportError
    message: str  # ours, Chinese / English; WeChat's errcode when it gave one; never a token


@dataclass
class ReconcileReport:
    now: datetime
    asked: int = 0  # waiting steps looked at
    calls: int = 0  # API calls made
    decided: list[Reconciled] = field(default_factory=list)  # recorded now
    duplicates: list[Reconciled] = field(default_factory=list)  # someone (a push, staff) was first
    still_waiting: int = 0  # WeChat has no result yet
    deferred: int = 0  # steps left for the next pass (budget spent, or their API rate-limited)
    stopped: dict[str, str] = field(default_factory=dict)  # api -> why it stopped (rate-limited | budget)
    notes: list[str] = field(default_factory=list)
    errors: list[ReconcileError] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {"asked": self.asked, "calls": self.calls, "reconciled": len(self.decided),
                "duplicates": len(self.duplicates), "still_waiting": self.still_waiting,
                "deferred": self.deferred, "errors": len(self.errors)}

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.astimezone(UTC).isoformat(),
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "stopped": dict(self.stopped),
            "decided": [vars(d) for d in self.decided],
            "duplicates": [vars(d) for d in self.duplicates],
            "notes": list(self.notes),
            "errors": [vars(e) for e in self.errors],
        }


def face_task_id(step: StepRecord) -> str | None:
    """The face-check task id the gate's action noted on the step (``task_id=<id>``,
    launch/app/wechat_actions.py); None when the task was made by hand."""
    found = _TASK_ID.search(step.note or "")
    return found.group(1) if found else None


def _message(exc: BaseException) -> str:
    """Our words for an error: zh / en, WeChat's code; scrubbed of anything token-like."""
    from launch.wechat.platform.errors import WeChatApiError, WeChatTransportError, scrub

    if isinstance(exc, WeChatApiError):
        text = f"{exc.zh} / {exc.en} (errcode {exc.errcode})"
    elif isinstance(exc, WeChatTransportError):
        text = f"{exc.zh} / {exc.en}"
    else:
        text = str(exc) or type(exc).__name__
    return scrub_text(scrub(text))[:300]


def _reasons(audit_data: list[Any]) -> str | None:
    """WeChat's rejection reasons (audit_data: key_name, error, suggest) as one line."""
    parts = []
    for item in audit_data or []:
        text = f"{item.key_name}：{item.error}" if item.key_name else item.error
        if item.suggest:
            text += f"（建议 / suggested: {item.suggest}）"
        if text.strip():
            parts.append(text.strip())
    return "；".join(parts) or None


class _Pass:
    """One pass's state: the budget, the APIs stopped, the report."""

    def __init__(self, res: Resources, platform: Any, report: ReconcileReport, budget: int) -> None:
        self.res, self.platform, self.report, self.budget = res, platform, report, max(0, budget)
        self._authorised: set[str] | None = None

    def authorised(self) -> set[str]:
        """The app ids authorised to the platform (read once per pass)."""
        if self._authorised is None:
            self._authorised = set(self.res.store.authorizer_appids())
        return self._authorised

    def ask(self, api: str, steps: list[StepRecord], call) -> Any:
        """One API call for ``steps`` (all of one mini-program); None when not asked or failed
        (the steps are counted as deferred or their errors reported)."""
        from launch.wechat.platform.errors import RateLimited

        if api in self.report.stopped:
            self.report.deferred += len(steps)
            return None
        if self.report.calls >= self.budget:
            self.report.stopped.setdefault(api, "budget")
            self.report.deferred += len(steps)
            return None
        self.report.calls += 1
        try:
            return call()
        except RateLimited as exc:
            self.report.stopped[api] = "rate-limited"
            self._error(api, steps, exc)
            log.warning("reconcile: %s rate-limited (errcode %s): stopped for this pass", api, exc.errcode)
        except Exception as exc:  # noqa: BLE001 - reported per launch, never raised out of the pass
            self._error(api, steps, exc)
            log.info("reconcile: %s failed: %s", api, type(exc).__name__)
        return None

    def _error(self, api: str, steps: list[StepRecord], exc: BaseException) -> None:
        message = _message(exc)
        for step in steps:
            self.report.errors.append(ReconcileError(step.launch_id, step.step, api, type(exc).__name__, message))

    def decide(self, step: StepRecord, plan: Plan, api: str) -> None:
        """The plan's decision for this open step, if it has one; else its note, if any."""
        from launch.app.decisions import DecisionRefused, submit_decision

        data = next((d for g, d in plan.decisions if g == step.step), None)
        if data is None:
            self.report.still_waiting += 1
            if plan.note:
                self._note(step, plan.note)
            return
        try:
            result = submit_decision(self.res, step.launch_id, step.step, data, DecisionChannel.WECHAT_API,
                                     attempt=step.attempt)
        except DecisionRefused as refused:
            self.report.errors.append(ReconcileError(
                step.launch_id, step.step, api, "DecisionRefused",
                scrub_text("; ".join(f"{p.field}: {p.message}" for p in refused.problems))[:300]))
            return
        except Exception as exc:  # noqa: BLE001 - the store or the orchestrator failed: next pass
            self._error(api, [step], exc)
            return
        done = Reconciled(step.launch_id, step.step, step.attempt, data["outcome"], str(result.status),
                          result.resumed)
        (self.report.decided if result.status == DecisionStatus.RECORDED else self.report.duplicates).append(done)

    def _note(self, step: StepRecord, note: str) -> None:
        """What WeChat says when it decides nothing (filed without a number, review delayed):
        on the gate for staff, written only when it changed; never over the face task's id."""
        self.report.notes.append(f"{step.launch_id}/{step.step}#{step.attempt}: {note}")
        if step.step in FACE_GATES or step.note == note:
            return
        try:
            self.res.store.annotate_step(step.launch_id, step.step, step.attempt, note=note)
        except Exception as exc:  # noqa: BLE001 - a note is not worth failing the pass
            log.info("reconcile: note on %s failed: %s", step.step, type(exc).__name__)


def _review(p: _Pass, appid: str, steps: list[StepRecord]) -> None:
    from launch.wechat.platform.code import AuditState

    latest = p.ask(REVIEW, steps, lambda: p.platform.code.get_latest_auditstatus(appid))
    if latest is None:
        return
    state = latest.state
    if state == AuditState.PASSED:
        plan = review_plan("passed", decided_by=DECIDED_BY_API)
    elif state == AuditState.REJECTED:
        plan = review_plan("failed", reason=latest.reason, screenshots=(latest.screenshot or "").split("|"),
                           decided_by=DECIDED_BY_API)
    elif state == AuditState.DELAYED:
        plan = review_plan("delayed", reason=latest.reason)
    elif state == AuditState.WITHDRAWN:
        plan = Plan(note="微信上的最新审核已撤回 / WeChat's latest review was withdrawn (undocodeaudit)")
    else:  # in review, or a status WeChat added since
        plan = Plan()
    for step in steps:
        if plan.decisions and _older_than_attempt(p, step, latest.submit_audit_time):
            p.report.still_waiting += 1
            p.report.notes.append(
                f"{step.launch_id}/{step.step}#{step.attempt}: 微信最新审核早于本次提审，未采用 / WeChat's latest "
                "review predates this attempt: not taken")
            continue
        p.decide(step, plan, REVIEW)


def _older_than_attempt(p: _Pass, step: StepRecord, submitted: int | None) -> bool:
    """Whether WeChat's latest review was submitted before the previous review attempt ended:
    then it is that attempt's result, not this one's (the resubmission has not reached WeChat)."""
    if step.attempt <= 1 or not submitted:
        return False
    previous = p.res.store.get_step(step.launch_id, step.step, step.attempt - 1)
    if previous is None or previous.finished_at is None:
        return False
    return submitted < previous.finished_at.timestamp()


def _face(p: _Pass, appid: str, steps: list[StepRecord]) -> None:
    by_task: dict[str, list[StepRecord]] = defaultdict(list)
    for step in steps:
        task = face_task_id(step)
        if task is None:
            p.report.still_waiting += 1  # the task was made by hand: only its push or staff can say
            continue
        by_task[task].append(step)
    for task, mine in by_task.items():
        result = p.ask(FACE, mine, lambda task=task: p.platform.icp.query_icp_verifytask(appid, task))
        if result is None:
            continue
        finished = result.is_finish or result.face_status in (2, 3)
        plan = face_plan(result.face_status, task, decided_by=DECIDED_BY_API) if finished else Plan()
        for step in mine:
            p.decide(step, plan, FACE)


def _approved_number(res: Resources, launch_id: str) -> str | None:
    """The filing number of a bureau-review approval already recorded for this launch."""
    for d in res.store.history(launch_id):
        if d.gate == BUREAU_GATE and d.outcome == "approved" and (d.payload or {}).get("filing_number"):
            return str(d.payload["filing_number"])
    return None


def filed_decision(res: Resources, platform: Any, launch_id: str, appid: str | None, *, decided_by: str,
                   ask=None) -> Plan:
    """What WeChat's "filed" (status 6) decides, by push or by poll: bureau-review approved with
    the mini program's filing number from get_online_icp_order. A number already recorded for
    the launch (a push arriving after the poll decided) is reused without asking, so the late
    push meets its duplicate. ``ask(call)``: how the call is made (the reconciliation's budget
    and rate limits; None when it failed). Without a platform, or when asking fails or WeChat
    gives no number, a Plan with only a note: nothing is decided and the gate keeps waiting for
    the next pass (or staff)."""
    known = _approved_number(res, launch_id)
    if known:
        return bureau_approved_plan(known, decided_by=decided_by)
    if platform is None or not appid:
        return Plan(note=FILED_NOTE)

    def call():
        return platform.icp.get_online_icp_order(appid)

    if ask is not None:
        order = ask(call)
        if order is None:
            return Plan(note=FILED_NOTE)
    else:
        try:
            order = call()
        except Exception as exc:  # noqa: BLE001 - the gate waits; the watcher's next pass asks again
            log.info("get_online_icp_order failed for %s: %s", launch_id, type(exc).__name__)
            return Plan(note=f"{FILED_NOTE} — {_message(exc)}")
    number = order.record_number
    if not number:
        return Plan(note=NO_NUMBER_NOTE)
    return bureau_approved_plan(number, decided_by=decided_by)


def _filing(p: _Pass, appid: str, steps: list[StepRecord]) -> None:
    info = p.ask(FILING, steps, lambda: p.platform.icp.get_icp_entrance_info(appid))
    if info is None:
        return
    plan = filing_plan(info.status, info.sms_verify_status, reason=_reasons(info.audit_data),
                       decided_by=DECIDED_BY_API)
    bureau = [s for s in steps if s.step == BUREAU_GATE]
    if plan.filed and bureau:
        # one question per mini-program: the launch of its first open bureau-review step
        plan = filed_decision(p.res, p.platform, bureau[0].launch_id, appid, decided_by=DECIDED_BY_API,
                              ask=lambda call: p.ask(ONLINE_ORDER, bureau, call))
    for step in steps:
        p.decide(step, plan, FILING)


def _verification(p: _Pass, appid: str, steps: list[StepRecord]) -> None:
    """认证: asked only of a mini program authorised to the platform (a manual-path launch whose
    admin never authorised it would only answer an error every pass); passed once WeChat says so."""
    account = getattr(p.platform, "account", None)
    if account is None or appid not in p.authorised():
        p.report.still_waiting += len(steps)
        return
    info = p.ask(ACCOUNT, steps, lambda: account.get_account_basic_info(appid))
    if info is None:
        return
    plan = verification_plan(info.verified, decided_by=DECIDED_BY_API)
    for step in steps:
        p.decide(step, plan, ACCOUNT)


def _registration(p: _Pass, steps: list[StepRecord]) -> None:
    """The platform's registration tasks (no mini program yet): one query per task."""
    from launch.app.wechat_actions import registration_task

    for step in steps:
        known = registration_task(p.res, step.launch_id, step.attempt)
        if known is None:  # the action made no task (no platform then, a refusal): staff decide
            p.report.still_waiting += 1
            continue
        task = p.ask(REGISTRATION, [step], lambda taskid=known[1]: p.platform.registration.query_enterprise(taskid))
        if task is None:
            continue
        authorised = not task.appid or task.appid in p.authorised()
        if not authorised:  # the push with its auth code was lost: WeChat lists the refresh token
            recovered = p.ask(AUTHORIZERS, [step], lambda appid=task.appid: p.platform.auth.recover(appid, at=p.report.now))
            if recovered is None:  # WeChat could not answer (reported): the next pass asks both again
                continue
            authorised = bool(recovered)
            if authorised:
                p.authorised().add(task.appid)
        p.decide(step, registration_task_plan(task.status, task.appid, decided_by=DECIDED_BY_API,
                                              authorised=authorised), REGISTRATION)


def reconcile(res: Resources, platform: Any, now: datetime, *, older_than_seconds: float,
              limit: int = DEFAULT_LIMIT, budget: int = DEFAULT_BUDGET) -> ReconcileReport:
    """One reconciliation pass (see the module docstring). ``platform``: ``res.wechat`` (its
    ``.code`` and ``.icp``), or None: then nothing is asked. ``older_than_seconds`` <= 0 turns
    it off. ``limit``: waiting steps read; ``budget``: API calls made, at most."""
    report = ReconcileReport(now)
    if platform is None or older_than_seconds <= 0:
        return report
    started = time.perf_counter()
    try:
        rows = res.store.waiting_on_wechat(RECONCILED_GATES, now - timedelta(seconds=older_than_seconds), limit,
                                           before_appid=REGISTRATION_GATES)
    except Exception as exc:  # noqa: BLE001 - the store is down: the next pass tries again
        report.errors.append(ReconcileError("-", "-", "store", type(exc).__name__, _message(exc)))
        report.seconds = time.perf_counter() - started
        return report
    report.asked = len(rows)
    groups: dict[str, list[StepRecord]] = defaultdict(list)  # appid -> its steps, longest waiting first
    registering: list[StepRecord] = []
    for step, appid in rows:
        if step.step in REGISTRATION_GATES:
            registering.append(step)
        elif appid:
            groups[appid].append(step)
    p = _Pass(res, platform, report, budget)
    if registering:
        _registration(p, registering)
    for appid, steps in groups.items():
        review = [s for s in steps if s.step in REVIEW_GATES]
        face = [s for s in steps if s.step in FACE_GATES]
        filing = [s for s in steps if s.step in FILING_GATES]
        verify = [s for s in steps if s.step in VERIFY_GATES]
        if verify:
            _verification(p, appid, verify)
        if review:
            _review(p, appid, review)
        if face:
            _face(p, appid, face)
        if filing:
            _filing(p, appid, filing)
    report.seconds = time.perf_counter() - started
    if report.decided or report.errors or report.stopped:
        log.info("reconcile: %s", report.counts())
    return report
