"""Remembered devices ("Ghi nhớ thiết bị này"): which browsers may skip the SMS OTP, and for how long.

What a remembered device may skip, and what that costs (issue 3, item 6):

- Only the SMS OTP of the citizen door, only for the account that ticked the box, only in that
  browser, for REMEMBER_DEVICE_DAYS. The password is always asked.
- A sign-in that skipped the OTP used a password alone: amr ``["pwd"]``, sign-in strength 1, so
  acr ``LoA1`` whatever the identity's level (idp.identity.assurance).
- When the relying party demands more (essential ``acr``, the client's ``require_acr``) or prefers
  more (``acr_values`` without LoA1), the OTP is asked anyway: a step-up, never a failure.
- A password change or reset and "sign out everywhere" forget every device of the account
  (:func:`forget_all`); the person can forget one device (:func:`forget`).

The browser keeps a random secret in a cookie; only its SHA-256 is stored, one row per account
that browser remembers (a family computer may remember two people). Remembering again rotates the
secret. Functions here add to the caller's SQL transaction: the caller commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import delete, select, update

from idp.identity import audit
from idp.store.models import RememberedDevice, db, utcnow

_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def valid_secret(secret: str | None) -> bool:
    return bool(secret) and bool(_SECRET.match(secret or ""))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def find(account_id: int, secret: str | None) -> RememberedDevice | None:
    """The unexpired record that this browser's secret remembers for the account, if any."""
    if not valid_secret(secret):
        return None
    assert secret is not None
    stmt = select(RememberedDevice).where(
        RememberedDevice.account_id == account_id,
        RememberedDevice.secret_hash == hash_secret(secret),
        RememberedDevice.expires_at > utcnow(),
    )
    return db.session.execute(stmt).scalar_one_or_none()


def remember(
    account_id: int,
    *,
    old_secret: str | None,
    days: int,
    browser: str = "",
    platform: str = "",
    actor: str,
    ip: str | None = None,
) -> tuple[str, RememberedDevice]:
    """Remember this browser for the account; returns the browser's new secret and the record.

    The other accounts this browser remembered move to the new secret (the old one stops working),
    so a secret planted in the browser beforehand never becomes a remembered device.
    """
    now = utcnow()
    secret = new_secret()
    new_hash = hash_secret(secret)
    if valid_secret(old_secret):
        assert old_secret is not None
        db.session.execute(
            update(RememberedDevice)
            .where(RememberedDevice.secret_hash == hash_secret(old_secret), RememberedDevice.expires_at > now)
            .values(secret_hash=new_hash)
        )
    db.session.execute(
        delete(RememberedDevice).where(
            RememberedDevice.account_id == account_id, RememberedDevice.expires_at <= now
        )
    )
    device = db.session.execute(
        select(RememberedDevice).where(
            RememberedDevice.account_id == account_id, RememberedDevice.secret_hash == new_hash
        )
    ).scalar_one_or_none()
    if device is None:
        device = RememberedDevice(account_id=account_id, secret_hash=new_hash, created_at=now)
        db.session.add(device)
    device.browser, device.platform = browser[:40], platform[:40]
    device.last_used_at = now
    device.expires_at = now + dt.timedelta(days=days)
    db.session.flush()
    audit.record("device.remembered", actor=actor, account_id=account_id, ip=ip, device=device.id, days=days)
    return secret, device


def touch(device: RememberedDevice, *, ip: str | None = None) -> None:
    """The device just skipped an OTP: note when (the account page shows it) and audit it."""
    device.last_used_at = utcnow()
    audit.record(
        "device.used",
        actor=f"account:{device.account_id}",
        account_id=device.account_id,
        ip=ip,
        device=device.id,
    )


def forget(account_id: int, device_id: int, *, actor: str, ip: str | None = None) -> bool:
    """Forget one device of the account (the person's account page); False when it is not theirs."""
    done = db.session.execute(
        delete(RememberedDevice).where(
            RememberedDevice.account_id == account_id, RememberedDevice.id == device_id
        )
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    audit.record("device.forgotten", actor=actor, account_id=account_id, ip=ip, device=device_id)
    return True


def forget_all(account_id: int, *, actor: str, reason: str, ip: str | None = None) -> int:
    """Forget every device of the account: call it in the same transaction as a password change or
    reset and from "sign out everywhere". Returns how many were forgotten."""
    done = db.session.execute(delete(RememberedDevice).where(RememberedDevice.account_id == account_id))
    count = int(done.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        audit.record(
            "device.forgotten_all", actor=actor, account_id=account_id, ip=ip, reason=reason, count=count
        )
    return count
