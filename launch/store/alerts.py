"""Alerts: the outbox ``alerts``, their ``alert_deliveries`` and alerts waiting for a
channel that is down.

The outbox holds no credential: link tokens are refused in alert text and masked in error
text, and a channel is stored as a label (a URL cut to ``scheme://host``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from launch.store.models import Alert, AlertDelivery, ChannelState
from launch.store.records import AlertRecord, DeliveryRecord, to_record
from launch.store.unit_of_work import NotFound, UnitOfWork, _aware, _check, _now
from launch.store.vocab import AlertStatus


__all__ = ["AlertRepository", "channel_names", "no_tokens", "release_waiting_alerts", "safe_channel_label"]

# A signed staff-link token in text (`token=kid.payload.sig`, or the older `token=payload.sig`).
_LINK_TOKEN = re.compile(r"[?&]token=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# A bare token as launch.app.links makes them (kid . payload . 43-character signature), e.g. echoed
# URL-encoded in a channel's error text.
_BARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,16}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


def no_tokens(text: str | None) -> str | None:
    """Error text as it may be stored: any link token in it masked."""
    if not text:
        return text
    text = re.sub(r"(token=)[^\s&'\"]+", r"\1***", text, flags=re.IGNORECASE)
    return _BARE_TOKEN.sub("***", text)


def _tags(tags: str | Iterable[str]) -> str:
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    out: list[str] = []
    for t in items:
        t = t.strip()
        if not t:
            continue
        if "," in t:
            raise ValueError(f"tag {t!r} contains a comma")
        if t not in out:
            out.append(t)
    return ",".join(out)


def safe_channel_label(channel: str) -> str:
    """A delivery channel as it may be stored: a URL is cut to ``scheme://host``, so no
    token, password or path with a secret in it reaches the database."""
    channel = channel.strip()
    if "://" not in channel:
        return channel[:255]
    parts = urlsplit(channel)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}"[:255]


def channel_names(channels: Iterable[str]) -> list[str]:
    """Channel names as stored on alerts and breakers (labels, at most 64 characters, once each)."""
    return list(dict.fromkeys(safe_channel_label(c)[:64] for c in channels if c))


def release_waiting_alerts(s: Session, name: str) -> int:
    """In ``s``: every alert waiting for channel ``name`` becomes pending, due at its own due time."""
    result = s.execute(
        update(Alert)
        .where(Alert.status == "waiting", Alert.waiting_for.contains(f",{name},", autoescape=True))
        .values(status="pending", waiting_for=None, next_attempt_at=Alert.send_after)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


class AlertRepository(UnitOfWork):
    """The alert outbox, delivery attempts and alerts waiting for channels."""

    def enqueue_alert(
        self,
        *,
        dedupe_key: str,
        rung: str,
        title: str,
        body: str,
        launch_id: str | None = None,
        step_row_id: int | None = None,
        tags: str | Iterable[str] = (),
        send_after: datetime | None = None,
        created_at: datetime | None = None,
        session: Session | None = None,
    ) -> tuple[AlertRecord, bool]:
        """Put an alert in the outbox once per ``dedupe_key`` (e.g. "l-…:sms-verification:1:rung-12h").

        It becomes due at ``send_after`` (default now). Returns (row, created).

        The outbox holds no credential: a title or body with a signed link token in it
        (``token=…``, or bare, as in a redirect's path) is refused; put ``launch.app.links.link_placeholder(...)`` where the link
        goes and the deliverer signs a fresh one.
        """
        if any(pattern.search(text) for pattern in (_LINK_TOKEN, _BARE_TOKEN) for text in (title, body)):
            raise ValueError("an outbox alert must not hold a signed link token; store launch.app.links.link_placeholder "
                             "and let the deliverer sign the link / 提醒正文不得包含链接令牌")
        created = _aware(created_at, "created_at") if created_at else _now()
        due = _aware(send_after, "send_after") if send_after else created
        row = Alert(
            launch_id=launch_id,
            step_row_id=step_row_id,
            dedupe_key=dedupe_key,
            rung=rung,
            tags=_tags(tags),
            title=title,
            body=body,
            send_after=due,
            status="pending",
            attempts=0,
            next_attempt_at=due,
            created_at=created,
        )
        with self._write(session) as s:
            if launch_id is not None:
                self._require_launch(s, launch_id)
            found, was_created = self._insert_or_get(
                s, row, lambda: s.scalar(select(Alert).where(Alert.dedupe_key == dedupe_key))
            )
            return to_record(AlertRecord, found), was_created

    def claim_due_alerts(
        self,
        now: datetime,
        worker_id: str,
        limit: int = 10,
        lease_seconds: float = 300,
        *,
        session: Session | None = None,
    ) -> list[AlertRecord]:
        """Atomically claim due alerts for ``worker_id``: pending rows whose next_attempt_at
        has come, and sending rows whose claim lease ran out (a sender that died). They move
        to ``sending`` with claimed_by/claimed_until set and attempts + 1.

        PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, so concurrent claimers never get the
        same row and never wait on each other. SQLite: the write transaction (BEGIN
        IMMEDIATE) serialises claimers.
        """
        now = _aware(now, "now")
        until = now + timedelta(seconds=lease_seconds)
        stmt = (
            select(Alert)
            .where(
                or_(
                    and_(Alert.status == "pending", Alert.next_attempt_at <= now),
                    and_(Alert.status == "sending", Alert.claimed_until <= now),
                )
            )
            .order_by(Alert.next_attempt_at, Alert.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._write(session) as s:
            rows = list(s.scalars(stmt))
            for row in rows:
                row.status = "sending"
                row.claimed_by = worker_id
                row.claimed_until = until
                row.attempts = (row.attempts or 0) + 1
            s.flush()
            return [to_record(AlertRecord, r) for r in rows]

    def _finish_claim(self, alert_id: int, worker_id: str | None, values: dict[str, Any], session) -> bool:
        conditions = [Alert.id == alert_id, Alert.status == "sending"]
        if worker_id is not None:
            conditions.append(Alert.claimed_by == worker_id)
        with self._write(session) as s:
            result = s.execute(
                update(Alert).where(*conditions).values(**values).execution_options(synchronize_session="fetch")
            )
            return result.rowcount == 1

    def mark_alert_sent(
        self, alert_id: int, at: datetime | None = None, *, worker_id: str | None = None, session: Session | None = None
    ) -> bool:
        """sending -> sent. With ``worker_id``, only if that worker still holds the claim.
        Returns False when the row was not in a state to be updated."""
        values = {"status": "sent", "sent_at": _aware(at, "at") if at else _now(), "claimed_until": None}
        return self._finish_claim(alert_id, worker_id, values, session)

    def mark_alert_retry(
        self,
        alert_id: int,
        next_attempt_at: datetime,
        error: str | None,
        *,
        worker_id: str | None = None,
        session: Session | None = None,
    ) -> bool:
        """sending -> pending again, due at ``next_attempt_at``; the claim is released."""
        values = {
            "status": "pending",
            "next_attempt_at": _aware(next_attempt_at, "next_attempt_at"),
            "last_error": no_tokens(error),
            "claimed_by": None,
            "claimed_until": None,
        }
        return self._finish_claim(alert_id, worker_id, values, session)

    def mark_alert_failed(
        self, alert_id: int, error: str | None, *, worker_id: str | None = None, session: Session | None = None
    ) -> bool:
        """sending -> failed for good (no more attempts)."""
        values = {"status": "failed", "last_error": no_tokens(error), "claimed_until": None}
        return self._finish_claim(alert_id, worker_id, values, session)

    def record_delivery(
        self,
        alert_id: int,
        channel: str,
        ok: bool,
        error: str | None = None,
        at: datetime | None = None,
        *,
        session: Session | None = None,
    ) -> DeliveryRecord:
        """One delivery attempt to one channel. ``channel`` is a masked label; a URL is cut
        down to scheme://host so no secret ends up stored."""
        row = AlertDelivery(
            alert_id=alert_id,
            channel=safe_channel_label(channel),
            ok=bool(ok),
            error=no_tokens(error),
            at=_aware(at, "at") if at else _now(),
        )
        with self._write(session) as s:
            if s.get(Alert, alert_id) is None:
                raise NotFound(f"no alert {alert_id}")
            s.add(row)
            s.flush()
            return to_record(DeliveryRecord, row)

    def get_alert(self, alert_id: int, *, session: Session | None = None) -> AlertRecord | None:
        with self._read(session) as s:
            row = s.get(Alert, alert_id)
            return to_record(AlertRecord, row) if row else None

    def list_alerts(
        self, status: str | None = None, *, launch_id: str | None = None, session: Session | None = None
    ) -> list[AlertRecord]:
        stmt = select(Alert).order_by(Alert.id)
        if status is not None:
            stmt = stmt.where(Alert.status == _check(status, AlertStatus, "alert status"))
        if launch_id is not None:
            stmt = stmt.where(Alert.launch_id == launch_id)
        with self._read(session) as s:
            return [to_record(AlertRecord, r) for r in s.scalars(stmt)]

    def deliveries_for(self, alert_id: int, *, session: Session | None = None) -> list[DeliveryRecord]:
        stmt = select(AlertDelivery).where(AlertDelivery.alert_id == alert_id).order_by(AlertDelivery.at, AlertDelivery.id)
        with self._read(session) as s:
            return [to_record(DeliveryRecord, r) for r in s.scalars(stmt)]

    @staticmethod
    def _waiting_text(names: Sequence[str]) -> str | None:
        text = "," + ",".join(names) + "," if names else None
        if text is not None and len(text) > 255:
            raise ValueError("too many channels to wait for / 等待的渠道过多")
        return text

    def mark_alert_waiting(
        self,
        alert_id: int,
        waiting_for: Iterable[str],
        error: str | None,
        *,
        at: datetime,
        next_check_at: datetime | None = None,
        worker_id: str | None = None,
        session: Session | None = None,
    ) -> str | None:
        """sending -> waiting for channels that are down; the try just made is not counted
        (attempts - 1). Only the named channels still down when this commits are kept (read
        under a shared lock, so a channel coming back at the same moment releases this alert
        or is seen as up here); none left -> pending, due ``at``. Returns the new status, or
        None when the claim was lost."""
        names = channel_names(waiting_for)
        at = _aware(at, "at")
        with self._write(session) as s:
            down = set(s.scalars(
                select(ChannelState.channel)
                .where(ChannelState.channel.in_(names), ChannelState.state == "down")
                .with_for_update(read=True)
            )) if names else set()
            still = [n for n in names if n in down]
            values: dict[str, Any] = {
                "attempts": case((Alert.attempts > 0, Alert.attempts - 1), else_=0),
                "last_error": no_tokens(error),
                "claimed_by": None,
                "claimed_until": None,
            }
            if still:
                values.update(status="waiting", waiting_for=self._waiting_text(still),
                              next_attempt_at=_aware(next_check_at, "next_check_at") if next_check_at else at)
            else:
                values.update(status="pending", waiting_for=None, next_attempt_at=at)
            return values["status"] if self._finish_claim(alert_id, worker_id, values, s) else None

    def claim_waiting_alert(
        self, channel: str, now: datetime, worker_id: str, lease_seconds: float = 300, *, session: Session | None = None
    ) -> AlertRecord | None:
        """Claim the oldest alert (by due time) waiting for ``channel``: the probe of a channel
        that is down is a real delivery of it. SKIP LOCKED as ``claim_due_alerts``."""
        now = _aware(now, "now")
        [name] = channel_names([channel])
        stmt = (
            select(Alert)
            .where(Alert.status == "waiting", Alert.waiting_for.contains(f",{name},", autoescape=True))
            .order_by(Alert.send_after, Alert.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._write(session) as s:
            row = s.scalar(stmt)
            if row is None:
                return None
            row.status = "sending"
            row.waiting_for = None  # set again by mark_alert_waiting if it still waits
            row.claimed_by = worker_id
            row.claimed_until = now + timedelta(seconds=lease_seconds)
            row.attempts = (row.attempts or 0) + 1
            s.flush()
            return to_record(AlertRecord, row)

    def release_waiting(self, channel: str, *, session: Session | None = None) -> int:
        """Every alert waiting for ``channel`` becomes pending, due at its own due time, so the
        claims take the backlog oldest first. Returns how many."""
        [name] = channel_names([channel])
        with self._write(session) as s:
            return release_waiting_alerts(s, name)

    def release_stranded(self, down: Iterable[str], *, session: Session | None = None) -> int:
        """Waiting alerts none of whose channels is in ``down`` (the channels down and still
        configured) become pending: a channel that came back, or was removed, strands none."""
        down_set = set(channel_names(down))
        with self._write(session) as s:
            rows = s.execute(select(Alert.id, Alert.waiting_for).where(Alert.status == "waiting")).all()
            ids = [i for i, w in rows if not down_set.intersection(t for t in (w or "").split(",") if t)]
            if not ids:
                return 0
            result = s.execute(
                update(Alert).where(Alert.id.in_(ids), Alert.status == "waiting")
                .values(status="pending", waiting_for=None, next_attempt_at=Alert.send_after)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)

    def waiting_counts(self, *, session: Session | None = None) -> dict[str, int]:
        """Per channel name: how many alerts wait for it."""
        counts: dict[str, int] = {}
        with self._read(session) as s:
            for w in s.scalars(select(Alert.waiting_for).where(Alert.status == "waiting")):
                for name in (t for t in (w or "").split(",") if t):
                    counts[name] = counts.get(name, 0) + 1
        return counts

    def requeue_alerts(
        self,
        ids: Iterable[int] = (),
        *,
        status: str | None = None,
        now: datetime,
        session: Session | None = None,
    ) -> list[tuple[int, str, str | None]]:
        """Put alerts back in the queue: by id, or every alert in ``status`` (failed | waiting).

        failed -> pending with a fresh retry budget; waiting -> pending, and each down channel
        it waited for is due for a probe now; pending -> due now. Due at the alert's own due
        time when that has passed, so the backlog goes oldest first. Returns (id, status
        before, status after or None when left alone: sent, sending, unknown id)."""
        now = _aware(now, "now")
        if status is not None and status not in ("failed", "waiting"):
            raise ValueError("status must be failed or waiting / 只能按 failed 或 waiting 重新排队")
        due = case((Alert.send_after < now, Alert.send_after), else_=now)
        out: list[tuple[int, str, str | None]] = []
        with self._write(session) as s:
            stmt = select(Alert).order_by(Alert.send_after, Alert.id).with_for_update()
            wanted = [int(i) for i in ids]
            if status is not None:
                stmt = stmt.where(Alert.status == status)
            elif wanted:
                stmt = stmt.where(Alert.id.in_(wanted))
            else:
                return out
            rows = list(s.scalars(stmt))
            found = {r.id for r in rows}
            probe: set[str] = set()
            for row in rows:
                before = row.status
                if before not in ("failed", "waiting", "pending"):
                    out.append((row.id, before, None))
                    continue
                values: dict[str, Any] = {"status": "pending", "next_attempt_at": due, "waiting_for": None}
                if before == "failed":
                    values["attempts"] = 0
                elif before == "waiting":
                    probe.update(t for t in (row.waiting_for or "").split(",") if t)
                s.execute(update(Alert).where(Alert.id == row.id).values(**values)
                          .execution_options(synchronize_session=False))
                out.append((row.id, before, "pending"))
            for i in wanted:
                if i not in found and status is None:
                    out.append((i, "unknown", None))
            if probe:
                s.execute(
                    update(ChannelState)
                    .where(ChannelState.channel.in_(sorted(probe)), ChannelState.state == "down")
                    .values(next_probe_at=now)
                    .execution_options(synchronize_session=False)
                )
        return out
