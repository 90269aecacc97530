"""Failure counters and incremental, temporary lockout, kept apart for passwords and OTPs.

Counters are kept per login name (whether or not an account exists, so the answer never tells)
and per client address. After PASSWORD_MAX_FAILURES failures in a row the subject is locked for
LOCKOUT_BASE_SECONDS, doubling with each further lockout that day up to LOCKOUT_MAX_SECONDS.
A lockout always ends by itself; no stranger can lock an account for good.

A check that is slow (a password hash) or guessable (an authenticator code) runs inside
``with throttle.attempt(name=…, address=…) as attempt``: the attempt is counted, atomically,
before it is checked, and refused at once (``attempt.wait``) while the subject is locked or as
many attempts as the limit allows are already counted, so concurrent attempts can never be
checked more often than the limit. Its outcome is then told with ``attempt.failed()`` (which may
start the lockout) or ``attempt.succeeded()`` (which gives the address's count back: only
failures count against an address). An attempt left without an outcome (the database was
unavailable, the check never ran) gives its count back. ``failure`` counts an event that was not
reserved (an OTP code voided by wrong entries).
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


class Attempt:
    """One reserved attempt (see the module doc); a context manager."""

    def __init__(self, throttle: Throttle, name: str | None, address: str | None) -> None:
        self.throttle, self.name, self.address = throttle, name, address
        self.wait = throttle.reserve(name=name, address=address)
        self.decided = self.wait > 0  # a refused attempt counted nothing

    def failed(self) -> int:
        """The check failed: the lockout in seconds it started (0 when none)."""
        self.decided = True
        return self.throttle.failed(name=self.name, address=self.address)

    def succeeded(self) -> None:
        self.decided = True
        self.throttle.succeeded(name=self.name, address=self.address)

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.decided:
            self.throttle.give_back(name=self.name, address=self.address)


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

    def reserve(self, *, name: str | None = None, address: str | None = None) -> int:
        """Count an attempt before it is checked: 0 when it may be checked now; otherwise nothing
        is counted and the answer is the seconds to wait (the lockout, or the one about to start
        when the limit's worth of attempts is already under way)."""
        subjects = self._subjects(name, address)
        counters = [(self._keys(s)[0], self._limit(s), self.policy.max_seconds) for s in subjects]
        index, left = self.store.take_quota(counters, blockers=[self._keys(s)[1] for s in subjects])
        if index < 0:
            return 0
        if index < len(subjects):  # locked
            return max(1, left)
        return self.locked_for(name=name, address=address) or self.policy.base_seconds

    def attempt(self, *, name: str | None = None, address: str | None = None) -> Attempt:
        return Attempt(self, name, address)

    def give_back(self, *, name: str | None = None, address: str | None = None) -> None:
        """Uncount a reserved attempt whose check never ran."""
        self.store.give_back([self._keys(s)[0] for s in self._subjects(name, address)])

    def failed(self, *, name: str | None = None, address: str | None = None) -> int:
        """A reserved attempt failed (it is counted already): the lockout in seconds it started."""
        return self._lock_full(self._subjects(name, address), counted=False)

    def succeeded(self, *, name: str | None = None, address: str | None = None) -> None:
        """A reserved attempt succeeded: the name's failures are cleared, the address's count
        given back."""
        self.success(name=name)
        if address:
            self.store.give_back([self._keys(_subject("ip", address))[0]])

    def failure(self, *, name: str | None = None, address: str | None = None) -> int:
        """Count a failure that was not reserved; returns the lockout in seconds it started (0 when none)."""
        return self._lock_full(self._subjects(name, address), counted=True)

    def _lock_full(self, subjects: list[str], *, counted: bool) -> int:
        started = 0
        for subject in subjects:
            fail_key, lock_key, level_key = self._keys(subject)
            if counted:
                count = self.store.incr(fail_key, self.policy.max_seconds)
            else:
                count = int(self.store.get(fail_key) or 0)
            if count < self._limit(subject):
                continue
            if counted:
                level = self.store.incr(level_key, 86400)
                seconds = self._seconds(level)
                self.store.set(lock_key, str(level), seconds)
            else:
                # Reserved attempts finish concurrently: the first to find the limit reached locks.
                level = int(self.store.get(level_key) or 0) + 1
                seconds = self._seconds(level)
                if not self.store.set(lock_key, str(level), seconds, only_if_absent=True):
                    continue
                self.store.incr(level_key, 86400)
            self.store.delete(fail_key)
            started = max(started, seconds)
        return started

    def _seconds(self, level: int) -> int:
        return min(self.policy.base_seconds * 2 ** (level - 1), self.policy.max_seconds)

    def release(self, name: str) -> None:
        """End the name's lockout and its failure count at once (the day's level is kept, so that
        more failures lock it again for longer); for a person who has just proven who they are."""
        fail_key, lock_key, _ = self._keys(_subject("name", name))
        self.store.delete(fail_key, lock_key)

    def success(self, *, name: str | None = None) -> None:
        """A success clears the name's failure count (the lockout level is kept for the day)."""
        if name:
            self.store.delete(self._keys(_subject("name", name))[0])
