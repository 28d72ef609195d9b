"""The inbox of callbacks: land first (durable, once per source event), apply afterwards.

Every function takes the application's resources first (``res``: store, clock, catalogue,
orchestrator, settings).

    accept_push(res, event, …)  write one REDACTED event to the inbox under its unique event_key
                           (a duplicate is a no-op), through Store.put_event.
    land_batch(res, items) the receiver's request path: many pushes, each with its nonce, in ONE
                           transaction (group commit) — per push the nonce is taken (a replay
                           writes nothing) and the redacted event inserted once per event_key.
                           WeChat gets `success` only after this commit.
    apply_event(res, row)  later, off the request path: find the launch, record each mapped
                           decision through launch.app.decisions.submit_decision (which resumes
                           the run if it is parked at that gate; if not, the gate finds the
                           decision when it gets there), mark the row applied with a result.
    apply_pending(res)     every unapplied row, oldest first: at receiver start-up, by the
                           receiver's background applier, by the deadline watcher. A crash
                           between the inbox write and applying therefore loses nothing.

Results written on a row (``inbox.result``, ``launch.domain.vocabulary.InboxResult``):
    applied    at least one decision recorded
    duplicate  every decision was already there (a replay, or a second push of the same news)
    noted      the push decides nothing (review delayed, filed without a number, …); the note
               is in ``inbox.error`` for staff
    no-launch  no launch matches the push
    refused    the decision failed the gate's form or rules; the problems are in ``inbox.error``
    ignored    an event we do not act on (stored and acknowledged only)
    error      the stored payload cannot be read back (never expected)

A refusal is recorded on the row, never raised. Unexpected errors (database unavailable,
Prefect unreachable while resuming) leave the row unapplied, with the error noted, so the
next pass tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from launch.domain.masking import scrub_text
from launch.domain.vocabulary import DecisionChannel, DecisionStatus, InboxResult, InboxSource
from launch.store import nonce_ttl_seconds as _store_nonce_ttl
from launch.wechat.events import EVENT_ADAPTER, FastRegisterResult, UnknownEvent
from launch.wechat.mapping import DECIDED_BY, PLATFORM_REGISTRATION, Lookup, Plan, fastregister_plan, plan_for

if TYPE_CHECKING:
    from launch.app.resources import Resources
    from launch.settings import Settings

__all__ = [
    "ApplyOutcome",
    "Landed",
    "Landing",
    "accept_push",
    "apply_event",
    "apply_pending",
    "land_batch",
    "nonce_lifetime",
    "payload_for",
    "take_nonces",
]

log = logging.getLogger("weapp_launch.inbox")

_APPLY_LOCK = threading.Lock()  # one applier at a time in a process (rows are also claimed in SQL)


@dataclass(frozen=True)
class ApplyOutcome:
    inbox_id: int
    result: InboxResult | None  # None: left unapplied (an unexpected error; tried again later)
    launch_id: str | None = None
    detail: str | None = None


# ---------------------------------------------------------------- accepting


def nonce_lifetime(settings: Settings) -> float:
    """How long a push's nonce and signature are remembered (``launch.store.nonce_ttl_seconds``
    of the settings' timestamp window)."""
    return _store_nonce_ttl(settings.timestamp_window_seconds)


def _credit_code_digest(res: Resources, code: str | None) -> str | None:
    if not code or not code.strip():
        return None
    try:
        return res.store.identifier_digest("credit_code", code)
    except ValueError:
        return None


def payload_for(res: Resources, event, *, path_appid: str | None = None) -> dict[str, Any]:
    """What the inbox keeps of a push: the redacted event, routing hints, and (fast
    registration only) the blind-index digest of the credit code, so the launch can be
    found later without the code itself ever being stored."""
    payload: dict[str, Any] = {"event": event.redacted().model_dump(mode="json")}
    if path_appid:
        payload["route"] = {"path_appid": path_appid}
    if isinstance(event, FastRegisterResult):
        digest = _credit_code_digest(res, event.info.code)
        if digest:
            payload["lookup"] = {"credit_code_digest": digest}
    return payload


TICKET_FIELD = "ComponentVerifyTicket"


def _without_secrets(event):
    """The event as the inbox may keep it: the platform's component_verify_ticket is a credential
    (with the secret it buys the component token), so the inbox row keeps no copy of it."""
    if isinstance(event, UnknownEvent) and event.raw_type == "component_verify_ticket" and event.fields.get(TICKET_FIELD):
        return event.model_copy(update={"fields": {**event.fields, TICKET_FIELD: "***"}})
    return event


