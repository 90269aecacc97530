"""Authenticator apps and recovery codes: the ±1 step window, single use of a step, secrets encrypted
at rest and never logged, enrolment confirmed by a first code (in the sign-in flow and on the
account area's page), recovery codes shown once, stored hashed and consumed once."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from idp.identity.totp import (
    RECOVERY_CODES,
    SecondFactorKeys,
    TotpOutcome,
    confirm_totp,
    matching_step,
    new_secret,
    recovery_codes_left,
    use_recovery_code,
    verify_totp,
)
from tests.support.account import follow
from tests.support.driver import Browser, csrf_of
from tests.support.org import LAN, MINH, OrgDoor, totp_code
from tests.support.outbox import Outbox

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_800_000_015.0  # 15 s into a step
CODES = re.compile(r"<code>([23456789A-HJ-NP-Z]{5}-[23456789A-HJ-NP-Z]{5})</code>")


def code_at(secret: str, step_offset: int) -> str:
    return pyotp.TOTP(secret).generate_otp(int(NOW) // 30 + step_offset)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False)],
)
def test_window_is_one_step_either_side(offset: int, accepted: bool) -> None:
    step = matching_step(SECRET, code_at(SECRET, offset), NOW)
    assert (step == int(NOW) // 30 + offset) if accepted else step is None


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 34 5"])
def test_malformed_codes_never_match(typed: str) -> None:
    assert matching_step(SECRET, typed, NOW) is None


def test_code_with_a_space_in_the_middle_matches() -> None:
    code = code_at(SECRET, 0)
    assert matching_step(SECRET, code[:3] + " " + code[3:], NOW) == int(NOW) // 30


def test_secret_box_is_bound_to_the_secret_key() -> None:
    keys = SecondFactorKeys("one secret key")
    token = keys.encrypt(SECRET)
    assert SECRET not in token
    assert keys.decrypt(token) == SECRET
    assert SecondFactorKeys("another secret key").decrypt(token) is None
    # Recovery-code hashes are keyed too, with a key of their own.
    assert keys.code_hash("GR4VK-NRD8X") == keys.code_hash("gr4vknrd8x")
    assert keys.code_hash("GR4VK-NRD8X") != SecondFactorKeys("another secret key").code_hash("GR4VK-NRD8X")


def _account_id(username: str) -> int:
    from idp.store.models import Account, db

    return db.session.execute(select(Account.id).where(Account.username == username)).scalar_one()


def _keys(app: Any) -> SecondFactorKeys:
    return SecondFactorKeys(app.config["SECRET_KEY"])


def test_sandbox_secret_is_stored_encrypted(app: Any) -> None:
    from idp.store.models import RecoveryCode, TotpCredential, db

    with app.app_context():
        account_id = _account_id(MINH.username)
        stored = db.session.get(TotpCredential, account_id)
        assert stored is not None and MINH.totp_secret not in stored.secret_encrypted
        assert _keys(app).decrypt(stored.secret_encrypted) == MINH.totp_secret
        hashes = db.session.execute(select(RecoveryCode.code_hash)).scalars().all()
        assert hashes and not any(
            c.replace("-", "") in h.upper() for h in hashes for c in MINH.recovery_codes
        )


def test_confirmation_needs_a_valid_first_code_and_uses_its_step(app: Any) -> None:
    from idp.store.models import TotpCredential, db

    with app.app_context():
        account_id, keys, secret = _account_id(LAN.username), _keys(app), new_secret()
        wrong = f"{(int(code_at(secret, 0)) + 1) % 1_000_000:06d}"
        assert confirm_totp(account_id, secret, wrong, keys, actor="test", now=NOW) is None
        assert db.session.get(TotpCredential, account_id) is None  # not active before a right code
        enrolment = confirm_totp(account_id, secret, code_at(secret, 0), keys, actor="test", now=NOW)
        assert enrolment is not None
        assert len(enrolment.recovery_codes) == len(set(enrolment.recovery_codes)) == RECOVERY_CODES
        assert recovery_codes_left(account_id) == RECOVERY_CODES
        # The confirming code cannot also sign in; the next step's can, once.
        assert verify_totp(account_id, code_at(secret, 0), keys, now=NOW) is TotpOutcome.REPLAYED
        assert verify_totp(account_id, code_at(secret, 1), keys, now=NOW) is TotpOutcome.OK
        assert verify_totp(account_id, code_at(secret, 1), keys, now=NOW) is TotpOutcome.REPLAYED


def test_re_enrolment_replaces_secret_and_recovery_codes(app: Any) -> None:
    with app.app_context():
        account_id, keys, secret = _account_id(MINH.username), _keys(app), new_secret()
        enrolment = confirm_totp(account_id, secret, code_at(secret, 0), keys, actor="test", now=NOW)
        assert enrolment is not None
        assert verify_totp(account_id, code_at(MINH.totp_secret or "", 1), keys, now=NOW) is TotpOutcome.WRONG
        assert not use_recovery_code(account_id, MINH.recovery_codes[0], keys)
        assert use_recovery_code(account_id, enrolment.recovery_codes[0], keys)
        assert not use_recovery_code(account_id, enrolment.recovery_codes[0], keys)


def test_two_concurrent_uses_of_a_recovery_code_succeed_once(app: Any) -> None:
    with app.app_context():
        account_id = _account_id(MINH.username)
    keys, results, barrier = _keys(app), [], threading.Barrier(6)

    def attempt() -> None:
        with app.app_context():
            barrier.wait()
            results.append(use_recovery_code(account_id, MINH.recovery_codes[0], keys))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]


def test_two_concurrent_uses_of_a_totp_code_succeed_once(app: Any) -> None:
    with app.app_context():
        account_id = _account_id(MINH.username)
    keys, results, barrier = _keys(app), [], threading.Barrier(6)
    code = code_at(MINH.totp_secret or "", 0)

    def attempt() -> None:
        with app.app_context():
            barrier.wait()
            results.append(verify_totp(account_id, code, keys, now=NOW))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.value for r in results) == ["ok"] + ["replayed"] * 5


# -- enrolment in the sign-in flow ---------------------------------------------------------------------
def enrol_page(door: OrgDoor, outbox: Outbox) -> str:
    """LAN (SMS only) signs in, accepts the offer; returns the set-up page's HTML."""
    door.password(LAN.username, LAN.password)
    response = door.post(door.path("sms"), otp=outbox.last_code(LAN.phone))
    assert response.headers["Location"].endswith("/organization/authenticator")
    page = door.client.get(door.path("authenticator/setup"))
    assert page.status_code == 200
    return page.get_data(as_text=True)


