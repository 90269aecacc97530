"""identity proofs: how each identity was proven; enterprises' e-mail

Revision ID: 0004_identity_proofs
Revises: 0003_remembered_devices
Create Date: 2026-11-22 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_identity_proofs"
down_revision = "0003_remembered_devices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_proofs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("verifier", sa.String(length=80), nullable=False),
        sa.Column("evidence_id", sa.String(length=160), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(length=160), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "person_id IS NOT NULL OR organization_id IS NOT NULL", name=op.f("ck_identity_proofs_subject")
        ),
        sa.CheckConstraint("level IN (2, 3)", name=op.f("ck_identity_proofs_level")),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_identity_proofs_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_identity_proofs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_proofs")),
    )
    with op.batch_alter_table("identity_proofs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_proofs_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_identity_proofs_organization_id"), ["organization_id"], unique=False
        )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("email")
    with op.batch_alter_table("identity_proofs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_proofs_organization_id"))
        batch_op.drop_index(batch_op.f("ix_identity_proofs_person_id"))
    op.drop_table("identity_proofs")
