"""Failure counters and incremental, temporary lockout, kept apart for passwords and OTPs.

Counters are kept per login name (whether or not an account exists, so the answer never tells)
and per client address. After PASSWORD_MAX_FAILURES failures in a row the subject is locked for
LOCKOUT_BASE_SECONDS, doubling with each further lockout that day up to LOCKOUT_MAX_SECONDS.
A lockout always ends by itself; no stranger can lock an account for good.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from idp.store.ephemeral import EphemeralStore

# An address is shared by many people behind a carrier NAT: it gets more room than one name.
ADDRESS_FACTOR = 4


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int
    base_seconds: int
    max_seconds: int


def _subject(kind: str, value: str) -> str:
    return kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:32]


class Throttle:
    def __init__(self, store: EphemeralStore, factor: str, policy: LockoutPolicy) -> None:
        self.store = store
        self.factor = factor  # "pwd" or "otp"
        self.policy = policy

    def _keys(self, subject: str) -> tuple[str, str, str]:
        base = f"thr:{self.factor}:{subject}"
        return base + ":fail", base + ":lock", base + ":level"

    def _limit(self, subject: str) -> int:
        return self.policy.max_failures * (ADDRESS_FACTOR if subject.startswith("ip:") else 1)

    def locked_for(self, *, name: str | None = None, address: str | None = None) -> int:
        """Seconds until the longest lock among the given subjects ends (0 when none is locked)."""
        subjects = self._subjects(name, address)
        waits = self.store.ttl_many([self._keys(s)[1] for s in subjects])
        return max([w for w in waits if w > 0], default=0)

    def _subjects(self, name: str | None, address: str | None) -> list[str]:
        subjects = []
        if name:
            subjects.append(_subject("name", name))
        if address:
            subjects.append(_subject("ip", address))
        return subjects

    def failure(self, *, name: str | None = None, address: str | None = None) -> int:
        """Count a failure; returns the lockout in seconds it started (0 when none)."""
        started = 0
        for subject in self._subjects(name, address):
            fail_key, lock_key, level_key = self._keys(subject)
            count = self.store.incr(fail_key, self.policy.max_seconds)
            if count >= self._limit(subject):
                level = self.store.incr(level_key, 86400)
                seconds = min(self.policy.base_seconds * 2 ** (level - 1), self.policy.max_seconds)
                self.store.set(lock_key, str(level), seconds)
                self.store.delete(fail_key)
                started = max(started, seconds)
        return started

    def release(self, name: str) -> None:
        """End the name's lockout and its failure count at once (the day's level is kept, so that
        more failures lock it again for longer); for a person who has just proven who they are."""
        fail_key, lock_key, _ = self._keys(_subject("name", name))
        self.store.delete(fail_key, lock_key)

    def success(self, *, name: str | None = None) -> None:
        """A success clears the name's failure count (the lockout level is kept for the day)."""
        if name:
            self.store.delete(self._keys(_subject("name", name))[0])
