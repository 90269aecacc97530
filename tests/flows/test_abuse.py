"""Abuse resistance (issue 3, item 5), flow by flow: separate failure counters for passwords and
OTPs per name and per client address, incremental and temporary lockout that a stranger cannot
make last, OTP caps against SMS pumping, and answers that never tell whether an account exists.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from idp.sessions.throttle import ADDRESS_FACTOR, LockoutPolicy, Throttle
from tests.flows.test_otp_page import sign_in_again, sign_in_remembering, skipped_the_otp
from tests.flows.test_signin_citizen import (
    GENERIC,
    LOCKED_OUT,
    alert,
    allow_next_otp,
    browser_for,
    citizen_page,
    otp_page,
    post_otp,
    post_password,
    resend,
    wrong,
)
from tests.support.driver import Browser
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH, CUC, SandboxPerson

WRONG_PASSWORD = "Wrong@2026x"


def throttle(
    app: Any, factor: str = "pwd", max_failures: int = 3, base: int = 60, top: int = 3600
) -> Throttle:
    return Throttle(app.extensions["idp"].store, factor, LockoutPolicy(max_failures, base, top))


def from_address(browser: Browser, address: str, forwarded: str | None = None) -> Browser:
    """Make every later request of this browser come from `address` (and carry X-Forwarded-For)."""
    browser.client.environ_base["REMOTE_ADDR"] = address
    if forwarded is not None:
        browser.client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
    return browser


def fail_password(browser: Browser, username: str, times: int) -> Any:
    path = citizen_page(browser, prompt="login")
    response = None
    for _ in range(times):
        response = post_password(browser, path, username, WRONG_PASSWORD)
    return response


# -- the counters ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("subject", "max_failures", "failures", "locked"),
    [
        ("name", 3, 2, False),
        ("name", 3, 3, True),
        ("name", 1, 1, True),
        ("address", 3, 3, False),  # an address is shared behind a carrier NAT: more room
        ("address", 3, 3 * ADDRESS_FACTOR - 1, False),
        ("address", 3, 3 * ADDRESS_FACTOR, True),
    ],
)
def test_failures_lock_a_name_or_an_address_at_its_limit(
    app: Any, subject: str, max_failures: int, failures: int, locked: bool
) -> None:
    counter = throttle(app, max_failures=max_failures)
    for i in range(failures):
        # Every failure with another name (address case) or from another address (name case).
        if subject == "name":
            counter.failure(name="046090001234", address=f"198.51.100.{i}")
        else:
            counter.failure(name=f"0460900{i:05d}", address="203.0.113.7")
    key = {"name": "046090001234"} if subject == "name" else {"address": "203.0.113.7"}
    assert (counter.locked_for(**key) > 0) is locked


@pytest.mark.parametrize(
    ("base", "top", "lock_number", "seconds"),
    [
        (60, 3600, 1, 60),
        (60, 3600, 2, 120),
        (60, 3600, 3, 240),
        (60, 3600, 6, 1920),
        (60, 3600, 7, 3600),
        (60, 3600, 12, 3600),
        (5, 8, 3, 8),
    ],
)
def test_each_lockout_of_the_day_lasts_longer_up_to_the_longest(
    app: Any, base: int, top: int, lock_number: int, seconds: int
) -> None:
    counter = throttle(app, max_failures=2, base=base, top=top)
    started = 0
    for _ in range(lock_number):
        counter.failure(name="x")
        started = counter.failure(name="x")
    assert started == seconds
    assert 0 < counter.locked_for(name="x") <= min(seconds, top)


@pytest.mark.parametrize(
    ("failed", "locked", "open_"),
    [("pwd", "pwd", "otp"), ("otp", "otp", "pwd")],
)
def test_password_and_otp_failures_are_counted_apart(app: Any, failed: str, locked: str, open_: str) -> None:
    counters = {"pwd": app.extensions["idp"].password_throttle, "otp": app.extensions["idp"].otp_throttle}
    limit = app.config["PASSWORD_MAX_FAILURES"] if failed == "pwd" else app.config["OTP_MAX_VOIDED"]
    for _ in range(limit):
        counters[failed].failure(name="1", address="203.0.113.7")
    assert counters[locked].locked_for(name="1") > 0
    assert counters[open_].locked_for(name="1", address="203.0.113.7") == 0


def test_a_success_clears_the_names_failures_but_not_the_addresss(app: Any) -> None:
    counter = throttle(app, max_failures=3)
    for _ in range(2):
        counter.failure(name="a", address="203.0.113.7")
    counter.success(name="a")
    counter.failure(name="a", address="203.0.113.7")
    assert counter.locked_for(name="a") == 0  # 1 failure since the success, not 3
    for _ in range(3 * ADDRESS_FACTOR - 3):
        counter.failure(name=None, address="203.0.113.7")
    assert counter.locked_for(address="203.0.113.7") > 0


# -- client address ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trusted_proxies", "forwarded", "counted", "not_counted"),
    [
        pytest.param(0, "198.51.100.7", "10.0.0.5", "198.51.100.7", id="no-proxy-header-ignored"),
        pytest.param(1, "198.51.100.7", "198.51.100.7", "10.0.0.5", id="one-proxy"),
        pytest.param(1, "6.6.6.6, 198.51.100.7", "198.51.100.7", "6.6.6.6", id="one-proxy-spoofed-first"),
        pytest.param(2, "198.51.100.7, 10.0.0.9", "198.51.100.7", "10.0.0.9", id="two-proxies"),
    ],
)
def test_counters_use_the_address_proxyfix_trusts(
    make_app: Any, outbox: Outbox, trusted_proxies: int, forwarded: str, counted: str, not_counted: str
) -> None:
    app = make_app(TRUSTED_PROXIES=trusted_proxies, PASSWORD_MAX_FAILURES=1, OTP_ADDRESS_HOURLY_LIMIT=1)
    # The OTP cap per address counts the trusted address: a second sign-in that differs only in
    # what is not trusted (the header without a proxy, the peer behind one) is refused.
    otp_page(from_address(browser_for(app, outbox), "10.0.0.5", forwarded))
    if trusted_proxies:
        other = from_address(browser_for(app, outbox), "10.0.0.6", forwarded)
    else:
        other = from_address(browser_for(app, outbox), "10.0.0.5", "192.0.2.99")
    response = post_password(other, citizen_page(other), BINH.username, BINH.password)
    assert response.status_code == 429
    assert alert(response).startswith("Có quá nhiều yêu cầu gửi mã OTP từ mạng bạn đang dùng.")
    # ... and so do the failure counters.
    browser = from_address(browser_for(app, outbox), "10.0.0.5", forwarded)
    path = citizen_page(browser)
    for i in range(ADDRESS_FACTOR):  # other names each time: only the address adds up
        post_password(browser, path, f"0460900{i:05d}", WRONG_PASSWORD)
    counter = app.extensions["idp"].password_throttle
    assert counter.locked_for(address=counted) > 0
    assert counter.locked_for(address=not_counted) == 0


def test_an_address_lock_holds_every_name_from_it_and_no_other_address(make_app: Any, outbox: Outbox) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=1, TRUSTED_PROXIES=1)
    attacker = from_address(browser_for(app, outbox), "10.0.0.1", "203.0.113.66")
    path = citizen_page(attacker)
    for i in range(ADDRESS_FACTOR):
        response = post_password(attacker, path, f"0460900{i:05d}", WRONG_PASSWORD)
    response = post_password(attacker, path, AN.username, AN.password)
    assert response.status_code == 429 and alert(response).startswith(LOCKED_OUT)
    elsewhere = from_address(browser_for(app, outbox), "10.0.0.1", "198.51.100.20")
    assert otp_page(elsewhere, AN).endswith("/otp")


# -- no lockout a stranger can make last ---------------------------------------------------------------
def test_a_stranger_locking_the_name_does_not_keep_the_owner_out_of_a_remembered_browser(
    make_app: Any, outbox: Outbox
) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=3, TRUSTED_PROXIES=1)
    owner = from_address(browser_for(app, outbox), "10.0.0.1", "198.51.100.1")
    sign_in_remembering(owner, AN)
    stranger = from_address(browser_for(app, outbox), "10.0.0.1", "203.0.113.66")
    response = fail_password(stranger, AN.username, 3)
    assert alert(response).startswith(LOCKED_OUT)
    # Anyone else, even with the right password, waits for the lock to end ...
    other = from_address(browser_for(app, outbox), "10.0.0.1", "198.51.100.2")
    response = post_password(other, citizen_page(other), AN.username, AN.password)
    assert response.status_code == 429 and alert(response).startswith(LOCKED_OUT)
    # ... but the owner's remembered browser has a counter of its own and signs in.
    response, _ = sign_in_again(owner, AN)
    assert skipped_the_otp(response)
    # Its own failures lock that browser only (and never the name for everybody else).
    response = fail_password(owner, AN.username, 3)
    assert alert(response).startswith(LOCKED_OUT)
    response, _ = sign_in_again(owner, AN)
    assert response.status_code == 429


def test_without_a_remembered_browser_the_name_lock_applies_to_the_owner_too(
    make_app: Any, outbox: Outbox
) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=3, TRUSTED_PROXIES=1)
    stranger = from_address(browser_for(app, outbox), "10.0.0.1", "203.0.113.66")
    fail_password(stranger, AN.username, 3)
    owner = from_address(browser_for(app, outbox), "10.0.0.1", "198.51.100.1")
    response = post_password(owner, citizen_page(owner), AN.username, AN.password)
    assert response.status_code == 429 and outbox.count() == 0


@pytest.mark.parametrize("username", [AN.username, "046090009999"], ids=["existing", "unknown"])
def test_lockout_answers_are_the_same_for_existing_and_unknown_names(
    make_app: Any, outbox: Outbox, username: str
) -> None:
    app = make_app(PASSWORD_MAX_FAILURES=2)
    browser = browser_for(app, outbox)
    path = citizen_page(browser)
    first = post_password(browser, path, username, WRONG_PASSWORD)
    second = post_password(browser, path, username, WRONG_PASSWORD)
    third = post_password(browser, path, username, AN.password)
    assert (first.status_code, alert(first)) == (401, GENERIC)
    assert (second.status_code, alert(second)) == (
        401,
        "Bạn đã nhập sai quá nhiều lần. Vui lòng thử lại sau 1 phút.",
    )
    assert (third.status_code, alert(third)) == (
        429,
        "Bạn đã nhập sai quá nhiều lần. Vui lòng thử lại sau 1 phút.",
    )


# -- OTP lockout: no new code while it lasts ---------------------------------------------------------------
def lock_otp_entry(app: Any, browser: Browser, path: str) -> None:
    for round_ in range(app.config["OTP_MAX_VOIDED"]):
        if round_:
            allow_next_otp(app)
            assert resend(browser, path).status_code == 302
        code = browser.outbox.last_code(AN.phone)
        for _ in range(app.config["OTP_MAX_ATTEMPTS"]):
            response = post_otp(browser, path, wrong(code))
    assert alert(response).startswith(LOCKED_OUT)


@pytest.mark.parametrize("how", ["resend", "sign-in-again"])
def test_no_code_is_sent_while_the_otp_entry_is_locked(make_app: Any, outbox: Outbox, how: str) -> None:
    app = make_app(OTP_MAX_VOIDED=2)
    browser = browser_for(app, outbox)
    path = otp_page(browser)
    lock_otp_entry(app, browser, path)
    sent = outbox.count()
    allow_next_otp(app)
    if how == "resend":
        response = resend(browser, path)
    else:
        again = browser_for(app, outbox)
        response = post_password(again, citizen_page(again), AN.username, AN.password)
    assert response.status_code == 429 and alert(response).startswith(LOCKED_OUT)
    assert outbox.count() == sent


def test_the_otp_lockout_ends_by_itself(make_app: Any, outbox: Outbox) -> None:
    import time

    app = make_app(OTP_MAX_VOIDED=1, LOCKOUT_BASE_SECONDS=1, LOCKOUT_MAX_SECONDS=2, OTP_RESEND_COOLDOWN=1)
    browser = browser_for(app, outbox)
    path = otp_page(browser)
    lock_otp_entry(app, browser, path)
    time.sleep(1.2)
    assert resend(browser, path).status_code == 302
    response = post_otp(browser, path, outbox.last_code(AN.phone))
    assert response.status_code == 302


# -- SMS-pumping caps through the sign-in -----------------------------------------------------------------
CAP_MESSAGES = [
    pytest.param(
        {"OTP_DAILY_LIMIT": 1},
        AN,
        "same",
        "Tài khoản đã nhận quá số mã OTP cho phép trong ngày.",
        id="account-day",
    ),
    pytest.param(
        {"OTP_PHONE_HOURLY_LIMIT": 1},
        AN,
        "same",
        "Số điện thoại này đã nhận quá nhiều mã OTP trong một giờ. Vui lòng thử lại sau 60 phút.",
        id="phone-hour",
    ),
    pytest.param(
        {"OTP_PHONE_DAILY_LIMIT": 1},
        AN,
        "same",
        "Số điện thoại này đã nhận quá số mã OTP cho phép trong ngày.",
        id="phone-day",
    ),
    pytest.param(
        {"OTP_ADDRESS_HOURLY_LIMIT": 1},
        BINH,
        "same",
        "Có quá nhiều yêu cầu gửi mã OTP từ mạng bạn đang dùng. Vui lòng thử lại sau 60 phút.",
        id="address-hour",
    ),
    pytest.param(
        {"OTP_GLOBAL_PER_MINUTE": 1},
        BINH,
        "other",
        "Hệ thống đang gửi quá nhiều tin nhắn. Vui lòng thử lại sau",
        id="global-minute",
    ),
]


@pytest.mark.parametrize(("settings", "second", "address", "message"), CAP_MESSAGES)
def test_each_cap_refuses_with_a_clear_message_and_sends_nothing(
    make_app: Any, outbox: Outbox, settings: dict[str, int], second: SandboxPerson, address: str, message: str
) -> None:
    app = make_app(TRUSTED_PROXIES=1, **settings)
    otp_page(from_address(browser_for(app, outbox), "10.0.0.1", "198.51.100.1"))
    other = from_address(
        browser_for(app, outbox), "10.0.0.1", "198.51.100.1" if address == "same" else "198.51.100.2"
    )
    response = post_password(other, citizen_page(other), second.username, second.password)
    assert response.status_code == 429
    assert alert(response).startswith(message)
    assert outbox.count() == 1
    # Nothing in the answer about who the account belongs to.
    text = alert(response)
    assert second.name not in text and not re.search(r"\d{9}", text)


def test_the_phone_cap_counts_one_phone_across_accounts(make_app: Any, outbox: Outbox) -> None:
    """0912345678 receives codes for An and for Cúc: both count against that phone's cap."""
    app = make_app(OTP_PHONE_HOURLY_LIMIT=1)
    otp_page(browser_for(app, outbox), AN)
    cuc = browser_for(app, outbox)
    path = otp_page(cuc, CUC)  # to Cúc's primary phone: not capped
    page = cuc.client.get(path).get_data(as_text=True)
    value = re.search(r'name="phone" id="phone-\d+" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    allow_next_otp(app)
    response = cuc.client.post(
        path + "/phone",
        data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1), "phone": value},
    )  # type: ignore[union-attr]
    assert response.status_code == 429
    assert alert(response).startswith("Số điện thoại này đã nhận quá nhiều mã OTP trong một giờ.")
    assert outbox.count(AN.phone) == 1