def _platform_effect(res: Resources, event, at: datetime) -> None:
    """Pushes about the platform itself, not a launch: the ticket WeChat pushes every 10 minutes
    is kept, encrypted, for the platform client's tokens; `unauthorized` revokes that
    mini-program's authorisation (its tokens are no longer used)."""
    if not isinstance(event, UnknownEvent):
        return
    fields = event.fields
    if event.raw_type == "component_verify_ticket" and fields.get(TICKET_FIELD):
        from launch.wechat.platform.tokens import remember_ticket

        remember_ticket(res.store, str(fields[TICKET_FIELD]), at, component_appid=fields.get("AppId"))
    elif event.raw_type == "unauthorized" and fields.get("AuthorizerAppid"):
        res.store.revoke_authorizer(str(fields["AuthorizerAppid"]), at)


def _registered_effect(res: Resources, event, at: datetime, *, background: bool = False) -> None:
    """notify_third_fasteregister with status 0: WeChat registered the mini program AND authorised it
    to the platform; its auth_code (a credential: the inbox keeps it masked) is exchanged here,
    once, with api_query_auth, which keeps the authorizer's refresh token encrypted. Docs:
    developers.weixin.qq.com/doc/oplatform/openApi/register-management/fast-registration-ent/
    api_registerminiprogram.html ("注册审核事件推送": appid, status, auth_code 第三方授权码, msg, info)."""
    if not (isinstance(event, FastRegisterResult) and event.ok and event.appid and event.auth_code):
        return
    platform = res.wechat
    if platform is None:
        return

    def exchange() -> None:
        try:
            platform.auth.query_auth(event.auth_code, at=at)
            return
        except Exception as exc:  # noqa: BLE001 - the code may have expired (a late retry): ask WeChat's list
            log.warning("fast registration: exchanging the auth code failed: %s", type(exc).__name__)
        try:
            if not platform.auth.recover(event.appid, at=at):
                log.warning("fast registration: WeChat does not list the new mini program as authorised")
        except Exception as exc:  # noqa: BLE001 - staff can authorise again (weapp-launch wechat authorize)
            log.warning("fast registration: recovering the authorisation failed: %s", type(exc).__name__)

    if background:  # the receiver's writer thread answers WeChat's pushes: no WeChat call on it
        threading.Thread(target=exchange, name="weapp-fastregister-auth", daemon=True).start()
    else:
        exchange()


def accept_push(
    res: Resources,
    event,
    source: InboxSource | str = InboxSource.WECHAT,
    launch_id: str | None = None,
    *,
    path_appid: str | None = None,
    received_at: datetime | None = None,
    session: Session | None = None,
):
    """Write a parsed push to the inbox, redacted; returns (InboxRecord, created).

    A second push with the same event_key returns the first row, created=False. Pass
    `session=` to make the write part of a larger transaction (the receiver commits the
    nonce and the event together).
    """
    plan = plan_for(event)
    gate = plan.decisions[0][0] if plan.decisions else None
    kept = _without_secrets(event)
    row, created = res.store.put_event(
        InboxSource(source),
        event.event_key[:255],  # a digest of the fields, so the same push keeps its key
        kept.kind,
        payload_for(res, kept, path_appid=path_appid),
        launch_id=launch_id,
        gate=gate,
        received_at=received_at or res.now(),
        session=session,
    )
    if created:
        _platform_effect(res, event, received_at or res.now())
        _registered_effect(res, event, received_at or res.now())
    return row, created


@dataclass(frozen=True)
class Landing:
    """One push to land: the parsed event, its nonce (None: no replay check) and route hints."""

    event: Any
    nonce: str | None = None
    path_appid: str | None = None
    source: InboxSource = InboxSource.WECHAT
    signature: str | None = None  # msg_signature (or a test platform's signature): replay-checked too


@dataclass(frozen=True)
class Landed:
    inbox_id: int | None  # None when refused as a replay
    created: bool  # False: the event was already in the inbox (a duplicate push)
    replayed: bool = False  # the nonce was seen before: nothing written


SIGNATURE_SCOPE = "wechat-signature"


