"""The deadline watcher's cursor: steps.next_alert_at, indexed.

A watcher pass selects only the open steps whose next alert moment has come
(``WHERE next_alert_at <= now``, an index range scan) instead of computing every open
step's ladder. Open steps that exist when this runs get ``next_alert_at = started_at``
(the earliest rung of any ladder is the notice at open): the first pass afterwards looks
at each once, enqueues what is due (the outbox's unique dedupe key drops anything already
enqueued) and moves the cursor on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("steps", sa.Column("next_alert_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_steps_next_alert_at", "steps", ["next_alert_at"])
    op.execute("UPDATE steps SET next_alert_at = started_at WHERE status IN ('waiting', 'running')")


def downgrade() -> None:
    op.drop_index("ix_steps_next_alert_at", table_name="steps")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("next_alert_at")
