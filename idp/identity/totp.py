"""Authenticator apps (TOTP, RFC 6238) and recovery codes, the second factors of staff accounts.

- The TOTP secret is encrypted at rest with Fernet under a key derived from the application's
  SECRET_KEY with HKDF; it is never logged. A code is accepted within one 30-second step either
  side of now, and a step once accepted is never accepted again (nor an earlier one): the last
  used step is moved forward by a conditional UPDATE, so two concurrent uses of one code cannot
  both succeed.
- An authenticator becomes active only when the person types a first valid code (enrolment
  keeps the new secret aside until then); confirming it replaces the recovery codes.
- Recovery codes: ten random codes shown once, stored as HMAC-SHA256 under a second derived key;
  each may replace the second factor once (a conditional UPDATE consumes it).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from enum import Enum

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, or_, select, update

from idp.identity import audit
from idp.store.models import RecoveryCode, TotpCredential, db, utcnow

log = logging.getLogger("idp.totp")

STEP = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of now (clock drift of the phone)
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols, no 0/O or 1/I look-alikes
RECOVERY_LENGTH = 10  # 50 bits


def _derive(secret_key: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret_key.encode())


class SecondFactorKeys:
    """Keys derived from SECRET_KEY: one encrypts TOTP secrets, one keys the recovery-code hashes."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"idp/totp-secret/v1")))
        self._mac_key = _derive(secret_key, b"idp/recovery-code/v1")

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str | None:
        """The secret, or None when it was encrypted under another SECRET_KEY."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None

    def code_hash(self, code: str) -> str:
        return hmac.new(self._mac_key, normalize_recovery_code(code).encode(), hashlib.sha256).hexdigest()


class TotpOutcome(Enum):
    OK = "ok"
    WRONG = "wrong"
    REPLAYED = "replayed"  # right code, but its step (or a later one) was already used
    NOT_ENROLLED = "not_enrolled"


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, RFC 4226's recommendation


def current_step(now: float | None = None) -> int:
    return int(time.time() if now is None else now) // STEP


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code this is, within the window around now; None when none matches."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    step = current_step(now)
    found = None
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            found = candidate
    return found


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=username, issuer_name=issuer
    )


def has_totp(account_id: int) -> bool:
    stmt = select(TotpCredential.account_id).where(TotpCredential.account_id == account_id)
    return db.session.execute(stmt).scalar_one_or_none() is not None


def totp_confirmed_at(account_id: int) -> dt.datetime | None:
    stmt = select(TotpCredential.confirmed_at).where(TotpCredential.account_id == account_id)
    return db.session.execute(stmt).scalar_one_or_none()


def verify_totp(account_id: int, code: str, keys: SecondFactorKeys, now: float | None = None) -> TotpOutcome:
    """Check a code from the account's authenticator and mark its step used (committed)."""
    stored = db.session.execute(
        select(TotpCredential.secret_encrypted).where(TotpCredential.account_id == account_id)
    ).scalar_one_or_none()
    if stored is None:
        db.session.rollback()
        return TotpOutcome.NOT_ENROLLED
    secret = keys.decrypt(stored)
    if secret is None:
        log.warning(
            "authenticator secret of account %s cannot be decrypted: was SECRET_KEY changed?", account_id
        )
    step = matching_step(secret, code, now) if secret else None
    if step is None:
        db.session.rollback()
        return TotpOutcome.WRONG
    result = db.session.execute(
        update(TotpCredential)
        .where(
            TotpCredential.account_id == account_id,
            or_(TotpCredential.last_used_step.is_(None), TotpCredential.last_used_step < step),
        )
        .values(last_used_step=step)
    )
    db.session.commit()
    return TotpOutcome.OK if result.rowcount == 1 else TotpOutcome.REPLAYED  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Enrolment:
    """A confirmed authenticator: the recovery codes to show once."""

    recovery_codes: list[str]


def confirm_totp(
    account_id: int,
    secret: str,
    code: str,
    keys: SecondFactorKeys,
    *,
    actor: str,
    ip: str | None = None,
    now: float | None = None,
) -> Enrolment | None:
    """Activate `secret` for the account if `code` is a valid first code; None otherwise.

    Replaces any earlier authenticator and the recovery codes, in one transaction. The step of
    the confirming code counts as used, so the same code cannot also serve a sign-in.
    """
    step = matching_step(secret, code, now)
    if step is None:
        return None
    existing = db.session.get(TotpCredential, account_id)
    replaced = existing is not None
    if existing is None:
        db.session.add(
            TotpCredential(
                account_id=account_id,
                secret_encrypted=keys.encrypt(secret),
                last_used_step=step,
                confirmed_at=utcnow(),
            )
        )
    else:
        existing.secret_encrypted = keys.encrypt(secret)
        existing.last_used_step = step
        existing.confirmed_at = utcnow()
    codes = _replace_recovery_codes(account_id, keys)
    audit.record(
        "totp.replaced" if replaced else "totp.enrolled",
        actor=actor,
        account_id=account_id,
        ip=ip,
        recovery_codes=len(codes),
    )
    db.session.commit()
    return Enrolment(codes)


def store_totp(account_id: int, secret: str, keys: SecondFactorKeys, *, actor: str) -> None:
    """Install a known secret as confirmed (sandbox data only: its secret is published)."""
    if db.session.get(TotpCredential, account_id) is None:
        db.session.add(TotpCredential(account_id=account_id, secret_encrypted=keys.encrypt(secret)))
        audit.record("totp.enrolled", actor=actor, account_id=account_id, sandbox=True)
        db.session.commit()


def normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
    return raw[:5] + "-" + raw[5:]


def _replace_recovery_codes(account_id: int, keys: SecondFactorKeys) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(account_id=account_id, code_hash=keys.code_hash(c)) for c in codes)
    return codes


def regenerate_recovery_codes(
    account_id: int, keys: SecondFactorKeys, *, actor: str, ip: str | None = None
) -> list[str]:
    """New recovery codes (the old ones stop working), shown once."""
    codes = _replace_recovery_codes(account_id, keys)
    audit.record("recovery_codes.regenerated", actor=actor, account_id=account_id, ip=ip, count=len(codes))
    db.session.commit()
    return codes


def store_recovery_codes(account_id: int, codes: list[str], keys: SecondFactorKeys) -> None:
    """Install known recovery codes (sandbox data only) unless the account has had some."""
    count = select(func.count(RecoveryCode.id)).where(RecoveryCode.account_id == account_id)
    if not db.session.execute(count).scalar_one():
        db.session.add_all(RecoveryCode(account_id=account_id, code_hash=keys.code_hash(c)) for c in codes)
        db.session.commit()


def use_recovery_code(account_id: int, code: str, keys: SecondFactorKeys, *, ip: str | None = None) -> bool:
    """Consume an unused recovery code of the account; True when it was one (committed)."""
    normal = normalize_recovery_code(code)
    if len(normal) != RECOVERY_LENGTH:
        return False
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.account_id == account_id,
            RecoveryCode.code_hash == keys.code_hash(normal),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return False
    audit.record("recovery_code.used", actor=f"account:{account_id}", account_id=account_id, ip=ip)
    db.session.commit()
    return True


def recovery_codes_left(account_id: int) -> int:
    stmt = select(func.count(RecoveryCode.id)).where(
        RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)
    )
    return int(db.session.execute(stmt).scalar_one())
