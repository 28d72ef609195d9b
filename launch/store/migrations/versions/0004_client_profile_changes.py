"""Profile change counters on the client: client_profile_changes.

One row per field (name, avatar, intro, categories) a decided ``mini-program-profile``
gate changed, with how many times and when: WeChat limits those changes (name twice
before release, avatar 5 a year, intro 5 a month, categories 5 changes a month), and the
gate counts them over the client's rows (launch/domain/profile.py). Unique per (client,
launch, gate attempt, field), so recording a decision twice counts it once. Existing
clients start with no changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_profile_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(16), nullable=False),
        sa.Column("launch_id", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_client_profile_changes_client_id_clients", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_client_profile_changes"),
        sa.UniqueConstraint(
            "client_id", "launch_id", "attempt", "field",
            name="uq_client_profile_changes_client_id_launch_id_attempt_field",
        ),
    )
    op.create_index("ix_client_profile_changes_client_field", "client_profile_changes", ["client_id", "field"])


def downgrade() -> None:
    op.drop_index("ix_client_profile_changes_client_field", table_name="client_profile_changes")
    op.drop_table("client_profile_changes")
