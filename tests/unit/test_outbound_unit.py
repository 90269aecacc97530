"""The outbound guards' bookkeeping (idp/outbound.py), without a network: bulkheads refuse at once
and never leak a slot; the registration checks take at most half of a worker's outbound slots."""

from __future__ import annotations

from typing import Any

import pytest

from idp.outbound import Bulkhead, Guard, Guards, Refused
from idp.store.ephemeral import MemoryStore


def guard(guards: Guards, name: str, group: str | None = None, concurrency: int = 2) -> Guard:
    return guards.guard(name, concurrency=concurrency, threshold=3, cooldown=1.0, budget=1.0, group=group)


def refused(bulkhead: Any) -> bool:
    try:
        with bulkhead.slot():
            return False
    except Refused:
        return True


def test_registration_checks_that_hang_leave_the_sms_its_slots() -> None:
    guards = Guards(MemoryStore(), total=3)  # a worker of 4 threads
    population = guard(guards, "population", Guards.REGISTRATIONS)
    subscribers = guard(guards, "subscribers", Guards.REGISTRATIONS)
    sms = guard(guards, "sms", concurrency=3)
    with population.bulkhead.slot():  # a register check hangs
        assert refused(subscribers.bulkhead)  # the registrations' share (1 of 3) is taken
        with sms.bulkhead.slot(), sms.bulkhead.slot():  # two sign-ins' SMS go out meanwhile
            assert refused(sms.bulkhead)  # and the worker's total holds
    assert guards.outbound.in_use == 0 and population.bulkhead.in_use == 0


def test_a_refused_or_failing_call_never_keeps_a_slot() -> None:
    outer = Bulkhead("all", 1)
    inner = Bulkhead("one", 2, outer)
    with inner.slot():
        assert refused(inner)  # the outer one is full
    with pytest.raises(RuntimeError), inner.slot():
        raise RuntimeError("the call failed")
    assert (outer.in_use, inner.in_use) == (0, 0)
    assert not refused(inner)
