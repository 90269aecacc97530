"""Bad input gets a clear 400 (a page for a person, an OAuth error for a machine), never a 500, and
writes nothing (issue 8, items 3 to 6).

One layer where input enters (idp.web.inputs) refuses control characters, NUL and uploaded files
in every form and query field, with the field's own name in the message; JSON parameters and JWTs
are bounded in depth and size before they are parsed.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.support.account import open_account, post_form
from tests.support.clients import PORTAL_CALLBACK, PORTAL_SECRET
from tests.support.driver import Browser, basic, csrf_of, query_of
from tests.support.org import LAN
from tests.support.people import AN
from tests.support.registration import MAI, form_of, submit_check


def rows(app: Any) -> dict[str, int]:
    """How many rows each table that a person's action writes holds."""
    from idp.store.models import Account, AuditEvent, Consent, Grant, Person, db

    with app.app_context():
        counted = {
            m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
            for m in (Account, AuditEvent, Consent, Grant, Person)
        }
        db.session.rollback()
    return counted


def page_text(response: Any) -> str:
    return response.get_data(as_text=True)


def assert_refused_page(response: Any, label: str) -> None:
    """A 400 page in Vietnamese that names the field; no traceback, no redirect."""
    assert response.status_code == 400, (response.status_code, page_text(response)[:400])
    assert response.mimetype == "text/html"
    html = page_text(response)
    assert "Thông tin nhập vào không hợp lệ" in html, html[:1500]
    assert label in html, html[:1500]
    assert "Location" not in response.headers


def chooser(browser: Browser) -> str:
    response, _ = browser.start()
    page = browser.follow(response)
    assert page.request.path.startswith("/login/")
    return "/login/" + page.request.path.split("/")[2]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- item 3: JSON parameters bounded before they are parsed -----------------------------------------
@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(nested(1900), id="1900-deep-array"),
        pytest.param('{"userinfo": ' * 600 + "null" + "}" * 600, id="600-deep-object"),
        pytest.param(
            json.dumps({"userinfo": {"name": {"values": [[[[[[[[[["x"]]]]]]]]]]}}}), id="deep-values"
        ),
    ],
)
def test_deeply_nested_claims_are_invalid_request(browser: Browser, app: Any, claims: str) -> None:
    before = rows(app)
    response, auth = browser.start(claims=claims)
    assert response.status_code == 302, page_text(response)[:300]
    query = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(PORTAL_CALLBACK + "?")
    assert query["error"] == "invalid_request" and query["state"] == auth.params["state"]
    assert rows(app) == before


def jwt_with_payload(payload: str) -> str:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    return b64('{"alg":"ES256","kid":"x"}') + "." + b64(payload) + "." + b64("sig")


def test_an_id_token_hint_of_deeply_nested_json_is_invalid_request(browser: Browser) -> None:
    response, auth = browser.start(id_token_hint=jwt_with_payload(nested(1500)))
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_a_logout_hint_of_deeply_nested_json_is_a_page(client: Any) -> None:
    response = client.get("/logout", query_string={"id_token_hint": jwt_with_payload(nested(1500))})
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_a_client_assertion_of_deeply_nested_json_is_invalid_client(client: Any) -> None:
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "x" * 30,
            "redirect_uri": "https://jwt.example.vn/cb",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt_with_payload(nested(1500)),
        },
    )
    assert response.status_code in (400, 401), response.get_data(as_text=True)
    assert response.json["error"] in ("invalid_client", "invalid_request")


# -- item 4: a CR LF in the account area's `next` ---------------------------------------------------
def test_a_line_break_in_next_is_refused_where_it_enters(browser: Browser) -> None:
    response = browser.client.get("/account/login?next=/account/%0D%0ASet-Cookie:%20pwned=1")
    assert_refused_page(response, "next")
    assert not any("pwned" in h for h in response.headers.getlist("Set-Cookie"))


def test_next_is_validated_as_it_is_returned(app: Any) -> None:
    """Even past the input layer, the account area never returns a value it did not check."""
    from idp.apps.gate import safe_next as _safe_next

    with app.test_request_context("/account"):
        assert _safe_next("/account/\r\nSet-Cookie: pwned=1") == "/account"
        assert _safe_next(" /account/sessions") == "/account"
        assert _safe_next("/account/sessions") == "/account/sessions"


# -- item 5: NUL in a text field --------------------------------------------------------------------
def test_nul_in_the_organization_username(browser: Browser, app: Any) -> None:
    door = chooser(browser) + "/organization"
    page = browser.client.get(door)
    before = rows(app)
    response = browser.client.post(
        door,
        data={"csrf_token": csrf_of(page_text(page)), "username": "sotn\x00.lan", "password": LAN.password},
    )
    assert_refused_page(response, "Tên đăng nhập")
    assert rows(app) == before


