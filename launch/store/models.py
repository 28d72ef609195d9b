"""SQLAlchemy 2 models of the store: the record of truth for clients, launches, steps,
decisions, the inbox of callbacks and the alert outbox.

Every timestamp is timezone-aware and stored as UTC (``UTCDateTime``): PostgreSQL keeps
``timestamptz``; SQLite keeps a naive UTC string that is handed back as an aware UTC
datetime, so callers never see a naive value from either backend.

Status vocabularies are plain strings checked by the repositories against the StrEnums of
``launch.store.vocab`` and ``launch.domain.vocabulary``, not database enums, so adding a
value needs no migration.

Schema changes go through an Alembic revision in ``launch/store/migrations/versions``;
``tests/store/test_migrations.py`` fails when these models and the migrations disagree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    A naive datetime is refused: its meaning (UTC? Asia/Shanghai?) would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass a timezone-aware value")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite has no time zone type: keep naive UTC so that text order is time order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


# ---------------------------------------------------------------- clients


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    mini_program_name: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(32))
    subject_type: Mapped[str] = mapped_column(String(32))
    registration_path: Mapped[str] = mapped_column(String(32))
    # The whole intake JSON, Fernet-encrypted (urlsafe base64 token, ASCII).
    intake_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ClientIdentifier(Base):
    """Blind index of personal identifiers (HMAC-SHA256 digests, never the raw value)."""

    __tablename__ = "client_identifiers"
    __table_args__ = (
        UniqueConstraint("client_id", "kind", "digest"),
        Index("ix_client_identifiers_kind_digest", "kind", "digest"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))


class ClientProfileChange(Base):
    """Profile change counters of a client (name, avatar, intro, categories): one row per
    field a decided mini-program-profile gate changed, with how many times and when."""

    __tablename__ = "client_profile_changes"
    __table_args__ = (
        UniqueConstraint("client_id", "launch_id", "attempt", "field"),
        Index("ix_client_profile_changes_client_field", "client_id", "field"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    launch_id: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime]


# ---------------------------------------------------------------- launches and steps


class Launch(Base):
    __tablename__ = "launches"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    registration_path: Mapped[str] = mapped_column(String(32))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    appid: Mapped[str | None] = mapped_column(String(64), index=True)
    original_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    released_at: Mapped[datetime | None]


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (
        UniqueConstraint("launch_id", "step", "attempt"),
        Index("ix_steps_status_due_at", "status", "due_at"),
        Index("ix_steps_next_alert_at", "next_alert_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    launch_id: Mapped[str] = mapped_column(ForeignKey("launches.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    gate_key: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    # The deadline watcher's cursor (revision 0002): no alert rung of this step fires before
    # this moment that has not been enqueued already. Set to started_at when the step opens
    # (the earliest rung is the notice at open), advanced by the watcher to the next rung,
    # NULL when nothing is left to fire or the step is closed. Indexed: a watcher pass reads
    # only the steps whose cursor has come (``Store.steps_with_alerts_due``).
    next_alert_at: Mapped[datetime | None]


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("launch_id", "gate", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    launch_id: Mapped[str] = mapped_column(ForeignKey("launches.id", ondelete="CASCADE"))
    gate: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    decided_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id", ondelete="SET NULL"))


class Branch(Base):
    __tablename__ = "branches"

    launch_id: Mapped[str] = mapped_column(ForeignKey("launches.id", ondelete="CASCADE"), primary_key=True)
    branch: Mapped[str] = mapped_column(String(64), primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


# ---------------------------------------------------------------- inbox and replay protection


class InboxEvent(Base):
    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_applied_at", "applied_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    launch_id: Mapped[str | None] = mapped_column(ForeignKey("launches.id", ondelete="SET NULL"), index=True)
    gate: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class Nonce(Base):
    __tablename__ = "nonces"
    __table_args__ = (Index("ix_nonces_seen_at", "seen_at"),)

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime]


# ---------------------------------------------------------------- alert outbox


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    launch_id: Mapped[str | None] = mapped_column(ForeignKey("launches.id", ondelete="CASCADE"), index=True)
    step_row_id: Mapped[int | None] = mapped_column(ForeignKey("steps.id", ondelete="SET NULL"))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    rung: Mapped[str] = mapped_column(String(64))
    tags: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    send_after: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # status "waiting": the channels it waits for, ",name,other," (delimited so a LIKE finds a
    # whole name); cleared when it is released
    waiting_for: Mapped[str | None] = mapped_column(String(255))


class ChannelState(Base):
    """A channel's circuit breaker, shared by every watcher on the store. Keyed by the
    channel's name (never its URL)."""

    __tablename__ = "channel_states"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(8))  # up | down
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    down_since: Mapped[datetime | None]
    next_probe_at: Mapped[datetime | None]
    last_ok_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)  # masked by the notifiers
    updated_at: Mapped[datetime]


