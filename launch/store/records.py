"""Plain, frozen records the store hands out: readable without a session.

Every datetime is timezone-aware UTC. Payloads are plain dicts (copies).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, TypeVar

from launch.store.vocab import STEP_OPEN_STATUSES

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: str
    code: str
    display_name: str
    mini_program_name: str
    province: str
    subject_type: str
    registration_path: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProfileChangeRecord:
    client_id: str
    launch_id: str
    attempt: int
    field: str
    count: int
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class LaunchRecord:
    id: str
    client_id: str
    status: str
    registration_path: str
    flow_run_id: str | None
    appid: str | None
    original_id: str | None
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None


@dataclass(frozen=True, slots=True)
class StepRecord:
    id: int
    launch_id: str
    step: str
    attempt: int
    status: str
    flow_run_id: str | None
    gate_key: str | None
    started_at: datetime
    due_at: datetime | None
    provisional: bool
    finished_at: datetime | None
    outcome: str | None
    note: str | None

    @property
    def is_open(self) -> bool:
        return self.status in STEP_OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    id: int
    launch_id: str
    gate: str
    attempt: int
    outcome: str
    actor: str
    channel: str
    payload: dict[str, Any]
    decided_at: datetime
    consumed_at: datetime | None
    inbox_id: int | None


@dataclass(frozen=True, slots=True)
class BranchRecord:
    launch_id: str
    branch: str
    flow_run_id: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class InboxRecord:
    id: int
    source: str
    event_key: str
    kind: str
    launch_id: str | None
    gate: str | None
    payload: dict[str, Any]
    received_at: datetime
    applied_at: datetime | None
    result: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    launch_id: str | None
    step_row_id: int | None
    dedupe_key: str
    rung: str
    tags: tuple[str, ...]
    title: str
    body: str
    send_after: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    waiting_for: tuple[str, ...] = ()  # status "waiting": the channels it waits for


@dataclass(frozen=True, slots=True)
class ChannelStateRecord:
    """A channel's circuit breaker (by name; never a URL)."""

    channel: str
    state: str  # up | down
    consecutive_failures: int
    down_since: datetime | None
    next_probe_at: datetime | None
    last_ok_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    updated_at: datetime

    @property
    def down(self) -> bool:
        return self.state == "down"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    alert_id: int
    channel: str
    ok: bool
    error: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class EffectRecord:
    launch_id: str
    effect_key: str
    flow_run_id: str | None
    ran_at: datetime
    count: int


def to_record(cls: type[R], row: Any) -> R:
    """Copy the same-named attributes of an ORM row into a record."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = getattr(row, f.name)
        if f.name in ("tags", "waiting_for") and (value is None or isinstance(value, str)):
            value = tuple(t for t in (value or "").split(",") if t)
        elif isinstance(value, (dict, list)):
            value = copy.deepcopy(value)
        values[f.name] = value
    return cls(**values)


@dataclass(frozen=True, slots=True)
class CommitmentRecord:
    """A launch's committed go-live date (revision 0005) and the risk level last seen."""

    launch_id: str
    committed_go_live: date
    committed_at: datetime
    risk_level: str | None
    risk_seq: int
    risk_changed_at: datetime | None
    last_p50: date | None
    last_p90: date | None
    checked_at: datetime | None
