"""Faults: Redis or PostgreSQL really stopped under a running `idp serve`, then started again.

Both services here are private to this module (tests.support.private_services): the shared ones
serve other people and are never stopped. While a service is down, pages answer 503 with a
Vietnamese message and an error id, protocol endpoints answer an OAuth error in JSON, nothing is
half written; when it returns, idp serves again by itself, without being restarted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests

from tests.support.clients import MOBILE_CALLBACK
from tests.support.html_signin import HtmlSignIn, parse_page, query_of
from tests.support.live import (
    Deployment,
    IdpProcess,
    authorization_url,
    exchange,
    idp_logs,  # noqa: F401 - a fixture
    token_request,
)
from tests.support.people import AN, BINH, CUC, SandboxPerson
from tests.support.private_services import PrivatePostgres, PrivateRedis

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("idp_logs")]

ERROR_ID = re.compile(r"\bE-[0-9A-F]{8}\b")
RECOVERY_SECONDS = 10  # "within a few seconds"
TRACE_MARKERS = ("Traceback", 'File "', "Error:", "sqlalchemy", "psycopg", "redis.exceptions")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    keys_dir: Path,
    clients_file: Path,
    redis_server: PrivateRedis,
    postgres_server: PrivatePostgres,
) -> Iterator[Deployment]:
    deployment = Deployment(
        tmp_path_factory.mktemp("faults"),
        database_url=postgres_server.url,
        redis_url=redis_server.url,
        keys_dir=keys_dir,
        clients_file=clients_file,
    )
    try:
        deployment.init()
        deployment.serve("idp-faults", workers=2)
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def idp(deployment: Deployment, redis_server: PrivateRedis, postgres_server: PrivatePostgres) -> IdpProcess:
    """The server with both services up (a test that failed half-way may have left one down)."""
    if redis_server.process is None:
        redis_server.start()
    if not (postgres_server.data / "postmaster.pid").exists():
        postgres_server.start()
    wait_ready(deployment.servers[0])
    return deployment.servers[0]


# -- helpers -----------------------------------------------------------------------------------
def refresh(idp: IdpProcess, refresh_token: str, client_id: str = "portal") -> requests.Response:
    return token_request(idp, {"grant_type": "refresh_token", "refresh_token": refresh_token}, client_id)


def userinfo(idp: IdpProcess, access_token: str) -> requests.Response:
    return requests.get(idp.url("/userinfo"), headers={"Authorization": "Bearer " + access_token}, timeout=20)


def sign_in_and_exchange(
    deployment: Deployment, idp: IdpProcess, person: SandboxPerson, client_id: str = "portal"
) -> dict[str, Any]:
    if client_id == "portal":
        url, _, verifier = authorization_url(idp)
    else:
        url, _, verifier = authorization_url(idp, client_id, MOBILE_CALLBACK, "openid profile offline_access")
    callback = deployment.browser(idp).sign_in(url, person)
    answer = exchange(idp, query_of(callback)["code"], verifier, client_id)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    assert userinfo(idp, tokens["access_token"]).status_code == 200
    return tokens


def wait_ready(idp: IdpProcess, seconds: float = RECOVERY_SECONDS) -> float:
    """Seconds until /health/ready answers 200; fails after `seconds`."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < seconds:
        try:
            last = requests.get(idp.url("/health/ready"), timeout=5)
            if last.status_code == 200:
                return time.monotonic() - started
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    pytest.fail(f"idp is not ready {seconds} s after the service returned: {getattr(last, 'text', last)}")


def no_trace(response: requests.Response) -> None:
    assert response.status_code != 500, response.text[:500]
    for marker in TRACE_MARKERS:
        assert marker not in response.text, f"{marker!r} in {response.url}: {response.text[:800]}"


def assert_unavailable_page(response: requests.Response) -> None:
    """A person's page: 503, HTML in Vietnamese, what to do, an error id to read to support."""
    no_trace(response)
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers.get("Retry-After")
    assert '<html lang="vi"' in response.text
    assert "tạm thời gián đoạn" in response.text and "thử lại" in response.text
    assert ERROR_ID.search(response.text), "no error id on the page"


def assert_oauth_unavailable(response: requests.Response) -> None:
    """A machine's answer: an OAuth error in JSON, never a page, never a token."""
    no_trace(response)
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "temporarily_unavailable", body
    assert "access_token" not in body and "refresh_token" not in body and "id_token" not in body
    assert response.headers.get("Cache-Control") == "no-store"


def assert_not_ready(idp: IdpProcess, check: str) -> None:
    ready = requests.get(idp.url("/health/ready"), timeout=20)
    assert ready.status_code == 503, ready.text
    assert ready.json()["checks"][check] == "unavailable"
    assert requests.get(idp.url("/health"), timeout=20).status_code == 200  # alive: no restart wanted


def grant_rows(postgres: PrivatePostgres) -> int:
    with psycopg.connect(postgres.url, connect_timeout=3) as conn:
        row = conn.execute("SELECT count(*) FROM grants").fetchone()
        assert row is not None
        return int(row[0])


