"""Organizations and staff accounts: the tax-code check digit, codes unique in the database, staff
creation rules, and what tokens and userinfo say about the organization and the staff member."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.identity.identifiers import (
    InvalidIdentifier,
    check_organization_code,
    check_tax_code,
    is_tax_code,
    tax_check_digit,
)
from tests.support.clients import PORTAL_CALLBACK
from tests.support.driver import Browser
from tests.support.org import LAN, MINH, OrgDoor, totp_code
from tests.support.outbox import Outbox
from tests.support.people import AN
from tests.support.tokens import exchange, sign_in_and_exchange, userinfo, verify_jwt


# -- identifiers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0100233488", "0100233488"),  # the reference's valid example
        ("0314409058-002", "0314409058-002"),  # a branch
        ("0314409058002", "0314409058-002"),  # a branch written without the hyphen
        (" 0100233488 ", "0100233488"),
        ("0100109106", "0100109106"),
        ("3300100113", "3300100113"),
    ],
)
def test_valid_tax_codes(value: str, expected: str) -> None:
    assert check_tax_code(value) == expected
    assert is_tax_code(value)


@pytest.mark.parametrize(
    "value",
    [
        "0100233480",  # the reference's invalid example: wrong check digit
        "0100233487",
        "0314409058-000",  # branch 000 does not exist
        "010023348",  # 9 digits
        "01002334881",  # 11 digits
        "0314409058-02",
        "031440905A",
        "",
        "0000000000",  # weights sum to 0: remainder 0 is never issued
    ],
)
def test_invalid_tax_codes(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        check_tax_code(value)
    assert not is_tax_code(value)


@pytest.mark.parametrize(
    ("first9", "digit"),
    [("010023348", 8), ("031440905", 8), ("010010910", 6), ("000000000", None)],
)
def test_check_digit_table(first9: str, digit: int | None) -> None:
    assert tax_check_digit(first9) == digit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0100233488", ("0100233488", "tax")),
        ("0314409058-002", ("0314409058-002", "tax")),
        ("000.00.15.H57", ("000.00.15.H57", "province")),
        ("000.99.01.h57", ("000.99.01.H57", "province")),
    ],
)
def test_organization_codes(value: str, expected: tuple[str, str]) -> None:
    assert check_organization_code(value) == expected


@pytest.mark.parametrize(
    "value", ["0100233480", "000.00.15", "H57", "ABC-123", "000.00.15.H5", "00.00.15.H57"]
)
def test_bad_organization_codes(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        check_organization_code(value)


# -- the database keeps codes and usernames unique -----------------------------------------------------
def test_organization_code_is_unique_in_the_database(app: Any) -> None:
    from idp.store.models import Organization, db

    with app.app_context():
        db.session.add(
            Organization(
                code=MINH.org_code, code_type="tax", name="Bản sao", kind="enterprise", created_by="test"
            )
        )
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_staff_username_is_unique_in_the_database(app: Any) -> None:
    from idp.store.models import Account, Organization, db

    with app.app_context():
        org_id = db.session.execute(
            select(Organization.id).where(Organization.code == LAN.org_code)
        ).scalar_one()
        db.session.add(
            Account(kind="organization", username=LAN.username, organization_id=org_id, created_by="test")
        )
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_a_staff_account_must_belong_to_an_organization(app: Any) -> None:
    from idp.store.models import Account, db

    with app.app_context():
        db.session.add(Account(kind="organization", username="mo.coi", created_by="test"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_creating_an_existing_organization_is_refused(app: Any) -> None:
    from idp.identity.organizations import OrganizationExists, create_organization

    with app.app_context(), pytest.raises(OrganizationExists):
        create_organization("0314409058002", "Chi nhánh", "enterprise", actor="test")  # first time: fine
        create_organization("0314409058-002", "Chi nhánh (lần hai)", "enterprise", actor="test")


# -- creating staff accounts ---------------------------------------------------------------------------
STAFF = {
    "organization_code": LAN.org_code,
    "username": "sotn.hoa",
    "full_name": "Trương Thị Hoa",
    "phone": "0905999888",
    "roles": ("staff",),
}
GOOD = "Hoa-Sen@2026"


@pytest.mark.parametrize(
    ("changes", "password", "error"),
    [
        ({"username": "1abc"}, GOOD, "InvalidIdentifier"),
        ({"username": "ab"}, GOOD, "InvalidIdentifier"),
        ({"username": "có.dấu"}, GOOD, "InvalidIdentifier"),
        ({"roles": ("owner",)}, GOOD, "InvalidIdentifier"),
        ({"roles": ()}, GOOD, "InvalidIdentifier"),
        ({"phone": "0123"}, GOOD, "InvalidIdentifier"),
        ({"id_number": "12345"}, GOOD, "InvalidIdentifier"),
        ({"organization_code": "0314409058"}, GOOD, "UnknownOrganization"),
        ({"username": LAN.username}, GOOD, "UsernameTaken"),
        ({"id_number": AN.username}, GOOD, "PersonExists"),  # never linked silently
        ({}, "short1!", "WeakPassword"),
        ({}, "Sotn.hoa@2026", "WeakPassword"),  # contains the username
        ({}, "Abc0905999888!", "WeakPassword"),  # contains the phone
    ],
)
def test_staff_creation_rules(app: Any, changes: dict[str, Any], password: str, error: str) -> None:
    from idp.identity import organizations
    from idp.identity.organizations import NewStaff, create_staff

    with app.app_context():
        data = NewStaff(**{**STAFF, **changes})
        with pytest.raises(Exception) as caught:
            create_staff(data, password, app.extensions["idp"].hashing, actor="operator:test")
        assert type(caught.value).__name__ == error
        if error == "PersonExists":
            assert AN.username not in str(caught.value)  # the ID number is masked
        assert organizations.find_staff(STAFF["username"]) is None  # nothing half-written


def test_staff_member_is_a_person_with_roles_and_a_verified_phone(app: Any) -> None:
    from idp.identity.organizations import NewStaff, create_staff, find_staff, role_names
    from idp.store.models import AuditEvent, db

    with app.app_context():
        create_staff(
            NewStaff(**{**STAFF, "roles": ("staff", "admin"), "id_number": "046095012345"}),
            GOOD,
            app.extensions["idp"].hashing,
            actor="operator:thu",
        )
        account = find_staff("SOTN.HOA")
        assert account is not None and account.person is not None
        assert account.person.id_number == "046095012345"
        assert account.person.loa == 2 and account.person.subject
        assert role_names(account) == ["admin", "staff"]
        assert [(p.number, p.verified_at is not None) for p in account.phones] == [("+84905999888", True)]
        assert account.organization is not None and account.organization.code == LAN.org_code
        event = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "account.created", AuditEvent.account_id == account.id
            )
        ).scalar_one()
        assert event.actor == "operator:thu"
        assert "046095012345" not in json.dumps(event.detail)


# -- tokens and userinfo -------------------------------------------------------------------------------
def org_tokens(browser: Browser, outbox: Outbox, scope: str, **extra: str) -> tuple[dict[str, Any], Any]:
    """Sign MINH in with the authenticator at the test portal; returns (token response, client)."""
    door = OrgDoor(browser)
    door.password(MINH.username, MINH.password, scope=scope, **extra)
    door.post(door.path("method"), method="totp")
    response = browser.follow(door.post(door.path("app"), otp=totp_code(MINH.totp_secret or "")))
    location = response.headers["Location"]
    assert location.startswith(PORTAL_CALLBACK), location
    code = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))["code"]
    tokens = exchange(browser.client, code, door.auth)
    assert tokens.status_code == 200, tokens.json
    return tokens.json, browser.client


EXPECTED_ORG = {"code": MINH.org_code, "code_type": "tax", "name": MINH.org_name, "kind": "enterprise"}
EXPECTED_STAFF = {"username": MINH.username, "name": MINH.name, "roles": list(MINH.roles)}


def test_userinfo_names_the_organization_and_the_staff_member(browser: Browser, outbox: Outbox) -> None:
    tokens, client = org_tokens(browser, outbox, "openid profile phone organization")
    info = userinfo(client, tokens["access_token"]).json
    assert info["organization"] == EXPECTED_ORG
    assert info["staff"] == EXPECTED_STAFF
    assert info["name"] == MINH.name
    assert info["phone_number"] == MINH.phone
    assert "citizen_id" not in info and "birthdate" not in info
    claims = verify_jwt(client, tokens["id_token"])[1]
    assert "organization" not in claims  # Core §5.4: scope claims go to userinfo


def test_without_the_organization_scope_nothing_is_said(browser: Browser, outbox: Outbox) -> None:
    tokens, client = org_tokens(browser, outbox, "openid profile")
    info = userinfo(client, tokens["access_token"]).json
    assert "organization" not in info and "staff" not in info
    assert info["name"] == MINH.name


def test_claims_parameter_puts_them_in_the_id_token(browser: Browser, outbox: Outbox) -> None:
    claims_request = json.dumps({"id_token": {"organization": None, "staff": {"essential": True}}})
    tokens, client = org_tokens(browser, outbox, "openid", claims=claims_request)
    claims = verify_jwt(client, tokens["id_token"])[1]
    assert claims["organization"] == EXPECTED_ORG
    assert claims["staff"] == EXPECTED_STAFF
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "LoA2"


def test_a_citizen_with_the_organization_scope_gets_no_organization(browser: Browser) -> None:
    tokens, _ = sign_in_and_exchange(browser, AN, scope="openid profile organization citizen")
    info = userinfo(browser.client, tokens["access_token"]).json
    assert info["citizen_id"] == AN.username and info["name"] == AN.name
    assert "organization" not in info and "staff" not in info


def test_discovery_lists_the_organization_scope_and_claims(client: Any) -> None:
    metadata = client.get("/.well-known/openid-configuration").json
    assert "organization" in metadata["scopes_supported"]
    assert {"organization", "staff"} <= set(metadata["claims_supported"])


def test_consent_explains_the_organization_scope(app: Any) -> None:
    from idp.web.consents import describe_scopes

    with app.test_request_context():
        (text,) = describe_scopes("organization")
    assert "Tổ chức của bạn" in text and "vai trò" in text
