"""The store's closed vocabularies, each written once as a ``StrEnum`` (a member *is* its
string: rows, JSON and comparisons with plain strings keep working).

The vocabularies the services write too (decision channels, inbox sources and results)
live in ``launch.domain.vocabulary`` and are imported from there; the ones below belong to
the store's own rows. Columns stay plain strings (no database enum), so adding a value
needs no migration: add it here, nowhere else.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "STEP_OPEN_STATUSES",
    "AlertStatus",
    "BranchStatus",
    "ChannelHealth",
    "IdentifierKind",
    "LaunchStatus",
    "StepStatus",
]


class LaunchStatus(StrEnum):
    """``launches.status``."""

    RUNNING = "running"
    RELEASED = "released"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    """``steps.status``: waiting and running are open, the rest final."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"


# Steps still open: they have a deadline to watch and may be decided.
STEP_OPEN_STATUSES: tuple[StepStatus, ...] = (StepStatus.WAITING, StepStatus.RUNNING)


class BranchStatus(StrEnum):
    """``branches.status``."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


class AlertStatus(StrEnum):
    """``alerts.status`` (the outbox)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    WAITING = "waiting"  # for a channel marked down


class ChannelHealth(StrEnum):
    """``channel_states.state``: a delivery channel's circuit breaker."""

    UP = "up"
    DOWN = "down"


class IdentifierKind(StrEnum):
    """``client_identifiers.kind``: identifiers kept only as blind-index digests."""

    ID_NUMBER = "id_number"
    PHONE = "phone"
    EMAIL = "email"
    CREDIT_CODE = "credit_code"
