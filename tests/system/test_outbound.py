"""Calls to other systems that hang (issue 8, items 12 and 16), under a real `idp serve`
(2 workers x 4 threads) against PostgreSQL and Redis.

A register gateway that accepts connections and never answers must not stall every door: each
check takes at most its time budget (retries included), at most REGISTERS_MAX_CONCURRENT checks of
one register are under way per worker (the rest answer at once with "Chưa kiểm tra được", which
carries an error id), and once the circuit opens, no worker calls the register until the shared
half-open probe finds it back, after which every worker calls it again at once. Meanwhile
discovery and sign-in stay fast. The SMS gateway is guarded the same way.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.html_signin import HtmlSignIn, parse_page, query_of
from tests.support.live import Deployment, IdpProcess, authorization_url, idp_logs, own_deployment  # noqa: F401 - a fixture
from tests.support.people import AN, BINH, CUC
from tests.support.register_stub import TOKEN, RegisterStub, Reply
from tests.support.registration import HOA, LOC, MAI

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("idp_logs")]

ERROR_ID = re.compile(r"\bE-[0-9A-F]{8}\b")
BUDGET = 2.0
COOLDOWN = 2.0
THRESHOLD = 3
HANG = Reply(delay=30.0)  # accepts the request and answers long after every timeout


@pytest.fixture(scope="module")
def stub() -> Iterator[RegisterStub]:
    with RegisterStub() as server:
        yield server


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    keys_dir: Path,
    clients_file: Path,
    redis_url: str,
    stub: RegisterStub,
) -> Iterator[Deployment]:
    with own_deployment(
        tmp_path_factory.mktemp("outbound"),
        keys_dir=keys_dir,
        clients_file=clients_file,
        redis_url=redis_url,
        POPULATION_REGISTER="http",
        POPULATION_REGISTER_URL=stub.base_url,
        POPULATION_REGISTER_TOKEN=TOKEN,
        REGISTERS_READ_TIMEOUT=5,
        REGISTERS_RETRIES=2,
        REGISTERS_CALL_BUDGET=BUDGET,
        REGISTERS_MAX_CONCURRENT=1,
        REGISTERS_BREAKER_THRESHOLD=THRESHOLD,
        REGISTERS_BREAKER_COOLDOWN=COOLDOWN,
        REGISTRATION_CHECKS_PER_HOUR=10000,
    ) as deployment:
        deployment.serve("idp-outbound", workers=2, threads=4)
        yield deployment


def check_form(browser: HtmlSignIn, person: Any) -> Any:
    """The population-register form of a fresh registration, filled in for `person`."""
    page = browser.open("/register/citizen/population")
    assert page.status_code == 200, page.text[:300]
    form = parse_page(page.text).form_with("id_number")
    values = {
        "full_name": person.name,
        "birth_date": person.birth_date,
        "phone": person.phone,
        "id_number": person.id_number,
        "id_issue_date": person.id_issue_date or "01/01/2021",
    }
    return page, form, values


def timed_check(deployment: Deployment, person: Any) -> tuple[float, requests.Response]:
    browser = deployment.browser()
    page, form, values = check_form(browser, person)
    started = time.monotonic()
    answer = browser.submit(page, form, values)
    return time.monotonic() - started, answer


def assert_not_checked_page(answer: requests.Response) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text[:400])
    assert "Chưa kiểm tra được thông tin" in answer.text and "Traceback" not in answer.text
    assert ERROR_ID.search(answer.text), "the register-unavailable page has no error id"


def discovery_p95(idp: IdpProcess, times: int = 20) -> float:
    """The 95th percentile, in seconds, of `times` discovery requests made one after another."""
    seconds = []
    for _ in range(times):
        started = time.monotonic()
        assert requests.get(idp.url("/.well-known/openid-configuration"), timeout=30).status_code == 200
        seconds.append(time.monotonic() - started)
    return statistics.quantiles(seconds, n=20)[-1]


def test_a_hanging_register_stalls_nothing_else(deployment: Deployment, stub: RegisterStub) -> None:
    idp: IdpProcess = deployment.servers[0]
    stub.reset()
    stub.script(*([HANG] * 200))
    people = [MAI, LOC, HOA, MAI, LOC, HOA, MAI, LOC, HOA, MAI]
    checks: list[tuple[float, requests.Response]] = []

    def check(person: Any) -> None:
        checks.append(timed_check(deployment, person))

    threads = [threading.Thread(target=check, args=(p,)) for p in people]
    for t in threads:
        t.start()
    time.sleep(0.3)
    # While the checks hang: discovery twenty times and two whole sign-ins.
    p95 = discovery_p95(idp)
    sign_ins = []
    for person in (AN, CUC):
        started = time.monotonic()
        url, _, _ = authorization_url(idp)
        assert "code" in query_of(deployment.browser(idp).sign_in(url, person))
        sign_ins.append(time.monotonic() - started)
    for t in threads:
        t.join(30)

    assert p95 < 0.5, f"discovery p95 {p95:.2f} s while a register hangs"
    assert max(sign_ins) < 3, f"sign-ins took {sign_ins} s while a register hangs"
    assert len(checks) == len(people)
    for seconds, answer in checks:
        assert_not_checked_page(answer)
        assert seconds < BUDGET + 1.5, f"a check held its thread {seconds:.1f} s (budget {BUDGET} s)"
    # At most one call per worker was under way at a time; the others were refused without a call.
    assert stub.count() <= 2 * (1 + 2), stub.count()


def test_the_breaker_is_shared_and_its_probe_closes_it_for_every_worker(
    deployment: Deployment, stub: RegisterStub
) -> None:
    idp: IdpProcess = deployment.servers[0]
    stub.reset()
    stub.script(*([Reply(status=500)] * 200))
    # THRESHOLD failures, in whichever workers they land, open the one circuit.
    for _ in range(THRESHOLD):
        assert_not_checked_page(timed_check(deployment, MAI)[1])
    called = stub.count()
    # Now no worker calls the register: ten checks (new connections, both workers) answer at once.
    for _ in range(10):
        seconds, answer = timed_check(deployment, LOC)
        assert_not_checked_page(answer)
        assert seconds < 0.5, seconds
    assert stub.count() == called, "a worker called the register while the shared circuit was open"
    # The register comes back. After the cool-down one probe goes out and closes the circuit: from
    # then on every check is made, in every worker, with no cool-down left in any of them.
    stub.reset()
    time.sleep(COOLDOWN + 0.2)
    answers = [timed_check(deployment, person)[1] for person in (MAI, LOC, HOA, MAI, LOC, HOA)]
    for answer in answers:
        assert answer.status_code == 302, (answer.status_code, answer.text[:400])
        assert answer.headers["Location"].endswith("/otp")
    assert stub.count() == len(answers)
    assert requests.get(idp.url("/health"), timeout=5).status_code == 200


def test_a_hanging_sms_gateway_leaves_the_rest_fast(
    tmp_path_factory: pytest.TempPathFactory, keys_dir: Path, clients_file: Path, redis_url: str
) -> None:
    """Sign-ins need their SMS and wait for it at most its timeout; beyond the gateway's bulkhead they
    are told at once that no SMS could be sent, and after the breaker opens no worker calls it.
    Discovery and tokens never wait."""
    from tests.unit.test_sms import Gateway

    gateway = Gateway()
    gateway.delay = 30.0
    with (
        contextlib.closing(gateway),
        own_deployment(
            tmp_path_factory.mktemp("sms-hangs"),
            keys_dir=keys_dir,
            clients_file=clients_file,
            redis_url=redis_url,
            SMS_GATEWAY_URL=gateway.url,
            SMS_GATEWAY_TIMEOUT=1.5,
            SMS_GATEWAY_MAX_CONCURRENT=1,
            SMS_GATEWAY_BREAKER_THRESHOLD=2,  # the two sends the bulkheads let through open it
            SMS_GATEWAY_BREAKER_COOLDOWN=30,
        ) as deployment,
    ):
        idp = deployment.serve("idp-sms-hangs", workers=2, threads=4)
        answers: list[tuple[float, requests.Response]] = []

        def password(person: Any) -> None:
            browser = deployment.browser(idp)
            url, _, _ = authorization_url(idp)
            page = browser.citizen_door(browser.start(url))
            started = time.monotonic()
            answer = browser.submit_password(page, person.username, person.password)
            answers.append((time.monotonic() - started, answer))

        threads = [
            threading.Thread(target=password, args=(p,)) for p in (AN, BINH, CUC, AN, BINH, CUC, AN, BINH)
        ]
        for t in threads:
            t.start()
        time.sleep(0.3)
        p95 = discovery_p95(idp)
        for t in threads:
            t.join(30)
        assert p95 < 0.5, f"discovery p95 {p95:.2f} s while the SMS gateway hangs"
        for seconds, answer in answers:
            assert answer.status_code == 503 and "Chưa gửi được" in answer.text, answer.text[:300]
            assert seconds < 1.5 + 1.5, seconds
        assert len(gateway.requests) <= 2 * 3  # one at a time per worker, until the circuit opened
        sent = len(gateway.requests)
        browser = deployment.browser(idp)
        url, _, _ = authorization_url(idp)
        page = browser.citizen_door(browser.start(url))
        started = time.monotonic()
        answer = browser.submit_password(page, AN.username, AN.password)
        assert answer.status_code == 503 and time.monotonic() - started < 0.5
        assert len(gateway.requests) == sent, "the gateway was called while its circuit was open"