# -- concurrent attempts: the limit bounds the password checks, not only the lockout ---------------------
@pytest.mark.parametrize("door", ["citizen", "organization"])
def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(
    make_app: Any, outbox: Outbox, door: str
) -> None:
    """Twenty wrong passwords for one name at once: at most PASSWORD_MAX_FAILURES of them reach
    the (slow) password check; the others are refused at once with the lockout message, and the
    name is locked afterwards. A real argon2 cost makes the checks overlap."""
    import threading

    from tests.support.driver import csrf_of
    from tests.support.org import LAN

    app = make_app(ARGON2_MEMORY_KIB=19456, ARGON2_TIME_COST=2, PASSWORD_MAX_FAILURES=5)
    hashing = app.extensions["idp"].hashing
    checks = []
    real_verify = hashing.verify

    def counted_verify(stored: Any, password: str) -> bool:
        checks.append(password)
        return real_verify(stored, password)

    hashing.verify = counted_verify  # counts the calls; the real check still runs
    username = AN.username if door == "citizen" else LAN.username
    prepared = []
    for i in range(20):
        browser = from_address(Browser(app.test_client(), outbox), f"198.51.100.{i + 1}")
        response, _ = browser.start()
        login = urlsplit_path(response.headers["Location"])
        path = f"{login}/{door}"
        token = csrf_of(browser.client.get(path).get_data(as_text=True))
        prepared.append((browser, path, token))
    start = threading.Barrier(len(prepared))
    statuses: list[int] = []

    def attempt(browser: Browser, path: str, token: str) -> None:
        start.wait()
        response = browser.client.post(
            path, data={"csrf_token": token, "username": username, "password": WRONG_PASSWORD}
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=p) for p in prepared]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == 20, statuses
    assert len(checks) <= 5, f"{len(checks)} password checks for a limit of 5"
    assert statuses.count(401) == len(checks) and statuses.count(429) == 20 - len(checks), statuses
    # The name is locked now, for the owner's right password too.
    owner = from_address(Browser(app.test_client(), outbox), "203.0.113.99")
    response, _ = owner.start()
    path = f"{urlsplit_path(response.headers['Location'])}/{door}"
    right = AN.password if door == "citizen" else LAN.password
    assert post_password(owner, path, username, right).status_code == 429


