"""Remote signing with a digital-signature SIM (idp.verifiers.sim): the sandbox service (requests
in the short-lived store, approved with the SIM's PIN) and the HTTP gateway adapter against a
local stub (docs/signatures.md), including timeouts, 5xx, malformed answers and the circuit
breaker."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idp.store.ephemeral import EphemeralStore, MemoryStore, RedisStore
from idp.verifiers import signature
from idp.verifiers.base import VerifierMisconfigured, VerifierRejected, VerifierUnavailable
from idp.verifiers.http import HttpClient, HttpSettings
from idp.verifiers.revocation import FileCrlProvider
from idp.verifiers.sandbox_pki import SandboxPki, WrongPin, sign_with_sandbox_token
from idp.verifiers.signature import (
    CertificateRefused,
    ChallengeStore,
    SignatureVerifier,
    verify_challenge_signature,
)
from idp.verifiers.sim import HttpSimSigning, SandboxSimSigning, SimSigningService, SimSigningStatus
from tests.support import pki as certs
from tests.support import services
from tests.support.stub_http import Answer, Request, StubServer, closed_port_url

TRANG = "046198045678"  # her signing SIM is 0767890123, PIN 246810
TRANG_PHONE = "+84767890123"
BEN_NGU = "3109876545"  # the enterprise's signing SIM is 0909555666, PIN 778899
MESSAGE = "Cổng dịch vụ công đề nghị ký để đăng ký tài khoản. Mã xác nhận: 1234."


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SandboxPki:
    return certs.make_sandbox_pki(tmp_path_factory.mktemp("sandbox-pki"))


@pytest.fixture
def verifier(pki: SandboxPki) -> SignatureVerifier:
    return SignatureVerifier([pki.root_certificate()], crl_provider=FileCrlProvider(pki.crl_paths))


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[EphemeralStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix") + f"sim-{secrets.token_hex(4)}:"
    yield RedisStore(redis_url, prefix)
    services.clear_prefix(services.redis_client(), prefix)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(store: EphemeralStore, pki: SandboxPki, clock: Clock) -> SandboxSimSigning:
    return SandboxSimSigning(store, pki, lifetime=120, clock=clock)


# -- the sandbox service -------------------------------------------------------------------------
def test_the_sandbox_is_a_sim_signing_service(sim: SandboxSimSigning) -> None:
    assert isinstance(sim, SimSigningService)


def test_request_pending_approve_signed_verified(
    sim: SandboxSimSigning, verifier: SignatureVerifier, pki: SandboxPki
) -> None:
    challenges = ChallengeStore(MemoryStore(), 300)
    challenge = challenges.issue("register", "reg-1")
    transaction = sim.request_signature(phone="0767890123", data=challenge.data, message=MESSAGE)
    assert sim.poll(transaction) == SimSigningStatus("pending")
    [waiting] = sim.pending_for("0767890123")
    assert (waiting.transaction_id, waiting.phone, waiting.message) == (transaction, TRANG_PHONE, MESSAGE)
    assert waiting.data == challenge.data
    assert sim.pending_for("0912345678") == []

    status = sim.approve(transaction, "246810")
    assert status.state == "signed" and status.signature and len(status.chain) == 2
    assert sim.poll(transaction) == status
    assert sim.pending_for(TRANG_PHONE) == []
    found = verify_challenge_signature(
        verifier,
        challenges,
        challenge.id,
        purpose="register",
        binding="reg-1",
        signature=status.signature,
        chain=status.chain,
    )
    assert found.attributes["id_number"] == TRANG
    assert found.attributes["full_name"] == "Đặng Thu Trang"
    # The same signature cannot serve twice.
    with pytest.raises(CertificateRefused) as caught:
        verify_challenge_signature(
            verifier,
            challenges,
            challenge.id,
            purpose="register",
            binding="reg-1",
            signature=status.signature,
            chain=status.chain,
        )
    assert caught.value.reason == signature.CHALLENGE


def test_an_enterprise_sim(sim: SandboxSimSigning, verifier: SignatureVerifier) -> None:
    data = b"idp:register:" + secrets.token_bytes(32)
    transaction = sim.request_signature(phone="+84909555666", data=data, message=MESSAGE)
    status = sim.approve(transaction, "778899")
    assert status.signature is not None
    found = verifier.verify(data, status.signature, status.chain)
    assert found.attributes["subject_kind"] == "enterprise"
    assert found.attributes["tax_code"] == BEN_NGU


def test_three_wrong_pins_refuse_the_request(sim: SandboxSimSigning) -> None:
    transaction = sim.request_signature(phone=TRANG_PHONE, data=b"data", message=MESSAGE)
    for left in (2, 1, 0):
        with pytest.raises(WrongPin) as caught:
            sim.approve(transaction, "000000")
        assert caught.value.tries_left == left
    assert sim.poll(transaction) == SimSigningStatus("refused")
    assert sim.approve(transaction, "246810").state == "refused"  # the right PIN comes too late
    assert sim.pending_for(TRANG_PHONE) == []


def test_a_wrong_pin_then_the_right_one(sim: SandboxSimSigning) -> None:
    transaction = sim.request_signature(phone=TRANG_PHONE, data=b"data", message=MESSAGE)
    with pytest.raises(WrongPin):
        sim.approve(transaction, "135790")  # another holder's PIN
    assert sim.poll(transaction).state == "pending"
    assert sim.approve(transaction, "246810").state == "signed"


def test_refused_on_the_phone(sim: SandboxSimSigning) -> None:
    transaction = sim.request_signature(phone=TRANG_PHONE, data=b"data", message=MESSAGE)
    assert sim.refuse(transaction).state == "refused"
    assert sim.poll(transaction).state == "refused"
    assert sim.approve(transaction, "246810").state == "refused"


def test_nobody_answers_in_time(sim: SandboxSimSigning, clock: Clock) -> None:
    transaction = sim.request_signature(phone=TRANG_PHONE, data=b"data", message=MESSAGE)
    clock.now += 121
    assert sim.poll(transaction) == SimSigningStatus("expired")
    assert sim.approve(transaction, "246810").state == "expired"
    assert sim.pending_for(TRANG_PHONE) == []


def test_unknown_transactions_are_expired(sim: SandboxSimSigning) -> None:
    assert sim.poll("no-such-transaction").state == "expired"
    assert sim.poll("../etc/passwd").state == "expired"


def test_a_phone_without_a_signing_sim(sim: SandboxSimSigning) -> None:
    with pytest.raises(CertificateRefused) as caught:
        sim.request_signature(phone="0912345678", data=b"data", message=MESSAGE)
    assert caught.value.reason == signature.SIM_NOT_ENROLLED
    with pytest.raises(VerifierRejected):
        sim.request_signature(phone="12345", data=b"data", message=MESSAGE)
    with pytest.raises(VerifierRejected):
        sim.request_signature(phone=TRANG_PHONE, data=b"", message=MESSAGE)


# -- the HTTP gateway ----------------------------------------------------------------------------
TOKEN = "sim-gateway-token-0123456789"


class Gateway:
    """A SIM signing gateway stub speaking docs/signatures.md; the test scripts the next answers."""

    def __init__(self, pki: SandboxPki) -> None:
        self.pki = pki
        self.script: list[Answer] = []
        self.transactions: dict[str, dict[str, Any]] = {}
        self.server = StubServer(self.handle)

    def json(self, document: Any, status: int = 200) -> Answer:
        return Answer(status, json.dumps(document).encode())

    def handle(self, request: Request) -> Answer:
        if self.script:
            return self.script.pop(0)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.json({"error": "unauthorized"}, 401)
        if request.method == "POST" and request.path == "/api/signatures":
            body = json.loads(request.body)
            holder = self.pki.holder_for_phone(body["phone"])
            if holder is None:
                return self.json({"reason": "no_record"}, 404)
            transaction = secrets.token_urlsafe(12)
            self.transactions[transaction] = {
                "holder": holder,
                "data": base64.b64decode(body["data"]),
                "body": body,
            }
            return self.json({"transaction_id": transaction}, 201)
        if request.method == "GET" and request.path.startswith("/api/signatures/"):
            found = self.transactions.get(request.path.rsplit("/", 1)[1])
            if found is None:
                return self.json({"reason": "no_record"}, 404)
            if "signed" not in found:
                return self.json({"state": "pending"})
            signed, chain = found["signed"]
            return self.json(
                {
                    "state": "signed",
                    "signature": base64.b64encode(signed).decode(),
                    "certificate_chain": [base64.b64encode(c).decode() for c in chain],
                }
            )
        return self.json({"error": "not found"}, 404)

    def confirm(self, transaction: str) -> None:
        """The person types the PIN on the phone."""
        found = self.transactions[transaction]
        holder = found["holder"]
        found["signed"] = sign_with_sandbox_token(self.pki, holder.key, holder.pin, found["data"])


@pytest.fixture
def gateway(pki: SandboxPki) -> Iterator[Gateway]:
    stub = Gateway(pki)
    yield stub
    stub.server.close()


def http_sim(url: str, **options: Any) -> HttpSimSigning:
    settings = HttpSettings(
        base_url=url,
        token=TOKEN,
        connect_timeout=1.0,
        read_timeout=options.pop("read_timeout", 0.5),
        retries=options.pop("retries", 2),
        backoff=0.01,
        backoff_max=0.02,
        breaker_threshold=options.pop("breaker_threshold", 5),
        breaker_cooldown=60.0,
    )
    return HttpSimSigning(settings, client=HttpClient(HttpSimSigning.name, settings, sleep=lambda s: None))


def test_the_http_service_end_to_end(gateway: Gateway, verifier: SignatureVerifier) -> None:
    sim = http_sim(gateway.server.url + "/api")
    assert isinstance(sim, SimSigningService)
    data = b"idp:register:" + secrets.token_bytes(32)
    transaction = sim.request_signature(phone="0767890123", data=data, message=MESSAGE)
    sent = gateway.transactions[transaction]["body"]
    assert sent["phone"] == TRANG_PHONE and sent["message"] == MESSAGE
    assert base64.b64decode(sent["data"]) == data and len(base64.b64decode(sent["data_sha256"])) == 32
    assert sent["expires_in"] == 180
    assert sim.poll(transaction) == SimSigningStatus("pending")
    gateway.confirm(transaction)
    status = sim.poll(transaction)
    assert status.state == "signed" and status.signature is not None
    assert verifier.verify(data, status.signature, status.chain).attributes["id_number"] == TRANG


def test_the_http_service_phone_without_a_signing_sim(gateway: Gateway) -> None:
    sim = http_sim(gateway.server.url + "/api")
    with pytest.raises(CertificateRefused) as caught:
        sim.request_signature(phone="0912345678", data=b"data", message=MESSAGE)
    assert caught.value.reason == signature.SIM_NOT_ENROLLED


def test_the_http_service_unknown_transaction_is_expired(gateway: Gateway) -> None:
    sim = http_sim(gateway.server.url + "/api")
    assert sim.poll("unknown-transaction").state == "expired"
    assert sim.poll("../../admin").state == "expired"
    assert gateway.server.requests[-1].path == "/api/signatures/unknown-transaction"


@pytest.mark.parametrize("state", ["pending", "refused", "expired"])
def test_the_http_service_states(gateway: Gateway, state: str) -> None:
    gateway.script.append(gateway.json({"state": state}))
    assert http_sim(gateway.server.url + "/api").poll("transaction-1").state == state


def test_the_poll_is_retried_after_a_5xx(gateway: Gateway) -> None:
    gateway.script += [Answer(503, b"busy"), Answer(502, b"busy"), gateway.json({"state": "pending"})]
    assert http_sim(gateway.server.url + "/api").poll("transaction-1").state == "pending"
    assert len(gateway.server.requests) == 3


def test_the_poll_gives_up_after_its_retries(gateway: Gateway) -> None:
    gateway.script += [Answer(503, b"busy")] * 3
    with pytest.raises(VerifierUnavailable):
        http_sim(gateway.server.url + "/api").poll("transaction-1")
    assert len(gateway.server.requests) == 3


def test_the_request_is_never_retried(gateway: Gateway) -> None:
    """A second request would make the phone ask the person twice."""
    gateway.script += [Answer(503, b"busy"), gateway.json({"transaction_id": "transaction-1"}, 201)]
    with pytest.raises(VerifierUnavailable):
        http_sim(gateway.server.url + "/api").request_signature(phone=TRANG_PHONE, data=b"d", message=MESSAGE)
    assert len(gateway.server.requests) == 1


def test_a_timeout(gateway: Gateway) -> None:
    gateway.script += [Answer(200, b'{"state": "pending"}', delay=1.0)] * 2
    sim = http_sim(gateway.server.url + "/api", read_timeout=0.3, retries=1)
    with pytest.raises(VerifierUnavailable, match="timed out|too slow"):
        sim.poll("transaction-1")


def test_an_unreachable_gateway() -> None:
    with pytest.raises(VerifierUnavailable):
        http_sim(closed_port_url() + "/api").request_signature(phone=TRANG_PHONE, data=b"d", message=MESSAGE)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b"not json"),
        Answer(200, b"[]"),
        Answer(200, b'{"state": "maybe"}'),
        Answer(200, b'{"state": "signed"}'),
        Answer(200, b'{"state": "signed", "signature": "***", "certificate_chain": ["AAAA"]}'),
        Answer(200, b'{"state": "signed", "signature": "AAAA", "certificate_chain": []}'),
        Answer(200, b'{"state": "signed", "signature": "AAAA", "certificate_chain": "AAAA"}'),
        Answer(200, b'{"state": "signed", "signature": "AAAA", "certificate_chain": ["%%%"]}'),
        Answer(200, json.dumps({"state": "pending", "pad": "x" * 300_000}).encode()),
    ],
)
def test_a_malformed_poll_answer(gateway: Gateway, answer: Answer) -> None:
    gateway.script.append(answer)
    with pytest.raises(VerifierUnavailable):
        http_sim(gateway.server.url + "/api").poll("transaction-1")


@pytest.mark.parametrize(
    "answer",
    [Answer(201, b"{}"), Answer(201, b'{"transaction_id": "a b"}'), Answer(201, b"<html>")],
)
def test_a_malformed_request_answer(gateway: Gateway, answer: Answer) -> None:
    gateway.script.append(answer)
    with pytest.raises(VerifierUnavailable):
        http_sim(gateway.server.url + "/api").request_signature(phone=TRANG_PHONE, data=b"d", message=MESSAGE)


def test_credentials_refused(gateway: Gateway) -> None:
    settings = HttpSettings(base_url=gateway.server.url + "/api", token="wrong", read_timeout=0.5)
    with pytest.raises(VerifierMisconfigured):
        HttpSimSigning(settings).poll("transaction-1")


def test_bad_input_is_refused_before_any_call(gateway: Gateway) -> None:
    sim = http_sim(gateway.server.url + "/api")
    with pytest.raises(VerifierRejected):
        sim.request_signature(phone="not a phone", data=b"d", message=MESSAGE)
    with pytest.raises(VerifierRejected):
        sim.request_signature(phone=TRANG_PHONE, data=b"d" * 5000, message=MESSAGE)
    assert gateway.server.requests == []


def test_the_circuit_opens_after_repeated_failures(gateway: Gateway) -> None:
    sim = http_sim(gateway.server.url + "/api", retries=0, breaker_threshold=2)
    gateway.script += [Answer(500, b"down")] * 2
    for _ in range(2):
        with pytest.raises(VerifierUnavailable):
            sim.poll("transaction-1")
    with pytest.raises(VerifierUnavailable, match="circuit open"):
        sim.poll("transaction-1")
    assert len(gateway.server.requests) == 2  # the open circuit did not call


def test_build_signing_picks_the_http_service(pki: SandboxPki, tmp_path: Path) -> None:
    from idp.verifiers.signing import build_signing

    config = {
        "SIM_SIGNING_MODE": "http",
        "SIM_SIGNING_URL": "https://sim.example.vn/api",
        "SIM_SIGNING_TOKEN": TOKEN,
        "SIGNATURE_TRUST_ANCHORS": str(pki.root_certificate_path),
        "SIGNATURE_CRL_FETCH": False,
    }
    built = build_signing(config, MemoryStore())
    assert isinstance(built.sim, HttpSimSigning)
    assert built.sim.client.settings.token == TOKEN
    assert built.sim.client.settings.base_url == "https://sim.example.vn/api"
