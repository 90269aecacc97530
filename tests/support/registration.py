"""Driving the registration pages (idp.flows.register.steps) with the app's test client, and the
sandbox register's people the tests register (idp/verifiers/sandbox_data/registers.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.support.driver import Browser
from tests.support.passwords import post_page_form, text_of

PASSWORD = "Kq7#mTr-Lua2027"


@dataclass(frozen=True)
class Newcomer:
    """A person of the sandbox registers who has no account yet."""

    id_number: str
    name: str
    birth_date: str  # dd/mm/yyyy
    phone: str  # 0xxxxxxxxx as typed
    e164: str
    bhxh_code: str | None = None
    id_issue_date: str | None = None


DUC = Newcomer(
    "046088012345", "Phạm Minh Đức", "12/07/1988", "0903111222", "+84903111222", "4688012345", "10/05/2021"
)
HOA = Newcomer(
    "046192023456", "Võ Thị Hòa", "05/01/1992", "0388123456", "+84388123456", "4692023456", "22/08/2021"
)
LOC = Newcomer(
    "046075034567", "Huỳnh Văn Lộc", "30/04/1975", "0834567890", "+84834567890", "4675034567", "01/03/2022"
)
MAI = Newcomer("046187067890", "Ngô Thị Mai", "21/12/1987", "0978123456", "+84978123456", None, "05/07/2021")
NAM = Newcomer("046090078901", "Trịnh Văn Nam", "03/03/1990", "0911222333", "+84911222333")


def form_of(person: Newcomer, method: str, **changes: str) -> dict[str, str]:
    """The fields a person types on the form of `method`."""
    fields = {"full_name": person.name, "birth_date": person.birth_date, "phone": person.phone}
    if method == "social_insurance":
        fields["bhxh_code"] = person.bhxh_code or ""
    else:
        fields["id_number"] = person.id_number
    if method == "population":
        fields["id_issue_date"] = person.id_issue_date or ""
    fields.update(changes)
    return fields


def submit_check(browser: Browser, method: str, fields: dict[str, str], ix: str | None = None) -> Any:
    query = f"?ix={ix}" if ix else ""
    return post_page_form(browser, f"/register/citizen/{method}{query}", **fields)


def otp_path(response: Any) -> str:
    assert response.status_code == 302, text_of(response)[:2000]
    path = urlsplit(response.headers["Location"]).path
    assert re.fullmatch(r"/register/[\w-]+/otp", path), path
    return path


def step(path: str, name: str) -> str:
    return path.rsplit("/", 1)[0] + "/" + name


def confirm_phone(browser: Browser, path: str, phone: str) -> Any:
    return post_page_form(browser, path, otp=browser.outbox.last_code(phone))


def register(
    browser: Browser, person: Newcomer, method: str, password: str = PASSWORD, ix: str | None = None
) -> Any:
    """The whole registration; returns the done page."""
    path = otp_path(submit_check(browser, method, form_of(person, method), ix))
    response = confirm_phone(browser, path, person.e164)
    assert response.status_code == 302, text_of(response)[:2000]
    assert urlsplit(response.headers["Location"]).path == step(path, "password")
    response = post_page_form(
        browser, step(path, "password"), new_password=password, confirm_password=password
    )
    assert response.status_code == 302, text_of(response)[:3000]
    assert urlsplit(response.headers["Location"]).path == step(path, "done")
    done = browser.client.get(step(path, "done"))
    assert done.status_code == 200
    return done