def take_nonces(res: Resources, entries: Sequence[tuple[str, str]], ttl_seconds: float | None = None) -> bool:
    """Remember every (scope, value) at once, or none: False when any was seen within the TTL
    (a replay; default :func:`nonce_lifetime`). For requests that land nothing else, such as
    a URL verification."""
    ttl = nonce_lifetime(res.settings) if ttl_seconds is None else ttl_seconds
    return res.store.take_nonces(entries, res.now(), ttl)


def land_batch(
    res: Resources, items: Sequence[Landing], *, nonce_scope: str = "wechat", nonce_ttl_seconds: float | None = None
) -> list[Landed]:
    """Land several pushes in one transaction (the receiver's group commit); returns one
    Landed per item, in order. Either every item's writes commit or none do. Nonces are
    remembered for ``nonce_ttl_seconds`` (default :func:`nonce_lifetime`)."""
    store = res.store
    now = res.now()
    ttl = nonce_lifetime(res.settings) if nonce_ttl_seconds is None else nonce_ttl_seconds
    prepared = []
    for item in items:  # redaction and mapping before taking the write lock
        plan = plan_for(item.event)
        kept = _without_secrets(item.event)
        prepared.append((
            item,
            InboxSource(item.source),
            item.event.event_key[:255],  # a digest of the fields: the same push keeps its key
            kept.kind,
            payload_for(res, kept, path_appid=item.path_appid),
            plan.decisions[0][0] if plan.decisions else None,
        ))
    out: list[Landed] = []
    with store.session() as s:
        for item, source, event_key, kind, payload, gate in prepared:
            # Nonce and signature are both replay keys; a refused replay burns neither.
            if not store.take_nonces([(nonce_scope, item.nonce), (SIGNATURE_SCOPE, item.signature)], now, ttl,
                                     session=s):
                out.append(Landed(None, False, replayed=True))
                continue
            inbox_id, created = store.land_event(source, event_key, kind, payload, gate=gate, received_at=now,
                                                 session=s)
            out.append(Landed(inbox_id, created))
    for (item, *_), landed in zip(prepared, out):
        if landed.created:  # committed; a platform push's effect follows (idempotent: a newer ticket wins)
            _platform_effect(res, item.event, now)
            _registered_effect(res, item.event, now, background=True)
    return out


# ---------------------------------------------------------------- applying


def _find_launch(store, row, plan: Plan):
    if row.launch_id:
        return store.get_launch(row.launch_id)
    lookups = list(plan.lookups)
    path_appid = (row.payload.get("route") or {}).get("path_appid")
    if path_appid:
        lookups.append(Lookup("appid", path_appid))
    for lookup in lookups:
        if lookup.by == "original_id" and lookup.value:
            found = store.find_launch_by_original_id(lookup.value)
        elif lookup.by == "appid" and lookup.value:
            found = store.find_launch_by_appid(lookup.value)
        elif lookup.by == "credit_code":
            digest = (row.payload.get("lookup") or {}).get("credit_code_digest")
            found = store.find_running_launch_by_identifier("credit_code", digest) if digest else None
        else:
            found = None
        if found is not None:
            return found
    return None


def _earlier_registration(res: Resources, launch_id: str, taskid: str | None) -> int | None:
    """The attempt whose registration task ``taskid`` was, when a later attempt of the gate has
    opened since (a late push about a superseded task must not decide the new one)."""
    if not taskid:
        return None
    from launch.app.wechat_actions import REGISTER_TASK_EFFECT

    mine = None
    for e in res.store.effects_for(launch_id):
        n, _, tid = e.effect_key.removeprefix(REGISTER_TASK_EFFECT).partition(":")
        if e.effect_key.startswith(REGISTER_TASK_EFFECT) and tid == taskid and n.isdigit():
            mine = int(n)
    if mine is None:
        return None
    latest = max((s.attempt for s in res.store.steps_for(launch_id) if s.step == PLATFORM_REGISTRATION), default=0)
    return mine if latest > mine else None


def _finish(res: Resources, inbox_id: int, result: InboxResult, detail: str | None, launch_id: str | None) -> bool:
    """Mark a row applied (first writer wins: a row applied by another process stays as it is)."""
    return res.store.finish_event(inbox_id, result, detail, launch_id=launch_id, at=res.now())


