"""remembered devices: browsers that may skip the SMS OTP (a level-1 sign-in)

Revision ID: 0003_remembered_devices
Revises: 0002_organizations
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_remembered_devices"
down_revision = "0002_organizations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remembered_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("browser", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_remembered_devices_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remembered_devices")),
        sa.UniqueConstraint(
            "account_id", "secret_hash", name=op.f("uq_remembered_devices_account_id_secret_hash")
        ),
    )
    with op.batch_alter_table("remembered_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_remembered_devices_secret_hash"), ["secret_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("remembered_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remembered_devices_secret_hash"))
    op.drop_table("remembered_devices")