def urlsplit_path(location: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(location).path


def test_attempts_under_way_never_count_as_failures(app: Any) -> None:
    """Three wrong passwords, then the owner's right one and a stranger's wrong one at the same
    time (limit 5): the stranger's failure is the fourth, not a lockout, and the owner's success
    clears the name. Nineteen sign-ins under way from a carrier's address and one typo do not
    lock the address for everyone behind it."""
    counter = throttle(app, max_failures=5)
    for _ in range(3):
        with counter.attempt(name="a", address="203.0.113.7") as attempt:
            assert attempt.wait == 0
            attempt.failed()
    owner = counter.attempt(name="a", address="203.0.113.8")
    stranger = counter.attempt(name="a", address="198.51.100.9")
    assert owner.wait == 0 and stranger.wait == 0
    assert stranger.failed() == 0, "a lockout started before five failures"
    owner.succeeded()
    assert counter.locked_for(name="a") == 0
    with counter.attempt(name="a") as attempt:  # the failures were cleared by the owner's success
        assert attempt.wait == 0
        attempt.failed()
    assert counter.locked_for(name="a") == 0

    under_way = [counter.attempt(name=f"person-{i}", address="203.0.113.50") for i in range(19)]
    assert all(a.wait == 0 for a in under_way)
    with counter.attempt(name="typo", address="203.0.113.50") as typo:
        assert typo.wait == 0
        assert typo.failed() == 0
    for a in under_way:
        a.succeeded()
    assert counter.locked_for(address="203.0.113.50") == 0
