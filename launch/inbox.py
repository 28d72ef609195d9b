"""The inbox of callbacks: land first (durable, once per source event), apply afterwards.

    accept_push(event, …)  write one REDACTED event to the inbox under its unique event_key
                           (a duplicate is a no-op), through Store.put_event.
    land_batch(items)      the receiver's request path: many pushes, each with its nonce, in ONE
                           transaction (group commit) — per push the nonce is taken (a replay
                           writes nothing) and the redacted event inserted once per event_key.
                           WeChat gets `success` only after this commit.
    apply_event(row)       later, off the request path: find the launch, record each mapped
                           decision through launch.decisions.submit_decision (which resumes
                           the run if it is parked at that gate; if not, the gate finds the
                           decision when it gets there), mark the row applied with a result.
    apply_pending(limit)   every unapplied row, oldest first: at receiver start-up, by the
                           receiver's background applier, by the deadline watcher. A crash
                           between the inbox write and applying therefore loses nothing.

Results written on a row (``inbox.result``):
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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from launch import runtime
from launch.domain.masking import scrub_text
from launch.store.models import ClientIdentifier, Decision, InboxEvent, Launch, Nonce
from launch.wechat.events import EVENT_ADAPTER, FastRegisterResult
from launch.wechat.mapping import Lookup, Plan, plan_for

__all__ = [
    "ApplyOutcome",
    "Landed",
    "Landing",
    "accept_push",
    "apply_event",
    "apply_pending",
    "land_batch",
    "payload_for",
]

log = logging.getLogger("weapp_launch.inbox")

RESULTS = ("applied", "duplicate", "noted", "no-launch", "refused", "ignored", "error")
_APPLY_LOCK = threading.Lock()  # one applier at a time in a process (rows are also claimed in SQL)


@dataclass(frozen=True)
class ApplyOutcome:
    inbox_id: int
    result: str | None  # None: left unapplied (an unexpected error; tried again later)
    launch_id: str | None = None
    detail: str | None = None


# ---------------------------------------------------------------- accepting


def _credit_code_digest(store, code: str | None) -> str | None:
    if not code or not code.strip():
        return None
    index = getattr(store, "_index", None)  # the store's own blind index (see report: no public helper yet)
    if index is None:
        from launch.store.crypto import BlindIndex

        index = BlindIndex(runtime.settings().derived_secret("blind-index"))
    try:
        return index.digest("credit_code", code)
    except ValueError:
        return None


def payload_for(event, *, path_appid: str | None = None, store=None) -> dict[str, Any]:
    """What the inbox keeps of a push: the redacted event, routing hints, and (fast
    registration only) the blind-index digest of the credit code, so the launch can be
    found later without the code itself ever being stored."""
    payload: dict[str, Any] = {"event": event.redacted().model_dump(mode="json")}
    if path_appid:
        payload["route"] = {"path_appid": path_appid}
    if isinstance(event, FastRegisterResult):
        digest = _credit_code_digest(store or runtime.store(), event.info.code)
        if digest:
            payload["lookup"] = {"credit_code_digest": digest}
    return payload


def accept_push(
    event,
    source: str = "wechat",
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
    store = runtime.store()
    plan = plan_for(event)
    gate = plan.decisions[0][0] if plan.decisions else None
    return store.put_event(
        source,
        event.event_key[:255],
        event.kind,
        payload_for(event, path_appid=path_appid, store=store),
        launch_id=launch_id,
        gate=gate,
        received_at=received_at or runtime.now(),
        session=session,
    )


@dataclass(frozen=True)
class Landing:
    """One push to land: the parsed event, its nonce (None: no replay check) and route hints."""

    event: Any
    nonce: str | None = None
    path_appid: str | None = None
    source: str = "wechat"
    signature: str | None = None  # msg_signature (or a test platform's signature): replay-checked too


@dataclass(frozen=True)
class Landed:
    inbox_id: int | None  # None when refused as a replay
    created: bool  # False: the event was already in the inbox (a duplicate push)
    replayed: bool = False  # the nonce was seen before: nothing written


def _insert(store, table):
    return (postgresql.insert if store.dialect == "postgresql" else sqlite.insert)(table)


def _take_nonce(s: Session, store, scope: str, nonce: str, now: datetime, cutoff: datetime) -> bool:
    """Same contract as Store.remember_nonce (first sighting within the TTL wins), in plain SQL."""
    table = Nonce.__table__
    # RETURNING, not rowcount: psycopg 3 reports rowcount -1 for INSERT … ON CONFLICT DO NOTHING,
    # which made every push on PostgreSQL look like a replay.
    inserted = s.execute(
        _insert(store, table).values(scope=scope, nonce=nonce, seen_at=now).on_conflict_do_nothing(
            index_elements=["scope", "nonce"]
        ).returning(table.c.nonce)
    ).scalar()
    if inserted is not None:
        return True
    # seen before: usable again only once its last sighting is older than the TTL
    taken = s.execute(
        update(table)
        .where(table.c.scope == scope, table.c.nonce == nonce, table.c.seen_at <= cutoff)
        .values(seen_at=now)
    )
    return taken.rowcount == 1


SIGNATURE_SCOPE = "wechat-signature"


def take_nonces(entries: Sequence[tuple[str, str]], ttl_seconds: float) -> bool:
    """Remember every (scope, value) at once, or none: False when any was seen within the TTL
    (a replay). For requests that land nothing else, such as a URL verification."""
    store = runtime.store()
    now = runtime.now()
    cutoff = now - timedelta(seconds=ttl_seconds)
    try:
        with store.session() as s:
            for scope, value in entries:
                if value and not _take_nonce(s, store, scope, value, now, cutoff):
                    raise _Replay  # rolls the whole transaction back
    except _Replay:
        return False
    return True


class _Replay(Exception):
    pass


def land_batch(
    items: Sequence[Landing], *, nonce_scope: str = "wechat", nonce_ttl_seconds: float = 900.0
) -> list[Landed]:
    """Land several pushes in one transaction (the receiver's group commit); returns one
    Landed per item, in order. Either every item's writes commit or none do."""
    store = runtime.store()
    now = runtime.now()
    cutoff = now - timedelta(seconds=nonce_ttl_seconds)
    prepared = []
    for item in items:  # redaction and mapping before taking the write lock
        plan = plan_for(item.event)
        prepared.append(
            (
                item,
                {
                    "source": item.source,
                    "event_key": item.event.event_key[:255],
                    "kind": item.event.kind,
                    "launch_id": None,
                    "gate": plan.decisions[0][0] if plan.decisions else None,
                    "payload": payload_for(item.event, path_appid=item.path_appid, store=store),
                    "received_at": now,
                },
            )
        )
    table = InboxEvent.__table__
    out: list[Landed] = []
    with store.session() as s:
        for item, values in prepared:
            # Nonce and signature are both replay keys; a refused replay burns neither (savepoint).
            keys = [(nonce_scope, item.nonce), (SIGNATURE_SCOPE, item.signature)]
            savepoint = s.begin_nested()
            if not all(_take_nonce(s, store, scope, value, now, cutoff) for scope, value in keys if value):
                savepoint.rollback()
                out.append(Landed(None, False, replayed=True))
                continue
            savepoint.commit()
            new_id = s.execute(
                _insert(store, table).values(**values).on_conflict_do_nothing(index_elements=["event_key"])
                .returning(table.c.id)
            ).scalar()
            if new_id is None:
                existing = s.scalar(select(table.c.id).where(table.c.event_key == values["event_key"]))
                out.append(Landed(existing, False))
            else:
                out.append(Landed(int(new_id), True))
    return out


# ---------------------------------------------------------------- applying


def _launch_by_credit_code(store, digest: str):
    """The running launch of the client whose credit code has this digest (reuse path first, newest first)."""
    with store.session() as s:
        stmt = (
            select(Launch.id)
            .join(ClientIdentifier, ClientIdentifier.client_id == Launch.client_id)
            .where(
                ClientIdentifier.kind == "credit_code",
                ClientIdentifier.digest == digest,
                Launch.status == "running",
            )
            .order_by(
                (Launch.registration_path == "reuse_official_account").desc(),
                Launch.created_at.desc(),
                Launch.id.desc(),
            )
            .limit(1)
        )
        launch_id = s.scalar(stmt)
    return store.get_launch(launch_id) if launch_id else None


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
            found = _launch_by_credit_code(store, digest) if digest else None
        else:
            found = None
        if found is not None:
            return found
    return None


def _finish(store, inbox_id: int, result: str, detail: str | None, launch_id: str | None) -> bool:
    """Mark a row applied (first writer wins: a row applied by another process stays as it is).

    Written here rather than through Store.mark_applied, whose vocabulary lacks
    "noted" and "refused", and which cannot set the launch found while applying.
    """
    values: dict[str, Any] = {"applied_at": runtime.now(), "result": result, "error": detail}
    if launch_id is not None:
        values["launch_id"] = launch_id
    with store.session() as s:
        done = s.execute(
            update(InboxEvent)
            .where(InboxEvent.id == inbox_id, InboxEvent.applied_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return done.rowcount == 1


def _note_error(store, inbox_id: int, detail: str) -> None:
    with store.session() as s:
        s.execute(
            update(InboxEvent)
            .where(InboxEvent.id == inbox_id, InboxEvent.applied_at.is_(None))
            .values(error=detail[:2000])
            .execution_options(synchronize_session=False)
        )


def _resume_own_pending(store, launch_id: str, gate_id: str, inbox_id: int) -> bool:
    """After a crash between recording a decision and resuming its run, applying again
    finds a duplicate: resume the run now if it is parked at that gate's attempt."""
    with store.session() as s:
        decision = s.scalar(
            select(Decision).where(
                Decision.launch_id == launch_id,
                Decision.gate == gate_id,
                Decision.inbox_id == inbox_id,
                Decision.consumed_at.is_(None),
            )
        )
        if decision is None:
            return False
        attempt, actor, payload = decision.attempt, decision.actor, dict(decision.payload or {})
    step = store.get_step(launch_id, gate_id, attempt)
    if step is None or step.status != "waiting" or not step.flow_run_id:
        return False
    from launch.domain.forms import validate_form
    from launch.orchestration.prefect import resume_if_parked

    form = validate_form(gate_id, {**payload, "decided_by": actor})
    gate = runtime.catalogue().gate(gate_id)
    return resume_if_parked(step.flow_run_id, gate.key(attempt), form.model_dump(mode="json"), wait_seconds=0)


def apply_event(row) -> ApplyOutcome:
    """Apply one inbox row (an InboxRecord). Refusals are recorded on the row, not raised;
    an unexpected error propagates and leaves the row unapplied."""
    store = runtime.store()
    return _apply(store, row, lambda *args: _finish(store, *args))


def _apply(store, row, finish: Callable[[int, str, str | None, str | None], Any]) -> ApplyOutcome:
    from launch.decisions import DecisionRefused, submit_decision

    if row.applied_at is not None:
        return ApplyOutcome(row.id, row.result, row.launch_id, row.error)
    try:
        event = EVENT_ADAPTER.validate_python((row.payload or {}).get("event"))
    except Exception:  # noqa: BLE001 - a payload we cannot read back
        finish(row.id, "error", "存储的事件无法解析 / stored event cannot be read back", None)
        return ApplyOutcome(row.id, "error", None, "unreadable payload")
    plan = plan_for(event)
    if not plan.acted_on:
        finish(row.id, "ignored", None, row.launch_id)
        return ApplyOutcome(row.id, "ignored", row.launch_id)
    launch = _find_launch(store, row, plan)
    if launch is None:
        detail = "没有匹配的上线任务 / no launch matches this push"
        if plan.note:
            detail += f"; {plan.note}"
        finish(row.id, "no-launch", detail, None)
        return ApplyOutcome(row.id, "no-launch", None, detail)
    path_appid = (row.payload.get("route") or {}).get("path_appid")
    if path_appid and launch.appid and launch.appid != path_appid:
        # Found by the original id the message names, but posted to another app's URL.
        detail = ("路径中的 AppID 与消息所指的上线任务不一致 / the app id in the path differs from the launch "
                  "the message names")
        finish(row.id, "refused", detail, None)
        return ApplyOutcome(row.id, "refused", None, detail)
    if not plan.decisions:
        finish(row.id, "noted", plan.note, launch.id)
        return ApplyOutcome(row.id, "noted", launch.id, plan.note)

    recorded, duplicates, problems = [], [], []
    for gate_id, data in plan.decisions:
        try:
            result = submit_decision(launch.id, gate_id, data, channel="wechat", inbox_id=row.id)
        except DecisionRefused as refused:
            problems.extend(f"{gate_id}.{p.field}: {p.message}" for p in refused.problems)
            continue
        if result.status == "recorded":
            recorded.append(f"{gate_id}#{result.attempt}: {data.get('outcome')}")
        else:
            duplicates.append(gate_id)
            try:
                _resume_own_pending(store, launch.id, gate_id, row.id)
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
    outcome = "applied" if recorded else ("refused" if problems else "duplicate")
    # decisions were written: mark the row now, not with the batch
    _finish(store, row.id, outcome, detail, launch.id)
    return ApplyOutcome(row.id, outcome, launch.id, detail)


def _finish_many(store, marks: list[tuple[int, str, str | None, str | None]]) -> None:
    if not marks:
        return
    now = runtime.now()
    with store.session() as s:
        for inbox_id, result, detail, launch_id in marks:
            values: dict[str, Any] = {"applied_at": now, "result": result, "error": detail}
            if launch_id is not None:
                values["launch_id"] = launch_id
            s.execute(
                update(InboxEvent)
                .where(InboxEvent.id == inbox_id, InboxEvent.applied_at.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )


def apply_pending(limit: int = 100, *, between: Callable[[], None] | None = None) -> list[ApplyOutcome]:
    """Apply every unapplied inbox row (up to `limit`), oldest first; returns what happened.

    `between` is called before each row (the receiver uses it to let incoming pushes
    have the database first)."""
    store = runtime.store()
    outcomes: list[ApplyOutcome] = []
    # rows that record nothing (ignored, no-launch, noted) are marked together at the end: one
    # transaction instead of one per row. A crash before that only means applying them again.
    marks: list[tuple[int, str, str | None, str | None]] = []
    with _APPLY_LOCK:
        for row in store.unapplied_events(limit=limit):
            if between is not None:
                between()
            try:
                outcomes.append(_apply(store, row, lambda *args: marks.append(args)))
            except Exception as exc:  # noqa: BLE001 - keep the row for the next pass
                detail = f"应用失败，将重试 / applying failed, will retry: {type(exc).__name__}"
                log.warning("inbox %s: %s", row.id, detail)
                try:
                    _note_error(store, row.id, detail)
                except Exception:  # noqa: BLE001
                    pass
                outcomes.append(ApplyOutcome(row.id, None, row.launch_id, detail))
        try:
            _finish_many(store, marks)
        except Exception as exc:  # noqa: BLE001 - they stay unapplied and are applied again
            log.warning("marking %d inbox rows failed: %s", len(marks), type(exc).__name__)
            failed = {m[0] for m in marks}
            outcomes = [o if o.inbox_id not in failed else ApplyOutcome(o.inbox_id, None, o.launch_id, o.detail)
                        for o in outcomes]
    return outcomes
