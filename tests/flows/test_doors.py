"""Door skipping: a relying party names the door (`door=`), or sends an ID number as `login_hint`,
and the person lands on that door instead of the chooser — once; unknown values are ignored.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.flows.test_signin_citizen import signed_in
from tests.support.driver import Browser
from tests.support.outbox import Outbox
from tests.support.people import AN, DUNG

USERNAME_VALUE = re.compile(r'<input id="username"[^>]*value="([^"]*)"', re.S)


def first_page(browser: Browser, **params: str) -> tuple[str, Any]:
    """Start an authorization; returns the interaction's login path and the answer to it."""
    response, _ = browser.start(**params)
    assert response.status_code == 302
    login = urlsplit(response.headers["Location"]).path
    assert re.fullmatch(r"/login/[\w-]+", login), login
    return login, browser.client.get(login)


@pytest.mark.parametrize(
    ("params", "door"),
    [
        ({"door": "citizen"}, "citizen"),
        ({"door": "organization"}, "organization"),
        ({"door": "national-portal"}, "national-portal"),
        ({"door": "vneid"}, "vneid"),
        ({"login_hint": AN.username}, "citizen"),
        ({"login_hint": DUNG.username}, "citizen"),  # an old 9-digit CMND
        ({"door": "vneid", "login_hint": AN.username}, "vneid"),  # the named door wins
    ],
)
def test_a_named_door_skips_the_chooser(browser: Browser, params: dict[str, str], door: str) -> None:
    login, response = first_page(browser, **params)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"{login}/door/{door}"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"door": "Citizen"},
        {"door": "citizen "},
        {"door": "bogus"},
        {"door": ""},
        {"door": "x" * 300},
        {"login_hint": "an@example.vn"},
        {"login_hint": "04609000123"},  # 11 digits: not an ID number
        {"login_hint": "999090001234"},  # no such province
    ],
)
def test_unknown_values_show_the_chooser(browser: Browser, params: dict[str, str]) -> None:
    _, response = first_page(browser, **params)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.count('class="door"') == 4


def test_citizen_door_by_hint_is_prefilled_and_signs_in(browser: Browser, outbox: Outbox) -> None:
    login, response = first_page(browser, login_hint=AN.username)
    citizen = browser.client.get(response.headers["Location"])
    assert citizen.request.path == login + "/door/citizen"
    citizen = browser.follow(citizen)
    assert citizen.status_code == 200 and citizen.request.path == login + "/citizen"
    assert USERNAME_VALUE.search(citizen.get_data(as_text=True)).group(1) == AN.username  # type: ignore[union-attr]
    response = browser.submit_password(login, AN.username, AN.password)
    otp = urlsplit(response.headers["Location"]).path
    assert "code" in signed_in(browser, browser.submit_otp(otp, outbox.last_code(AN.phone)))


def test_only_the_first_visit_is_skipped(browser: Browser) -> None:
    """ "Chọn loại tài khoản khác" on the named door brings the chooser back."""
    login, response = first_page(browser, door="citizen")
    assert response.status_code == 302
    again = browser.client.get(login)
    assert again.status_code == 200 and again.get_data(as_text=True).count('class="door"') == 4


def test_the_door_parameter_does_not_bypass_prompt_none(browser: Browser) -> None:
    response, _ = browser.start(door="citizen", prompt="none")
    location = response.headers["Location"]
    assert location.startswith("https://portal.example.vn/callback?") and "error=login_required" in location


def test_a_door_is_honoured_when_signing_in_again(browser: Browser, outbox: Outbox) -> None:
    """prompt=login with an SSO session: the new interaction still opens the named door."""
    browser.sign_in(AN.username, AN.password)
    login, response = first_page(browser, door="citizen", prompt="login")
    assert urlsplit(response.headers["Location"]).path == f"{login}/door/citizen"
