"""Guards for calls to other systems (registers, the SIM signing service, the SMS gateway, later
the upstream identity providers), so that one that hangs or fails cannot take idp down with it.

- :class:`Bulkhead`: at most N calls to one system at a time from this process, and at most M to
  all of them together (so that some threads of every worker always serve the requests that call
  nobody: discovery, tokens, sign-ins with an SSO session); a call beyond either is refused at once.
- a time budget per call, retries included (:class:`Deadline`): a check never holds a thread longer.
- :class:`SharedBreaker`: a consecutive-failure circuit breaker whose state lives in the short-lived
  store, shared by every worker and machine. Open, it refuses calls at once for the cool-down; then
  one trial call (the half-open probe, a lease in the store) goes out from whichever worker comes
  first, and its success closes the circuit for all of them. :class:`CircuitBreaker` is the same
  for one process without a store (unit tests, tools).

No Flask here: adapters use this, and adapters import no web framework.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from idp.store.ephemeral import EphemeralStore, StoreUnavailable

log = logging.getLogger("idp.outbound")


class Refused(Exception):
    """A call was not made: its bulkhead is full, its circuit open or its time budget spent."""


# -- bulkheads ---------------------------------------------------------------------------------------
class Bulkhead:
    """A bounded number of concurrent calls; never waits (a full bulkhead refuses at once)."""

    def __init__(self, name: str, limit: int, parent: Bulkhead | None = None) -> None:
        if limit < 1:
            raise ValueError("a bulkhead needs a limit of at least 1")
        self.name = name
        self.limit = limit
        self.parent = parent
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.in_use = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the call (and one of the parent's); Refused when none is free."""
        if not self._slots.acquire(blocking=False):
            raise Refused(f"{self.name}: {self.limit} calls under way already")
        try:
            with self._lock:
                self.in_use += 1
            if self.parent is not None:
                with self.parent.slot():
                    yield
            else:
                yield
        finally:
            with self._lock:
                self.in_use -= 1
            self._slots.release()


# -- time budgets ------------------------------------------------------------------------------------
@dataclass
class Deadline:
    """The end of a call's time budget (retries, backoff and every timeout included)."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def left(self) -> float:
        return max(0.0, self.at - self.clock())

    def cap(self, timeout: float) -> float:
        """A timeout that ends by the deadline."""
        return max(0.01, min(timeout, self.left()))


# -- circuit breakers --------------------------------------------------------------------------------
class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Breaker(Protocol):
    @property
    def state(self) -> BreakerState: ...
    def allow(self) -> bool: ...
    def retry_in(self) -> float: ...
    def record_success(self) -> None: ...
    def record_failure(self) -> None: ...


class CircuitBreaker:
    """Consecutive-failure circuit breaker for one process; thread-safe.

    Closed: calls go through; ``threshold`` consecutive failures open it. Open: calls are refused
    without touching the network until ``cooldown`` seconds have passed. Half-open: exactly one
    trial call goes through (others are refused); its success closes the circuit, its failure
    opens it for another cool-down.
    """

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown:
                return BreakerState.HALF_OPEN
            return self._state

    def retry_in(self) -> float:
        """Seconds until the open circuit lets a trial call through (0 when it would now)."""
        with self._lock:
            if self._state is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go out now? A True in the half-open state reserves the single trial call."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self.cooldown:
                    return False
                self._state = BreakerState.HALF_OPEN
                self._trial_running = False
            if self._trial_running:
                return False
            self._trial_running = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()


class SharedBreaker:
    """The same breaker with its state in the short-lived store: every worker of every machine sees
    one circuit per system. Keys (under ``brk:<name>:``): ``n`` consecutive failures, ``open``
    while the circuit is open (its TTL is the cool-down left), ``probe`` the lease of the single
    half-open trial call. Should the store itself fail, calls are allowed (the store's outage is
    answered elsewhere) and nothing is recorded."""

    def __init__(
        self, store: EphemeralStore, name: str, threshold: int, cooldown: float, probe_lease: float
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.store = store
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self.probe_lease = max(1, int(probe_lease + 1))
        base = f"brk:{name}:"
        self._n, self._open, self._probe = base + "n", base + "open", base + "probe"

    def _failures(self) -> int:
        return int(self.store.get(self._n) or 0)

    @property
    def state(self) -> BreakerState:
        try:
            if self.store.ttl(self._open) > 0:
                return BreakerState.OPEN
            return BreakerState.HALF_OPEN if self._failures() >= self.threshold else BreakerState.CLOSED
        except StoreUnavailable:
            return BreakerState.CLOSED

    def retry_in(self) -> float:
        try:
            return float(max(0, self.store.ttl(self._open)))
        except StoreUnavailable:
            return 0.0

    def allow(self) -> bool:
        try:
            if self.store.ttl(self._open) > 0:
                return False
            if self._failures() < self.threshold:
                return True
            # Half-open: one trial call for all workers; the lease ends by itself if its worker dies.
            return self.store.set(self._probe, "1", self.probe_lease, only_if_absent=True)
        except StoreUnavailable:
            return True

    def record_success(self) -> None:
        try:
            if self._failures() or self.store.get(self._probe) is not None:
                self.store.delete(self._n, self._open, self._probe)
                log.info("%s: circuit closed", self.name)
        except StoreUnavailable:
            pass

    def record_failure(self) -> None:
        try:
            failures = self.store.incr(self._n, max(600, int(self.cooldown * 20)))
            if failures >= self.threshold:
                self.store.set(self._open, "1", max(1, int(round(self.cooldown))))
                self.store.delete(self._probe)
                if failures == self.threshold:
                    log.warning("%s: circuit open after %d consecutive failures", self.name, failures)
        except StoreUnavailable:
            pass


@dataclass(frozen=True)
class Guard:
    """What stands between idp and one system: its bulkhead, its breaker, its time budget."""

    name: str
    bulkhead: Bulkhead | None
    breaker: Breaker
    budget: float  # seconds per call, retries included


class Guards:
    """The guards of one application: one bulkhead and breaker per system, one bulkhead for all
    outbound calls of the process, and inside it one for the registration checks (registers,
    the SIM signing service) taking at most half of it, so that registrations that hang can
    never take the slots the SMS of sign-ins need."""

    REGISTRATIONS = "registrations"

    def __init__(self, store: EphemeralStore | None, *, total: int) -> None:
        self.store = store
        self.outbound = Bulkhead("outbound", max(1, total))
        self.groups = {self.REGISTRATIONS: Bulkhead(self.REGISTRATIONS, max(1, total // 2), self.outbound)}
        self._guards: dict[str, Guard] = {}
        self._lock = threading.Lock()

    def guard(
        self,
        name: str,
        *,
        concurrency: int,
        threshold: int,
        cooldown: float,
        budget: float,
        group: str | None = None,
    ) -> Guard:
        with self._lock:
            found = self._guards.get(name)
            if found is None:
                breaker: Breaker = (
                    SharedBreaker(self.store, name, threshold, cooldown, probe_lease=budget)
                    if self.store is not None
                    else CircuitBreaker(threshold, cooldown)
                )
                parent = self.groups[group] if group is not None else self.outbound
                found = Guard(name, Bulkhead(name, max(1, concurrency), parent), breaker, budget)
                self._guards[name] = found
            return found