def timed(call: Any, *args: Any) -> requests.Response:
    """Make a call and require a prompt answer: an outage must not hang requests."""
    started = time.monotonic()
    response: requests.Response = call(*args)
    assert time.monotonic() - started < 8, f"{response.url} took {time.monotonic() - started:.1f} s"
    return response


# -- Redis ---------------------------------------------------------------------------------------
def test_redis_stopped_and_restarted(
    deployment: Deployment, idp: IdpProcess, redis_server: PrivateRedis
) -> None:
    # Before the outage: tokens of a confidential and of a public client, a sign-in under way,
    # a code not yet exchanged.
    portal = sign_in_and_exchange(deployment, idp, AN)
    mobile = sign_in_and_exchange(deployment, idp, BINH, "mobile")
    pending = deployment.browser(idp)
    url, _, _ = authorization_url(idp)
    chooser = pending.start(url)
    assert chooser.status_code == 200
    sso = deployment.browser(idp)
    url, _, verifier = authorization_url(idp)
    code = query_of(sso.sign_in(url, CUC))["code"]

    redis_server.stop()

    # Pages: the chooser of the sign-in under way, and a new authorization request.
    assert_unavailable_page(timed(pending.get, chooser.url))
    url, _, _ = authorization_url(idp)
    assert_unavailable_page(timed(deployment.browser(idp).get, url))
    # Protocol endpoints.
    assert_oauth_unavailable(timed(exchange, idp, code, verifier))
    assert_oauth_unavailable(timed(refresh, idp, portal["refresh_token"]))
    assert_oauth_unavailable(timed(refresh, idp, mobile["refresh_token"], "mobile"))
    info = timed(userinfo, idp, portal["access_token"])
    assert_oauth_unavailable(info)
    assert_not_ready(idp, "store")
    # What needs no short-lived data still answers.
    assert requests.get(idp.url("/.well-known/openid-configuration"), timeout=20).status_code == 200
    assert requests.get(idp.url("/jwks.json"), timeout=20).status_code == 200

    redis_server.start()  # empty: no persistence, as after a real crash
    wait_ready(idp)

    # Refresh tokens live in SQL: the ones refused during the outage still work, once.
    assert refresh(idp, portal["refresh_token"]).status_code == 200
    rotated = refresh(idp, mobile["refresh_token"], "mobile")
    assert rotated.status_code == 200, (
        f"the refresh refused during the outage spent the token: {rotated.text}"
    )
    assert refresh(idp, rotated.json()["refresh_token"], "mobile").status_code == 200
    # A whole new sign-in and code exchange.
    tokens = sign_in_and_exchange(deployment, idp, AN)
    assert userinfo(idp, tokens["access_token"]).json()["name"] == AN.name


def fill_redis(server: PrivateRedis) -> redis.Redis:
    """Fill the server past its cap, with noeviction (the setting that keeps codes and sessions
    from being evicted): every write then fails with OOM. The cap ends well below what is held,
    so that keys expiring meanwhile do not make room again."""
    client = redis.Redis(host="127.0.0.1", port=server.port)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + 1024 * 1024)
    try:
        for i in range(1000):
            client.set(f"filler:{i}", "x" * 64 * 1024)
    except redis.exceptions.OutOfMemoryError:
        pass
    else:
        pytest.fail("the private Redis never filled up")
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("filler:probe", "x")
    return client


def test_redis_out_of_memory(deployment: Deployment, idp: IdpProcess, redis_server: PrivateRedis) -> None:
    """Redis full (maxmemory, noeviction): every write fails with OOM. Pages answer 503 and
    protocol endpoints temporarily_unavailable, as for a stopped Redis, never a 500; when memory is
    freed, service resumes by itself and nothing was lost."""
    portal = sign_in_and_exchange(deployment, idp, AN)
    mobile = sign_in_and_exchange(deployment, idp, BINH, "mobile")
    sso = deployment.browser(idp)
    url, _, verifier = authorization_url(idp)
    code = query_of(sso.sign_in(url, CUC))["code"]
    mark = idp.log_size()
    client = fill_redis(redis_server)
    try:
        # A new authorization writes an interaction: a page, 503.
        url, _, _ = authorization_url(idp)
        assert_unavailable_page(timed(deployment.browser(idp).get, url))
        # The SSO browser's next sign-in writes a code: a page, 503.
        url, _, _ = authorization_url(idp)
        assert_unavailable_page(timed(sso.get, url))
        # Protocol endpoints write tokens.
        assert_oauth_unavailable(timed(exchange, idp, code, verifier))
        assert_oauth_unavailable(timed(refresh, idp, portal["refresh_token"]))
        assert_oauth_unavailable(timed(refresh, idp, mobile["refresh_token"], "mobile"))
        # Reading still works: an access token issued before is still honoured.
        assert userinfo(idp, portal["access_token"]).status_code == 200
    finally:
        client.config_set("maxmemory", 0)
        for key in client.scan_iter("filler:*", count=1000):
            client.delete(key)
        client.close()
    logged = idp.logs(mark)
    assert "unhandled error" not in logged and "Traceback" not in logged, logged[-3000:]
    # Memory back: what was refused works now, the code included (it was not spent by the 503).
    assert refresh(idp, portal["refresh_token"]).status_code == 200
    rotated = refresh(idp, mobile["refresh_token"], "mobile")
    assert rotated.status_code == 200, rotated.text
    assert exchange(idp, code, verifier).status_code == 200
    tokens = sign_in_and_exchange(deployment, idp, AN)
    assert userinfo(idp, tokens["access_token"]).json()["name"] == AN.name


