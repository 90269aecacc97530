"""The captcha (idp.web.captcha): generated locally (image, spoken alternative), stored hashed
and sealed with a lifetime, bound to the browser, single use, case- and space-insensitive; always
on the forgotten-password page, on the citizen sign-in once the risk is high; switched off by
IDP_CAPTCHA_ENABLED=false (the rest of the suite runs that way)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from idp.web.captcha import CaptchaService, normalize
from tests.support.driver import Browser, csrf_of
from tests.support.outbox import Outbox
from tests.support.passwords import alert, captcha_id, start_reset, stored_answer, text_of, wait_for_sms
from tests.support.people import AN


@pytest.fixture
def on(make_app: Any) -> Any:
    return make_app(CAPTCHA_ENABLED=True)


@pytest.fixture
def service(on: Any) -> CaptchaService:
    with on.test_request_context():
        from idp.web.captcha import service as current

        return current()


def test_answer_is_stored_hashed_and_sealed_never_in_clear(service: CaptchaService) -> None:
    challenge = service.create("browser-1")
    raw = service.store.get("captcha:" + challenge.id)
    answer = stored_answer(service, challenge.id)
    assert len(answer) == 5 and answer.isdigit()
    assert answer not in raw
    record = json.loads(raw)
    assert set(record) == {"browser", "mac", "sealed", "expires_at"}
    assert 0 < service.store.ttl("captcha:" + challenge.id) <= 300


@pytest.mark.parametrize(
    ("typed", "ok"),
    [
        (lambda a: a, True),
        (lambda a: f" {a[:2]} {a[2:]} ", True),  # spaces do not matter
        (lambda a: a.translate(str.maketrans("0123456789", "０１２３４５６７８９")), True),  # full-width
        (lambda a: a[:-1], False),
        (lambda a: "", False),
        (lambda a: a + "0", False),
    ],
    ids=["exact", "spaces", "full-width", "short", "empty", "long"],
)
def test_answers(service: CaptchaService, typed: Any, ok: bool) -> None:
    challenge = service.create("browser-1")
    assert service.verify(challenge.id, typed(stored_answer(service, challenge.id)), "browser-1") is ok


def test_case_does_not_matter() -> None:
    assert normalize("ab c1") == normalize("ABC1") == "ABC1"


def test_single_use_even_when_wrong(service: CaptchaService) -> None:
    challenge = service.create("browser-1")
    answer = stored_answer(service, challenge.id)
    assert service.verify(challenge.id, "wrong", "browser-1") is False
    assert service.verify(challenge.id, answer, "browser-1") is False  # used up by the wrong try
    again = service.create("browser-1")
    answer = stored_answer(service, again.id)
    assert service.verify(again.id, answer, "browser-1") is True
    assert service.verify(again.id, answer, "browser-1") is False  # reused


def test_bound_to_the_browser(service: CaptchaService) -> None:
    challenge = service.create("browser-1")
    answer = stored_answer(service, challenge.id)
    assert service.image(challenge.id, "browser-2") is None
    assert service.verify(challenge.id, answer, "browser-2") is False


def test_expired(make_app: Any) -> None:
    app = make_app(CAPTCHA_ENABLED=True, CAPTCHA_LIFETIME=1)
    with app.test_request_context():
        from idp.web.captcha import service as current

        service = current()
    challenge = service.create("browser-1")
    answer = stored_answer(service, challenge.id)
    time.sleep(1.2)
    assert service.verify(challenge.id, answer, "browser-1") is False


def test_image_and_audio_of_the_page(on: Any, outbox: Outbox) -> None:
    browser = Browser(on.test_client(), outbox)
    page = browser.client.get("/password/forgot")
    body = text_of(page)
    cid = captcha_id(page)
    assert cid
    assert 'name="captcha"' in body
    assert '<img class="captcha-image"' in body and 'alt="Hình mã xác thực gồm 5 chữ số' in body
    assert "<audio controls" in body and "Nghe đọc mã xác thực" in body
    assert "Đổi mã khác" in body
    image = browser.client.get(f"/captcha/{cid}/image")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data.startswith(b"\x89PNG") and image.headers["Cache-Control"] == "no-store"
    audio = browser.client.get(f"/captcha/{cid}/audio")
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    assert audio.data[:4] == b"RIFF" and len(audio.data) > 20_000
    # Another browser gets nothing; each challenge is drawn and spoken only so often.
    stranger = on.test_client()
    assert stranger.get(f"/captcha/{cid}/image").status_code == 404
    for _ in range(4):  # MAX_IMAGES = 5 in all
        assert browser.client.get(f"/captcha/{cid}/image").status_code == 200
    assert browser.client.get(f"/captcha/{cid}/image").status_code == 404
    assert browser.client.get(f"/captcha/{cid}/audio").status_code == 200
    assert browser.client.get(f"/captcha/{cid}/audio").status_code == 200
    assert browser.client.get(f"/captcha/{cid}/audio").status_code == 404


def forgot_with(browser: Browser, answer: str | None, username: str = AN.username) -> Any:
    page = browser.client.get("/password/forgot")
    cid = captcha_id(page)
    assert cid
    service = browser.client.application.extensions["idp_captcha"]
    data = {
        "csrf_token": csrf_of(text_of(page)),
        "username": username,
        "captcha_id": cid,
        "captcha": stored_answer(service, cid) if answer is None else answer,
    }
    return browser.client.post("/password/forgot", data=data)


def test_forgot_password_needs_the_captcha(on: Any, outbox: Outbox) -> None:
    browser = Browser(on.test_client(), outbox)
    wrong = forgot_with(browser, "00000x")
    assert wrong.status_code == 400
    assert "Mã xác thực không đúng hoặc đã hết hạn" in text_of(wrong)
    assert captcha_id(wrong)  # a new challenge comes with the page
    assert AN.username in text_of(wrong)  # what was typed stays
    time.sleep(0.2)
    assert outbox.count() == 0
    right = forgot_with(browser, None)
    assert right.status_code == 302
    assert urlsplit(right.headers["Location"]).path.endswith("/otp")
    wait_for_sms(outbox, AN.phone, 1)


def test_new_captcha_button_draws_another_and_keeps_the_number(on: Any, outbox: Outbox) -> None:
    browser = Browser(on.test_client(), outbox)
    page = browser.client.get("/password/forgot")
    first = captcha_id(page)
    response = browser.client.post(
        "/password/forgot",
        data={
            "csrf_token": csrf_of(text_of(page)),
            "username": AN.username,
            "new_captcha": "1",
            "captcha_id": first,
        },
    )
    assert response.status_code == 200
    assert captcha_id(response) not in (None, first)
    assert AN.username in text_of(response)


def test_switched_off(app: Any, outbox: Outbox) -> None:
    browser = Browser(app.test_client(), outbox)
    page = browser.client.get("/password/forgot")
    assert 'name="captcha"' not in text_of(page)
    assert browser.client.get("/captcha/anything/image").status_code == 404
    assert start_reset(browser, AN.username).status_code == 302


def citizen_path(browser: Browser) -> str:
    response, _ = browser.start()
    return urlsplit(response.headers["Location"]).path + "/citizen"


def post_login(browser: Browser, path: str, password: str, answer: str | None = "") -> Any:
    page = browser.client.get(path)
    data = {"csrf_token": csrf_of(text_of(page)), "username": AN.username, "password": password}
    cid = captcha_id(page)
    if cid and answer is not None:
        service = browser.client.application.extensions["idp_captcha"]
        data.update(captcha_id=cid, captcha=answer or stored_answer(service, cid))
    return browser.client.post(path, data=data)


def test_sign_in_asks_a_captcha_after_repeated_failures(on: Any, outbox: Outbox) -> None:
    browser = Browser(on.test_client(), outbox)
    path = citizen_path(browser)
    assert captcha_id(browser.client.get(path)) is None  # no risk yet, no captcha
    assert captcha_id(post_login(browser, path, "Wrong#Pass1")) is None
    second = post_login(browser, path, "Wrong#Pass2")
    assert second.status_code == 401
    assert captcha_id(second)  # CAPTCHA_AFTER_FAILURES = 2
    # The right password without the captcha's answer is not even checked.
    refused = post_login(browser, path, AN.password, answer="99999x")
    assert refused.status_code == 400
    assert "Mã xác thực không đúng" in alert(refused)
    assert outbox.count() == 0
    # With it, the sign-in goes on to the OTP.
    ok = post_login(browser, path, AN.password)
    assert ok.status_code == 302 and urlsplit(ok.headers["Location"]).path.endswith("/otp")
    # Another sign-in in a new browser for the same name: the risk is still counted for the name
    # ... and was cleared by the success.
    other = Browser(on.test_client(), outbox)
    assert captcha_id(other.client.get(citizen_path(other))) is None


def test_threshold_is_a_setting(make_app: Any, outbox: Outbox) -> None:
    app = make_app(CAPTCHA_ENABLED=True, CAPTCHA_AFTER_FAILURES=1)
    browser = Browser(app.test_client(), outbox)
    path = citizen_path(browser)
    assert captcha_id(post_login(browser, path, "Wrong#Pass1"))
