"""The store: SQLAlchemy models, the repository and Alembic migrations.

The record of truth for decisions, the inbox and the alert outbox (not Prefect).
No Prefect import here.
"""

from launch.store.crypto import BlindIndex, DecryptionError, FieldCipher, normalise_identifier
from launch.store.migrations import current_revision, head_revision, migrate
from launch.store.models import (
    ALERT_STATUSES,
    BRANCH_STATUSES,
    CHANNEL_STATES,
    DECISION_CHANNELS,
    IDENTIFIER_KINDS,
    INBOX_RESULTS,
    INBOX_SOURCES,
    LAUNCH_STATUSES,
    STEP_OPEN_STATUSES,
    STEP_STATUSES,
)
from launch.store.records import (
    AlertRecord,
    BranchRecord,
    ChannelStateRecord,
    ClientRecord,
    DecisionRecord,
    DeliveryRecord,
    EffectRecord,
    InboxRecord,
    LaunchRecord,
    StepRecord,
)
from launch.store.repo import DuplicateClientCode, NotFound, Store, StoreError, safe_channel_label

__all__ = [
    "ALERT_STATUSES",
    "BRANCH_STATUSES",
    "CHANNEL_STATES",
    "DECISION_CHANNELS",
    "IDENTIFIER_KINDS",
    "INBOX_RESULTS",
    "INBOX_SOURCES",
    "LAUNCH_STATUSES",
    "STEP_OPEN_STATUSES",
    "STEP_STATUSES",
    "AlertRecord",
    "BlindIndex",
    "BranchRecord",
    "ChannelStateRecord",
    "ClientRecord",
    "DecisionRecord",
    "DecryptionError",
    "DeliveryRecord",
    "DuplicateClientCode",
    "EffectRecord",
    "FieldCipher",
    "InboxRecord",
    "LaunchRecord",
    "NotFound",
    "StepRecord",
    "Store",
    "StoreError",
    "current_revision",
    "head_revision",
    "migrate",
    "normalise_identifier",
    "safe_channel_label",
]