def secret_on(page: str) -> str:
    match = re.search(r'data-secret="([A-Z2-7]+)"', page)
    assert match, page[:2000]
    return match.group(1)


def test_enrolment_after_an_sms_sign_in(
    app: Any, browser: Browser, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    door = OrgDoor(browser)
    page = enrol_page(door, outbox)
    secret = secret_on(page)
    assert re.search(r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+"', page)
    assert "sotn.lan" in page
    # The same secret while the person goes back and forth; not yet active.
    assert secret_on(door.client.get(door.path("authenticator/setup")).get_data(as_text=True)) == secret
    wrong = f"{(int(totp_code(secret)) + 1) % 1_000_000:06d}"
    response = door.post(door.path("authenticator/setup"), otp=wrong)
    assert response.status_code == 400 and "Mã chưa đúng" in response.get_data(as_text=True)
    response = door.post(door.path("authenticator/setup"), otp=totp_code(secret))
    assert response.status_code == 200
    codes = CODES.findall(response.get_data(as_text=True))
    assert len(codes) == RECOVERY_CODES
    # "I saved them, continue": back to the portal.
    response = door.client.post(
        door.path("continue"), data={"csrf_token": csrf_of(response.get_data(as_text=True))}
    )
    assert browser.follow(response).headers["Location"].startswith("https://portal.example.vn/callback?")
    # Next time LAN chooses between the phone and the app, and the app's code works.
    again = OrgDoor(Browser(app.test_client(), outbox))
    assert again.password(LAN.username, LAN.password).headers["Location"].endswith("/organization/method")
    again.post(again.path("method"), method="totp")
    response = again.post(again.path("app"), otp=totp_code(secret, 1))
    assert (
        again.browser.follow(response).headers["Location"].startswith("https://portal.example.vn/callback?")
    )
    # Never logged, never in the audit trail.
    with app.app_context():
        from idp.store.models import AuditEvent, db

        details = [str(e.detail) for e in db.session.execute(select(AuditEvent)).scalars()]
    for text in [r.getMessage() for r in caplog.records] + details:
        assert secret not in text
        assert not any(code in text for code in codes)


def test_skipping_the_offer_leaves_no_authenticator(app: Any, browser: Browser, outbox: Outbox) -> None:
    from idp.identity.totp import has_totp

    door = OrgDoor(browser)
    enrol_page(door, outbox)
    page = door.client.get(door.path("authenticator/setup")).get_data(as_text=True)
    response = door.client.post(door.path("continue"), data={"csrf_token": csrf_of(page)})
    assert browser.follow(response).headers["Location"].startswith("https://portal.example.vn/callback?")
    with app.app_context():
        assert not has_totp(_account_id(LAN.username))


# -- the account area's authenticator page -------------------------------------------------------------
def account_sign_in(browser: Browser, outbox: Outbox, path: str) -> Any:
    """Open an account page as LAN through the organization door (SMS, then skip the offer)."""
    page = follow(browser, browser.client.get(path))
    assert page.request.path.startswith("/login/"), page.request.path
    door = OrgDoor(browser)
    door.login = "/login/" + page.request.path.split("/")[2]
    response = door.post(door.login + "/organization", username=LAN.username, password=LAN.password)
    response = door.post(door.path("sms"), otp=outbox.last_code(LAN.phone))
    offer = door.client.get(door.path("authenticator")).get_data(as_text=True)
    response = door.client.post(door.path("continue"), data={"csrf_token": csrf_of(offer)})
    return follow(browser, response)


def test_account_area_sets_up_an_authenticator_and_new_recovery_codes(
    app: Any, browser: Browser, outbox: Outbox
) -> None:
    page = account_sign_in(browser, outbox, "/account/authenticator")
    assert page.status_code == 200 and page.request.path == "/account/authenticator"
    text = page.get_data(as_text=True)
    assert "Chưa thiết lập" in text and LAN.username in text
    setup = browser.client.get("/account/authenticator/setup")
    secret = secret_on(setup.get_data(as_text=True))
    response = browser.client.post(
        "/account/authenticator/setup",
        data={"csrf_token": csrf_of(setup.get_data(as_text=True)), "otp": totp_code(secret)},
    )
    assert response.status_code == 200
    first = CODES.findall(response.get_data(as_text=True))
    assert len(first) == RECOVERY_CODES
    status = browser.client.get("/account/authenticator").get_data(as_text=True)
    assert "Đang bật" in status and '<dd id="codes-left">10</dd>' in status
    response = browser.client.post(
        "/account/authenticator/recovery-codes", data={"csrf_token": csrf_of(status)}
    )
    second = CODES.findall(response.get_data(as_text=True))
    assert len(second) == RECOVERY_CODES and not set(first) & set(second)
    with app.app_context():
        keys, account_id = _keys(app), _account_id(LAN.username)
        assert not use_recovery_code(account_id, first[0], keys)  # the old set stopped working
        assert use_recovery_code(account_id, second[0], keys)


def test_account_area_page_is_for_staff_only(browser: Browser) -> None:
    from tests.support.account import open_account
    from tests.support.people import AN

    assert open_account(browser, AN).status_code == 200
    assert browser.client.get("/account/authenticator").status_code == 404


def test_setting_up_needs_a_recent_sign_in(make_app: Any, outbox: Outbox) -> None:
    app = make_app(ACCOUNT_RECENT_SIGNIN=1)
    browser = Browser(app.test_client(), outbox)
    assert account_sign_in(browser, outbox, "/account/authenticator").status_code == 200
    time.sleep(1.5)
    response = browser.client.get("/account/authenticator/setup")
    assert response.status_code in (302, 303)
    assert "/authorize?" in response.headers["Location"] and "max_age=1" in response.headers["Location"]


def test_secret_encrypted_under_another_secret_key_fails_closed(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="idp.totp")
    with app.app_context():
        account_id = _account_id(MINH.username)
        outcome = verify_totp(
            account_id, code_at(MINH.totp_secret or "", 0), SecondFactorKeys("rotated"), now=NOW
        )
    assert outcome is TotpOutcome.WRONG
    assert "cannot be decrypted" in caplog.text and (MINH.totp_secret or "") not in caplog.text