def _resume_own_pending(res: Resources, launch_id: str, gate_id: str, inbox_id: int) -> bool:
    """After a crash between recording a decision and resuming its run, applying again
    finds a duplicate: resume the run now if it is parked at that gate's attempt."""
    store = res.store
    decision = store.unconsumed_decision_from_event(launch_id, gate_id, inbox_id)
    if decision is None:
        return False
    step = store.get_step(launch_id, gate_id, decision.attempt)
    if step is None or step.status != "waiting" or not step.flow_run_id:
        return False
    form = res.catalogue.validate_form(gate_id, {**dict(decision.payload or {}), "decided_by": decision.actor})
    gate = res.catalogue.gate(gate_id)
    return res.orchestrator.resume_if_parked(step.flow_run_id, gate.key(decision.attempt),
                                             form.model_dump(mode="json"), wait_seconds=0)


def apply_event(res: Resources, row) -> ApplyOutcome:
    """Apply one inbox row (an InboxRecord). Refusals are recorded on the row, not raised;
    an unexpected error propagates and leaves the row unapplied."""
    return _apply(res, row, lambda *args: _finish(res, *args))


def _apply(res: Resources, row, finish: Callable[[int, InboxResult, str | None, str | None], Any]) -> ApplyOutcome:
    from launch.app.decisions import DecisionRefused, submit_decision

    store = res.store

    if row.applied_at is not None:
        return ApplyOutcome(row.id, row.result, row.launch_id, row.error)
    try:
        event = EVENT_ADAPTER.validate_python((row.payload or {}).get("event"))
    except Exception:  # noqa: BLE001 - a payload we cannot read back
        finish(row.id, InboxResult.ERROR, "存储的事件无法解析 / stored event cannot be read back", None)
        return ApplyOutcome(row.id, InboxResult.ERROR, None, "unreadable payload")
    plan = plan_for(event)
    if not plan.acted_on:
        finish(row.id, InboxResult.IGNORED, None, row.launch_id)
        return ApplyOutcome(row.id, InboxResult.IGNORED, row.launch_id)
    launch = _find_launch(store, row, plan)
    if launch is None:
        detail = "没有匹配的上线任务 / no launch matches this push"
        if plan.note:
            detail += f"; {plan.note}"
        finish(row.id, InboxResult.NO_LAUNCH, detail, None)
        return ApplyOutcome(row.id, InboxResult.NO_LAUNCH, None, detail)
    path_appid = (row.payload.get("route") or {}).get("path_appid")
    if path_appid and launch.appid and launch.appid != path_appid:
        # Found by the original id the message names, but posted to another app's URL.
        detail = ("路径中的 AppID 与消息所指的上线任务不一致 / the app id in the path differs from the launch "
                  "the message names")
        finish(row.id, InboxResult.REFUSED, detail, None)
        return ApplyOutcome(row.id, InboxResult.REFUSED, None, detail)
    if isinstance(event, FastRegisterResult):
        # which gate the registration result decides depends on the launch's registration path
        plan = fastregister_plan(event, launch.registration_path)
        earlier = _earlier_registration(res, launch.id, event.info.taskid)
        if earlier is not None:
            detail = (f"该推送属于第 {earlier} 次代注册任务，已有后续任务 / this push is about registration task "
                      f"#{earlier}; a later one is running")
            finish(row.id, InboxResult.DUPLICATE, detail, launch.id)
            return ApplyOutcome(row.id, InboxResult.DUPLICATE, launch.id, detail)
    if plan.filed:
        # "filed" (status 6): the bureau-review approval needs the number WeChat gives on asking;
        # the same decision the watcher's poll makes (launch/app/reconcile.py). Asking fails: noted,
        # and the gate waits for the next poll.
        from launch.app.reconcile import filed_decision

        plan = filed_decision(res, res.wechat, launch.id, launch.appid, decided_by=DECIDED_BY)
    if plan.name_reviewed:
        return _name_reviewed(res, row, launch, plan)
    if not plan.decisions:
        finish(row.id, InboxResult.NOTED, plan.note, launch.id)
        return ApplyOutcome(row.id, InboxResult.NOTED, launch.id, plan.note)

    recorded, duplicates, problems = [], [], []
    for gate_id, data in plan.decisions:
        try:
            result = submit_decision(res, launch.id, gate_id, data, channel=DecisionChannel.WECHAT, inbox_id=row.id)
        except DecisionRefused as refused:
            problems.extend(f"{gate_id}.{p.field}: {p.message}" for p in refused.problems)
            continue
        if result.status == DecisionStatus.RECORDED:
            recorded.append(f"{gate_id}#{result.attempt}: {data.get('outcome')}")
        else:
            duplicates.append(gate_id)
            try:
                _resume_own_pending(res, launch.id, gate_id, row.id)
            except Exception as exc:  # noqa: BLE001 - the gate will still find the decision
                log.warning("resume after duplicate failed for inbox %s: %s", row.id, type(exc).__name__)
    parts = []
    if recorded:
        parts.append("已登记 / recorded " + ", ".join(recorded))
    if duplicates:
        parts.append("已存在 / already there: " + ", ".join(duplicates))
    if problems:
        parts.append("被拒 / refused: " + "; ".join(problems))
    if plan.note:
        parts.append(plan.note)
    detail = scrub_text(" | ".join(parts))[:2000] if parts else None
    outcome = InboxResult.APPLIED if recorded else (InboxResult.REFUSED if problems else InboxResult.DUPLICATE)
    # decisions were written: mark the row now, not with the batch
    _finish(res, row.id, outcome, detail, launch.id)
    return ApplyOutcome(row.id, outcome, launch.id, detail)


