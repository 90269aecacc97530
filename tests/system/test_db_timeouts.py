"""PostgreSQL lock and statement timeouts (issue 8, item 13).

A long lock on `accounts` (a migration, an operator's transaction left open) must not hold every
request that touches the table for as long as the lock lasts, and then, once every thread of a
worker waits, even the requests that do not: each statement waits at most
IDP_DATABASE_LOCK_TIMEOUT seconds for a lock and runs at most IDP_DATABASE_STATEMENT_TIMEOUT,
then the request answers 503 (a page) or temporarily_unavailable (a machine).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.support.html_signin import parse_page
from tests.support.live import (
    Deployment,
    IdpProcess,
    authorization_url,
    exchange,
    idp_logs,  # noqa: F401 - a fixture
    own_deployment,
    token_request,
)
from tests.support.people import AN, BINH

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("idp_logs")]

LOCK_TIMEOUT = 1.0
HELD = 12.0  # how long the test holds its lock: far longer than any answer may take


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, keys_dir: Path, clients_file: Path, redis_url: str
) -> Iterator[Deployment]:
    with own_deployment(
        tmp_path_factory.mktemp("timeouts"),
        keys_dir=keys_dir,
        clients_file=clients_file,
        redis_url=redis_url,
        DATABASE_LOCK_TIMEOUT=LOCK_TIMEOUT,
        DATABASE_STATEMENT_TIMEOUT=3,
        # As many attempts as the test makes at once: were the ones the outage refused still
        # counted, the sign-in after it would be refused.
        PASSWORD_MAX_FAILURES=8,
    ) as deployment:
        deployment.serve("idp-timeouts", workers=2, threads=4)
        yield deployment


class TableLock:
    """ACCESS EXCLUSIVE on a table, held by a transaction of the test until released."""

    def __init__(self, url: str, table: str) -> None:
        self.conn = psycopg.connect(url, autocommit=False)
        self.conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.monotonic()
    try:
        result = fn(*args)
    except requests.RequestException as exc:
        result = exc
    return time.monotonic() - started, result


def test_a_long_lock_on_accounts_answers_503_at_once_and_spares_discovery(deployment: Deployment) -> None:
    idp: IdpProcess = deployment.servers[0]
    # Tokens from before the lock, and eight sign-ins at the password page.
    url, _, verifier = authorization_url(idp, scope="openid profile offline_access")
    browser = deployment.browser(idp)
    from tests.support.html_signin import query_of

    code = query_of(browser.sign_in(url, AN))["code"]
    tokens = exchange(idp, code, verifier).json()
    pages = []
    for _ in range(8):
        person = deployment.browser(idp)
        url, _, _ = authorization_url(idp)
        pages.append((person, person.citizen_door(person.start(url))))

    lock = TableLock(deployment.database_url, "accounts")
    answers: list[tuple[float, Any]] = []
    try:

        def password(person: Any, page: Any) -> None:
            form = parse_page(page.text).form(data_account_kind="citizen")
            answers.append(
                timed(person.submit, page, form, {"username": BINH.username, "password": BINH.password})
            )

        threads = [threading.Thread(target=password, args=p) for p in pages]
        for t in threads:
            t.start()
        time.sleep(0.3)  # every thread of both workers is now waiting for the lock
        discovery = timed(lambda: requests.get(idp.url("/.well-known/openid-configuration"), timeout=HELD))
        refreshed = timed(
            lambda: token_request(
                idp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            )
        )
        for t in threads:
            t.join(HELD)
    finally:
        lock.release()

    assert len(answers) == 8
    for seconds, response in answers:
        assert not isinstance(response, Exception), response
        assert response.status_code == 503, (response.status_code, response.text[:300])
        assert "tạm thời gián đoạn" in response.text and "Traceback" not in response.text
        assert seconds < LOCK_TIMEOUT + 3, f"a sign-in waited {seconds:.1f} s for the lock"
    seconds, response = discovery
    assert not isinstance(response, Exception) and response.status_code == 200
    assert seconds < LOCK_TIMEOUT + 3, f"discovery waited {seconds:.1f} s behind the blocked requests"
    seconds, response = refreshed
    assert not isinstance(response, Exception), response
    assert response.status_code in (200, 503), response.text  # the refresh may not touch accounts
    if response.status_code == 503:
        assert response.json()["error"] == "temporarily_unavailable"
    assert seconds < LOCK_TIMEOUT + 3

    # The lock gone, the same person signs in: the attempts refused by the outage were not counted.
    url, _, _ = authorization_url(idp)
    assert "code" in query_of(deployment.browser(idp).sign_in(url, BINH))


def test_a_statement_running_too_long_is_cancelled_and_answered_503(make_app: Any) -> None:
    """The engine's connections carry statement_timeout: a statement past it is cancelled by
    PostgreSQL and the request answers 503, a page or JSON."""
    from sqlalchemy import text

    from idp.store.models import db

    app = make_app(DATABASE_STATEMENT_TIMEOUT=0.5, DATABASE_LOCK_TIMEOUT=0.5)

    def slow() -> str:
        db.session.execute(text("SELECT pg_sleep(3)"))
        return "finished"

    app.add_url_rule("/slow-page", "slow_page", slow)
    app.add_url_rule("/health/slow", "slow_machine", slow)  # under a machine's prefix: JSON
    client = app.test_client()
    started = time.monotonic()
    page = client.get("/slow-page")
    assert time.monotonic() - started < 2.5
    assert page.status_code == 503 and "tạm thời gián đoạn" in page.get_data(as_text=True)
    machine = client.get("/health/slow")
    assert machine.status_code == 503 and machine.json["error"] == "temporarily_unavailable"
    with app.app_context():
        settings = db.session.execute(
            text("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
        ).one()
        db.session.rollback()
    assert tuple(settings) == ("500ms", "500ms")
