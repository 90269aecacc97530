"""Driving the password pages (forgot, change) and reading captchas, for the password tests."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from tests.support.driver import Browser, csrf_of
from tests.support.outbox import Outbox

ALERT = re.compile(r'<div class="alert" role="alert" id="form-error">(.*?)</div>', re.S)
FIELD_ERRORS = re.compile(r'<ul class="field-error" id="new-password-errors">(.*?)</ul>', re.S)
CAPTCHA_ID = re.compile(r'name="captcha_id" value="([^"]+)"')


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)  # type: ignore[no-any-return]


def alert(response: Any) -> str:
    match = ALERT.search(text_of(response))
    assert match, text_of(response)[:1500]
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def field_errors(response: Any) -> list[str]:
    match = FIELD_ERRORS.search(text_of(response))
    if not match:
        return []
    return [html.unescape(x).strip() for x in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def captcha_id(response: Any) -> str | None:
    match = CAPTCHA_ID.search(text_of(response))
    return match.group(1) if match else None


def stored_answer(service: Any, cid: str) -> str:
    """The answer of a stored challenge, read the way only a test may: from the store itself."""
    raw = service.store.get("captcha:" + cid)
    assert raw is not None, "no such challenge in the store"
    return service._text(cid, json.loads(raw))  # type: ignore[no-any-return]


def wait_for_sms(outbox: Outbox, phone: str, count: int, timeout: float = 5.0) -> str:
    """The last code sent to `phone` once it has received `count` messages (reset SMS leave
    from a background worker)."""
    deadline = time.monotonic() + timeout
    while outbox.count(phone) < count:
        assert time.monotonic() < deadline, f"{phone} received {outbox.count(phone)} of {count} SMS"
        time.sleep(0.02)
    return outbox.last_code(phone)


def post_page_form(browser: Browser, path: str, **fields: str) -> Any:
    """GET `path`, then POST its form with its CSRF token and `fields` (not followed)."""
    page = browser.client.get(path)
    assert page.status_code == 200, (path, page.status_code, text_of(page)[:800])
    return browser.client.post(path, data={"csrf_token": csrf_of(text_of(page)), **fields})


def start_reset(browser: Browser, username: str, query: str = "", **extra: str) -> Any:
    """Submit the forgotten-password form (captcha off, or answered in `extra`)."""
    return post_page_form(browser, "/password/forgot" + query, username=username, **extra)


def reset_otp_path(response: Any) -> str:
    assert response.status_code == 302, text_of(response)[:1500]
    path = urlsplit(response.headers["Location"]).path
    assert re.fullmatch(r"/password/forgot/[\w-]+/otp", path), path
    return path


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"
