"""The consents page (/account/consents): the relying parties holding a consent, with the claims
in plain Vietnamese; revoking one deletes the consent, revokes that client's grants for the person
(its refresh and access tokens stop working), takes it out of the person's sessions and is
audited; the next sign-in there asks for consent again. First-party portals never appear.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.support.account import follow, open_account, post_form
from tests.support.clients import PARTNER_CALLBACK, PARTNER_SECRET, PORTAL_CALLBACK, PORTAL_SECRET
from tests.support.driver import Browser, basic, csrf_of, query_of
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH

PARTNER = {"client_id": "partner", "redirect_uri": PARTNER_CALLBACK}


def exchange(client: Any, callback: dict[str, str], verifier: str | None, client_id: str) -> dict[str, Any]:
    redirect_uri, secret = (
        (PARTNER_CALLBACK, PARTNER_SECRET) if client_id == "partner" else (PORTAL_CALLBACK, PORTAL_SECRET)
    )
    data = {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    response = client.post("/token", data=data, headers=basic(client_id, secret))
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def allow(browser: Browser, consent: Any) -> Any:
    html = consent.get_data(as_text=True)
    response = browser.client.post(
        consent.request.path, data={"csrf_token": csrf_of(html), "decision": "allow"}
    )
    return browser.follow(response)


def partner_tokens(browser: Browser, client: Any, person: Any = AN) -> dict[str, Any]:
    """Sign in at the partner (signing in if needed, consent allowed on the way); its tokens."""
    response, auth = browser.start(scope="openid profile phone", **PARTNER)
    page = browser.follow(response)
    if page.request.path.startswith("/login/"):
        response = browser.submit_password(page.request.path, person.username, person.password)
        response = browser.submit_otp(response.headers["Location"], browser.outbox.last_code(person.phone))
        page = browser.follow(response)
    assert page.request.path.startswith("/consent/"), page.request.path
    callback = query_of(allow(browser, page).headers["Location"])
    return exchange(client, callback, auth.verifier, "partner")


def refresh(client: Any, token: str, client_id: str = "partner") -> Any:
    secret = PARTNER_SECRET if client_id == "partner" else PORTAL_SECRET
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return client.post("/token", data=data, headers=basic(client_id, secret))


def consents_page(browser: Browser, person: Any = AN) -> tuple[Any, str]:
    page = open_account(browser, person, "/account/consents")
    assert page.request.path == "/account/consents"
    return page, page.get_data(as_text=True)


def revoke(browser: Browser, page: Any, client_id: str = "partner") -> Any:
    response = post_form(browser, page, "/account/consents/revoke", client_id=client_id)
    assert response.status_code == 303
    return follow(browser, response)


def test_the_page_lists_consents_in_plain_vietnamese(browser: Browser, client: Any) -> None:
    partner_tokens(browser, client)
    _, html = consents_page(browser)
    assert html.count('class="card consent"') == 1
    assert 'data-client-id="partner"' in html and "Ứng dụng đối tác" in html
    assert "Họ và tên, ngày sinh, giới tính" in html and "Số điện thoại di động đã xác thực" in html
    assert "Địa chỉ thư điện tử" not in html  # not consented
    # The first-party portal of the same sign-in never asked, so it is not listed.
    assert 'data-client-id="portal"' not in html
    assert "Cho phép từ" in html


def test_nothing_consented_says_so(browser: Browser) -> None:
    browser.sign_in(AN.username, AN.password)  # a first-party portal only
    _, html = consents_page(browser)
    assert "Bạn chưa cho phép ứng dụng nào nhận thông tin của bạn." in html
    assert 'class="card consent"' not in html


def test_revoking_stops_the_tokens_and_asks_again(app: Any, browser: Browser, client: Any) -> None:
    portal_callback, portal_auth = browser.sign_in(AN.username, AN.password)
    portal = exchange(client, portal_callback, portal_auth.verifier, "portal")
    tokens = partner_tokens(browser, client)
    assert refresh(client, tokens["refresh_token"]).status_code == 200  # works before
    page, _ = consents_page(browser)
    page = revoke(browser, page)
    html = page.get_data(as_text=True)
    assert "Đã thu hồi quyền nhận thông tin" in html and 'data-client-id="partner"' not in html

    # The partner's refresh token is refused and its access token no longer works.
    refused = refresh(client, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant"
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert userinfo.status_code == 401
    # The first-party portal's tokens of the same session are untouched, and so is the session.
    assert refresh(client, portal["refresh_token"], "portal").status_code == 200
    # The next sign-in at the partner asks for consent again (prompt=none cannot).
    response, _ = browser.start(prompt="none", **PARTNER)
    assert query_of(response.headers["Location"])["error"] == "consent_required"
    response, _ = browser.start(**PARTNER)
    assert browser.follow(response).request.path.startswith("/consent/")
    # The partner left the session: the sessions page no longer lists it.
    sessions = open_account(browser, AN, "/account/sessions").get_data(as_text=True)
    assert "Ứng dụng đối tác" not in sessions and "Cổng Dịch vụ công tỉnh" in sessions

    from idp.store.models import AuditEvent, Consent, Grant, db

    with app.app_context():
        assert db.session.execute(select(Consent)).scalars().all() == []
        reasons = db.session.execute(
            select(Grant.revoked_reason).where(Grant.client_id == "partner")
        ).scalars()
        assert set(reasons) == {"consent_revoked"}
        event = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "consent.revoked")
        ).scalar_one()
        assert event.client_id == "partner" and event.detail["grants_revoked"] == 1


def test_a_code_issued_before_the_revocation_gets_no_tokens(browser: Browser, client: Any) -> None:
    """The partner holds a code it has not exchanged yet when the person withdraws consent: the
    code is refused (invalid_grant) and no grant is written, though it is still within its 60 s."""
    partner_tokens(browser, client)  # consent given once
    response, auth = browser.start(scope="openid profile phone", **PARTNER)
    callback = query_of(response.headers["Location"])  # remembered consent: a code at once
    assert "code" in callback
    page, _ = consents_page(browser)
    revoke(browser, page)
    data = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": PARTNER_CALLBACK,
        "code_verifier": auth.verifier,
    }
    refused = client.post("/token", data=data, headers=basic("partner", PARTNER_SECRET))
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant", refused.json


def test_consenting_again_gives_working_tokens(browser: Browser, client: Any, outbox: Outbox) -> None:
    partner_tokens(browser, client)
    page, _ = consents_page(browser)
    revoke(browser, page)
    response, auth = browser.start(scope="openid profile", **PARTNER)
    callback = query_of(allow(browser, browser.follow(response)).headers["Location"])
    tokens = exchange(browser.client, callback, auth.verifier, "partner")
    assert refresh(client, tokens["refresh_token"]).status_code == 200


def test_revoking_touches_only_that_person(app: Any, client: Any, outbox: Outbox) -> None:
    an, binh = Browser(app.test_client(), outbox), Browser(app.test_client(), outbox)
    partner_tokens(an, client)
    binh_tokens = partner_tokens(binh, client, BINH)
    page, _ = consents_page(an)
    revoke(an, page)
    assert refresh(client, binh_tokens["refresh_token"]).status_code == 200
    _, html = consents_page(binh, BINH)
    assert 'data-client-id="partner"' in html


@pytest.mark.parametrize("client_id", ["portal", "nobody", ""])
def test_revoking_what_was_never_consented_changes_nothing(
    app: Any, browser: Browser, client: Any, client_id: str
) -> None:
    tokens = partner_tokens(browser, client)
    page, _ = consents_page(browser)
    response = post_form(browser, page, "/account/consents/revoke", client_id=client_id)
    assert response.status_code == 303
    assert refresh(client, tokens["refresh_token"]).status_code == 200
    from idp.store.models import AuditEvent, db

    with app.app_context():
        assert (
            db.session.execute(select(AuditEvent).where(AuditEvent.action == "consent.revoked")).first()
            is None
        )


@pytest.mark.parametrize("token", [None, "forged"])
def test_revoking_needs_the_csrf_token(browser: Browser, client: Any, token: str | None) -> None:
    tokens = partner_tokens(browser, client)
    consents_page(browser)
    data = {"client_id": "partner"} if token is None else {"client_id": "partner", "csrf_token": token}
    assert browser.client.post("/account/consents/revoke", data=data).status_code == 400
    assert refresh(client, tokens["refresh_token"]).status_code == 200


def test_revoking_needs_a_sign_in(app: Any, client: Any, outbox: Outbox) -> None:
    owner = Browser(app.test_client(), outbox)
    tokens = partner_tokens(owner, client)
    stranger = app.test_client()
    response = stranger.post("/account/consents/revoke", data={"client_id": "partner"})
    assert response.status_code in (303, 400)  # sent to sign in (or refused), never obeyed
    assert refresh(client, tokens["refresh_token"]).status_code == 200


# -- a withdrawal racing a code exchange (PostgreSQL row locks) ------------------------------------
def _wait_for_a_lock_wait(app: Any, timeout: float = 5.0) -> None:
    """Until some session of this database waits for a row lock (the race is really on)."""
    import time

    from sqlalchemy import text

    from idp.store.models import db

    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            waiting = db.session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            db.session.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("nobody waited for the consent's row lock")


def _race(app: Any, hold: Any, contend: Any) -> Any:
    """`hold(pause)` runs in a thread: it takes its row lock, then calls pause(), which returns once
    `contend()`, started in another thread, is seen waiting for that lock. Returns what contend()
    returned; an error in either thread fails the test."""
    import threading

    holding, release, errors, answers = threading.Event(), threading.Event(), [], []

    def pause() -> None:
        holding.set()
        release.wait(10)

    def run_hold() -> None:
        try:
            hold(pause)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            holding.set()

    holder = threading.Thread(target=run_hold)
    holder.start()
    assert holding.wait(10) and not errors, errors
    contender = threading.Thread(target=lambda: answers.append(contend()))
    contender.start()
    try:
        _wait_for_a_lock_wait(app)
    finally:
        release.set()
        holder.join(10)
        contender.join(10)
    assert not errors and answers, errors
    return answers[0]


def _an(app: Any) -> tuple[int, str]:
    from idp.store.models import Account, Person, db

    with app.app_context():
        row = db.session.execute(
            select(Account.id, Person.subject).join(Person).where(Person.id_number == AN.username)
        ).one()
        return int(row[0]), str(row[1])


def test_a_withdrawal_waits_for_an_exchange_under_way_and_revokes_its_grant(
    app: Any, browser: Browser, client: Any
) -> None:
    """The exchange holds the consent FOR SHARE while it writes its grant: the withdrawal (which
    locks the consent FOR UPDATE first) waits, then finds that grant and revokes it."""
    import time

    from idp.oidc.tokens import CodeRecord
    from idp.store.models import Grant, db

    partner_tokens(browser, client)
    page, _ = consents_page(browser)
    account_id, subject = _an(app)
    tokens = app.extensions["idp"].oidc.tokens

    def exchange_under_way(pause: Any) -> None:
        with app.app_context():
            assert tokens.consent_covers(account_id, "partner", "openid profile", ["name"])
            record = CodeRecord(
                client_id="partner", redirect_uri=PARTNER_CALLBACK, scope="openid profile",
                account_id=account_id, subject=subject, sid=None, auth_time=int(time.time()),
                acr="LoA2", amr=["pwd", "otp"], grant_id="racing-grant", expires_at=time.time() + 60,
            )  # fmt: skip
            tokens.create_grant(record, offline=False, lifetime=600, with_refresh=True)
            pause()
            db.session.commit()

    answer = _race(app, exchange_under_way, lambda: revoke(browser, page))
    assert "Đã thu hồi quyền nhận thông tin" in answer.get_data(as_text=True)
    with app.app_context():
        grant = db.session.get(Grant, "racing-grant")
        assert grant is not None and grant.revoked_reason == "consent_revoked"


def test_an_exchange_waits_for_a_withdrawal_under_way_and_gets_nothing(
    app: Any, browser: Browser, client: Any
) -> None:
    """The withdrawal holds the consent FOR UPDATE: a code exchange at that moment waits, then
    finds no consent and writes no grant (invalid_grant)."""
    from sqlalchemy import delete, func

    from idp.store.models import Consent, Grant, db

    partner_tokens(browser, client)
    response, auth = browser.start(scope="openid profile phone", **PARTNER)
    code = query_of(response.headers["Location"])["code"]
    account_id, _ = _an(app)
    with app.app_context():
        grants_before = db.session.execute(select(func.count()).select_from(Grant)).scalar()
        db.session.rollback()

    def withdrawal_under_way(pause: Any) -> None:
        with app.app_context():
            db.session.execute(
                select(Consent)
                .where(Consent.account_id == account_id, Consent.client_id == "partner")
                .with_for_update()
            ).scalar_one()
            db.session.execute(
                delete(Consent).where(Consent.account_id == account_id, Consent.client_id == "partner")
            )
            pause()
            db.session.commit()

    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": PARTNER_CALLBACK,
        "code_verifier": auth.verifier,
    }
    answer = _race(
        app,
        withdrawal_under_way,
        lambda: client.post("/token", data=data, headers=basic("partner", PARTNER_SECRET)),
    )
    assert answer.status_code == 400 and answer.json["error"] == "invalid_grant"
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Grant)).scalar() == grants_before
