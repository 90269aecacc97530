"""The OTP life cycle on Redis (idp.sessions.otp.OtpService): hashed storage with a lifetime, single
use, limited attempts, resend cooldown, another phone, and the SMS-pumping caps counted atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest

from idp.sessions.otp import (
    ACCOUNT_DAILY,
    ADDRESS_HOURLY,
    COOLDOWN,
    GLOBAL,
    PHONE_DAILY,
    PHONE_HOURLY,
    VIETNAM,
    OtpOutcome,
    OtpPolicy,
    OtpSendRefused,
    OtpService,
    seconds_to_midnight,
)
from idp.store.ephemeral import RedisStore
from tests.support.outbox import Outbox

PHONE, OTHER_PHONE = "+84912345678", "+84935123456"
TEXT = "Ma OTP {code}"


def service(app: Any, **policy: int) -> OtpService:
    rt = app.extensions["idp"]
    assert isinstance(rt.store, RedisStore)
    settings = {"lifetime": 120, "max_attempts": 5, "cooldown": 60, "daily_limit": 10, **policy}
    return OtpService(rt.store, rt.sms, b"test-key", OtpPolicy(**settings))  # type: ignore[arg-type]


def send(otp: OtpService, account_id: int = 1, phone: str = PHONE, scope: str = "ix1", **kw: Any) -> str:
    return otp.send(account_id=account_id, phone=phone, purpose="login", text=TEXT, scope=scope, **kw)


def redis_keys(app: Any, pattern: str) -> list[str]:
    store = app.extensions["idp"].store
    return list(store.client.scan_iter(match=store.prefix + pattern))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# -- storage, lifetime, single use -------------------------------------------------------------------
def test_the_code_is_stored_hashed_with_the_lifetime_as_ttl(app: Any, outbox: Outbox) -> None:
    otp = service(app, lifetime=90)
    challenge = send(otp)
    code = outbox.last_code(PHONE)
    store = app.extensions["idp"].store
    raw = store.get("otp:" + challenge)
    assert raw is not None and code not in raw
    assert set(json.loads(raw)) == {"account_id", "phone", "purpose", "mac", "expires_at"}
    assert 85 <= store.ttl("otp:" + challenge) <= 90
    assert 85 <= otp.remaining_seconds(challenge) <= 90


def test_an_expired_code_is_gone_from_redis(app: Any, outbox: Outbox) -> None:
    otp = service(app, lifetime=1)
    challenge = send(otp)
    code = outbox.last_code(PHONE)
    time.sleep(1.3)
    assert redis_keys(app, "otp:" + challenge) == []
    assert otp.verify(challenge, code, account_id=1, purpose="login").outcome is OtpOutcome.EXPIRED
    assert otp.remaining_seconds(challenge) == 0


def test_a_code_works_once(app: Any, outbox: Outbox) -> None:
    otp = service(app)
    challenge = send(otp)
    code = outbox.last_code(PHONE)
    assert otp.verify(challenge, code, account_id=1, purpose="login").outcome is OtpOutcome.OK
    assert otp.verify(challenge, code, account_id=1, purpose="login").outcome is OtpOutcome.EXPIRED


def test_two_simultaneous_right_answers_succeed_once(app: Any, outbox: Outbox) -> None:
    otp = service(app)
    challenge = send(otp)
    code = outbox.last_code(PHONE)
    outcomes: list[OtpOutcome] = []
    barrier = threading.Barrier(8)

    def answer() -> None:
        barrier.wait()
        outcomes.append(otp.verify(challenge, code, account_id=1, purpose="login").outcome)

    threads = [threading.Thread(target=answer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(OtpOutcome.OK) == 1


@pytest.mark.parametrize(
    ("account_id", "purpose"), [(2, "login"), (1, "reset")], ids=["another-account", "another-purpose"]
)
def test_a_code_is_bound_to_its_account_and_purpose(
    app: Any, outbox: Outbox, account_id: int, purpose: str
) -> None:
    otp = service(app)
    challenge = send(otp)
    code = outbox.last_code(PHONE)
    assert otp.verify(challenge, code, account_id=account_id, purpose=purpose).outcome is OtpOutcome.EXPIRED
    assert otp.verify(challenge, code, account_id=1, purpose="login").outcome is OtpOutcome.OK


# -- attempts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_attempts", [1, 3, 5])
def test_a_code_is_void_after_max_attempts_wrong_entries(app: Any, outbox: Outbox, max_attempts: int) -> None:
    otp = service(app, max_attempts=max_attempts)
    challenge = send(otp)
    code = outbox.last_code(PHONE)
    for left in range(max_attempts - 1, 0, -1):
        check = otp.verify(challenge, wrong(code), account_id=1, purpose="login")
        assert (check.outcome, check.attempts_left) == (OtpOutcome.WRONG, left)
    assert otp.verify(challenge, wrong(code), account_id=1, purpose="login").outcome is OtpOutcome.EXHAUSTED
    assert redis_keys(app, "otp:" + challenge) == []
    assert otp.verify(challenge, code, account_id=1, purpose="login").outcome is OtpOutcome.EXPIRED


def test_the_right_code_on_the_last_attempt_still_works(app: Any, outbox: Outbox) -> None:
    otp = service(app, max_attempts=5)
    challenge = send(otp)
    code = outbox.last_code(PHONE)
    for _ in range(4):
        otp.verify(challenge, wrong(code), account_id=1, purpose="login")
    assert otp.verify(challenge, code, account_id=1, purpose="login").outcome is OtpOutcome.OK


# -- resend and another phone ----------------------------------------------------------------------------
def test_a_resend_waits_for_the_cooldown_of_its_sign_in(app: Any, outbox: Outbox) -> None:
    otp = service(app, cooldown=2)
    send(otp)
    with pytest.raises(OtpSendRefused) as refused:
        send(otp)
    assert refused.value.reason == COOLDOWN and 1 <= refused.value.retry_after <= 2
    assert 1 <= otp.cooldown_left(1, "ix1") <= 2
    send(otp, scope="ix2")  # another sign-in of the same account is not held back
    time.sleep(2.2)
    assert otp.cooldown_left(1, "ix1") == 0
    send(otp)
    assert outbox.count(PHONE) == 3


def test_each_resend_is_a_new_code_that_the_earlier_one_does_not_open(app: Any, outbox: Outbox) -> None:
    otp = service(app, cooldown=1)
    first = send(otp)
    first_code = outbox.last_code(PHONE)
    time.sleep(1.1)
    second = send(otp, phone=OTHER_PHONE)  # "Chọn phương thức nhận OTP khác"
    second_code = outbox.last_code(OTHER_PHONE)
    assert second != first
    assert json.loads(app.extensions["idp"].store.get("otp:" + second))["phone"] == OTHER_PHONE
    if first_code != second_code:
        assert otp.verify(second, first_code, account_id=1, purpose="login").outcome is OtpOutcome.WRONG
    assert otp.verify(second, second_code, account_id=1, purpose="login").outcome is OtpOutcome.OK


def test_a_failed_gateway_call_leaves_no_challenge_and_no_cooldown(app: Any, outbox: Outbox) -> None:
    otp = service(app)

    class Down:
        def send(self, to: str, text: str) -> None:
            raise RuntimeError("gateway down")

    otp.sms = Down()  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        send(otp)
    assert redis_keys(app, "otp:*") == [] and otp.cooldown_left(1, "ix1") == 0


# -- caps --------------------------------------------------------------------------------------------------
CAP_CASES = [
    # (reason, policy, how each message differs, messages allowed)
    pytest.param(ACCOUNT_DAILY, {"daily_limit": 3}, "scope", 3, id="account-per-day"),
    pytest.param(PHONE_HOURLY, {"phone_hourly": 2}, "account", 2, id="phone-per-hour"),
    pytest.param(PHONE_DAILY, {"phone_daily": 3}, "account", 3, id="phone-per-day"),
    pytest.param(ADDRESS_HOURLY, {"address_hourly": 2}, "phone", 2, id="address-per-hour"),
    pytest.param(GLOBAL, {"global_per_minute": 4}, "address", 4, id="global-per-minute"),
]


def vary(kind: str, i: int) -> dict[str, Any]:
    """The i-th message: a new sign-in (scope) always, and one more thing different."""
    kw: dict[str, Any] = {"scope": f"ix{i}", "address": "203.0.113.7", "account_id": 1, "phone": PHONE}
    if kind == "account":
        kw["account_id"] = 100 + i
    elif kind == "phone":
        kw["account_id"], kw["phone"] = 100 + i, f"+849000000{i:02d}"
    elif kind == "address":
        kw["account_id"], kw["phone"] = 100 + i, f"+849000000{i:02d}"
        kw["address"] = f"198.51.100.{i}"
    return kw


@pytest.mark.parametrize(("reason", "policy", "kind", "allowed"), CAP_CASES)
def test_each_cap_refuses_and_sends_nothing(
    app: Any, outbox: Outbox, reason: str, policy: dict[str, int], kind: str, allowed: int
) -> None:
    generous = {"daily_limit": 100, "phone_hourly": 100, "phone_daily": 100, "address_hourly": 100}
    otp = service(app, cooldown=60, **{**generous, "global_per_minute": 100, **policy})
    for i in range(allowed):
        send(otp, **vary(kind, i))
    assert outbox.count() == allowed
    with pytest.raises(OtpSendRefused) as refused:
        send(otp, **vary(kind, allowed))
    assert refused.value.reason == reason and refused.value.retry_after >= 1
    assert outbox.count() == allowed  # nothing sent
    # The refusal left no cooldown behind and counted nothing (asking again is refused the same way).
    assert otp.cooldown_left(vary(kind, allowed)["account_id"], f"ix{allowed}") == 0
    with pytest.raises(OtpSendRefused):
        send(otp, **vary(kind, allowed))


def test_a_refusal_counts_against_no_other_cap(app: Any, outbox: Outbox) -> None:
    """Refused by the first phone's cap, the account may still use its other phone all day."""
    otp = service(app, cooldown=1, daily_limit=2, phone_hourly=1)
    send(otp, scope="a")
    for scope in ("b", "c", "d"):
        with pytest.raises(OtpSendRefused) as refused:
            send(otp, scope=scope)
        assert refused.value.reason == PHONE_HOURLY
    send(otp, scope="e", phone=OTHER_PHONE)  # the account's daily count is 1 of 2, not 4
    assert otp.sent_today(1) == 2


