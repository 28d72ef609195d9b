"""WeChat third-party platform tokens: wechat_component, wechat_authorizers.

``wechat_component`` keeps the latest pushed component_verify_ticket and the
component_access_token derived from it; ``wechat_authorizers`` keeps each authorised mini
program's refresh token and current authorizer_access_token. Tickets and tokens are stored
ENCRYPTED with the store's at-rest key (FieldCipher), like personal data. ``refresh_owner`` /
``refresh_lease_until`` are the compare-and-set lease that lets one process at a time refresh a
token (launch/wechat/platform/tokens.py). New tables only: existing rows need nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "wechat_component",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("component_appid", sa.String(64), nullable=True),
        sa.Column("ticket_enc", sa.Text(), nullable=True),
        _ts("ticket_at"),
        sa.Column("token_enc", sa.Text(), nullable=True),
        _ts("token_expires_at"),
        sa.Column("refresh_owner", sa.String(64), nullable=True),
        _ts("refresh_lease_until"),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_wechat_component"),
    )
    op.create_table(
        "wechat_authorizers",
        sa.Column("appid", sa.String(64), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=False),
        sa.Column("token_enc", sa.Text(), nullable=True),
        _ts("token_expires_at"),
        sa.Column("func_info", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        _ts("authorized_at", nullable=False),
        _ts("revoked_at"),
        sa.Column("refresh_owner", sa.String(64), nullable=True),
        _ts("refresh_lease_until"),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("appid", name="pk_wechat_authorizers"),
    )


def downgrade() -> None:
    op.drop_table("wechat_authorizers")
    op.drop_table("wechat_component")
