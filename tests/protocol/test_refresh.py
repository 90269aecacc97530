"""The refresh_token grant: rotation with reuse detection for public clients, stable tokens for
confidential ones, scope narrowing, client binding, account state, and the refreshed ID token."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import Any

import pytest
from sqlalchemy import update

from tests.support.driver import Browser
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH
from tests.support.tokens import (
    introspect,
    post_as,
    refresh,
    sign_in_and_exchange,
    userinfo,
    verify_jwt,
)

MOBILE_SCOPE = "openid profile phone offline_access"


def assert_invalid_grant(response: Any) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"] == "invalid_grant", response.json
    assert "access_token" not in response.json
    assert response.headers["Cache-Control"] == "no-store"


def set_account_status(app: Any, username: str, status: str) -> None:
    from idp.store.models import Account, db

    with app.app_context():
        db.session.execute(update(Account).where(Account.username == username).values(status=status))
        db.session.commit()


# -- public client: rotation and reuse detection ---------------------------------------------------
def test_public_client_gets_a_new_refresh_token_each_time(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, client_id="mobile", scope=MOBILE_SCOPE)
    seen = {tokens["refresh_token"]}
    current = tokens["refresh_token"]
    for _ in range(3):
        response = refresh(client, current, "mobile")
        assert response.status_code == 200, response.json
        assert response.headers["Cache-Control"] == "no-store"
        current = response.json["refresh_token"]
        assert current not in seen
        seen.add(current)
        assert userinfo(client, response.json["access_token"]).status_code == 200


def test_reused_refresh_token_revokes_the_whole_family(browser: Browser, client: Any) -> None:
    first, _ = sign_in_and_exchange(browser, client_id="mobile", scope=MOBILE_SCOPE)
    second = refresh(client, first["refresh_token"], "mobile").json
    third = refresh(client, second["refresh_token"], "mobile").json
    assert userinfo(client, third["access_token"]).status_code == 200

    # Someone replays the first token: refused, and everything of the family dies.
    assert_invalid_grant(refresh(client, first["refresh_token"], "mobile"))

    assert_invalid_grant(refresh(client, third["refresh_token"], "mobile"))
    for access in (first["access_token"], second["access_token"], third["access_token"]):
        assert userinfo(client, access).status_code == 401
        assert introspect(client, access).json == {"active": False}
    assert introspect(client, third["refresh_token"]).json == {"active": False}


def test_concurrent_use_of_one_refresh_token_yields_one_success(make_app: Any, outbox: Outbox) -> None:
    app = make_app()
    tokens, _ = sign_in_and_exchange(
        Browser(app.test_client(), outbox), client_id="mobile", scope=MOBILE_SCOPE
    )
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def use() -> None:
        barrier.wait()
        results.append(refresh(app.test_client(), tokens["refresh_token"], "mobile"))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) <= 1, [r.json for r in results]
    assert all(r.status_code in (200, 400) for r in results), [r.json for r in results]
    # Whoever won, the race counts as reuse: no token of the family remains usable.
    for r in results:
        if r.status_code == 200:
            assert_invalid_grant(refresh(app.test_client(), r.json["refresh_token"], "mobile"))


# -- confidential client ---------------------------------------------------------------------------
def test_confidential_client_keeps_its_refresh_token(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope="openid profile offline_access")
    for _ in range(3):
        response = refresh(client, tokens["refresh_token"])
        assert response.status_code == 200, response.json
        assert response.json.get("refresh_token") in (None, tokens["refresh_token"])
        assert userinfo(client, response.json["access_token"]).status_code == 200


def test_refresh_response_fields(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope="openid profile offline_access")
    body = refresh(client, tokens["refresh_token"]).json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert set(body["scope"].split()) == {"openid", "profile", "offline_access"}
    assert body["access_token"] != tokens["access_token"]


# -- scope -----------------------------------------------------------------------------------------
def test_scope_may_be_narrowed(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope="openid profile offline_access")
    response = refresh(client, tokens["refresh_token"], scope="openid")
    assert response.status_code == 200, response.json
    assert response.json["scope"] == "openid"
    info = userinfo(client, response.json["access_token"]).json
    assert "name" not in info  # the narrowed token no longer releases profile claims


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("openid profile phone", id="a scope the client has but was not granted"),
        pytest.param("openid profile citizen offline_access", id="granted plus one"),
        pytest.param("records.read", id="another client's scope"),
    ],
)
def test_scope_may_not_be_widened(browser: Browser, client: Any, scope: str) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope="openid profile offline_access")
    response = refresh(client, tokens["refresh_token"], scope=scope)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_scope"
    # The refusal does not cost the client its refresh token.
    assert refresh(client, tokens["refresh_token"]).status_code == 200


# -- binding and state -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("owner", "thief"),
    [("portal", "portal-post"), ("portal", "mobile"), ("mobile", "portal")],
)
def test_another_clients_refresh_token_is_refused(
    browser: Browser, client: Any, owner: str, thief: str
) -> None:
    scope = MOBILE_SCOPE if owner == "mobile" else "openid profile offline_access"
    tokens, _ = sign_in_and_exchange(browser, client_id=owner, scope=scope)
    assert_invalid_grant(refresh(client, tokens["refresh_token"], thief))
    assert refresh(client, tokens["refresh_token"], owner).status_code == 200


@pytest.mark.parametrize("status", ["locked", "cancelled"])
def test_refresh_for_an_inactive_account_is_refused(
    browser: Browser, client: Any, app: Any, status: str
) -> None:
    tokens, _ = sign_in_and_exchange(browser, scope="openid profile offline_access")
    set_account_status(app, AN.username, status)
    assert_invalid_grant(refresh(client, tokens["refresh_token"]))
    assert introspect(client, tokens["refresh_token"]).json == {"active": False}


def test_expired_refresh_token_is_refused(make_app: Any, outbox: Outbox) -> None:
    app = make_app(REFRESH_TOKEN_LIFETIME=1)
    browser = Browser(app.test_client(), outbox)
    tokens, _ = sign_in_and_exchange(browser, client_id="mobile", scope=MOBILE_SCOPE)
    time.sleep(1.2)
    assert_invalid_grant(refresh(browser.client, tokens["refresh_token"], "mobile"))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * 43, id="unknown"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
    ],
)
def test_unknown_refresh_token(client: Any, value: str | None) -> None:
    data = {"grant_type": "refresh_token"}
    if value is not None:
        data["refresh_token"] = value
    response = post_as(client, "/token", "portal", data)
    assert response.status_code == 400
    assert response.json["error"] in ("invalid_grant", "invalid_request")


# -- the refreshed ID token ------------------------------------------------------------------------
def test_refreshed_id_token_keeps_the_authentication_facts(browser: Browser, client: Any) -> None:
    tokens, auth = sign_in_and_exchange(browser, BINH, scope="openid profile offline_access")
    _, original = verify_jwt(client, tokens["id_token"])
    assert original["nonce"] == auth.params["nonce"]
    time.sleep(1.1)  # a new iat, while auth_time must stay
    body = refresh(client, tokens["refresh_token"]).json
    _, refreshed = verify_jwt(client, body["id_token"])
    for name in ("iss", "sub", "aud", "azp", "auth_time", "acr", "amr", "sid"):
        assert refreshed[name] == original[name], name
    assert refreshed["iat"] > original["iat"]
    assert "nonce" not in refreshed
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    assert refreshed["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def test_refreshed_id_token_uses_the_clients_algorithm(browser: Browser, client: Any) -> None:
    tokens, _ = sign_in_and_exchange(browser, client_id="mobile", scope=MOBILE_SCOPE)
    body = refresh(client, tokens["refresh_token"], "mobile").json
    header, claims = verify_jwt(client, body["id_token"])
    assert header["alg"] == "ES256" and claims["aud"] == "mobile"


def test_a_retry_after_a_rotation_whose_commit_was_uncertain_continues_the_family(
    browser: Browser, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL fails during COMMIT (its primary crashed, a failover): the rotation may be durable
    all the same (synchronous replication), while the client was told 503 and keeps its token. Its
    retry continues the family once instead of being taken for a stolen token."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    first, _ = sign_in_and_exchange(browser, client_id="mobile", scope=MOBILE_SCOPE)
    real_commit = Session.commit
    failures = []

    def committed_but_the_answer_was_lost(self: Session) -> None:
        real_commit(self)
        if not failures:
            failures.append(True)
            raise OperationalError("COMMIT", {}, ConnectionResetError("server closed the connection"))

    monkeypatch.setattr(Session, "commit", committed_but_the_answer_was_lost)
    lost = refresh(client, first["refresh_token"], "mobile")
    monkeypatch.setattr(Session, "commit", real_commit)
    assert lost.status_code == 503 and lost.json["error"] == "temporarily_unavailable", lost.json
    retried = refresh(client, first["refresh_token"], "mobile")
    assert retried.status_code == 200, retried.json
    assert userinfo(client, retried.json["access_token"]).status_code == 200
    onward = refresh(client, retried.json["refresh_token"], "mobile")
    assert onward.status_code == 200, onward.json
    # Only once: the old token again is reuse, and the family dies.
    assert_invalid_grant(refresh(client, first["refresh_token"], "mobile"))
    assert_invalid_grant(refresh(client, onward.json["refresh_token"], "mobile"))


@pytest.mark.parametrize("second_commit", ["committed", "not-committed"])
def test_two_uncertain_commits_in_a_row_still_continue_the_family(
    browser: Browser, client: Any, monkeypatch: pytest.MonkeyPatch, second_commit: str
) -> None:
    """The retry's own commit fails too: whether it happened or not, the next retry with the
    same old token continues from whichever successor is then unused."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    first, _ = sign_in_and_exchange(browser, client_id="mobile", scope=MOBILE_SCOPE)
    real_commit = Session.commit

    def lost_answer(self: Session) -> None:
        real_commit(self)
        raise OperationalError("COMMIT", {}, ConnectionResetError("server closed the connection"))

    def failed(self: Session) -> None:
        self.rollback()
        raise OperationalError("COMMIT", {}, ConnectionResetError("server closed the connection"))

    monkeypatch.setattr(Session, "commit", lost_answer)
    assert refresh(client, first["refresh_token"], "mobile").status_code == 503
    monkeypatch.setattr(Session, "commit", lost_answer if second_commit == "committed" else failed)
    assert refresh(client, first["refresh_token"], "mobile").status_code == 503
    monkeypatch.setattr(Session, "commit", real_commit)
    retried = refresh(client, first["refresh_token"], "mobile")
    assert retried.status_code == 200, retried.json
    assert refresh(client, retried.json["refresh_token"], "mobile").status_code == 200
