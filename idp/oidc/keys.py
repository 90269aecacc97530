"""Signing keys (RFC 7517/7518): ES256 and RS256, each with an active and a published next key.

One JSON file per key in KEYS_DIR (mode 0600): the private JWK plus its state. A key is born
``next`` (published in the JWKS, not yet used), becomes ``active`` on rotation and ``retired``
on the following one; retired public keys stay published for KEY_RETENTION seconds so tokens
signed before a rotation still verify. Every key has a ``kid`` (its RFC 7638 thumbprint) that
appears in every JWS header. Private keys never leave this folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

ALGORITHMS = ("ES256", "RS256")
NEXT, ACTIVE, RETIRED = "next", "active", "retired"


class KeyStoreError(RuntimeError):
    """The key folder is missing keys or holds unreadable files."""


@dataclass
class StoredKey:
    kid: str
    alg: str
    status: str
    created_at: str
    activated_at: str | None
    retired_at: str | None
    key: ECKey | RSAKey
    path: Path

    def public_jwk(self) -> dict[str, Any]:
        data = self.key.as_dict(private=False)
        data.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return data

    def to_file(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "alg": self.alg,
            "status": self.status,
            "created_at": self.created_at,
            "activated_at": self.activated_at,
            "retired_at": self.retired_at,
            "jwk": self.key.as_dict(private=True),
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _new_key(alg: str) -> ECKey | RSAKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    raise ValueError(f"unsupported algorithm {alg}")


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


_imported: dict[str, ECKey | RSAKey] = {}


def _import_private(alg: str, jwk: dict[str, Any]) -> ECKey | RSAKey:
    """Import a private JWK once per process: RSA private keys take ~0.1 s to validate on load."""
    cache_key = alg + json.dumps(jwk, sort_keys=True)
    key = _imported.get(cache_key)
    if key is None:
        key = (ECKey if alg == "ES256" else RSAKey).import_key(jwk)
        _imported[cache_key] = key
    return key


def read_keys(directory: Path) -> list[StoredKey]:
    keys: list[StoredKey] = []
    if not directory.is_dir():
        return keys
    for path in sorted(directory.glob("*.jwk.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            key = _import_private(data["alg"], data["jwk"])
            keys.append(
                StoredKey(
                    kid=data["kid"],
                    alg=data["alg"],
                    status=data["status"],
                    created_at=data["created_at"],
                    activated_at=data.get("activated_at"),
                    retired_at=data.get("retired_at"),
                    key=key,
                    path=path,
                )
            )
        except (OSError, ValueError, KeyError) as exc:
            raise KeyStoreError(f"{path}: unreadable key file ({exc.__class__.__name__})") from exc
    return keys


def create_key(directory: Path, alg: str, status: str) -> StoredKey:
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key(alg)
    kid = key.thumbprint()
    now = _now()
    stored = StoredKey(
        kid=kid,
        alg=alg,
        status=status,
        created_at=now,
        activated_at=now if status == ACTIVE else None,
        retired_at=None,
        key=key,
        path=directory / f"{kid}.jwk.json",
    )
    _write(stored.path, stored.to_file())
    return stored


def ensure_keys(directory: Path) -> list[StoredKey]:
    """Give every algorithm an active and a next key; return the keys created."""
    created = []
    existing = read_keys(directory)
    for alg in ALGORITHMS:
        states = {k.status for k in existing if k.alg == alg}
        if ACTIVE not in states:
            created.append(create_key(directory, alg, ACTIVE))
        if NEXT not in states:
            created.append(create_key(directory, alg, NEXT))
    return created


def rotate(directory: Path, algorithms: tuple[str, ...] = ALGORITHMS) -> list[str]:
    """Retire the active key, activate the published next key, publish a new next key."""
    messages = []
    keys = read_keys(directory)
    now = _now()
    for alg in algorithms:
        mine = [k for k in keys if k.alg == alg]
        nxt = next((k for k in mine if k.status == NEXT), None)
        if nxt is None:
            nxt = create_key(directory, alg, NEXT)
            messages.append(f"{alg}: no next key was published; created {nxt.kid} and activated it at once")
        for k in mine:
            if k.status == ACTIVE:
                k.status, k.retired_at = RETIRED, now
                _write(k.path, k.to_file())
        nxt.status, nxt.activated_at = ACTIVE, now
        _write(nxt.path, nxt.to_file())
        fresh = create_key(directory, alg, NEXT)
        messages.append(f"{alg}: active {nxt.kid}, next {fresh.kid}")
    return messages


def ensure_secret(directory: Path) -> str:
    """The session/CSRF secret shared by every process that uses this key folder."""
    path = directory / "secret.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return path.read_text().strip()


class KeyRing:
    """The keys one process signs and verifies with; notices rotations made by `idp keys rotate`."""

    CHECK_INTERVAL = 5.0

    def __init__(self, directory: Path, retention_seconds: int) -> None:
        self.directory = directory
        self.retention = retention_seconds
        self._lock = threading.Lock()
        self._load()

    def _stamp(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self.directory.glob("*.jwk.json")))

    def _load(self) -> None:
        keys = read_keys(self.directory)
        active = {k.alg: k for k in keys if k.status == ACTIVE}
        missing = [alg for alg in ALGORITHMS if alg not in active]
        if missing:
            raise KeyStoreError(
                f"{self.directory}: no active {', '.join(missing)} signing key; run `idp init` or `idp keys generate`"
            )
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.retention)
        published = [
            k
            for k in keys
            if k.status in (ACTIVE, NEXT)
            or (k.retired_at and dt.datetime.fromisoformat(k.retired_at) >= cutoff)
        ]
        self._active = active
        self._jwks = {"keys": [k.public_jwk() for k in published]}
        self._verify = KeySet.import_key_set({"keys": [k.public_jwk() for k in published]})
        self._stamp_value = self._stamp()
        self._checked = time.monotonic()

    def _maybe_reload(self) -> None:
        if time.monotonic() - self._checked < self.CHECK_INTERVAL:
            return
        with self._lock:
            self._checked = time.monotonic()
            if self._stamp() != self._stamp_value:
                self._load()

    def jwks(self) -> dict[str, Any]:
        self._maybe_reload()
        return self._jwks

    def sign(self, claims: dict[str, Any], alg: str = "ES256", typ: str = "JWT") -> str:
        self._maybe_reload()
        key = self._active[alg]
        header = {"alg": alg, "kid": key.kid, "typ": typ}
        return jwt.encode(header, claims, key.key, algorithms=[alg])

    def decode(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify a JWS we issued (any published key); returns (header, claims). Raises JoseError."""
        self._maybe_reload()
        result = jwt.decode(token, self._verify, algorithms=list(ALGORITHMS))
        return result.header, result.claims
