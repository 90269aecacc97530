"""The registers' HTTP adapters against a stub gateway speaking docs/verifiers.md
(tests/support/register_stub.py): answers, every failure mapped to its exception, retries only for
idempotent calls, the circuit breaker, mutual TLS, and the factory's configuration."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from idp.config import ConfigError, resolve
from idp.verifiers import Registers, build_registers
from idp.verifiers.base import (
    Verification,
    VerifierMisconfigured,
    VerifierRejected,
    VerifierUnavailable,
)
from idp.verifiers.carrier import HttpSubscriberRegister
from idp.verifiers.http import BreakerState, CircuitBreaker, HttpSettings
from idp.verifiers.population import HttpPopulationRegister
from idp.verifiers.sandbox import SandboxPopulationRegister, SandboxSubscriberRegister
from idp.verifiers.social_insurance import HttpSocialInsuranceRegister
from tests.support.register_stub import TOKEN, RegisterStub, Reply, json_reply, make_pki

READ_TIMEOUT = 0.3


@dataclass(frozen=True)
class Case:
    """One adapter call: how to build the adapter, a matching call, a mismatching one, an unknown record."""

    id: str
    build: Callable[[HttpSettings], Any]
    path: str
    match: Callable[[Any], Verification]
    mismatch: Callable[[Any], Verification]
    mismatched: tuple[str, ...]
    unknown: Callable[[Any], Verification]
    unknown_field: str
    idempotent: bool
    attributes: dict[str, str]


HOA = {"id_number": "046192023456", "full_name": "Võ Thị Hòa", "birth_date": "1992-01-05", "gender": "female"}

CASES = [
    Case(
        "population",
        HttpPopulationRegister,
        "/v1/citizens/check",
        lambda r: r.check_citizen(
            id_number="046192023456",
            full_name="võ  thị HOÀ",
            birth_date=dt.date(1992, 1, 5),
            id_issue_date=dt.date(2021, 8, 22),
            phone="0388123456",
        ),
        lambda r: r.check_citizen(
            id_number="046192023456",
            full_name="Võ Thị Hòa",
            birth_date=dt.date(1992, 1, 6),
            phone="0911222333",
        ),
        ("birth_date", "phone"),
        lambda r: r.check_citizen(
            id_number="046999999999", full_name="Võ Thị Hòa", birth_date=dt.date(1999, 1, 1)
        ),
        "id_number",
        True,
        {**HOA, "phone": "+84388123456"},
    ),
    Case(
        "legacy",
        HttpPopulationRegister,
        "/v1/citizens/legacy-check",
        lambda r: r.find_by_legacy_id(
            legacy_id_number="191234567", full_name="PHẠM VĂN DŨNG", birth_date=dt.date(1970, 7, 4)
        ),
        lambda r: r.find_by_legacy_id(
            legacy_id_number="191234567", full_name="Phạm Văn Dung", birth_date=dt.date(1970, 7, 4)
        ),
        ("full_name",),
        lambda r: r.find_by_legacy_id(
            legacy_id_number="199999999", full_name="Phạm Văn Dũng", birth_date=dt.date(1970, 7, 4)
        ),
        "legacy_id_number",
        True,
        {
            "id_number": "046070009999",
            "legacy_id_number": "191234567",
            "full_name": "Phạm Văn Dũng",
            "birth_date": "1970-07-04",
            "gender": "male",
            "phone": "+84903456789",
        },
    ),
    Case(
        "subscriber",
        HttpSubscriberRegister,
        "/v1/subscribers/check",
        lambda r: r.check_subscriber(phone="+84388123456", id_number="046192023456"),
        lambda r: r.check_subscriber(phone="+84911222333", id_number="046090078901"),
        ("id_number",),
        lambda r: r.check_subscriber(phone="+84399999999", id_number="046192023456"),
        "phone",
        False,
        {"phone": "+84388123456", "id_number": "046192023456"},
    ),
    Case(
        "social_insurance",
        HttpSocialInsuranceRegister,
        "/v1/insured/check",
        lambda r: r.check_insured(
            bhxh_code="4692023456", full_name="Võ Thị Hoà", birth_date=dt.date(1992, 1, 5)
        ),
        lambda r: r.check_insured(
            bhxh_code="4692023456", full_name="Võ Thị Hòa", birth_date=dt.date(1990, 1, 5)
        ),
        ("birth_date",),
        lambda r: r.check_insured(
            bhxh_code="4600000000", full_name="Võ Thị Hòa", birth_date=dt.date(1992, 1, 5)
        ),
        "bhxh_code",
        True,
        {**HOA, "phone": "+84388123456", "bhxh_code": "4692023456"},
    ),
]
IDEMPOTENT = [c for c in CASES if c.idempotent]
NOT_IDEMPOTENT = [c for c in CASES if not c.idempotent]


def ids(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.fixture(scope="module")
def gateway() -> Iterator[RegisterStub]:
    with RegisterStub() as running:
        yield running


@pytest.fixture
def stub(gateway: RegisterStub) -> RegisterStub:
    gateway.reset()
    return gateway


@pytest.fixture
def make() -> Iterator[Callable[..., Any]]:
    """Build an adapter against a base URL with tiny timeouts; closes its connections afterwards."""
    built: list[Any] = []

    def factory(case: Case, base_url: str, **overrides: Any) -> Any:
        settings = HttpSettings(
            base_url=base_url,
            token=TOKEN,
            connect_timeout=0.5,
            read_timeout=READ_TIMEOUT,
            retries=1,
            backoff=0.01,
            breaker_threshold=50,
            breaker_cooldown=0.3,
            max_answer_bytes=4096,
        )
        adapter = case.build(replace(settings, **overrides))
        built.append(adapter)
        return adapter

    yield factory
    for adapter in built:
        adapter.client.close()


# -- answers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ids(CASES))
def test_match(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    result = case.match(make(case, stub.base_url))
    assert result.verified
    assert result.verifier.endswith("-register:http")
    assert dict(result.attributes) == case.attributes
    assert result.mismatched == ()
    [seen] = stub.seen
    assert seen.method == "POST" and seen.path == "/gw" + case.path
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert result.evidence_id == stub.reference(seen.path, seen.body)  # the register's reference


@pytest.mark.parametrize("case", ids(CASES))
def test_no_match_names_the_fields(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    result = case.mismatch(make(case, stub.base_url))
    assert not result.verified
    assert result.mismatched == case.mismatched
    assert dict(result.attributes) == {}
    assert result.evidence_id and result.evidence_id.startswith("GW-")


@pytest.mark.parametrize("case", ids(CASES))
def test_no_record_is_an_answer(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    result = case.unknown(make(case, stub.base_url))
    assert (result.verified, result.mismatched) == (False, (case.unknown_field,))
    assert stub.count() == 1


def test_request_carries_the_accent_free_key_and_iso_dates(
    stub: RegisterStub, make: Callable[..., Any]
) -> None:
    CASES[0].match(make(CASES[0], stub.base_url))
    assert stub.seen[0].body == {
        "id_number": "046192023456",
        "full_name": "võ thị HOÀ",
        "full_name_key": "VO THI HOA",
        "birth_date": "1992-01-05",
        "id_issue_date": "2021-08-22",
        "phone": "+84388123456",
    }


def test_idp_rechecks_tones_after_the_registers_accent_free_match(
    stub: RegisterStub, make: Callable[..., Any]
) -> None:
    """The gateway compares accent-free names, so "Hóa" passes there; idp's own rule refuses it."""
    population = make(CASES[0], stub.base_url)
    result = population.check_citizen(
        id_number="046192023456", full_name="Võ Thị Hóa", birth_date=dt.date(1992, 1, 5)
    )
    assert (result.verified, result.mismatched) == (False, ("full_name",))
    assert dict(result.attributes) == {}


