"""High availability on the engines a province already runs (issue 8, items 18 and 19), with real
processes started by the test: a Redis primary, a replica and three Sentinels; a PostgreSQL primary
and a streaming standby. `idp serve` (2 workers x 4 threads) runs under a steady load while the
primary fails; the load must see no 500 (only 503 / temporarily_unavailable while there is no
primary), service must resume on the new primary by itself, and nothing committed may be lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.support.clients import PORTAL_SECRET
from tests.support.driver import basic
from tests.support.html_signin import query_of
from tests.support.live import Deployment, IdpProcess, authorization_url, exchange, idp_logs, own_deployment  # noqa: F401 - a fixture
from tests.support.people import AN, BINH, CUC
from tests.support.private_services import PrivateSentinelSet

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("idp_logs")]


@dataclass
class Outcome:
    at: float
    what: str
    status: int  # 0: no answer (a connection error on the client's side)
    body: str


class Load:
    """Loops that keep idp busy with what needs the short-lived store and the database: new
    authorizations (an interaction written), refresh grants (an access token written; the grant
    read from SQL), userinfo (a token read)."""

    def __init__(self, idp: IdpProcess, refresh_token: str, loops: int = 4) -> None:
        self.idp = idp
        self.refresh_token = refresh_token
        self.loops = loops
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(loops)]

    def _record(self, what: str, call: Any) -> Any:
        try:
            response = call()
        except requests.RequestException as exc:
            self.outcomes.append(Outcome(time.monotonic(), what, 0, repr(exc)))
            return None
        self.outcomes.append(Outcome(time.monotonic(), what, response.status_code, response.text[:300]))
        return response

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            url, _, _ = authorization_url(self.idp)
            self._record("authorize", lambda url=url: session.get(url, allow_redirects=False, timeout=15))
            answer = self._record(
                "refresh",
                lambda: session.post(
                    self.idp.url("/token"),
                    data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
                    headers=basic("portal", PORTAL_SECRET),
                    timeout=15,
                ),
            )
            if answer is not None and answer.status_code == 200:
                token = answer.json()["access_token"]
                self._record(
                    "userinfo",
                    lambda token=token: session.get(
                        self.idp.url("/userinfo"), headers={"Authorization": "Bearer " + token}, timeout=15
                    ),
                )
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def failures(self, since: float = 0.0) -> list[Outcome]:
        ok = {"authorize": (302,), "refresh": (200,), "userinfo": (200,)}
        return [o for o in self.outcomes if o.at >= since and o.status not in ok[o.what]]


def assert_only_unavailable(failures: list[Outcome]) -> None:
    """What failed failed as an outage: 503 with the outage's page or OAuth error, never a 500."""
    for o in failures:
        assert o.status == 503, (o.what, o.status, o.body)
        if o.what == "authorize":
            assert "tạm thời gián đoạn" in o.body, o.body
        else:
            assert "temporarily_unavailable" in o.body, o.body


def in_flight_costs(load: Load, since: float) -> tuple[list[Outcome], list[Outcome]]:
    """The failures of a failover that began at `since`: (503s, access tokens lost). An access
    token handed out in the instant of a failover (a write the former primary took but never
    replicated) may be lost: the portal's userinfo answers 401, and the portal refreshes. Nothing
    fails before the failover began."""
    failures = load.failures()
    early = [o for o in failures if o.at < since - 0.5]
    assert not early, f"failures before the failover: {early[:3]}"
    lost = [o for o in failures if o.what == "userinfo" and o.status == 401]
    return [o for o in failures if o not in lost], lost