# -- PostgreSQL ----------------------------------------------------------------------------------
def test_postgres_stopped_and_restarted(
    deployment: Deployment, idp: IdpProcess, postgres_server: PrivatePostgres
) -> None:
    portal = sign_in_and_exchange(deployment, idp, AN)
    mobile = sign_in_and_exchange(deployment, idp, BINH, "mobile")
    # A sign-in under way, at the password page.
    pending = deployment.browser(idp)
    url, _, _ = authorization_url(idp)
    chooser = pending.start(url)
    citizen_page = pending.citizen_door(chooser)
    # Another one at the OTP page.
    at_otp = deployment.browser(idp)
    url, _, _ = authorization_url(idp)
    after_password = at_otp.password(at_otp.start(url), BINH.username, BINH.password)
    assert after_password.status_code == 302, after_password.text[:500]
    # A code not yet exchanged, and a browser with an SSO session.
    sso = deployment.browser(idp)
    url, _, verifier = authorization_url(idp)
    code = query_of(sso.sign_in(url, CUC))["code"]
    grants_before = grant_rows(postgres_server)

    postgres_server.stop()

    # The password step needs the accounts: a page, 503.
    form = parse_page(citizen_page.text).form(data_account_kind="citizen")
    answer = timed(pending.submit, citizen_page, form, {"username": CUC.username, "password": CUC.password})
    assert_unavailable_page(answer)
    # The SSO browser's next request needs the account's status: a page, 503.
    url, _, _ = authorization_url(idp)
    assert_unavailable_page(timed(sso.get, url))
    # Protocol endpoints.
    assert_oauth_unavailable(timed(exchange, idp, code, verifier))
    assert_oauth_unavailable(timed(refresh, idp, portal["refresh_token"]))
    assert_oauth_unavailable(timed(refresh, idp, mobile["refresh_token"], "mobile"))
    assert_oauth_unavailable(timed(userinfo, idp, portal["access_token"]))
    # The OTP step reads the account's record (its phones, then the sign-in): a page, 503, whether
    # at opening the OTP page or at entering the code.
    assert_unavailable_page(timed(otp_step, at_otp, after_password, BINH.phone))
    assert_not_ready(idp, "database")

    postgres_server.start()
    wait_ready(idp)

    # Nothing half written: the exchange refused during the outage left no grant behind. The code
    # was not spent by the 503: the portal's retry gets the tokens (a code is spent only when its
    # tokens are issued), and a second redemption still fails and revokes what the first issued.
    assert grant_rows(postgres_server) == grants_before
    late = exchange(idp, code, verifier)
    assert late.status_code == 200, late.text
    assert grant_rows(postgres_server) == grants_before + 1
    again = exchange(idp, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    assert userinfo(idp, late.json()["access_token"]).status_code == 401
    # What was refused during the outage works now.
    assert refresh(idp, portal["refresh_token"]).status_code == 200
    assert refresh(idp, mobile["refresh_token"], "mobile").status_code == 200
    assert userinfo(idp, portal["access_token"]).status_code == 200
    # The sign-in under way continues where it stopped, and a whole new one works too.
    after_password = pending.submit_password(citizen_page, CUC.username, CUC.password)
    callback = pending.finish(pending.otp(after_password, CUC.phone))
    assert "code" in query_of(callback)
    tokens = sign_in_and_exchange(deployment, idp, AN)
    assert userinfo(idp, tokens["access_token"]).json()["name"] == AN.name


def otp_step(browser: HtmlSignIn, after_password: requests.Response, phone: str) -> requests.Response:
    """Open the OTP page and enter the code; an unavailable page on the way is the answer."""
    page = browser.open(after_password.headers["Location"])
    if page.status_code != 200:
        return page
    return browser.submit(
        page, parse_page(page.text).form_with("otp"), {"otp": browser.outbox.last_code(phone)}
    )


def test_outage_is_reported_once_per_request_in_the_log(deployment: Deployment, idp: IdpProcess) -> None:
    """The operator's side of an outage: error ids in the log, and no worker died of it."""
    assert idp.running  # the same master process throughout
    text = idp.logs()
    assert "dependency unavailable error_id=E-" in text
    assert "WORKER TIMEOUT" not in text, text[-3000:]
    assert not re.search(r"Worker \(pid:\d+\) (exited|was sent)", text), text[-3000:]