def test_register_name_without_diacritics_is_compared_accent_free(
    stub: RegisterStub, make: Callable[..., Any]
) -> None:
    population = make(CASES[0], stub.base_url)
    person = {**HOA, "full_name": "VO THI HOA"}
    stub.script(json_reply({"reference": "R-1", "match": True, "person": person}))
    result = population.check_citizen(
        id_number="046192023456", full_name="Võ Thị Hòa", birth_date=dt.date(1992, 1, 5)
    )
    assert result.verified and result.attributes["full_name"] == "VO THI HOA"


def test_a_match_that_contradicts_the_request_is_unavailable(
    stub: RegisterStub, make: Callable[..., Any]
) -> None:
    population = make(CASES[0], stub.base_url)
    stub.script(
        json_reply({"reference": "R-1", "match": True, "person": {**HOA, "id_number": "046192023457"}})
    )
    with pytest.raises(VerifierUnavailable, match="contradicts the id_number"):
        population.check_citizen(
            id_number="046192023456", full_name="Võ Thị Hòa", birth_date=dt.date(1992, 1, 5)
        )


@pytest.mark.parametrize("case", ids(CASES))
def test_malformed_input_is_rejected_without_calling(
    case: Case, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    adapter = make(case, stub.base_url)
    with pytest.raises(VerifierRejected):
        if case.id == "population":
            adapter.check_citizen(id_number="04619202345", full_name="A", birth_date=dt.date(1992, 1, 5))
        elif case.id == "legacy":
            adapter.find_by_legacy_id(
                legacy_id_number="19123456X", full_name="A", birth_date=dt.date(1970, 7, 4)
            )
        elif case.id == "subscriber":
            adapter.check_subscriber(phone="+8412", id_number="046192023456")
        else:
            adapter.check_insured(bhxh_code="469202345", full_name="A", birth_date=dt.date(1992, 1, 5))
    assert stub.count() == 0


# -- failures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ids(CASES))
def test_timeout_is_unavailable(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    adapter = make(case, stub.base_url)
    stub.script(Reply(delay=READ_TIMEOUT + 0.3), Reply(delay=READ_TIMEOUT + 0.3))
    started = time.monotonic()
    with pytest.raises(VerifierUnavailable, match="timed out"):
        case.match(adapter)
    attempts = 2 if case.idempotent else 1  # retries=1 for idempotent calls
    assert stub.count() == attempts
    assert time.monotonic() - started < attempts * (READ_TIMEOUT + 0.25)


@pytest.mark.parametrize("case", ids(CASES))
def test_500_is_unavailable_and_not_retried(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    stub.script(Reply(status=500))
    with pytest.raises(VerifierUnavailable, match="HTTP 500"):
        case.match(make(case, stub.base_url))
    assert stub.count() == 1


@pytest.mark.parametrize("case", ids(IDEMPOTENT))
@pytest.mark.parametrize("status", [502, 503, 504])
def test_idempotent_call_is_retried_after_a_gateway_error(
    case: Case, status: int, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    stub.script(Reply(status=status))
    assert case.match(make(case, stub.base_url)).verified
    assert stub.count() == 2
    first, second = stub.seen
    assert first.body == second.body
    assert first.headers["X-Request-Id"] == second.headers["X-Request-Id"]  # one logical call


@pytest.mark.parametrize("case", ids(IDEMPOTENT))
def test_retries_give_up(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    stub.script(Reply(status=503), Reply(status=503), Reply(status=503))
    with pytest.raises(VerifierUnavailable, match="HTTP 503"):
        case.match(make(case, stub.base_url, retries=2))
    assert stub.count() == 3


@pytest.mark.parametrize("case", ids(NOT_IDEMPOTENT))
def test_non_idempotent_call_is_not_retried(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    stub.script(Reply(status=503))
    with pytest.raises(VerifierUnavailable, match="HTTP 503"):
        case.match(make(case, stub.base_url, retries=3))
    assert stub.count() == 1


@pytest.mark.parametrize("case", ids(CASES))
@pytest.mark.parametrize(
    ("reply", "says"),
    [
        pytest.param(
            Reply(body=b'{"reference": "R-1", "match": tru'), "not a JSON object", id="truncated-json"
        ),
        pytest.param(Reply(body=b"<html>gateway</html>"), "not a JSON object", id="html"),
        pytest.param(Reply(body=b'["R-1", true]'), "not a JSON object", id="json-array"),
        pytest.param(Reply(body=b"\xff\xfe{}"), "not a JSON object", id="not-utf8"),
        pytest.param(json_reply({"match": True}), "'reference' is missing", id="no-reference"),
        pytest.param(json_reply({"reference": "R-1"}), "'match' is missing", id="no-match"),
        pytest.param(
            json_reply({"reference": 7, "match": True}), "'reference' is not a non-empty string", id="int-ref"
        ),
        pytest.param(
            json_reply({"reference": "R 1", "match": True}), "'reference' has the wrong format", id="bad-ref"
        ),
        pytest.param(
            json_reply({"reference": "R-1", "match": "yes"}), "'match' is not true or false", id="str-match"
        ),
    ],
)
def test_malformed_answer_is_unavailable(
    case: Case, reply: Reply, says: str, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    stub.script(reply)
    with pytest.raises(VerifierUnavailable, match=says):
        case.match(make(case, stub.base_url))
    assert stub.count() == 1  # a malformed answer is not retried


@pytest.mark.parametrize("case", ids([c for c in CASES if c.id != "subscriber"]))
@pytest.mark.parametrize(
    ("person", "says"),
    [
        ({}, "'person' is missing"),
        ({"person": "Võ Thị Hòa"}, "'person' is not an object"),
        ({"person": {k: v for k, v in HOA.items() if k != "full_name"}}, "'person.full_name' is missing"),
        ({"person": {**HOA, "id_number": "46192023456"}}, "'person.id_number' has the wrong format"),
        ({"person": {**HOA, "birth_date": "05/01/1992"}}, "'person.birth_date' has the wrong format"),
        ({"person": {**HOA, "birth_date": "1992-02-30"}}, "'person.birth_date' is not a real date"),
        ({"person": {**HOA, "gender": "f"}}, "'person.gender' is not one of female, male"),
        ({"person": {**HOA, "phone": "0388123456"}}, "'person.phone' has the wrong format"),
    ],
)
def test_match_without_a_valid_person_is_unavailable(
    case: Case, person: dict[str, Any], says: str, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    stub.script(json_reply({"reference": "R-1", "match": True, **person}))
    with pytest.raises(VerifierUnavailable, match=says):
        case.match(make(case, stub.base_url))


@pytest.mark.parametrize("case", ids(CASES))
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_oversized_answer_is_unavailable(
    case: Case, declared: bool, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    stub.script(Reply(oversize=2_000_000, content_length=declared))
    started = time.monotonic()
    with pytest.raises(VerifierUnavailable, match="larger than 4096 bytes"):
        case.match(make(case, stub.base_url))
    assert time.monotonic() - started < 1.0  # abandoned, not read to the end


def test_drip_fed_answer_is_abandoned_at_the_read_timeout(
    stub: RegisterStub, make: Callable[..., Any]
) -> None:
    """Each byte arrives within the socket's read timeout, but the whole answer must too."""
    body = json.dumps({"reference": "R-1", "match": True, "pad": "x" * 40}).encode()
    stub.script(Reply(body=body, drip=0.02))
    started = time.monotonic()
    with pytest.raises(VerifierUnavailable, match="answer too slow"):
        CASES[0].match(make(CASES[0], stub.base_url, retries=0))
    assert time.monotonic() - started < READ_TIMEOUT + 0.2


@pytest.mark.parametrize("case", ids(CASES))
@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_misconfigured(
    case: Case, status: int, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    stub.script(Reply(status=status))
    with pytest.raises(VerifierMisconfigured, match=f"HTTP {status}"):
        case.match(make(case, stub.base_url))
    assert stub.count() == 1


@pytest.mark.parametrize("case", ids(CASES))
def test_wrong_token_is_misconfigured(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    with pytest.raises(VerifierMisconfigured, match="HTTP 401"):
        case.match(make(case, stub.base_url, token="wrong"))


@pytest.mark.parametrize("case", ids(CASES))
@pytest.mark.parametrize("status", [400, 409, 422, 429])
def test_other_4xx_is_rejected(case: Case, status: int, stub: RegisterStub, make: Callable[..., Any]) -> None:
    stub.script(Reply(status=status))
    with pytest.raises(VerifierRejected, match=f"HTTP {status}"):
        case.match(make(case, stub.base_url))
    assert stub.count() == 1


@pytest.mark.parametrize("case", ids(CASES))
def test_404_without_the_no_record_answer_is_misconfigured(
    case: Case, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    with pytest.raises(VerifierMisconfigured, match="404"):
        case.match(make(case, stub.base_url.removesuffix("/gw") + "/wrong"))


@pytest.mark.parametrize("case", ids(CASES))
def test_redirect_is_misconfigured(case: Case, stub: RegisterStub, make: Callable[..., Any]) -> None:
    stub.script(Reply(status=302, body=b""))
    with pytest.raises(VerifierMisconfigured, match="redirect"):
        case.match(make(case, stub.base_url))


@pytest.mark.parametrize("case", ids(CASES))
def test_connection_refused_is_unavailable(case: Case, make: Callable[..., Any]) -> None:
    with RegisterStub() as gone:
        url = gone.base_url
    with pytest.raises(VerifierUnavailable, match="connection failed"):
        case.match(make(case, url, retries=0))


# -- the circuit breaker --------------------------------------------------------------------------
@pytest.mark.parametrize("case", ids(CASES))
def test_breaker_opens_after_n_failures_and_closes_after_the_cooldown(
    case: Case, stub: RegisterStub, make: Callable[..., Any]
) -> None:
    adapter = make(case, stub.base_url, breaker_threshold=3, breaker_cooldown=0.3, retries=0)
    stub.script(*[Reply(status=500)] * 3)
    for _ in range(3):
        with pytest.raises(VerifierUnavailable, match="HTTP 500"):
            case.match(adapter)
    assert adapter.client.breaker.state is BreakerState.OPEN
    for _ in range(3):
        with pytest.raises(VerifierUnavailable, match="circuit open"):
            case.match(adapter)
    assert stub.count() == 3  # nothing reached the register while open
    time.sleep(0.35)
    assert adapter.client.breaker.state is BreakerState.HALF_OPEN
    assert case.match(adapter).verified  # the trial call
    assert adapter.client.breaker.state is BreakerState.CLOSED
    assert stub.count() == 4


def test_failed_trial_call_reopens_the_circuit(stub: RegisterStub, make: Callable[..., Any]) -> None:
    case = CASES[0]
    adapter = make(case, stub.base_url, breaker_threshold=1, breaker_cooldown=0.2, retries=0)
    stub.script(Reply(status=500), Reply(status=500))
    with pytest.raises(VerifierUnavailable, match="HTTP 500"):
        case.match(adapter)
    time.sleep(0.25)
    with pytest.raises(VerifierUnavailable, match="HTTP 500"):
        case.match(adapter)  # the trial fails
    with pytest.raises(VerifierUnavailable, match="circuit open"):
        case.match(adapter)
    assert stub.count() == 2


def test_malformed_answers_count_as_failures_and_4xx_do_not(
    stub: RegisterStub, make: Callable[..., Any]
) -> None:
    case = CASES[0]
    adapter = make(case, stub.base_url, breaker_threshold=2, retries=0)
    stub.script(
        Reply(status=400), json_reply({"match": True}), Reply(status=400), json_reply({"match": True})
    )
    with pytest.raises(VerifierRejected):
        case.match(adapter)
    with pytest.raises(VerifierUnavailable):
        case.match(adapter)
    with pytest.raises(VerifierRejected):
        case.match(adapter)  # the register answered: the count starts again
    with pytest.raises(VerifierUnavailable):
        case.match(adapter)
    assert adapter.client.breaker.state is BreakerState.CLOSED


def test_each_adapter_has_its_own_breaker(stub: RegisterStub, make: Callable[..., Any]) -> None:
    population = make(CASES[0], stub.base_url, breaker_threshold=1, retries=0)
    insurance = make(CASES[3], stub.base_url, breaker_threshold=1, retries=0)
    stub.script(Reply(status=500))
    with pytest.raises(VerifierUnavailable):
        CASES[0].match(population)
    assert CASES[3].match(insurance).verified


def test_half_open_breaker_lets_exactly_one_trial_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    now[0] = 10.0
    allowed: list[bool] = []
    barrier = threading.Barrier(16)

    def ask() -> None:
        barrier.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


# -- mutual TLS ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_pki(tmp_path_factory.mktemp("register-pki"))


@pytest.mark.parametrize("case", ids(CASES))
def test_mutual_tls(case: Case, pki: Any, make: Callable[..., Any]) -> None:
    with RegisterStub(tls=pki.server_context()) as tls_stub:
        assert tls_stub.base_url.startswith("https://")
        adapter = make(
            case,
            tls_stub.base_url,
            ca_bundle=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        assert case.match(adapter).verified
        assert tls_stub.count() == 1


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param({"ca_bundle": "ca"}, id="no-client-certificate"),
        pytest.param(
            {"ca_bundle": "other_ca", "client_cert": "client_cert", "client_key": "client_key"},
            id="untrusted-server",
        ),
        pytest.param({"client_cert": "client_cert", "client_key": "client_key"}, id="system-cas"),
    ],
)
def test_tls_certificate_problems_are_misconfigured(
    tls: dict[str, str], pki: Any, make: Callable[..., Any]
) -> None:
    with RegisterStub(tls=pki.server_context()) as tls_stub:
        adapter = make(CASES[0], tls_stub.base_url, **{k: str(getattr(pki, v)) for k, v in tls.items()})
        with pytest.raises(VerifierMisconfigured, match="TLS certificate"):
            CASES[0].match(adapter)
        assert tls_stub.count() == 0


def test_missing_tls_files_are_misconfigured(tmp_path: Path) -> None:
    with pytest.raises(VerifierMisconfigured, match="client certificate file not found"):
        HttpPopulationRegister(HttpSettings("https://127.0.0.1:9", client_cert=str(tmp_path / "nope.pem")))
    with pytest.raises(VerifierMisconfigured, match="client key needs a client certificate"):
        HttpPopulationRegister(HttpSettings("https://127.0.0.1:9", client_key=str(tmp_path / "nope.key")))


# -- logs ---------------------------------------------------------------------------------------------
def test_logs_mask_id_numbers(
    stub: RegisterStub, make: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="idp.verifiers")
    population = make(CASES[0], stub.base_url)
    stub.script(Reply(status=503))
    CASES[0].match(population)
    CASES[0].mismatch(population)
    CASES[2].match(make(CASES[2], stub.base_url))
    text = caplog.text
    assert "*********456" in text
    for secret in ("046192023456", "0388123456", "388123456", "Hòa", "HOA", "1992", TOKEN):
        assert secret not in text


# -- configuration and the factory ------------------------------------------------------------------
def test_default_registers_are_the_sandbox() -> None:
    registers = build_registers(resolve({}))
    assert isinstance(registers, Registers)
    assert isinstance(registers.population, SandboxPopulationRegister)
    assert registers.population.name == "population-register:sandbox"
    assert registers.subscribers.name == "subscriber-register:sandbox"
    assert registers.social_insurance.name == "social-insurance-register:sandbox"


def test_http_registers_from_configuration(stub: RegisterStub) -> None:
    environ = {
        "IDP_REGISTERS": "http",
        "IDP_SUBSCRIBER_REGISTER": "sandbox",
        "IDP_REGISTERS_READ_TIMEOUT": "0.4",
        "POPULATION_GW_TOKEN": TOKEN,
    }
    config = resolve(
        environ,
        overrides={
            "POPULATION_REGISTER_URL": stub.base_url,
            "POPULATION_REGISTER_TOKEN_ENV": "POPULATION_GW_TOKEN",
            "SOCIAL_INSURANCE_REGISTER_URL": stub.base_url,
            "SOCIAL_INSURANCE_REGISTER_TOKEN": TOKEN,
        },
    )
    assert config["POPULATION_REGISTER_TOKEN"] is None
    registers = build_registers(config, environ)
    population, insurance = registers.population, registers.social_insurance
    assert isinstance(population, HttpPopulationRegister)
    assert isinstance(insurance, HttpSocialInsuranceRegister)
    try:
        assert isinstance(registers.subscribers, SandboxSubscriberRegister)
        assert population.client.settings.read_timeout == 0.4
        assert population.client.breaker is not insurance.client.breaker
        assert CASES[0].match(population).verified
        assert CASES[3].match(insurance).verified
        assert CASES[2].match(registers.subscribers).verifier == "subscriber-register:sandbox"
    finally:
        population.client.close()
        insurance.client.close()


@pytest.mark.parametrize(
    ("environ", "overrides", "says"),
    [
        ({"IDP_REGISTERS": "http"}, {}, "IDP_POPULATION_REGISTER_URL: is required"),
        (
            {"IDP_REGISTERS": "http", "IDP_POPULATION_REGISTER_URL": "https://gw.example.vn/dc"},
            {},
            "IDP_SUBSCRIBER_REGISTER_URL: is required",
        ),
        ({"IDP_SOCIAL_INSURANCE_REGISTER": "http"}, {}, "IDP_SOCIAL_INSURANCE_REGISTER_URL: is required"),
        ({"IDP_REGISTERS": "soap"}, {}, "IDP_REGISTERS: must be one of sandbox, http"),
        (
            {"IDP_POPULATION_REGISTER_URL": "http://gw.example.vn"},
            {},
            "IDP_POPULATION_REGISTER_URL: must use https",
        ),
        (
            {"IDP_POPULATION_REGISTER_URL": "gw.example.vn"},
            {},
            "IDP_POPULATION_REGISTER_URL: must be an absolute",
        ),
        ({"IDP_REGISTERS_READ_TIMEOUT": "0"}, {}, "IDP_REGISTERS_READ_TIMEOUT: must be greater than zero"),
        ({"IDP_REGISTERS_RETRIES": "9"}, {}, "IDP_REGISTERS_RETRIES: must be between 0 and 5"),
        (
            {"IDP_SUBSCRIBER_REGISTER": "http", "IDP_SUBSCRIBER_REGISTER_URL": "https://gw.example.vn/tb"},
            {"SUBSCRIBER_REGISTER_TOKEN": "a", "SUBSCRIBER_REGISTER_TOKEN_ENV": "B"},
            "IDP_SUBSCRIBER_REGISTER_TOKEN_ENV: set either it or",
        ),
        (
            {"IDP_SUBSCRIBER_REGISTER": "http", "IDP_SUBSCRIBER_REGISTER_URL": "https://gw.example.vn/tb"},
            {"SUBSCRIBER_REGISTER_TOKEN_ENV": "NO_SUCH_VARIABLE_FOR_IDP"},
            "environment variable NO_SUCH_VARIABLE_FOR_IDP is not set",
        ),
        (
            {"IDP_SUBSCRIBER_REGISTER": "http", "IDP_SUBSCRIBER_REGISTER_URL": "https://gw.example.vn/tb"},
            {"REGISTERS_CA_BUNDLE": "/nonexistent/ca.pem"},
            "IDP_REGISTERS_CA_BUNDLE: no such file",
        ),
        (
            {"IDP_SUBSCRIBER_REGISTER": "http", "IDP_SUBSCRIBER_REGISTER_URL": "https://gw.example.vn/tb"},
            {"REGISTERS_CLIENT_KEY": "/nonexistent/client.key"},
            "IDP_REGISTERS_CLIENT_KEY: needs IDP_REGISTERS_CLIENT_CERT",
        ),
    ],
)
def test_bad_register_settings_stop_start_up(
    environ: dict[str, str], overrides: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        resolve(environ, overrides=overrides)


def test_factory_checks_a_raw_mapping_too() -> None:
    with pytest.raises(ConfigError, match="IDP_SOCIAL_INSURANCE_REGISTER_URL: is required"):
        build_registers(
            {
                "REGISTERS": "http",
                "POPULATION_REGISTER_URL": "https://a.example",
                "SUBSCRIBER_REGISTER_URL": "https://b.example",
            }
        )


def test_sandbox_file_setting(tmp_path: Path) -> None:
    path = tmp_path / "registers.json"
    path.write_text(
        json.dumps(
            {
                "people": [
                    {
                        "id_number": "046090000001",
                        "full_name": "Lê Thị Thuỷ",
                        "birth_date": "01/01/1990",
                        "gender": "female",
                    }
                ],
                "subscribers": [],
            }
        ),
        encoding="utf-8",
    )
    registers = build_registers(resolve({}, overrides={"REGISTERS_SANDBOX_FILE": str(path)}))
    result = registers.population.check_citizen(
        id_number="046090000001", full_name="LÊ THỊ THỦY", birth_date=dt.date(1990, 1, 1)
    )
    assert result.verified
    assert not registers.population.check_citizen(
        id_number="046090001234", full_name="Nguyễn Văn An", birth_date=dt.date(1990, 3, 15)
    ).verified
