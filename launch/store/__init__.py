"""The store: the record of truth for clients, launches, steps, decisions, the inbox of
callbacks and the alert outbox (not Prefect). Synchronous; safe to use from several
threads and several processes at once (see ``launch.store.engine`` for SQLite locking).
No Prefect import here.

``Store`` is a unit of work composed of one repository per aggregate; each module holds
only its aggregate's SQL:

    unit_of_work.py  UnitOfWork: engine, ``session()`` (one transaction across repositories,
                     passed on as ``session=``), migrate, health; the store's errors
    clients.py       ClientRepository: clients, identifiers (blind-index digests), profile changes
    launches.py      LaunchRepository: launches; runs the reviver and the join wake-up look at
    steps.py         StepRepository: step attempts, deadlines, the watcher's alert cursor
    decisions.py     DecisionRepository: one decision per gate attempt
    branches.py      BranchRepository: a launch's branches
    inbox.py         InboxRepository: inbox events (land, apply-mark) and replay nonces;
                     ``nonce_ttl_seconds``, the nonce lifetime
    alerts.py        AlertRepository: the outbox, deliveries, alerts waiting for a channel
    channels.py      ChannelRepository: per-channel circuit breakers
    effects.py       EffectRepository: the side-effect ledger
    commitments.py   CommitmentRepository: committed go-live dates and risk levels
    platform.py      PlatformRepository: WeChat platform ticket/tokens (encrypted), refresh leases
    vocab.py         the store's closed vocabularies (StrEnum); decision channels and inbox
                     sources/results are in ``launch.domain.vocabulary``
    models.py, records.py, crypto.py, engine.py, migrations/   tables, frozen records,
                     field encryption, engine setup, Alembic

Methods return frozen records from ``launch.store.records``; nothing needs a session to be
read afterwards. Timestamps must be timezone-aware; they come back in UTC.
"""

from launch.store.alerts import AlertRepository, safe_channel_label
from launch.store.branches import BranchRepository
from launch.store.channels import ChannelRepository
from launch.store.clients import ClientRepository
from launch.store.commitments import CommitmentRepository
from launch.store.crypto import BlindIndex, DecryptionError, FieldCipher, normalise_identifier
from launch.store.decisions import DecisionRepository
from launch.store.effects import EffectRepository
from launch.store.inbox import InboxRepository, nonce_ttl_seconds
from launch.store.launches import LaunchRepository
from launch.store.migrations import current_revision, head_revision, migrate
from launch.store.platform import PlatformRepository
from launch.store.records import (
    AlertRecord,
    BranchRecord,
    ChannelStateRecord,
    ClientRecord,
    CommitmentRecord,
    DecisionRecord,
    DeliveryRecord,
    EffectRecord,
    InboxRecord,
    LaunchRecord,
    ProfileChangeRecord,
    StepRecord,
)
from launch.store.steps import StepRepository
from launch.store.unit_of_work import DuplicateClientCode, NotFound, StoreError, UnitOfWork
from launch.store.vocab import (
    STEP_OPEN_STATUSES,
    AlertStatus,
    BranchStatus,
    ChannelHealth,
    IdentifierKind,
    LaunchStatus,
    StepStatus,
)


class Store(
    ClientRepository,
    LaunchRepository,
    StepRepository,
    DecisionRepository,
    BranchRepository,
    InboxRepository,
    AlertRepository,
    ChannelRepository,
    EffectRepository,
    CommitmentRepository,
    PlatformRepository,
    UnitOfWork,
):
    """Every repository over one database. Construct once per process and share
    (``Store.from_settings(settings)``); ``store.session()`` is the unit of work."""


__all__ = [
    "STEP_OPEN_STATUSES",
    "AlertRecord",
    "AlertStatus",
    "BlindIndex",
    "BranchRecord",
    "BranchStatus",
    "ChannelHealth",
    "ChannelStateRecord",
    "ClientRecord",
    "CommitmentRecord",
    "DecisionRecord",
    "DecryptionError",
    "DeliveryRecord",
    "DuplicateClientCode",
    "EffectRecord",
    "FieldCipher",
    "IdentifierKind",
    "InboxRecord",
    "LaunchRecord",
    "LaunchStatus",
    "NotFound",
    "ProfileChangeRecord",
    "StepRecord",
    "StepStatus",
    "Store",
    "StoreError",
    "UnitOfWork",
    "current_revision",
    "head_revision",
    "migrate",
    "nonce_ttl_seconds",
    "normalise_identifier",
    "safe_channel_label",
]
