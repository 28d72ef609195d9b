"""Committed go-live dates: launch_commitments.

One row per launch that has a committed go-live date (set at start or later with
``weapp-launch commit``), with the forecast risk level last seen against it (ok / at-risk /
late) and a counter of level changes: the risk alert's outbox key carries the counter and
the level, so each change alerts once (launch/app/forecasting.py). Existing launches have no
commitment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "launch_commitments",
        sa.Column("launch_id", sa.String(16), nullable=False),
        sa.Column("committed_go_live", sa.Date(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("risk_level", sa.String(16), nullable=True),
        sa.Column("risk_seq", sa.Integer(), nullable=False),
        sa.Column("risk_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_p50", sa.Date(), nullable=True),
        sa.Column("last_p90", sa.Date(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["launch_id"], ["launches.id"], name="fk_launch_commitments_launch_id_launches", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("launch_id", name="pk_launch_commitments"),
    )


def downgrade() -> None:
    op.drop_table("launch_commitments")
