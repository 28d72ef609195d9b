"""The deadline watcher: one pass finds the alert rungs that have come due, sends what the
outbox holds, and repairs wake-ups that were lost.

    watch_once(res, now=None, worker_id=None, limit=DEFAULT_LIMIT) -> PassReport

made of three phases, each callable on its own (the watcher flow runs them as tasks), each
taking the environment's ``Resources`` first (store, clock, calendar, catalogue, settings,
orchestrator, notifier configuration: ``launch/app/resources.py``):

enqueue_due   Open steps whose alert cursor (``steps.next_alert_at``) has come are read with
              ONE indexed range query (``Store.steps_with_alerts_due``), never a scan of all
              steps. For each, the gate's ladder is planned with the working-day calendar
              (``launch.domain.alerts.planned_rungs``); every rung whose moment lies in
              [cursor, now] is rendered (Chinese first, English beneath, nothing personal)
              — of a repeating rung only the latest occurrence, when a pass catches up —
              and enqueued under its dedupe key ``{launch}:{gate}:{attempt}:{rung}`` — the
              outbox's UNIQUE key, so two watchers or two passes never enqueue it twice —
              and the cursor moves to the next rung's moment (NULL when none is left). The
              cursor is always a lower bound: a pass that dies half-way, two watchers racing,
              a deadline moved (``update_step_due`` resets it) only cost a second look.
deliver_due   Due alerts are claimed in small batches (``claim_due_alerts``: SELECT … FOR
              UPDATE SKIP LOCKED on PostgreSQL, so concurrent watchers never share one),
              delivered through ``notifiers.outbox.deliver_alert`` skipping every channel that
              already has the alert, each channel's result recorded, and the alert marked
              sent / retried at its backoff time / waiting for a channel that is down / failed
              — in one transaction per alert. A failed channel never loses the alert; a
              channel that got it never gets it again. The channels' circuit breakers live in
              the store (``notifiers.breaker``): first each down channel whose probe is due
              gets the oldest alert waiting for it (one watcher wins each probe), then the due
              alerts; a channel that comes back releases its backlog, oldest first. A late
              alert says "delayed by …" or that its moment has passed (``notifiers.lateness``).
              With no notifiers file (``res.notifier``), nothing is claimed: alerts stay pending
              (a note says so).
repair        Reschedules a run of the store's open launches that is RUNNING but sent no
              heartbeat for ``dead_run_seconds`` (its process died; a live runner replays
              it: ``res.orchestrator.revive_dead_runs``); applies inbox events still pending
              (``launch.app.inbox.apply_pending``); resumes a
              run parked at a gate whose decision is in the store but was never taken (the
              resume was lost); wakes a launch run parked on ``join-<branch>-<n>`` whose branch
              has finished (the branch's completion hook was lost:
              ``launch.app.branches.wake_launch``); with a third-party platform
              (``res.wechat``), asks WeChat about gates whose push never came and decides
              them as the push would have (``launch.app.reconcile``, after
              ``wechat_reconcile_seconds``); purges old nonces.

Every moment comes from ``now`` (given, or ``res.now()``: the resources' clock): the rungs,
the outbox times, the backoff, the signed links.

Settings read (``res.settings``): ``ladders_file``, ``timezone``, ``prefect_ui_url`` (links to runs),
``timestamp_window_seconds`` (nonce lifetime, as the receiver computes it), ``dead_run_seconds``,
``forecast_samples``, ``wechat_reconcile_seconds``; the channels come from ``res.notifier`` (``notifiers.config.load_notifier_config``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launch.domain.alerts import (
    SEVERITY_LABELS,
    LadderSet,
    Rung,
    alert_dedupe_key,
    default_ladders,
    load_ladders,
    planned_rungs,
    render_alert,
)
from launch.domain.calendar import DeadlineAnswer
from launch.domain.catalogue import Gate, branch_of_join
from launch.domain.deadlines import gate_due
from launch.domain.masking import mask_name, scrub_text

if TYPE_CHECKING:
    from launch.app.resources import Resources

__all__ = [
    "DEFAULT_LIMIT",
    "ChannelEvent",
    "LINK_ACTORS",
    "Enqueued",
    "Failed",
    "PassReport",
    "Repair",
    "Retried",
    "Sent",
    "Waiting",
    "deliver_due",
    "enqueue_due",
    "repair",
    "resume_lost",
    "revive",
    "watch_once",
]

log = logging.getLogger("weapp_launch.watcher")

DEFAULT_LIMIT = 2000  # steps examined, alerts delivered, repairs tried: each, per pass (a 5-minute
# window of 100,000 open steps holds ~1,500 due rungs in bench/bench_watcher.py: drained in one pass)
CLAIM_BATCH = 10  # alerts claimed at a time: a batch is delivered well within its lease
LEASE_SECONDS = 600.0  # a claimed alert goes back to the pool if its sender died
RESUME_GRACE_SECONDS = 60.0  # a decision younger than this may still be resuming its run itself
LINK_ACTORS = ("staff", "client", "designers", "developers")  # gates whose alert carries a signed link


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Enqueued:
    alert_id: int
    dedupe_key: str
    launch_id: str
    gate: str
    attempt: int
    rung: str
    severity: str
    fire_at: datetime
    tags: tuple[str, ...]
    provisional: bool


@dataclass(frozen=True)
class Sent:
    alert_id: int
    dedupe_key: str
    channels: tuple[str, ...]  # channels that got it in this pass
    failed_channels: tuple[str, ...] = ()  # partial delivery after the last try: these never got it


@dataclass(frozen=True)
class Retried:
    alert_id: int
    dedupe_key: str
    retry_at: datetime
    channels: tuple[str, ...]  # channels that got it in this pass
    failed_channels: tuple[str, ...]


@dataclass(frozen=True)
class Failed:
    alert_id: int
    dedupe_key: str
    failed_channels: tuple[str, ...]
    fallback_channels: tuple[str, ...]  # where it was forwarded instead


@dataclass(frozen=True)
class Waiting:
    alert_id: int
    dedupe_key: str
    channels: tuple[str, ...]  # channels that got it in this pass
    waiting_for: tuple[str, ...]  # channels down that still lack it (no try spent)
    fallback_channels: tuple[str, ...] = ()  # forwarded there meanwhile


@dataclass(frozen=True)
class ChannelEvent:
    channel: str
    change: str  # down | up
    released: int  # alerts that waited for it and go out now (when up)


@dataclass(frozen=True)
class Repair:
    kind: str  # inbox | resume | wake | revive | reconcile | action | nonces
    launch_id: str | None
    detail: str


@dataclass
class PassReport:
    """What one watcher pass (or one phase of it) did. Nothing personal in it."""

    now: datetime
    worker_id: str
    examined: int = 0  # steps whose cursor had come
    enqueued: list[Enqueued] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    retried: list[Retried] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    channel_events: list[ChannelEvent] = field(default_factory=list)
    repaired: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lost_claims: int = 0  # alerts whose claim ran out while this worker sent them
    reconciled: int = 0  # gates decided from WeChat's API (launch.app.reconcile)
    reconcile_calls: int = 0  # WeChat API calls the reconciliation made
    seconds: float = 0.0

    def merge(self, other: PassReport) -> PassReport:
        self.examined += other.examined
        self.enqueued += other.enqueued
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.waiting += other.waiting
        self.channel_events += other.channel_events
        self.repaired += other.repaired
        self.notes += other.notes
        self.errors += other.errors
        self.lost_claims += other.lost_claims
        self.reconciled += other.reconciled
        self.reconcile_calls += other.reconcile_calls
        self.seconds += other.seconds
        return self

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {
            "examined": self.examined,
            "enqueued": len(self.enqueued),
            "sent": len(self.sent),
            "retried": len(self.retried),
            "failed": len(self.failed),
            "waiting": len(self.waiting),
            "repaired": len(self.repaired),
            "reconciled": self.reconciled,
            "reconcile_calls": self.reconcile_calls,
            "errors": len(self.errors),
        }

    def to_json(self) -> dict[str, Any]:
        def iso(dt: datetime | None) -> str | None:
            return dt.astimezone(UTC).isoformat() if dt is not None else None

        return {
            "ok": self.ok,
            "now": iso(self.now),
            "worker_id": self.worker_id,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "enqueued": [
                {"alert_id": e.alert_id, "key": e.dedupe_key, "launch_id": e.launch_id, "gate": e.gate,
                 "attempt": e.attempt, "rung": e.rung, "severity": e.severity, "fire_at": iso(e.fire_at),
                 "tags": list(e.tags), "provisional": e.provisional}
                for e in self.enqueued
            ],
            "sent": [
                {"alert_id": s.alert_id, "key": s.dedupe_key, "channels": list(s.channels),
                 "failed_channels": list(s.failed_channels)}
                for s in self.sent
            ],
            "retried": [
                {"alert_id": r.alert_id, "key": r.dedupe_key, "retry_at": iso(r.retry_at),
                 "channels": list(r.channels), "failed_channels": list(r.failed_channels)}
                for r in self.retried
            ],
            "failed": [
                {"alert_id": f.alert_id, "key": f.dedupe_key, "failed_channels": list(f.failed_channels),
                 "fallback_channels": list(f.fallback_channels)}
                for f in self.failed
            ],
            "waiting": [
                {"alert_id": w.alert_id, "key": w.dedupe_key, "channels": list(w.channels),
                 "waiting_for": list(w.waiting_for), "fallback_channels": list(w.fallback_channels)}
                for w in self.waiting
            ],
            "channel_events": [
                {"channel": e.channel, "change": e.change, "released": e.released} for e in self.channel_events
            ],
            "repaired": [{"kind": r.kind, "launch_id": r.launch_id, "detail": r.detail} for r in self.repaired],
            "lost_claims": self.lost_claims,
            "reconciled": self.reconciled,
            "reconcile_calls": self.reconcile_calls,
            "notes": list(self.notes),
            "errors": list(self.errors),
        }

    def summary(self) -> str:
        c = self.counts()
        return (
            f"检查步骤 {c['examined']}，新提醒 {c['enqueued']}，已发送 {c['sent']}，待重试 {c['retried']}，"
            f"等待渠道恢复 {c['waiting']}，失败 {c['failed']}，修复 {c['repaired']}，错误 {c['errors']} / examined "
            f"{c['examined']} steps, enqueued {c['enqueued']}, sent {c['sent']}, retrying {c['retried']}, "
            f"waiting {c['waiting']}, failed {c['failed']}, repaired {c['repaired']}, errors {c['errors']} "
            f"({self.seconds:.2f} s)"
        )


# --------------------------------------------------------------------------- ladders


_LADDERS_CACHE: dict[tuple[str, int], LadderSet] = {}


def _ladders(res: Resources) -> LadderSet:
    """The packaged ladders merged with ``settings.ladders_file``; parsed again only when the
    file changes (a pass every few minutes should not re-read YAML it already knows)."""
    path = res.settings.ladders_file
    if path is None:
        ladders = default_ladders()
    else:
        try:
            stamp = (str(path), Path(path).stat().st_mtime_ns)
        except OSError:
            stamp = (str(path), -1)  # load_ladders says what is wrong with it (LadderError)
        ladders = _LADDERS_CACHE.get(stamp)
        if ladders is None:
            ladders = load_ladders(path)
            _LADDERS_CACHE.clear()
            _LADDERS_CACHE[stamp] = ladders
    ladders.check_catalogue(res.catalogue)
    return ladders


def _default_worker_id() -> str:
    return f"watcher-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _now(res: Resources, now: datetime | None) -> datetime:
    if now is None:
        return res.now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware / now 必须带时区")
    return now


def _err(where: str, exc: BaseException) -> str:
    return scrub_text(f"{where}: {type(exc).__name__}: {exc}")[:500]


# --------------------------------------------------------------------------- enqueue


def _client_name(client: Any) -> str:
    if client is None:
        return "—"
    return mask_name(client.display_name) if client.subject_type == "individual" else client.display_name


def _run_url(res: Resources, flow_run_id: str | None) -> str:
    if not flow_run_id:
        return ""
    return res.orchestrator.ui_url(flow_run_id)


def _action_url(gate: Gate, launch_id: str, attempt: int) -> str | None:
    """Where the signed link goes: a placeholder naming (launch, gate, attempt). The outbox
    never holds a token; ``launch.app.links.render_links`` signs a fresh link at delivery."""
    if gate.actor not in LINK_ACTORS:
        return None
    try:
        from launch.app.links import link_placeholder
    except ImportError:  # the receiver is not installed: no signed link, the Prefect link remains
        return None
    return link_placeholder(launch_id, gate.id, attempt)


def _link_renderer(res: Resources, alert: Any, now: datetime):
    """The body as the channels get it: each link placeholder signed now, a dead one noted
    (liveness read from ``res.store``). What it returns goes to Apprise only, never back to
    the store."""
    from launch.app.links import render_links

    def render(text: str) -> str:
        return render_links(res, text, now, dedupe_key=alert.dedupe_key)

    return render


def _render(res: Resources, rung: Rung, gate: Gate, step: Any, launch: Any, client: Any,
            due: DeadlineAnswer, now: datetime) -> tuple[str, str]:
    # The run parked at this gate (a branch run for filing and build gates) holds its Resume
    # form; the launch run is the fallback.
    return render_alert(
        rung,
        client_name=_client_name(client),
        mini_program_name=client.mini_program_name if client is not None else "—",
        gate_name_zh=gate.name_zh,
        gate_name_en=gate.name_en,
        todo_zh=gate.todo_zh,
        attempt=step.attempt,
        due_at=due.at,
        provisional=due.provisional,
        launch_url=_run_url(res, step.flow_run_id or launch.flow_run_id),
        action_url=_action_url(gate, launch.id, step.attempt),
        tz=res.settings.timezone,
    )


def _plan_step(res: Resources, ladders: LadderSet, step: Any, gate: Gate, client_id: str | None, now: datetime
               ) -> tuple[DeadlineAnswer, list[Rung]]:
    calendar = res.calendar
    if step.due_at is not None:
        due = DeadlineAnswer(step.due_at.astimezone(calendar.tz), bool(step.provisional))
    else:
        due = gate_due(gate, step.started_at, calendar)
    rungs = planned_rungs(
        gate, step.started_at, due, calendar, None, now,
        catalogue=res.catalogue, ladders=ladders, client_id=client_id, closed_at=step.finished_at,
    )
    return due, rungs


def _catch_up(rungs: list[Rung]) -> list[Rung]:
    """Of a repeating rung, only the latest occurrence that came due: a pass that catches up
    (the watcher was down for days) sends one "still overdue", not one per missed day. On
    schedule (a pass every few minutes, repeats every hours) nothing is left out."""
    latest: dict[str, Rung] = {}
    for r in rungs:
        if r.occurrence is not None and (r.base_id not in latest or r.occurrence > latest[r.base_id].occurrence):
            latest[r.base_id] = r
    return [r for r in rungs if r.occurrence is None or latest[r.base_id] is r]


def enqueue_due(res: Resources, now: datetime | None = None, limit: int = DEFAULT_LIMIT, *,
                worker_id: str | None = None) -> PassReport:
    """Enqueue every rung that has come due on an open step whose cursor has come."""
    now = _now(res, now)
    report = PassReport(now, worker_id or _default_worker_id())
    started = time.perf_counter()
    store = res.store
    catalogue = res.catalogue
    ladders = _ladders(res)
    now_u = now.astimezone(UTC)
    launches: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    candidates = store.steps_with_alerts_due(now, limit)
    report.examined = len(candidates)
    for step, cursor in candidates:
        try:
            if step.launch_id not in launches:
                launches[step.launch_id] = store.get_launch(step.launch_id)
            launch = launches[step.launch_id]
            gate = catalogue.gates.get(step.step)
            if not step.is_open or launch is None or launch.status != "running" or gate is None:
                # a step closed without its cursor cleared, a launch that ended, a step the
                # catalogue does not know: nothing to alert about
                store.set_alert_cursor(step.id, None)
                continue
            if launch.client_id not in clients:
                clients[launch.client_id] = store.get_client(launch.client_id)
            client = clients[launch.client_id]
            due, rungs = _plan_step(res, ladders, step, gate, client.id if client is not None else None, now)
            cursor_u = cursor.astimezone(UTC)
            fresh = _catch_up([r for r in rungs if cursor_u <= r.fire_at.astimezone(UTC) <= now_u])
            later = [r.fire_at for r in rungs if r.fire_at.astimezone(UTC) > now_u]
            next_at = min(later) if later else None
            rendered = [(r, _render(res, r, gate, step, launch, client, due, now)) for r in fresh]
            created_now: list[Enqueued] = []
            with store.session() as s:
                current = store.get_step_by_id(step.id, session=s)
                if current is None or not current.is_open:
                    continue  # closed since it was read: nothing more fires for it
                for rung, (title, body) in rendered:
                    key = alert_dedupe_key(launch.id, gate.id, step.attempt, rung.rung_id)
                    row, created = store.enqueue_alert(
                        dedupe_key=key, rung=rung.rung_id, title=title, body=body, launch_id=launch.id,
                        step_row_id=step.id, tags=rung.tags, send_after=rung.fire_at, created_at=now, session=s,
                    )
                    if created:
                        created_now.append(Enqueued(
                            row.id, key, launch.id, gate.id, step.attempt, rung.rung_id, rung.severity,
                            rung.fire_at, rung.tags, bool(rung.provisional or due.provisional),
                        ))
                store.set_alert_cursor(step.id, next_at, session=s)
            report.enqueued += created_now  # committed
        except Exception as exc:  # noqa: BLE001 - one bad step must not stop the pass; its cursor stays
            log.warning("watcher: step %s: %s", step.id, type(exc).__name__)
            report.errors.append(_err(f"step {step.launch_id}/{step.step}/{step.attempt}", exc))
    _forecast_risk(res, now, report)  # issue 13: commitment risk, once per pass
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- forecast risk (issue 13)


def _forecast_risk(res: Resources, now: datetime, report: PassReport) -> None:
    """Once per pass: forecast every running launch with a committed go-live date and
    enqueue one alert per change of risk level (launch/app/forecasting.py). A store without
    commitments (an older test double) is left alone."""
    store = res.store
    if not hasattr(store, "open_commitments"):
        return
    try:
        from launch.app.forecasting import check_commitments, config_from_settings

        changes, errors = check_commitments(
            store, catalogue=res.catalogue, calendar=res.calendar, config=config_from_settings(res.settings),
            now=now, samples=res.settings.forecast_samples,
        )
    except Exception as exc:  # noqa: BLE001 - the deadline alerts of this pass are already enqueued
        report.errors.append(_err("forecast risk", exc))
        return
    report.errors += errors
    for c in changes:
        if c.alert_id is not None:
            report.enqueued.append(Enqueued(
                c.alert_id, c.dedupe_key, c.launch_id, "forecast-risk", c.seq, f"forecast-risk-{c.level}",
                c.severity, now, c.tags, c.provisional,
            ))


# --------------------------------------------------------------------------- deliver


def _severity_of(title: str) -> str:
    for severity, (zh, en) in SEVERITY_LABELS.items():
        if title.startswith(f"【{zh} {en}】"):
            return severity
    return "info"


def deliver_due(res: Resources, now: datetime | None = None, worker_id: str | None = None,
                limit: int = DEFAULT_LIMIT, *, lease_seconds: float = LEASE_SECONDS) -> PassReport:
    """Probe the down channels whose probe is due, then claim and deliver due alerts, at
    most ``limit`` of them in all, ``CLAIM_BATCH`` at a time."""
    from notifiers.breaker import StoreBreaker
    from notifiers.outbox import deliver_alert

    now = _now(res, now)
    worker_id = worker_id or _default_worker_id()
    report = PassReport(now, worker_id)
    started = time.perf_counter()
    store = res.store
    config, config_note, config_error = res.notifier
    if config is None or not config.channels:
        # nothing is claimed, so no try is spent: the alerts go out once channels exist
        waiting = [a for a in store.list_alerts("pending") if a.next_attempt_at <= now]
        if config_error:
            report.errors.append(config_error)
        elif waiting:
            note = config_note or (
                "通知渠道文件中没有启用的渠道，提醒保留在待发送队列中 / the notifiers file has no enabled "
                "channel: alerts stay pending"
            )
            report.notes.append(f"{note} ({len(waiting)})")
        report.seconds = time.perf_counter() - started
        return report
    tz = res.settings.timezone
    ladders = _ladders(res)
    breakers = StoreBreaker(store, config, now)
    configured = {c.name for c in config.channels}

    def one(alert: Any) -> None:
        try:
            _deliver_one(store, config, alert, now, worker_id, report, deliver_alert,
                         render=_link_renderer(res, alert, now),
                         breaker=breakers.for_alert(), moment=_moment_of(res, ladders, alert), tz=tz)
        except Exception as exc:  # noqa: BLE001 - the claim runs out and the alert is tried again
            log.warning("watcher: alert %s: %s", alert.id, type(exc).__name__)
            report.errors.append(_err(f"alert {alert.dedupe_key}", exc))

    done = 0
    try:
        # alerts waiting for a channel that is up again (or no longer configured) go back to the queue
        down = {n for n, st in breakers.states.items() if st.state == "down" and n in configured}
        store.release_stranded(down)
        # one probe per down channel whose probe is due: the oldest alert waiting for it
        for name in sorted(down):
            st = breakers.states.get(name)
            if done >= limit or st is None or st.state != "down" or (st.next_probe_at and st.next_probe_at > now):
                continue
            alert = store.claim_waiting_alert(name, now, worker_id, lease_seconds)
            if alert is not None:
                done += 1
                one(alert)
    except Exception as exc:  # noqa: BLE001 - the due alerts still go out
        report.errors.append(_err("probe", exc))
    while done < limit:
        breakers.refresh()  # what other watchers learnt meanwhile
        batch = store.claim_due_alerts(now, worker_id, min(CLAIM_BATCH, limit - done), lease_seconds)
        if not batch:
            break
        done += len(batch)
        for alert in batch:
            one(alert)
    for channel, change, released in breakers.changes:
        report.channel_events.append(ChannelEvent(channel, change, released))
        if change == "down":
            report.notes.append(f"渠道 {channel} 连续失败，标记为中断，其提醒等待恢复（不消耗重试次数）/ channel "
                                f"{channel} kept failing: marked down, its alerts wait for it (no tries spent)")
        else:
            report.notes.append(f"渠道 {channel} 已恢复，{released} 条等待的提醒按先后补发 / channel {channel} is "
                                f"back: {released} waiting alerts go out, oldest first")
    report.seconds = time.perf_counter() - started
    return report


def _moment_of(res: Resources, ladders: LadderSet, alert: Any) -> Any:
    """What the alert speaks of, for "delayed by" / "moment passed": its step's deadline and
    whether it is closed, and whether its rung speaks of the time left (before the deadline)."""
    from notifiers.lateness import BEFORE_DUE_KINDS, AlertMoment

    try:
        step = res.store.get_step_by_id(alert.step_row_id) if alert.step_row_id is not None else None
        if step is None:
            return AlertMoment()
        gate = res.catalogue.gates.get(step.step)
        before_due = sms = False
        if gate is not None and gate.ladder in ladders:
            ladder = ladders[gate.ladder]
            sms = ladder.name == "sms"
            rule = next((r for r in ladder.rungs
                         if alert.rung == r.id or (alert.rung.startswith(f"{r.id}-") and r.repeat_every_hours
                                                   and alert.rung[len(r.id) + 1:].isdigit())), None)
            before_due = rule is not None and rule.when.kind in BEFORE_DUE_KINDS
        closed = None if step.is_open else (step.finished_at or None)
        return AlertMoment(step.due_at, before_due, sms, closed)
    except Exception:  # noqa: BLE001 - no note is better than no alert
        return AlertMoment()


def _deliver_one(store: Any, config: Any, alert: Any, now: datetime, worker_id: str, report: PassReport,
                 deliver_alert: Any, render: Any = None, breaker: Any = None, moment: Any = None,
                 tz: str = "Asia/Shanghai") -> None:
    delivered = {d.channel for d in store.deliveries_for(alert.id) if d.ok}
    outcome = deliver_alert(config, alert, now, delivered, notify_type=_severity_of(alert.title), render=render,
                            breaker=breaker, moment=moment, tz=tz)
    got = tuple(r.name for r in outcome.results if r.ok)
    missing = tuple(r.name for r in outcome.results if not r.ok)
    became = None
    with store.session() as s:  # the channel results and the new status commit together
        for r in outcome.results:
            store.record_delivery(alert.id, r.name, r.ok, r.error, at=now, session=s)
        if outcome.sent:
            kept = store.mark_alert_sent(alert.id, at=now, worker_id=worker_id, session=s)
            report.sent.append(Sent(alert.id, alert.dedupe_key, got, missing))
        elif outcome.retry_at is not None:
            kept = store.mark_alert_retry(alert.id, outcome.retry_at, outcome.error, worker_id=worker_id, session=s)
            report.retried.append(Retried(alert.id, alert.dedupe_key, outcome.retry_at, got, missing))
        elif outcome.waiting:
            names = ", ".join(outcome.waiting_for)
            error = outcome.error or (f"等待中断的渠道恢复：{names} / waiting for channels that are down: {names}")
            became = store.mark_alert_waiting(
                alert.id, outcome.waiting_for, error, at=now,
                next_check_at=breaker.next_check(outcome.waiting_for) if breaker is not None else None,
                worker_id=worker_id, session=s,
            )
            kept = became is not None
            report.waiting.append(Waiting(alert.id, alert.dedupe_key, got, tuple(outcome.waiting_for),
                                          tuple(outcome.fallback_channels)))
        else:
            kept = store.mark_alert_failed(alert.id, outcome.error, worker_id=worker_id, session=s)
            report.failed.append(Failed(alert.id, alert.dedupe_key, missing, tuple(outcome.fallback_channels)))
    if became == "pending" and breaker is not None:
        breaker.refresh()  # a channel came back under another watcher: the alert is due again
    if not kept:
        report.lost_claims += 1
        report.notes.append(
            f"提醒 {alert.dedupe_key} 的认领已过期，状态未改 / the claim on {alert.dedupe_key} ran out; status left as is"
        )


# --------------------------------------------------------------------------- repair


def _run_input(gate: Gate, decision: Any) -> dict[str, Any]:
    """The Resume form's input built from a stored decision; it must validate (the server
    checks it against the form's schema and leaves the run paused otherwise). Prefect keeps
    it, so its free text is scrubbed; the gate takes the decision itself from the store."""
    from launch.domain.masking import scrub_form_data, scrub_free_text

    form = gate.form
    data = {"decided_by": decision.actor, "outcome": decision.outcome, **(decision.payload or {})}
    data = scrub_form_data({k: v for k, v in data.items() if k in form.model_fields})
    try:
        return form.model_validate(data).model_dump(mode="json", exclude_none=True)
    except Exception:  # noqa: BLE001 - an actor label longer than the form allows: shorten it
        data["decided_by"] = scrub_free_text(str(decision.actor or "system"))[:40]
        return form.model_validate(data).model_dump(mode="json", exclude_none=True)


def resume_lost(res: Resources, now: datetime, limit: int, grace_seconds: float, report: PassReport, *,
                store: Any = None) -> None:
    """Resume runs parked at a gate whose decision is in the store but never reached the run.
    ``store``: a narrower view of ``res.store`` (one launch's decisions) when given."""
    pairs = (store or res.store).unconsumed_decisions_at_waiting_gates(now - timedelta(seconds=grace_seconds), limit)
    if not pairs:
        return
    orchestrator = res.orchestrator
    for decision, step in pairs:
        where = f"{decision.launch_id}/{decision.gate}/{decision.attempt}"
        try:
            gate = res.catalogue.gate(decision.gate)
            key = step.gate_key or gate.key(decision.attempt)
            state = orchestrator.read_state(step.flow_run_id)
            if state is None or not state.parked or not state.pause_key:
                continue  # not parked (yet): the gate reads the store before it suspends
            if state.pause_key != key and not state.pause_key.startswith(f"{key}-retry-"):
                continue
            if orchestrator.resume_if_parked(step.flow_run_id, state.pause_key, _run_input(gate, decision)):
                report.repaired.append(Repair(
                    "resume", decision.launch_id,
                    f"恢复了停在 {state.pause_key} 的运行（决定已登记但未送达）/ resumed the run parked at "
                    f"{state.pause_key} (its decision was recorded but the resume was lost)",
                ))
        except Exception as exc:  # noqa: BLE001 - Prefect unreachable, a refused input: next pass
            report.errors.append(_err(f"resume {where}", exc))


def _wake_joins(res: Resources, limit: int, report: PassReport) -> None:
    launches = res.store.launches_maybe_joining(limit)
    if not launches:
        return
    from launch.app.branches import wake_launch

    orchestrator = res.orchestrator
    for launch in launches:
        try:
            state = orchestrator.read_state(launch.flow_run_id)
            if state is None or not state.parked or not state.pause_key:
                continue
            joined = branch_of_join(state.pause_key)
            if joined is None:
                continue
            branch = res.store.get_branch(launch.id, joined)
            if branch is None or branch.status not in ("done", "failed"):
                continue
            if wake_launch(res, launch.id, wait_seconds=0):
                report.repaired.append(Repair(
                    "wake", launch.id,
                    f"分支 {branch.branch} 已结束，唤醒了停在 {state.pause_key} 的上线流程 / branch {branch.branch} "
                    f"had finished: woke the launch run parked at {state.pause_key}",
                ))
        except Exception as exc:  # noqa: BLE001
            report.errors.append(_err(f"wake {launch.id}", exc))


def _revive_dead(res: Resources, limit: int, report: PassReport) -> None:
    """Reschedule the store's open runs whose process died (no heartbeat for dead_run_seconds)."""
    try:
        run_ids = res.store.open_flow_run_ids(limit)
        if not run_ids:
            return
        silent = float(res.settings.dead_run_seconds)
        # Heartbeats carry the real time, so the wall clock judges them, never an injected `now`.
        for dead in res.orchestrator.revive_dead_runs(run_ids, silent):
            report.repaired.append(Repair(
                "revive", None,
                f"运行 {dead.flow_run_name} 已 {dead.silent_seconds:.0f} 秒无心跳，已重新调度 / run "
                f"{dead.flow_run_name} sent no heartbeat for {dead.silent_seconds:.0f} s: rescheduled to replay",
            ))
    except Exception as exc:  # noqa: BLE001 - Prefect unreachable: next pass
        report.errors.append(_err("revive", exc))


def _retry_actions(res: Resources, now: datetime, limit: int, report: PassReport) -> None:
    """Act again where WeChat could not take a gate's action (busy, rate-limited, unreachable):
    launch.app.wechat_actions.retry_deferred, at most once per ``wechat_reconcile_seconds``
    (0 turns it off, as it turns off asking WeChat)."""
    seconds = res.settings.wechat_reconcile_seconds
    if seconds <= 0:
        return
    try:
        from launch.app.wechat_actions import retry_deferred

        retried = retry_deferred(res, now, older_than_seconds=seconds, limit=limit)
    except Exception as exc:  # noqa: BLE001 - the store or the platform is down: next pass
        report.errors.append(_err("retry actions", exc))
        return
    for launch_id, gate, attempt, what in retried:
        report.repaired.append(Repair(
            "action", launch_id,
            f"微信此前未能处理，已重试 {gate} 第 {attempt} 次的操作：{what} / WeChat could not take it before: "
            f"retried the action of {gate} attempt {attempt}: {what}",
        ))


def _reconcile(res: Resources, now: datetime, limit: int, report: PassReport) -> None:
    """Ask WeChat about gates whose push never came (launch.app.reconcile); nothing without a
    platform or with ``wechat_reconcile_seconds`` 0."""
    seconds = res.settings.wechat_reconcile_seconds
    if seconds <= 0:
        return
    try:
        platform = res.wechat
        if platform is None:
            return
        from launch.app.reconcile import DEFAULT_BUDGET, reconcile

        out = reconcile(res, platform, now, older_than_seconds=seconds, limit=limit, budget=DEFAULT_BUDGET)
    except Exception as exc:  # noqa: BLE001 - the platform could not be built: next pass
        report.errors.append(_err("reconcile", exc))
        return
    report.reconciled += len(out.decided)
    report.reconcile_calls += out.calls
    for d in out.decided:
        report.repaired.append(Repair(
            "reconcile", d.launch_id,
            f"推送未到，向微信查询后登记 {d.gate} 第 {d.attempt} 次：{d.outcome} / the push never came: asked "
            f"WeChat and recorded {d.gate} attempt {d.attempt}: {d.outcome}",
        ))
    for api, why in out.stopped.items():
        report.notes.append(f"微信接口 {api} 本轮停止（{why}），{out.deferred} 个关卡留待下轮 / WeChat API {api} "
                            f"stopped for this pass ({why}); {out.deferred} gates left for the next pass")
    report.errors += [scrub_text(f"reconcile {e.launch_id}/{e.gate} {e.api}: {e.kind}: {e.message}")[:500]
                      for e in out.errors]


def revive(res: Resources, limit: int = DEFAULT_LIMIT, *, worker_id: str | None = None) -> PassReport:
    """Only the revive part of a repair: what the heartbeat automation asks for."""
    report = PassReport(_now(res, None), worker_id or _default_worker_id())
    started = time.perf_counter()
    _revive_dead(res, limit, report)
    report.seconds = time.perf_counter() - started
    return report


def repair(res: Resources, now: datetime | None = None, limit: int = DEFAULT_LIMIT, *,
           grace_seconds: float = RESUME_GRACE_SECONDS, worker_id: str | None = None) -> PassReport:
    """Apply pending inbox events, resume lost resumes, wake lost joins, purge old nonces."""
    now = _now(res, now)
    report = PassReport(now, worker_id or _default_worker_id())
    started = time.perf_counter()

    try:
        from launch.app.inbox import apply_pending

        outcomes = apply_pending(res, limit)
        results = Counter(o.result or "left-for-later" for o in outcomes)
        if outcomes:
            report.repaired.append(Repair(
                "inbox", None,
                "收件箱事件已处理 / inbox events applied: "
                + ", ".join(f"{k} {v}" for k, v in sorted(results.items())),
            ))
    except Exception as exc:  # noqa: BLE001
        report.errors.append(_err("inbox", exc))

    _revive_dead(res, limit, report)
    resume_lost(res, now, limit, grace_seconds, report)
    _wake_joins(res, limit, report)
    _reconcile(res, now, limit, report)
    _retry_actions(res, now, limit, report)

    try:
        from launch.app.inbox import nonce_lifetime

        purged = res.store.purge_nonces(now - timedelta(seconds=nonce_lifetime(res.settings)))
        if purged:
            report.repaired.append(Repair("nonces", None, f"清理过期随机数 {purged} 个 / purged {purged} old nonces"))
    except Exception as exc:  # noqa: BLE001
        report.errors.append(_err("nonces", exc))
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- one pass


def watch_once(
    res: Resources,
    now: datetime | None = None,
    worker_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
    *,
    enqueue: bool = True,
    deliver: bool = True,
    repair_runs: bool = True,
    grace_seconds: float = RESUME_GRACE_SECONDS,
) -> PassReport:
    """One watcher pass: enqueue, deliver, repair (each can be turned off).

    Everything comes from ``res``: a second watcher is a second ``Resources`` over its own
    store; the channels are ``res.notifier`` (the notifiers file, or what a test gave)."""
    now = _now(res, now)
    worker_id = worker_id or _default_worker_id()
    report = PassReport(now, worker_id)
    if enqueue:
        report.merge(enqueue_due(res, now, limit, worker_id=worker_id))
    if deliver:
        report.merge(deliver_due(res, now, worker_id, limit))
    if repair_runs:
        report.merge(repair(res, now, limit, grace_seconds=grace_seconds, worker_id=worker_id))
    log.info("watcher pass: %s", report.summary())
    return report
