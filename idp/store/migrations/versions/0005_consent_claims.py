"""consents: the personal claims agreed to, not only the scopes

Revision ID: 0005_consent_claims
Revises: 0004_identity_proofs
Create Date: 2026-12-04 19:00:00

A consent given before this revision covered scopes only; it is taken to cover the claims those
scopes released when it was given (the table below is that release's, frozen here on purpose).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_consent_claims"
down_revision = "0004_identity_proofs"
branch_labels = None
depends_on = None

_SCOPE_CLAIMS = {
    "profile": ("name", "birthdate", "gender", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "citizen": ("citizen_id", "legacy_citizen_id"),
    "organization": ("organization", "staff"),
}


def upgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claims", sa.Text(), server_default="", nullable=False))
    consents = sa.table(
        "consents", sa.column("id", sa.Integer), sa.column("scope", sa.Text), sa.column("claims", sa.Text)
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(consents.c.id, consents.c.scope)).all():
        claims = sorted({c for s in (row.scope or "").split() for c in _SCOPE_CLAIMS.get(s, ())})
        if claims:
            conn.execute(consents.update().where(consents.c.id == row.id).values(claims=" ".join(claims)))


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_column("claims")