def tokens_for(deployment: Deployment, idp: IdpProcess, person: Any) -> tuple[dict[str, Any], Any]:
    browser = deployment.browser(idp)
    url, _, verifier = authorization_url(idp, scope="openid profile offline_access")
    code = query_of(browser.sign_in(url, person))["code"]
    answer = exchange(idp, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json(), browser


def wait_until(condition: Any, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"{what} did not happen within {seconds} s")
        time.sleep(0.1)
    return time.monotonic() - started


# -- Redis Sentinel --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sentinels() -> Iterator[PrivateSentinelSet]:
    cluster = PrivateSentinelSet()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def sentinel_deployment(
    tmp_path_factory: pytest.TempPathFactory,
    keys_dir: Path,
    clients_file: Path,
    sentinels: PrivateSentinelSet,
) -> Iterator[Deployment]:
    with own_deployment(
        tmp_path_factory.mktemp("sentinel"),
        keys_dir=keys_dir,
        clients_file=clients_file,
        redis_url=sentinels.url,
    ) as deployment:
        deployment.serve("idp-sentinel", workers=2, threads=4)
        yield deployment


def test_redis_sentinel_failovers_under_load(
    sentinel_deployment: Deployment, sentinels: PrivateSentinelSet
) -> None:
    deployment = sentinel_deployment
    idp = deployment.servers[0]
    tokens, browser = tokens_for(deployment, idp, AN)
    first = sentinels.primary_port()

    # A planned failover (SENTINEL FAILOVER, as for maintenance): at most the requests in flight.
    with Load(idp, tokens["refresh_token"]) as load:
        time.sleep(1.5)
        switched_at = time.monotonic()
        client = redis.Redis(host="127.0.0.1", port=sentinels.sentinel_ports[0])
        client.sentinel_failover(sentinels.service)
        client.close()
        wait_until(lambda: sentinels.primary_port() != first, 20, "the planned failover")
        # Past the resync of the former primary and UNREPLICATED_PAUSE: the load must be clean.
        time.sleep(7)
    failed, lost = in_flight_costs(load, switched_at)
    print(
        f"planned failover: {len(load.outcomes)} requests, {len(failed)} answered 503, {len(lost)} token(s) lost"
    )
    assert_only_unavailable(failed)
    assert len(failed) + len(lost) <= load.loops, [(o.what, o.status) for o in failed + lost]
    assert not load.failures(since=switched_at + 6), "failing after the planned failover was over"
    assert len(load.outcomes) > 50

    # The primary crashes (SIGKILL): while the Sentinels agree on a new one, 503s; then by itself.
    second = sentinels.primary_port()
    with Load(idp, tokens["refresh_token"]) as load:
        time.sleep(1.5)
        crashed_at = time.monotonic()
        sentinels.crash_primary()
        took = wait_until(lambda: sentinels.primary_port() != second, 30, "the failover after a crash")
        time.sleep(4)
    failed, lost = in_flight_costs(load, crashed_at)
    print(
        f"crash: new primary after {took:.1f} s; {len(load.outcomes)} requests, {len(failed)} answered 503, "
        f"{len(lost)} token(s) issued in the crash lost"
    )
    assert len(lost) <= load.loops, lost
    assert_only_unavailable(failed)
    settled = crashed_at + took + 2.0
    late = load.failures(since=settled)
    assert not late, f"still failing {len(late)} times after the new primary was up: {late[:3]}"
    assert [o for o in load.outcomes if o.at >= settled], "no load after the failover"

    # What was written before both failovers is there: the SSO session and the access token.
    url, _, _ = authorization_url(idp)
    assert "code" in query_of(browser.sign_in(url, AN))
    info = requests.get(
        idp.url("/userinfo"), headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=10
    )
    assert info.status_code == 200, info.text
    logged = idp.logs()
    assert "unhandled error" not in logged and "Traceback" not in logged, logged[-3000:]


# -- PostgreSQL: a streaming standby promoted ------------------------------------------------------
@pytest.fixture(scope="module")
def postgres_pair() -> Iterator[Any]:
    from tests.support.private_services import PrivatePostgresPair

    pair = PrivatePostgresPair()
    try:
        pair.start()
        yield pair
    finally:
        pair.close()


def register(deployment: Deployment, idp: IdpProcess, person: Any, stop: threading.Event) -> bool:
    """A whole registration by the population-register check, each step repeated while it answers
    503 (a person pressing "Thử lại"); True once the done page shows."""
    from tests.support.html_signin import parse_page

    browser = deployment.browser(idp)

    def until_not_503(call: Any) -> requests.Response:
        while True:
            answer = call()
            if answer.status_code != 503 or stop.is_set():
                return answer
            assert "Traceback" not in answer.text
            time.sleep(0.2)

    page = until_not_503(lambda: browser.open("/register/citizen/population"))
    form = parse_page(page.text).form_with("id_number")
    values = {
        "full_name": person.name,
        "birth_date": person.birth_date,
        "phone": person.phone,
        "id_number": person.id_number,
        "id_issue_date": person.id_issue_date,
    }
    answer = until_not_503(lambda: browser.submit(page, form, values))
    assert answer.status_code == 302, (answer.status_code, answer.text[:300])
    otp_page = until_not_503(lambda: browser.open(answer.headers["Location"]))
    answer = until_not_503(
        lambda: browser.submit(
            otp_page,
            parse_page(otp_page.text).form_with("otp"),
            {"otp": deployment.outbox.last_code(person.e164)},
        )
    )
    assert answer.status_code == 302, (answer.status_code, answer.text[:300])
    password_page = until_not_503(lambda: browser.open(answer.headers["Location"]))
    password = "Kq7#mTr-Lua2027"
    done = until_not_503(
        lambda: browser.follow(
            browser.submit(
                password_page,
                parse_page(password_page.text).form_with("new_password"),
                {"new_password": password, "confirm_password": password},
            )
        )
    )
    return done.status_code == 200 and "/done" in done.url


def test_postgres_standby_promoted_under_load(
    tmp_path_factory: pytest.TempPathFactory,
    keys_dir: Path,
    clients_file: Path,
    redis_url: str,
    postgres_pair: Any,
) -> None:
    import hashlib

    import psycopg

    from tests.support.clients import MOBILE_CALLBACK
    from tests.support.registration import HOA, LOC, MAI

    database = "idp_ha"
    with psycopg.connect(postgres_pair.primary.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    deployment = Deployment(
        tmp_path_factory.mktemp("pg-failover"),
        database_url=postgres_pair.url(database),
        redis_url=redis_url,
        keys_dir=keys_dir,
        clients_file=clients_file,
    )
    deployment.env["IDP_DATABASE_URL"] = postgres_pair.sqlalchemy_url(database)
    try:
        deployment.init()
        idp = deployment.serve("idp-pg-failover", workers=2, threads=4)
        # Four refresh-token families of the public mobile client (rotated on every use).
        families: list[dict[str, Any]] = []
        for person in (AN, BINH, CUC, AN):
            browser = deployment.browser(idp)
            url, _, verifier = authorization_url(
                idp, "mobile", MOBILE_CALLBACK, "openid profile offline_access"
            )
            code = query_of(browser.sign_in(url, person))["code"]
            answer = exchange(idp, code, verifier, "mobile")
            assert answer.status_code == 200, answer.text
            families.append({"token": answer.json()["refresh_token"], "received": [], "outcomes": []})

        stop = threading.Event()

        def rotate(family: dict[str, Any]) -> None:
            session = requests.Session()
            while not stop.is_set():
                try:
                    answer = session.post(
                        idp.url("/token"),
                        data={
                            "grant_type": "refresh_token",
                            "refresh_token": family["token"],
                            "client_id": "mobile",
                        },
                        timeout=15,
                    )
                except requests.RequestException as exc:
                    family["outcomes"].append((time.monotonic(), 0, repr(exc)))
                    continue
                family["outcomes"].append((time.monotonic(), answer.status_code, answer.text[:300]))
                if answer.status_code == 200:
                    family["token"] = answer.json()["refresh_token"]
                    family["received"].append((time.monotonic(), family["token"]))
                time.sleep(0.02)

        registered: list[Any] = []

        def registrations() -> None:
            for person in (MAI, LOC, HOA):
                if register(deployment, idp, person, stop):
                    registered.append(person)

        threads = [threading.Thread(target=rotate, args=(f,), daemon=True) for f in families]
        threads.append(threading.Thread(target=registrations, daemon=True))
        for t in threads:
            t.start()
        time.sleep(2.0)
        crashed_at = time.monotonic()
        postgres_pair.primary.stop("immediate")  # the primary's machine fails
        time.sleep(1.0)
        postgres_pair.standby.promote()  # the operator's (or Patroni's) failover
        promoted_at = time.monotonic()
        wait_until(lambda: len(registered) == 3 or not threads[-1].is_alive(), 60, "the registrations")
        time.sleep(max(3.0, promoted_at + 8 - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(30)

        outcomes = [o for f in families for o in f["outcomes"]]
        print(
            f"standby promoted: {len(outcomes)} refresh grants, {sum(1 for o in outcomes if o[1] != 200)} "
            f"answered 503; {len(registered)} registrations finished"
        )
        # No 500, no refused family: while there was no primary, 503 temporarily_unavailable.
        for family in families:
            for at, status, body in family["outcomes"]:
                if status != 200:
                    assert status == 503 and "temporarily_unavailable" in body, (status, body)
                    assert crashed_at - 0.5 <= at <= promoted_at + 5, (
                        f"a failure {at - promoted_at:.1f} s after the promotion"
                    )
            late = [o for o in family["outcomes"] if o[0] > promoted_at + 5]
            assert late and all(status == 200 for _, status, _ in late), late[:3]
        assert [p.id_number for p in registered] == [MAI.id_number, LOC.id_number, HOA.id_number]

        # Everything committed before the crash is on the new primary: each family's last token
        # received before it, and each finished registration.
        with psycopg.connect(postgres_pair.url(database), autocommit=True, connect_timeout=3) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            for family in families:
                before = [token for at, token in family["received"] if at < crashed_at]
                assert before, "no rotation before the crash"
                digest = hashlib.sha256(before[-1].encode()).hexdigest()
                row = conn.execute(
                    "SELECT count(*) FROM refresh_tokens WHERE token_hash = %s", (digest,)
                ).fetchone()
                assert row == (1,), "a rotation idp was told is committed is not on the new primary"
            for person in registered:
                row = conn.execute(
                    "SELECT count(*) FROM persons WHERE id_number = %s", (person.id_number,)
                ).fetchone()
                assert row == (1,), f"the registration of {person.name} is not on the new primary"
        logged = idp.logs()
        assert "unhandled error" not in logged and "Traceback" not in logged, logged[-3000:]
    finally:
        deployment.stop()
