"""The sign-in gate of idp's own relying parties (idp.apps.gate): a page behind
``signed_in(roles=…)`` is refused, with its own page, to an account that lacks a role and shown to
one that holds it; a page behind ``signed_in(acr=…)`` sends a session below that level through
/authorize again, asking for it. The operator console will stand on this."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Blueprint
from sqlalchemy import select

from idp.apps.gate import current_person, signed_in
from idp.store.models import Account, AccountRole, db
from tests.support.account import follow, open_account
from tests.support.driver import Browser
from tests.support.people import AN, BINH


@pytest.fixture
def gated(make_app: Any, outbox: Any) -> Browser:
    """The app with two pages of a console-like app inside the account area's paths."""
    app = make_app()
    pages = Blueprint("gate_test", __name__)

    @pages.get("/account/test-admin")
    @signed_in(roles=("admin",))
    def admin_page() -> str:
        return f"admin page of account {current_person().account_id}"

    @pages.get("/account/test-loa3")
    @signed_in(acr="LoA3")
    def loa3_page() -> str:
        return "a page for level 3 sign-ins"

    app.register_blueprint(pages)
    return Browser(app.test_client(), outbox)


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def test_a_page_for_a_role_is_refused_to_an_account_without_it(gated: Browser) -> None:
    page = open_account(gated, AN, "/account/test-admin")
    assert page.status_code == 403
    assert "Bạn không có quyền xem trang này" in text(page)
    assert "admin page" not in text(page)


def test_a_page_for_a_role_opens_for_an_account_that_holds_it(gated: Browser) -> None:
    app = gated.client.application
    with app.app_context():
        account = db.session.execute(select(Account).where(Account.username == AN.username)).scalar_one()
        db.session.add(AccountRole(account_id=account.id, role="admin"))
        db.session.commit()
        account_id = account.id
    page = open_account(gated, AN, "/account/test-admin")
    assert page.status_code == 200
    assert text(page) == f"admin page of account {account_id}"


def test_a_page_for_level_3_asks_a_level_2_session_for_more(gated: Browser) -> None:
    """An essential acr, not a preference: AN (identity level 2) is offered to raise the level
    instead of being sent round between the page and /authorize."""
    open_account(gated, AN)  # signed in to the account area at LoA2 (AN's identity is level 2)
    response = gated.client.get("/account/test-loa3")
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/authorize"
    claims = json.loads(parse_qs(location.query)["claims"][0])
    assert claims == {"id_token": {"acr": {"essential": True, "values": ["LoA3"]}}}
    page = follow(gated, response)
    assert page.status_code == 403
    assert "Nâng mức xác minh" in text(page)  # the raise of the identity level (DESIGN §4)


def test_a_page_for_level_3_opens_for_a_level_3_sign_in(gated: Browser) -> None:
    page = open_account(gated, BINH, "/account/test-loa3")  # BINH: level 3, password + OTP
    assert page.status_code == 200
    assert text(page) == "a page for level 3 sign-ins"
