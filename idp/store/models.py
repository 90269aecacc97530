"""Durable records in SQL: people, organizations, accounts, phones, second factors, grants and
refresh tokens, consents, audit.

Uniqueness that protects identity (one person per ID number, one refresh token per hash) is
enforced by the database, never only by code. Changes that span several rows happen in one
transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def epoch(value: dt.datetime) -> int:
    """Seconds since the epoch of a stored (naive, UTC) time, whatever the server's time zone."""
    return int(value.replace(tzinfo=dt.UTC).timestamp())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


class Person(Base):
    """One human, keyed on the 12-digit personal identification number once known."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The public, stable `sub` relying parties see; never the ID number.
    subject: Mapped[str] = mapped_column(String(64), unique=True)
    id_number: Mapped[str | None] = mapped_column(String(12), unique=True)
    legacy_id_number: Mapped[str | None] = mapped_column(String(9), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(10))
    email: Mapped[str | None] = mapped_column(String(254))
    # Assurance: level 2 or 3 and how it was proven (evidence id, never raw register data).
    loa: Mapped[int] = mapped_column(SmallInteger, default=2)
    loa_method: Mapped[str] = mapped_column(String(40))
    loa_verifier: Mapped[str] = mapped_column(String(80))
    loa_evidence_id: Mapped[str | None] = mapped_column(String(120))
    loa_verified_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    accounts: Mapped[list[Account]] = relationship(back_populates="person")


class Organization(Base):
    """A department, public unit or enterprise, keyed on its tax code or a province-issued code."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)  # 0100233488, 0314409058-002, 000.00.15.H57
    code_type: Mapped[str] = mapped_column(String(10))  # "tax" or "province"
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))  # "department", "public-unit", "enterprise"
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Required for enterprises that register themselves (seed 003); optional for the others.
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))

    accounts: Mapped[list[Account]] = relationship(back_populates="organization")


class Account(Base):
    """A way in: a local citizen account, a staff account of an organization (federated links follow)."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("kind", "username"),
        CheckConstraint("kind <> 'organization' OR organization_id IS NOT NULL", name="org_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    username: Mapped[str] = mapped_column(String(120))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))

    person: Mapped[Person | None] = relationship(back_populates="accounts")
    organization: Mapped[Organization | None] = relationship(back_populates="accounts")
    phones: Mapped[list[Phone]] = relationship(
        back_populates="account", order_by="Phone.id", cascade="all, delete-orphan"
    )
    roles: Mapped[list[AccountRole]] = relationship(order_by="AccountRole.role", cascade="all, delete-orphan")


class AccountRole(Base):
    """A role of a staff account in its organization ("admin", "staff"; the vocabulary can grow)."""

    __tablename__ = "account_roles"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)


class TotpCredential(Base):
    """A confirmed authenticator app of an account: its secret encrypted, the last time step used."""

    __tablename__ = "totp_credentials"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # RFC 6238 §5.2: a step once accepted is never accepted again (nor any earlier one).
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    confirmed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RecoveryCode(Base):
    """A single-use code that may replace the second factor once, stored as a keyed hash."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("account_id", "code_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Phone(Base):
    """A phone that receives an account's OTPs; one number may serve several accounts."""

    __tablename__ = "phones"
    __table_args__ = (UniqueConstraint("account_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(16), index=True)  # E.164, +84…
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    account: Mapped[Account] = relationship(back_populates="phones")


class Grant(Base):
    """What one authorization produced: the refresh-token family and its revocation state."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_sid", "sid"), Index("ix_grants_account_id", "account_id"))

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    subject: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str | None] = mapped_column(String(43))
    scope: Mapped[str] = mapped_column(Text)
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    auth_time: Mapped[int] = mapped_column(Integer)
    acr: Mapped[str] = mapped_column(String(20))
    amr: Mapped[list[str]] = mapped_column(JSON)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(60))


class RefreshToken(Base):
    """A refresh token, stored as the SHA-256 of its value; rotated tokens are kept as consumed."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    consumed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Consent(Base):
    """A person's standing permission for a relying party to receive certain scopes and claims.

    ``claims`` lists every personal claim agreed to (those of the scopes and those asked for one
    by one through the ``claims`` request parameter), space-separated (idp.identity.consents)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(120))
    scope: Mapped[str] = mapped_column(Text)
    claims: Mapped[str] = mapped_column(Text, default="", server_default="")
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """Who did what to which account, when; ID numbers appear masked only."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account_id_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(60))
    account_id: Mapped[int | None] = mapped_column(Integer)
    client_id: Mapped[str | None] = mapped_column(String(120))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RememberedDevice(Base):
    """A browser whose owner chose "Ghi nhớ thiết bị này": it may skip the SMS OTP, which makes the
    sign-in level 1 (idp.identity.remembered_devices). The browser keeps a random secret in a
    cookie; only its SHA-256 is stored. Forgotten on expiry, on request, on a password change."""

    __tablename__ = "remembered_devices"
    __table_args__ = (UniqueConstraint("account_id", "secret_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64), index=True)
    browser: Mapped[str] = mapped_column(String(40), default="")
    platform: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class IdentityProof(Base):
    """One proof of an identity (DESIGN §4, §5): how, when, by which verifier and at which level a
    person's or an enterprise's identity was established. Kept as the verifier's evidence id (the
    register's reference for the check, a certificate's fingerprint, the counter and operator),
    never as the register's data. Person.loa and its loa_* columns summarize the strongest one."""

    __tablename__ = "identity_proofs"
    __table_args__ = (
        CheckConstraint("person_id IS NOT NULL OR organization_id IS NOT NULL", name="subject"),
        CheckConstraint("level IN (2, 3)", name="level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[int] = mapped_column(SmallInteger)
    # subscriber, social_insurance, population, sim, usb, counter, post_office, sandbox, operator
    method: Mapped[str] = mapped_column(String(40))
    verifier: Mapped[str] = mapped_column(String(80))
    evidence_id: Mapped[str | None] = mapped_column(String(160))
    verified_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(160))  # "account:12", "operator:lan", "system:sandbox"
    place: Mapped[str | None] = mapped_column(String(200))  # the counter or post office, for in-person proofs

    person: Mapped[Person | None] = relationship()