def test_caps_hold_under_concurrency(app: Any, outbox: Outbox) -> None:
    otp = service(app, phone_hourly=3, daily_limit=100)
    results: list[str] = []
    barrier = threading.Barrier(12)

    def one(i: int) -> None:
        barrier.wait()
        try:
            send(otp, account_id=200 + i, scope=f"s{i}")
            results.append("sent")
        except OtpSendRefused as refused:
            results.append(refused.reason)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("sent") == 3 and outbox.count(PHONE) == 3


def test_counter_keys_carry_no_phone_number_or_address(app: Any, outbox: Outbox) -> None:
    otp = service(app)
    send(otp, address="203.0.113.7")
    keys = " ".join(redis_keys(app, "otp*"))
    assert "912345678" not in keys and "203.0.113.7" not in keys
    assert "otp_ph:" in keys and "otp_ip:" in keys and "otp_all:" in keys


def test_the_address_defaults_to_the_requests_remote_addr(app: Any, outbox: Outbox) -> None:
    otp = service(app, address_hourly=1)
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "198.51.100.9"}):
        send(otp, account_id=1, scope="a")
    with pytest.raises(OtpSendRefused) as refused:
        send(otp, account_id=2, phone=OTHER_PHONE, scope="b", address="198.51.100.9")
    assert refused.value.reason == ADDRESS_HOURLY
    send(otp, account_id=3, phone="+84987654321", scope="c", address="198.51.100.10")


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (dt.datetime(2026, 3, 1, 23, 59, 0, tzinfo=VIETNAM), 60),
        (dt.datetime(2026, 3, 1, 0, 0, 0, tzinfo=VIETNAM), 86400),
        (dt.datetime(2026, 3, 1, 16, 59, 30, tzinfo=dt.UTC), 30),  # 23:59:30 in Vietnam
        (dt.datetime(2026, 3, 1, 17, 0, 0, tzinfo=dt.UTC), 86400),  # midnight in Vietnam
    ],
)
def test_a_day_is_a_vietnam_day(now: dt.datetime, seconds: int) -> None:
    assert seconds_to_midnight(now) == seconds


