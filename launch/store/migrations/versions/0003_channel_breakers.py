"""Circuit breakers of the alert channels, and alerts that wait for a channel.

``channel_states`` holds one row per channel name (never its URL): up or down, the
consecutive failed deliveries, since when it is down and when it is probed next — in the
store, so every watcher agrees. ``alerts.waiting_for`` names the channels an alert in the
new status ``waiting`` waits for (",a,b,"); such an alert spends no tries while it waits.
Existing rows need nothing: no channel is down, no alert waits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "channel_states",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        _ts("down_since", nullable=True),
        _ts("next_probe_at", nullable=True),
        _ts("last_ok_at", nullable=True),
        _ts("last_failure_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("channel", name="pk_channel_states"),
    )
    op.add_column("alerts", sa.Column("waiting_for", sa.String(255), nullable=True))


def downgrade() -> None:
    # waiting alerts go back to pending: the older code knows no "waiting"
    op.execute("UPDATE alerts SET status = 'pending' WHERE status = 'waiting'")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("waiting_for")
    op.drop_table("channel_states")
