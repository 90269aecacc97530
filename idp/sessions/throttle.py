"""Failure counters and incremental, temporary lockout, kept apart for passwords and OTPs.

Counters are kept per login name (whether or not an account exists, so the answer never tells)
and per client address. After PASSWORD_MAX_FAILURES failures in a row the subject is locked for
LOCKOUT_BASE_SECONDS, doubling with each further lockout that day up to LOCKOUT_MAX_SECONDS.
A lockout always ends by itself; no stranger can lock an account for good.

A check that is slow (a password hash) or guessable (an authenticator code) runs inside
``with throttle.attempt(name=…, address=…) as attempt``: the attempt is counted as under way,
atomically, before it is checked, and refused at once (``attempt.wait``) while the subject is
locked or while its failures plus the attempts under way reach the limit, so concurrent attempts
can never be checked more often than the limit allows. Its outcome is then told with
``attempt.failed()`` (one more failure, which may start the lockout) or ``attempt.succeeded()``
(the name's failures cleared); either way it is no longer under way. Only failures start a
lockout: attempts under way never do. An attempt left without an outcome (the database was
unavailable, the check never ran) is simply no longer under way. ``failure`` counts an event
that was not reserved (an OTP code voided by wrong entries).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from idp.store.ephemeral import EphemeralStore

# An address is shared by many people behind a carrier NAT: it gets more room than one name.
ADDRESS_FACTOR = 4
# Seconds an attempt counts as under way at most (a worker that died mid-check gives it back so).
BUSY_TTL = 60


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

    def _busy(self, subject: str) -> str:
        """Attempts under way (reserved, not yet failed or succeeded)."""
        return f"thr:{self.factor}:{subject}:busy"

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
        """Start an attempt before it is checked: 0 when it may be checked now; otherwise nothing
        is counted and the answer is the seconds to wait (the lockout, or as long as the first
        lockout lasts when failures and attempts under way reach the limit)."""
        subjects = self._subjects(name, address)
        index, locked, left = self.store.take_attempt(
            [(self._keys(s)[1], self._keys(s)[0], self._busy(s), self._limit(s)) for s in subjects],
            BUSY_TTL,
        )
        if index < 0:
            return 0
        return max(1, left) if locked else self.policy.base_seconds

    def attempt(self, *, name: str | None = None, address: str | None = None) -> Attempt:
        return Attempt(self, name, address)

    def give_back(self, *, name: str | None = None, address: str | None = None) -> None:
        """A reserved attempt is no longer under way, and was neither a failure nor a success."""
        self.store.give_back([self._busy(s) for s in self._subjects(name, address)])

    def failed(self, *, name: str | None = None, address: str | None = None) -> int:
        """A reserved attempt failed: counted as a failure; the lockout in seconds it started.
        Counted before it stops being under way, so that no attempt slips in between."""
        started = self._lock_full(self._subjects(name, address), reserved=True)
        self.give_back(name=name, address=address)
        return started

    def succeeded(self, *, name: str | None = None, address: str | None = None) -> None:
        """A reserved attempt succeeded: no longer under way, and the name's failures are cleared."""
        self.give_back(name=name, address=address)
        self.success(name=name)

    def failure(self, *, name: str | None = None, address: str | None = None) -> int:
        """Count a failure that was not reserved; returns the lockout in seconds it started (0 when none)."""
        return self._lock_full(self._subjects(name, address), reserved=False)

    def _lock_full(self, subjects: list[str], *, reserved: bool) -> int:
        started = 0
        for subject in subjects:
            fail_key, lock_key, level_key = self._keys(subject)
            count = self.store.incr(fail_key, self.policy.max_seconds)
            if count < self._limit(subject):
                continue
            if not reserved:
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