def _name_reviewed(res: Resources, row, launch, plan: Plan) -> ApplyOutcome:
    """wxa_nickname_audit: WeChat reviewed the name the tool set. The profile gate's action runs
    again — it asks api_wxa_querynickname, then decides the gate or notes the rejection, exactly
    as the watcher's retry would — and a decision it records is resumed at once."""
    from launch.app.decisions import resume_recorded
    from launch.app.wechat_actions import act

    gates = [g.id for g in res.catalogue.gates.values() if g.action == "set_profile"]
    step = next((s for s in reversed(res.store.steps_for(launch.id)) if s.step in gates and s.status == "waiting"),
                None)
    if step is None or res.store.get_decision(launch.id, step.step, step.attempt) is not None:
        detail = f"{plan.note}；无等待中的基本信息关卡 / no profile gate waits"
        _finish(res, row.id, InboxResult.NOTED, detail, launch.id)
        return ApplyOutcome(row.id, InboxResult.NOTED, launch.id, detail)
    what = act(res, launch.id, step.step, step.attempt)
    decided = res.store.get_decision(launch.id, step.step, step.attempt) is not None
    if decided:
        resume_recorded(res, launch_id=launch.id, gate_id=step.step)
    detail = f"{plan.note}；{step.step}#{step.attempt}: {what}"
    result = InboxResult.APPLIED if decided else InboxResult.NOTED
    _finish(res, row.id, result, detail, launch.id)
    return ApplyOutcome(row.id, result, launch.id, detail)


def _finish_many(res: Resources, marks: list[tuple[int, InboxResult, str | None, str | None]]) -> None:
    if not marks:
        return
    now, store = res.now(), res.store
    with store.session() as s:
        for inbox_id, result, detail, launch_id in marks:
            store.finish_event(inbox_id, result, detail, launch_id=launch_id, at=now, session=s)


def apply_pending(res: Resources, limit: int = 100, *,
                  between: Callable[[], None] | None = None) -> list[ApplyOutcome]:
    """Apply every unapplied inbox row (up to `limit`), oldest first; returns what happened.

    `between` is called before each row (the receiver uses it to let incoming pushes
    have the database first)."""
    store = res.store
    outcomes: list[ApplyOutcome] = []
    # rows that record nothing (ignored, no-launch, noted) are marked together at the end: one
    # transaction instead of one per row. A crash before that only means applying them again.
    marks: list[tuple[int, InboxResult, str | None, str | None]] = []
    with _APPLY_LOCK:
        for row in store.unapplied_events(limit=limit):
            if between is not None:
                between()
            try:
                outcomes.append(_apply(res, row, lambda *args: marks.append(args)))
            except Exception as exc:  # noqa: BLE001 - keep the row for the next pass
                detail = f"应用失败，将重试 / applying failed, will retry: {type(exc).__name__}"
                log.warning("inbox %s: %s", row.id, detail)
                try:
                    store.note_event_error(row.id, detail)
                except Exception:  # noqa: BLE001
                    pass
                outcomes.append(ApplyOutcome(row.id, None, row.launch_id, detail))
        try:
            _finish_many(res, marks)
        except Exception as exc:  # noqa: BLE001 - they stay unapplied and are applied again
            log.warning("marking %d inbox rows failed: %s", len(marks), type(exc).__name__)
            failed = {m[0] for m in marks}
            outcomes = [o if o.inbox_id not in failed else ApplyOutcome(o.inbox_id, None, o.launch_id, o.detail)
                        for o in outcomes]
    return outcomes