# -- the store primitive both stores share ------------------------------------------------------------
@pytest.fixture(params=["redis", "memory"])
def any_store(request: pytest.FixtureRequest, app: Any) -> Any:
    from idp.store.ephemeral import MemoryStore

    return app.extensions["idp"].store if request.param == "redis" else MemoryStore()


@pytest.mark.parametrize(
    ("limits", "rounds", "refused_at"),
    [
        ([3], 3, None),
        ([3], 4, (0, 4)),
        ([5, 2], 3, (1, 3)),  # the second counter fills first
        ([2, 5], 3, (0, 3)),
        ([1, 1, 1], 2, (0, 2)),
    ],
)
def test_take_quota_counts_all_or_nothing(
    any_store: Any, limits: list[int], rounds: int, refused_at: tuple[int, int] | None
) -> None:
    counters = [(f"q:{i}", limit, 60) for i, limit in enumerate(limits)]
    results = [any_store.take_quota(counters) for _ in range(rounds)]
    if refused_at is None:
        assert all(index == -1 for index, _ in results)
    else:
        index, round_ = refused_at
        assert [r[0] for r in results[: round_ - 1]] == [-1] * (round_ - 1)
        assert results[round_ - 1][0] == index and 0 < results[round_ - 1][1] <= 60
        # Nothing was counted by the refusal: every counter stands where the last success left it.
        assert [int(any_store.get(key) or 0) for key, _, _ in counters] == [round_ - 1] * len(limits)