def test_nul_in_the_client_id_of_a_consent_withdrawal(browser: Browser, app: Any) -> None:
    page = open_account(browser, AN, "/account/consents")
    assert page.status_code == 200, page.request.path
    before = rows(app)
    response = post_form(browser, page, "/account/consents/revoke", client_id="partner\x00")
    assert_refused_page(response, "client_id")
    assert rows(app) == before


def test_nul_in_the_email_of_a_registration(browser: Browser, app: Any) -> None:
    before = rows(app)
    response = submit_check(browser, "population", form_of(MAI, "population", email="mai\x00@example.vn"))
    assert_refused_page(response, "Thư điện tử")
    assert rows(app) == before


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\r\n"])
def test_control_characters_in_the_citizen_password(browser: Browser, app: Any, char: str) -> None:
    door = chooser(browser) + "/citizen"
    page = browser.client.get(door)
    before = rows(app)
    response = browser.client.post(
        door,
        data={"csrf_token": csrf_of(page_text(page)), "username": AN.username, "password": "Demo" + char},
    )
    assert_refused_page(response, "Mật khẩu")
    assert rows(app) == before


def test_english_pages_name_the_field_in_english(browser: Browser) -> None:
    browser.client.get("/?lang=en")
    response = browser.client.get("/account/login?next=/account/%00")
    assert response.status_code == 400
    assert "The information entered is not valid" in page_text(response)


# -- item 6: a file where text is expected ------------------------------------------------------------
def upload(browser: Browser, path: str, field: str, **text: str) -> Any:
    page = browser.client.get(path)
    data: dict[str, Any] = {"csrf_token": csrf_of(page_text(page)), **text}
    data[field] = (io.BytesIO(b"%PDF-1.4 not a name"), "cv.pdf")
    return browser.client.post(path, data=data, content_type="multipart/form-data")


def test_a_file_as_the_citizen_username(browser: Browser, app: Any) -> None:
    before = rows(app)
    response = upload(browser, chooser(browser) + "/citizen", "username", password=AN.password)
    assert_refused_page(response, "Số định danh")
    assert rows(app) == before


def test_a_file_as_the_organization_username(browser: Browser, app: Any) -> None:
    response = upload(browser, chooser(browser) + "/organization", "username", password=LAN.password)
    assert_refused_page(response, "Tên đăng nhập")


def test_a_file_on_the_forgotten_password_page(browser: Browser, app: Any) -> None:
    before = rows(app)
    response = upload(browser, "/password/forgot", "username")
    assert_refused_page(response, "Số định danh")
    assert rows(app) == before


# -- machines: OAuth errors, never a page --------------------------------------------------------------
@pytest.mark.parametrize("field", ["code", "redirect_uri", "grant_type", "client_secret"])
def test_nul_at_the_token_endpoint_is_invalid_request(client: Any, field: str) -> None:
    data = {
        "grant_type": "authorization_code",
        "code": "c" * 40,
        "redirect_uri": PORTAL_CALLBACK,
    }
    data[field] = data.get(field, PORTAL_SECRET) + "\x00"
    response = client.post("/token", data=data, headers=basic("portal", PORTAL_SECRET))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert field in response.json["error_description"]


def test_a_file_at_the_token_endpoint_is_invalid_request(client: Any) -> None:
    response = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": (io.BytesIO(b"x" * 40), "t.txt")},
        headers=basic("portal", PORTAL_SECRET),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_nul_in_an_authorization_parameter_goes_back_to_the_client(browser: Browser) -> None:
    response, auth = browser.start(nonce="n\x00nce")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).netloc == "portal.example.vn"
    query = query_of(response.headers["Location"])
    assert query["error"] == "invalid_request" and "nonce" in query["error_description"]
    assert query["state"] == auth.params["state"]


def test_nul_in_the_state_is_a_page_not_a_redirect(browser: Browser) -> None:
    """A state that cannot be echoed back safely: the person sees a page."""
    response, _ = browser.start(state="st\x00te")
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_nul_in_the_redirect_uri_is_a_page(browser: Browser) -> None:
    response, _ = browser.start(redirect_uri=PORTAL_CALLBACK + "\x00")
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_an_indented_claims_parameter_is_accepted(browser: Browser) -> None:
    claims = json.dumps({"userinfo": {"name": None}, "id_token": {"acr": {"essential": False}}}, indent=2)
    response, _ = browser.start(claims=claims)
    assert response.status_code == 302 and "/login/" in response.headers["Location"], response.headers.get(
        "Location"
    )


def test_a_body_sent_with_head_is_checked_too(client: Any) -> None:
    """Werkzeug (and Authlib through it) reads a form body for every method but GET."""
    from tests.support.driver import pkce_pair

    _, challenge = pkce_pair()
    params = {
        "client_id": "portal", "redirect_uri": PORTAL_CALLBACK, "response_type": "code", "scope": "openid",
        "state": "s" * 10, "code_challenge": challenge, "code_challenge_method": "S256", "login_hint": "a\x00b",
    }  # fmt: skip
    response = client.open("/authorize", method="HEAD", data=params)
    assert "/login/" not in response.headers.get("Location", ""), "an interaction was created"