class AlertDelivery(Base):
    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(255))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


# ---------------------------------------------------------------- side-effect ledger


class Effect(Base):
    __tablename__ = "effects"

    launch_id: Mapped[str] = mapped_column(ForeignKey("launches.id", ondelete="CASCADE"), primary_key=True)
    effect_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    ran_at: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer, default=0)


# ---------------------------------------------------------------- commitments (revision 0005)


class LaunchCommitment(Base):
    """A launch's committed go-live date and the forecast risk level last seen against it.
    ``risk_seq`` counts level changes: the risk alert's outbox key carries it, so each
    change alerts once (launch/app/forecasting.py)."""

    __tablename__ = "launch_commitments"

    launch_id: Mapped[str] = mapped_column(ForeignKey("launches.id", ondelete="CASCADE"), primary_key=True)
    committed_go_live: Mapped[date] = mapped_column(Date)
    committed_at: Mapped[datetime]
    risk_level: Mapped[str | None] = mapped_column(String(16))  # ok | at-risk | late; None: not checked yet
    risk_seq: Mapped[int] = mapped_column(Integer, default=0)
    risk_changed_at: Mapped[datetime | None]
    last_p50: Mapped[date | None] = mapped_column(Date)
    last_p90: Mapped[date | None] = mapped_column(Date)
    checked_at: Mapped[datetime | None]


# ---------------------------------------------------------------- WeChat platform tokens (revision 0006)


class WeChatComponent(Base):
    """The third-party platform's own credentials: the latest pushed component_verify_ticket and
    the component_access_token derived from it, both ENCRYPTED (FieldCipher), and the refresh
    lease (``refresh_owner`` until ``refresh_lease_until``) that lets one process at a time ask
    WeChat for a new token. One row per deployment (``id`` = "component")."""

    __tablename__ = "wechat_component"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    component_appid: Mapped[str | None] = mapped_column(String(64))
    ticket_enc: Mapped[str | None] = mapped_column(Text)
    ticket_at: Mapped[datetime | None]
    token_enc: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None]
    refresh_owner: Mapped[str | None] = mapped_column(String(64))
    refresh_lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class WeChatAuthorizer(Base):
    """A mini program that authorised the platform: its app id, its refresh token and current
    authorizer_access_token (both ENCRYPTED), the permission sets granted, and the refresh lease."""

    __tablename__ = "wechat_authorizers"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    refresh_token_enc: Mapped[str] = mapped_column(Text)
    token_enc: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None]
    func_info: Mapped[dict[str, Any] | None]
    authorized_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    refresh_owner: Mapped[str | None] = mapped_column(String(64))
    refresh_lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


TABLES = (
    "clients",
    "client_identifiers",
    "launches",
    "steps",
    "decisions",
    "branches",
    "inbox",
    "nonces",
    "alerts",
    "alert_deliveries",
    "effects",
    "channel_states",
    "launch_commitments",
    "wechat_component",
    "wechat_authorizers",
)
