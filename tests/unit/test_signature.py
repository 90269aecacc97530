"""Digital-signature verification (idp.verifiers.signature): the certificate path to the trust
anchor, dates, key usage, revocation by CRL and OCSP, the signature over a single-use challenge,
and the identifier read from the subject — against the sandbox PKI and bad certificates made on
the fly with its CA keys (tests/support/pki.py)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import stat
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idp.store.ephemeral import EphemeralStore, MemoryStore, RedisStore
from idp.verifiers import signature
from idp.verifiers.base import VerifierMisconfigured, VerifierRejected
from idp.verifiers.revocation import FileCrlProvider, HttpCrlProvider, OcspClient
from idp.verifiers.sandbox_pki import (
    CA_NAME,
    ROOT_NAME,
    SandboxPki,
    WrongPin,
    create_sandbox_pki,
    sign_with_sandbox_token,
)
from idp.verifiers.signature import (
    CertificateRefused,
    ChallengeStore,
    SignatureVerifier,
    verify_challenge_signature,
)
from idp.verifiers.signing import Signing, build_signing
from tests.support import pki as certs
from tests.support import services
from tests.support.stub_http import Answer, Request, StubServer, closed_port_url

AN = "046090001234"  # USB token, RSA (registers.json)
TRANG = "046198045678"  # SIM, ECDSA P-256
SEN_VANG = "0100233488"  # enterprise, USB token
DATA = b"idp:register:" + b"A" * 43


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SandboxPki:
    return certs.make_sandbox_pki(tmp_path_factory.mktemp("sandbox-pki"))


def make_verifier(pki: SandboxPki, **options: Any) -> SignatureVerifier:
    options.setdefault("crl_provider", FileCrlProvider(pki.crl_paths))
    return SignatureVerifier([pki.root_certificate()], **options)


@pytest.fixture
def verifier(pki: SandboxPki) -> SignatureVerifier:
    return make_verifier(pki)


def refused(verifier: SignatureVerifier, data: bytes, signature_: bytes, chain: Any) -> str:
    with pytest.raises(CertificateRefused) as caught:
        verifier.verify(data, signature_, chain)
    assert isinstance(caught.value, VerifierRejected)
    assert caught.value.reason in signature.REASONS
    return caught.value.reason


# -- good certificates ---------------------------------------------------------------------------
def test_a_persons_usb_token_rsa_is_verified(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.holder(pki, AN)
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    assert found.verified
    assert found.verifier == f"signature:{CA_NAME}"
    assert found.evidence_id == "sha256:" + token.certificate.fingerprint(hashes.SHA256()).hex()
    assert found.verified_at.tzinfo is None
    assert abs(found.verified_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(seconds=30)
    attributes = dict(found.attributes)
    assert attributes["subject_kind"] == "person"
    assert attributes["id_number"] == AN
    assert attributes["full_name"] == "Nguyễn Văn An"
    assert "legacy_id_number" not in attributes and "tax_code" not in attributes
    assert int(attributes["certificate_serial"], 16) == token.serial
    assert len(attributes["certificate_serial"]) % 2 == 0
    assert attributes["certificate_issuer"] == CA_NAME
    assert attributes["certificate_not_after"] == token.certificate.not_valid_after_utc.isoformat()


def test_a_persons_sim_ecdsa_p256_is_verified(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.holder(pki, TRANG)
    assert token.certificate.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    assert found.attributes["id_number"] == TRANG
    assert found.attributes["full_name"] == "Đặng Thu Trang"


def test_an_enterprise_certificate_gives_tax_code_and_name(
    pki: SandboxPki, verifier: SignatureVerifier
) -> None:
    token = certs.holder(pki, SEN_VANG)
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    expected = {
        "subject_kind": "enterprise",
        "tax_code": SEN_VANG,
        "organization_name": "Công ty TNHH Sen Vàng",
        "email": "lienhe@senvang.example.vn",
    }
    assert {key: found.attributes.get(key) for key in expected} == expected
    assert "id_number" not in found.attributes and "full_name" not in found.attributes


def test_a_branch_tax_code_written_with_a_space(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.branch_enterprise(pki)
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    assert found.attributes["subject_kind"] == "enterprise"
    assert found.attributes["tax_code"] == certs.BRANCH_TAX_CODE
    assert found.attributes["organization_name"] == "Công ty TNHH Thử Nghiệm - Chi nhánh Huế"


def test_an_enterprise_without_o_is_named_by_its_cn(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.issue(pki, common_name="Hợp tác xã Thử", uid="MST:0100233488")
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    assert found.attributes["organization_name"] == "Hợp tác xã Thử"


def test_a_cmnd_certificate_gives_the_legacy_number(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.cmnd(pki)
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    assert found.attributes["subject_kind"] == "person"
    assert found.attributes["legacy_id_number"] == certs.LEGACY_CMND
    assert "id_number" not in found.attributes


def test_a_plain_12_digit_serial_number_attribute_is_an_id_number(
    pki: SandboxPki, verifier: SignatureVerifier
) -> None:
    token = certs.issue(pki, uid=None, serial_number_attribute=certs.THU_ID, email="thu@example.vn")
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    assert found.attributes["id_number"] == certs.THU_ID
    assert found.attributes["email"] == "thu@example.vn"


def test_the_certificate_names_whom_it_names(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    """A certificate naming a different ID number verifies: the flow must take the number from the
    Verification, never from what the person typed."""
    token = certs.naming(pki, "046301007777", "Lê Hoàng Cúc")
    found = verifier.verify(DATA, token.sign(DATA), token.chain)
    assert found.attributes["id_number"] == "046301007777" != AN


@pytest.mark.parametrize("key", ["rsa", "p256", "p384"])
def test_rsa_and_ecdsa_keys(pki: SandboxPki, verifier: SignatureVerifier, key: str) -> None:
    token = certs.issue(pki, key=key)
    assert verifier.verify(DATA, token.sign(DATA), token.chain).attributes["id_number"] == certs.THU_ID


def test_rsa_pss_and_raw_ecdsa_signatures(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    rsa_token = certs.issue(pki, key="rsa")
    assert verifier.verify(DATA, rsa_token.sign(DATA, pss=True), rsa_token.chain).verified
    for key in ("p256", "p384"):
        ec_token = certs.issue(pki, key=key)
        assert verifier.verify(DATA, ec_token.sign(DATA, raw_ecdsa=True), ec_token.chain).verified


def test_chain_formats(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.holder(pki, AN)
    signed = token.sign(DATA)
    as_base64 = ",".join(base64.b64encode(c).decode() for c in token.chain)
    wrapped = ",\n".join("\n".join(textwrap.wrap(base64.b64encode(c).decode(), 64)) for c in token.chain)
    url_safe = ",".join(base64.urlsafe_b64encode(c).decode().rstrip("=") for c in token.chain)
    chains = (
        token.chain,
        list(token.chain),
        token.pem_chain,
        token.pem_chain.encode(),
        as_base64,
        wrapped,
        url_safe,
    )
    for chain in chains:
        assert verifier.verify(DATA, signed, chain).attributes["id_number"] == AN


def test_a_token_that_sends_only_its_own_certificate(pki: SandboxPki) -> None:
    token = certs.holder(pki, AN)
    without = make_verifier(pki)
    assert refused(without, DATA, token.sign(DATA), token.chain[:1]) == signature.UNKNOWN_ISSUER
    with_intermediate = make_verifier(pki, intermediates=[pki.ca_certificate()])
    assert with_intermediate.verify(DATA, token.sign(DATA), token.chain[:1]).verified


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (certs.expired, signature.EXPIRED),
        (certs.not_yet_valid, signature.NOT_YET_VALID),
        (certs.revoked, signature.REVOKED),
        (certs.from_unknown_ca, signature.UNKNOWN_ISSUER),
        (certs.key_encipherment_only, signature.KEY_USAGE),
        (certs.no_identifier, signature.NO_IDENTIFIER),
    ],
)
def test_each_bad_certificate_has_its_reason(
    pki: SandboxPki, verifier: SignatureVerifier, make: Callable[[SandboxPki], certs.Signer], reason: str
) -> None:
    token = make(pki)
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == reason


def test_a_revoked_ecdsa_certificate(pki: SandboxPki, tmp_path: Path) -> None:
    token = certs.issue(pki, key="p256")
    crl = tmp_path / "ca.crl"
    crl.write_bytes(certs.crl_pem(pki, [token.serial]))
    verifier = make_verifier(pki, crl_provider=FileCrlProvider([crl, pki.crl_paths[1]]))
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED


@pytest.mark.parametrize(
    "usage",
    [
        None,  # no keyUsage at all
        certs.KEY_ENCIPHERMENT_ONLY,
    ],
)
def test_key_usage_must_allow_signing(pki: SandboxPki, verifier: SignatureVerifier, usage: Any) -> None:
    token = certs.issue(pki, usage=usage)
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.KEY_USAGE


def test_a_tls_server_certificate_is_not_for_signing(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.issue(pki, extended_usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.KEY_USAGE
    without_eku = certs.issue(pki, extended_usage=None)
    assert verifier.verify(DATA, without_eku.sign(DATA), without_eku.chain).verified


def test_a_signature_over_another_challenge(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    challenges = ChallengeStore(MemoryStore(), 300)
    first, second = challenges.issue("register", "b"), challenges.issue("register", "b")
    token = certs.holder(pki, AN)
    assert refused(verifier, second.data, token.sign(first.data), token.chain) == signature.BAD_SIGNATURE
    ec_token = certs.holder(pki, TRANG)
    assert (
        refused(verifier, second.data, ec_token.sign(first.data), ec_token.chain) == signature.BAD_SIGNATURE
    )


def test_a_tampered_signature(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    for key in (AN, TRANG):
        token = certs.holder(pki, key)
        signed = bytearray(token.sign(DATA))
        signed[len(signed) // 2] ^= 0x01
        assert refused(verifier, DATA, bytes(signed), token.chain) in (
            signature.BAD_SIGNATURE,
            signature.MALFORMED,
        )
    token = certs.holder(pki, AN)
    signed = bytearray(token.sign(DATA))
    signed[-1] ^= 0x01
    assert refused(verifier, DATA, bytes(signed), token.chain) == signature.BAD_SIGNATURE


def test_a_signature_by_another_persons_key(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    """Someone's certificate with someone else's signature (a stolen certificate, not its key)."""
    mine, other = certs.holder(pki, AN), certs.holder(pki, "046083056789")
    assert refused(verifier, DATA, other.sign(DATA), mine.chain) == signature.BAD_SIGNATURE


@pytest.mark.parametrize(
    "chain",
    [
        b"",
        [],
        b"not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "bm90IGEgY2VydGlmaWNhdGU=",
        [b"\x30\x03\x02\x01\x01"],
        "%%%",
        [b"x" * 70000],
    ],
)
def test_a_malformed_chain(pki: SandboxPki, verifier: SignatureVerifier, chain: Any) -> None:
    token = certs.holder(pki, AN)
    assert refused(verifier, DATA, token.sign(DATA), chain) == signature.MALFORMED


@pytest.mark.parametrize("signed", [b"", b"\x00" * 2000])
def test_a_malformed_signature(pki: SandboxPki, verifier: SignatureVerifier, signed: bytes) -> None:
    assert refused(verifier, DATA, signed, certs.holder(pki, AN).chain) == signature.MALFORMED


def test_a_garbage_ecdsa_signature_is_bad(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.holder(pki, TRANG)
    assert refused(verifier, DATA, b"\x30\x02\x01", token.chain) in (
        signature.BAD_SIGNATURE,
        signature.MALFORMED,
    )


def test_too_many_certificates(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    token = certs.holder(pki, AN)
    assert refused(verifier, DATA, token.sign(DATA), list(token.chain) * 6) == signature.MALFORMED


def test_a_ca_certificate_is_not_a_signers(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    ca_signer = certs.Signer(
        pki.ca_private_key(), pki.ca_certificate(), (pki.ca_certificate().public_bytes(certs.DER),)
    )
    assert refused(verifier, DATA, ca_signer.sign(DATA), ca_signer.chain) in (
        signature.KEY_USAGE,
        signature.UNKNOWN_ISSUER,
    )


def test_trust_anchors_are_required() -> None:
    with pytest.raises(VerifierMisconfigured):
        SignatureVerifier([], crl_provider=FileCrlProvider([]))
    with pytest.raises(VerifierMisconfigured):
        SignatureVerifier([b"garbage"], crl_provider=FileCrlProvider([]))


# -- CRLs ----------------------------------------------------------------------------------------
def test_a_stale_crl_leaves_revocation_unknown(pki: SandboxPki) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(
        days=40
    )  # past the CRLs' nextUpdate, the certificate still valid
    verifier = make_verifier(pki, clock=lambda: later)
    token = certs.holder(pki, AN)
    assert token.certificate.not_valid_after_utc > later
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOCATION_UNKNOWN


def test_no_crl_at_all_leaves_revocation_unknown(pki: SandboxPki) -> None:
    verifier = make_verifier(pki, crl_provider=FileCrlProvider([]))
    token = certs.holder(pki, AN)
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOCATION_UNKNOWN


def test_a_crl_signed_by_another_key_is_not_believed(pki: SandboxPki, tmp_path: Path) -> None:
    forged = tmp_path / "forged.crl"
    forged.write_bytes(certs.crl_pem(pki, [], authority=certs.unknown_ca()))
    verifier = make_verifier(pki, crl_provider=FileCrlProvider([forged, pki.crl_paths[1]]))
    token = certs.revoked(pki)
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOCATION_UNKNOWN


def test_the_ca_itself_needs_a_current_crl_from_the_root(pki: SandboxPki) -> None:
    token = certs.holder(pki, AN)
    leaf_only = make_verifier(pki, crl_provider=FileCrlProvider([pki.crl_paths[0]]))
    assert refused(leaf_only, DATA, token.sign(DATA), token.chain) == signature.REVOCATION_UNKNOWN
    relaxed = make_verifier(pki, crl_provider=FileCrlProvider([pki.crl_paths[0]]), check_ca_revocation=False)
    assert relaxed.verify(DATA, token.sign(DATA), token.chain).verified


def test_crl_files_are_read_again_when_they_change(pki: SandboxPki, tmp_path: Path) -> None:
    folder = tmp_path / "crls"
    folder.mkdir()
    (folder / "root.crl").write_bytes(pki.crl_paths[1].read_bytes())
    token = certs.issue(pki)
    ca_crl = folder / "ca.crl"
    ca_crl.write_bytes(certs.crl_pem(pki, []))
    verifier = make_verifier(pki, crl_provider=FileCrlProvider([folder]))
    assert verifier.verify(DATA, token.sign(DATA), token.chain).verified
    ca_crl.write_bytes(certs.crl_pem(pki, [token.serial], this_update=dt.datetime.now(dt.UTC)))
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED
    ca_crl.write_bytes(b"half written")  # keeps the last good content
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Request], Answer]], StubServer]]:
    servers: list[StubServer] = []

    def start(handle: Callable[[Request], Answer]) -> StubServer:
        servers.append(StubServer(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


Serve = Callable[[Callable[[Request], Answer]], StubServer]


def crl_answer(data: bytes) -> Answer:
    return Answer(200, data, "application/pkix-crl")


def test_crls_fetched_from_the_distribution_point_are_cached(pki: SandboxPki, serve: Serve) -> None:
    published: dict[str, bytes] = {}
    server = serve(lambda request: crl_answer(published[request.path]))
    token = certs.issue(pki, crl_url=f"{server.url}/ca.crl")
    published["/ca.crl"] = x509.load_pem_x509_crl(certs.crl_pem(pki, [])).public_bytes(certs.DER)
    verifier = make_verifier(pki, crl_provider=_root_file_then_http(pki))
    assert verifier.verify(DATA, token.sign(DATA), token.chain).verified
    assert verifier.verify(DATA, token.sign(DATA), token.chain).verified
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/ca.crl")]  # cached until nextUpdate


def _root_file_then_http(pki: SandboxPki, **options: Any) -> signature.CrlProvider:
    return signature.CompositeCrlProvider(FileCrlProvider([pki.crl_paths[1]]), HttpCrlProvider(**options))


def test_a_revoked_certificate_in_a_fetched_crl(pki: SandboxPki, serve: Serve) -> None:
    published: dict[str, bytes] = {}
    server = serve(lambda request: crl_answer(published[request.path]))
    token = certs.issue(pki, key="p384", crl_url=f"{server.url}/ca.crl")
    published["/ca.crl"] = certs.crl_pem(pki, [token.serial])  # PEM is accepted too
    verifier = make_verifier(pki, crl_provider=_root_file_then_http(pki))
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED


@pytest.mark.parametrize("trouble", ["oversized", "slow", "404", "garbage", "unreachable"])
def test_a_crl_that_cannot_be_fetched(pki: SandboxPki, serve: Serve, trouble: str) -> None:
    good = x509.load_pem_x509_crl(certs.crl_pem(pki, [])).public_bytes(certs.DER)

    answers = {
        "slow": Answer(200, good, "application/pkix-crl", delay=1.5),
        "404": Answer(404, b"no", "text/plain"),
        "garbage": crl_answer(b"\x30\x03garbage"),
        "oversized": crl_answer(good + b"\x00" * 5000),
    }

    def handle(request: Request) -> Answer:
        return answers[trouble]

    url = closed_port_url() if trouble == "unreachable" else serve(handle).url
    token = certs.issue(pki, crl_url=f"{url}/ca.crl")
    provider = _root_file_then_http(pki, timeout=0.5, max_bytes=2000)
    verifier = make_verifier(pki, crl_provider=provider)
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOCATION_UNKNOWN


# -- OCSP ----------------------------------------------------------------------------------------
class OcspResponder:
    """A small OCSP responder (RFC 6960) signing with the licensed CA's key: ``status`` maps a
    serial number to "good" or "revoked"; others are "unknown"."""

    def __init__(self, pki: SandboxPki, serve: Serve) -> None:
        self.ca = pki.ca_certificate()
        self.key = pki.ca_private_key()
        self.status: dict[int, str] = {}
        self.signing_key: Any = None  # another key: a forged answer
        self.delegate: tuple[x509.Certificate, Any] | None = None  # a delegated responder signs
        self.server = serve(self.handle)
        self.url = self.server.url + "/ocsp"

    def handle(self, received: Request) -> Answer:
        request = ocsp.load_der_ocsp_request(received.body)
        now = dt.datetime.now(dt.UTC)
        state = self.status.get(request.serial_number, "unknown")
        cert_status = {
            "good": ocsp.OCSPCertStatus.GOOD,
            "revoked": ocsp.OCSPCertStatus.REVOKED,
            "unknown": ocsp.OCSPCertStatus.UNKNOWN,
        }[state]
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=cert_status,
            this_update=now - dt.timedelta(minutes=1),
            next_update=now + dt.timedelta(hours=1),
            revocation_time=now - dt.timedelta(days=1) if state == "revoked" else None,
            revocation_reason=x509.ReasonFlags.key_compromise if state == "revoked" else None,
        )
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
            builder = builder.add_extension(nonce, critical=False)
        except x509.ExtensionNotFound:
            pass
        if self.delegate is not None:
            certificate, key = self.delegate
            builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, certificate).certificates(
                [certificate]
            )
            answer = builder.sign(key, hashes.SHA256())
        else:
            builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca)
            answer = builder.sign(self.signing_key or self.key, hashes.SHA256())
        return Answer(200, answer.public_bytes(serialization.Encoding.DER), "application/ocsp-response")


@pytest.fixture
def responder(pki: SandboxPki, serve: Serve) -> OcspResponder:
    return OcspResponder(pki, serve)


def test_ocsp_good_is_enough_without_a_leaf_crl(pki: SandboxPki, responder: OcspResponder) -> None:
    token = certs.issue(pki, key="p256")
    responder.status[token.serial] = "good"
    root_crl_only = FileCrlProvider([pki.crl_paths[1]])
    verifier = make_verifier(pki, crl_provider=root_crl_only, ocsp=OcspClient(responder.url, timeout=2))
    assert verifier.verify(DATA, token.sign(DATA), token.chain).verified
    assert [(r.method, r.path) for r in responder.server.requests] == [("POST", "/ocsp")]


def test_ocsp_revoked_wins_over_a_clean_crl(pki: SandboxPki, responder: OcspResponder) -> None:
    token = certs.issue(pki)
    responder.status[token.serial] = "revoked"
    verifier = make_verifier(pki, ocsp=OcspClient(responder.url, timeout=2))
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED


def test_ocsp_from_the_certificates_aia(pki: SandboxPki, responder: OcspResponder) -> None:
    token = certs.issue(pki, ocsp_url=responder.url)
    responder.status[token.serial] = "revoked"
    verifier = make_verifier(pki, ocsp=OcspClient("aia", timeout=2))
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED


def test_ocsp_unknown_falls_back_to_the_crl(pki: SandboxPki, responder: OcspResponder) -> None:
    verifier = make_verifier(pki, ocsp=OcspClient(responder.url, timeout=2))
    good, bad = certs.holder(pki, AN), certs.revoked(pki)
    assert verifier.verify(DATA, good.sign(DATA), good.chain).verified
    assert refused(verifier, DATA, bad.sign(DATA), bad.chain) == signature.REVOKED


def test_ocsp_unreachable_falls_back_to_a_current_crl(pki: SandboxPki) -> None:
    ocsp_client = OcspClient(closed_port_url() + "/ocsp", timeout=1)
    token = certs.holder(pki, AN)
    assert make_verifier(pki, ocsp=ocsp_client).verify(DATA, token.sign(DATA), token.chain).verified
    revoked = certs.revoked(pki)
    assert (
        refused(make_verifier(pki, ocsp=ocsp_client), DATA, revoked.sign(DATA), revoked.chain)
        == signature.REVOKED
    )
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)  # the CRL is stale by then
    stale = make_verifier(pki, ocsp=ocsp_client, clock=lambda: later)
    assert refused(stale, DATA, token.sign(DATA), token.chain) == signature.REVOCATION_UNKNOWN


def test_an_ocsp_answer_signed_by_another_key_is_ignored(pki: SandboxPki, responder: OcspResponder) -> None:
    token = certs.revoked(pki)
    responder.status[token.serial] = "good"
    responder.signing_key = certs.new_key("rsa")
    verifier = make_verifier(pki, ocsp=OcspClient(responder.url, timeout=2))
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED  # the CRL decides


def test_an_ocsp_server_error_falls_back_to_the_crl(pki: SandboxPki, serve: Serve) -> None:
    server = serve(lambda request: Answer(500, b"down", "text/plain"))
    verifier = make_verifier(pki, ocsp=OcspClient(server.url, timeout=2), crl_provider=FileCrlProvider([]))
    token = certs.holder(pki, AN)
    assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOCATION_UNKNOWN


def delegate_certificate(pki: SandboxPki, *, for_ocsp: bool) -> tuple[x509.Certificate, Any]:
    key = certs.new_key("p256")
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.OCSP_SIGNING if for_ocsp else ExtendedKeyUsageOID.CLIENT_AUTH
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sandbox OCSP")]))
        .issuer_name(pki.ca_certificate().subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(pki.ca_private_key(), hashes.SHA256())
    )
    return certificate, key


@pytest.mark.parametrize("for_ocsp", [True, False])
def test_a_delegated_ocsp_responder(pki: SandboxPki, responder: OcspResponder, for_ocsp: bool) -> None:
    """A responder certificate the CA issued for OCSP signing is believed (here "good" for a
    certificate the CRL lists, to show who decided); one not marked for OCSP is not: the CRL decides."""
    token = certs.revoked(pki)
    responder.status[token.serial] = "good"
    responder.delegate = delegate_certificate(pki, for_ocsp=for_ocsp)
    verifier = make_verifier(pki, ocsp=OcspClient(responder.url, timeout=2))
    if for_ocsp:
        assert verifier.verify(DATA, token.sign(DATA), token.chain).verified
    else:
        assert refused(verifier, DATA, token.sign(DATA), token.chain) == signature.REVOKED


# -- challenges ----------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[EphemeralStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix") + f"sig-{secrets.token_hex(4)}:"
    yield RedisStore(redis_url, prefix)
    services.clear_prefix(services.redis_client(), prefix)


def test_a_challenge_is_used_once(store: EphemeralStore) -> None:
    challenges = ChallengeStore(store, 300)
    issued = challenges.issue("register", "reg-1:browser-a")
    assert issued.data.startswith(b"idp:register:")
    random_part = base64.urlsafe_b64decode(issued.data.split(b":")[-1] + b"=")
    assert len(random_part) >= 32
    assert issued.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=290)
    assert challenges.consume(issued.id, "register", "reg-1:browser-a") == issued.data
    assert challenges.consume(issued.id, "register", "reg-1:browser-a") is None  # a replay


def test_challenges_differ(store: EphemeralStore) -> None:
    challenges = ChallengeStore(store, 300)
    issued = [challenges.issue("register", "b") for _ in range(20)]
    assert len({c.id for c in issued}) == len({c.data for c in issued}) == 20


@pytest.mark.parametrize(
    ("purpose", "binding"), [("assurance", "reg-1:browser-a"), ("register", "reg-1:browser-b")]
)
def test_a_challenge_for_another_purpose_or_binding(
    store: EphemeralStore, purpose: str, binding: str
) -> None:
    challenges = ChallengeStore(store, 300)
    issued = challenges.issue("register", "reg-1:browser-a")
    assert challenges.consume(issued.id, purpose, binding) is None
    # ... and it is used up: the rightful owner cannot use it after a foreign attempt either.
    assert challenges.consume(issued.id, "register", "reg-1:browser-a") is None


def test_an_expired_or_unknown_challenge(store: EphemeralStore) -> None:
    moment = [time.time()]
    challenges = ChallengeStore(store, 60, clock=lambda: moment[0])
    issued = challenges.issue("register", "b")
    moment[0] += 61
    assert challenges.consume(issued.id, "register", "b") is None
    assert challenges.consume("x" * 32, "register", "b") is None
    assert challenges.consume("", "register", "b") is None
    assert challenges.consume("../../etc", "register", "b") is None


def test_a_challenge_used_by_racing_requests_is_given_once(store: EphemeralStore) -> None:
    challenges = ChallengeStore(store, 300)
    issued = challenges.issue("register", "b")
    results: list[bytes | None] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        results.append(challenges.consume(issued.id, "register", "b"))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda r: r is None) == [issued.data] + [None] * 7


def test_verify_challenge_signature(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    challenges = ChallengeStore(MemoryStore(), 300)
    issued = challenges.issue("register", "reg-1")
    token = certs.holder(pki, AN)
    signed = token.sign(issued.data)

    def attempt(challenge_id: str | None, purpose: str = "register", binding: str = "reg-1") -> Any:
        return verify_challenge_signature(
            verifier,
            challenges,
            challenge_id,
            purpose=purpose,
            binding=binding,
            signature=signed,
            chain=token.chain,
        )

    assert attempt(issued.id).attributes["id_number"] == AN
    for challenge_id in (issued.id, None, "unknown-challenge-id-000000"):  # replayed, missing, unknown
        with pytest.raises(CertificateRefused) as caught:
            attempt(challenge_id)
        assert caught.value.reason == signature.CHALLENGE
    other = challenges.issue("register", "reg-1")
    with pytest.raises(CertificateRefused) as caught:
        attempt(other.id, purpose="assurance")
    assert caught.value.reason == signature.CHALLENGE


# -- the sandbox PKI -----------------------------------------------------------------------------
def test_the_sandbox_pki(pki: SandboxPki) -> None:
    root, ca = pki.root_certificate(), pki.ca_certificate()
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ROOT_NAME
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca_constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert ca_constraints.ca and ca_constraints.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    with_certificate = {p["id_number"] for p in _registers()["people"] if p.get("certificate")}
    with_certificate |= {e["tax_code"] for e in _registers()["enterprises"] if e.get("certificate")}
    assert with_certificate < set(pki.holders)
    for holder in pki.holders.values():
        certificate = pki.certificate(holder.key)
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.content_commitment
        assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == dt.timedelta(days=730)
        assert certificate.not_valid_before_utc.day == 1
        uid = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value
        prefix = "MST:" if holder.kind == "enterprise" else ("CMND:" if holder.legacy else "CCCD:")
        assert uid == prefix + holder.identifier
        key_file = holder.private_key_path
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert pki.holders["0100233488"].email == "lienhe@senvang.example.vn"
    # A certificate of the older kind names the 9-digit CMND, not the 12-digit number.
    old_kind = pki.certificate("046075031122").subject.get_attributes_for_oid(NameOID.USER_ID)[0].value
    assert old_kind == "CMND:191555222"
    assert pki.holder_for_phone("0767890123") == pki.holders[TRANG]
    assert pki.holder_for_phone("+84909555666") == pki.holders["3109876545"]
    assert pki.holder_for_phone("0912345678") is None  # An's phone holds no signing SIM
    crl = x509.load_pem_x509_crl(pki.crl_paths[0].read_bytes())
    assert [r.serial_number for r in crl] == [pki.certificate(pki.revoked_holder.key).serial_number]
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]


def _registers() -> dict[str, Any]:
    import json

    from idp.verifiers.sandbox_pki import DEFAULT_REGISTERS

    data: dict[str, Any] = json.loads(DEFAULT_REGISTERS.read_text(encoding="utf-8"))
    return data


def test_the_sandbox_pki_is_kept(tmp_path: Path) -> None:
    first = create_sandbox_pki(tmp_path / "pki")
    assert first.changes
    contents = {p: p.read_bytes() for p in (tmp_path / "pki").rglob("*") if p.is_file()}
    again = create_sandbox_pki(tmp_path / "pki")
    assert again.changes == ()
    assert {p: p.read_bytes() for p in (tmp_path / "pki").rglob("*") if p.is_file()} == contents
    # A lost certificate is issued again for the same key; the CRL follows the revoked one's new serial.
    revoked = again.revoked_holder
    revoked.certificate_path.unlink()
    third = create_sandbox_pki(tmp_path / "pki")
    assert any("Đoàn Văn Khải" in line for line in third.changes)
    assert revoked.private_key_path.read_bytes() == contents[revoked.private_key_path]
    crl = x509.load_pem_x509_crl(third.crl_paths[0].read_bytes())
    assert [r.serial_number for r in crl] == [third.certificate(revoked.key).serial_number]


def test_the_sandbox_usb_token_wants_its_pin(pki: SandboxPki, verifier: SignatureVerifier) -> None:
    with pytest.raises(WrongPin):
        sign_with_sandbox_token(pki, AN, "000000", DATA)
    signed, chain = sign_with_sandbox_token(pki, AN, "123456", DATA)
    assert verifier.verify(DATA, signed, chain).attributes["full_name"] == "Nguyễn Văn An"
    with pytest.raises(LookupError):
        sign_with_sandbox_token(pki, "046000000000", "123456", DATA)


def test_the_sandbox_crls_are_issued_again_when_due(tmp_path: Path) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    made = create_sandbox_pki(tmp_path / "pki", now=old)
    before = made.crl_paths[0].read_bytes()
    verifier = SignatureVerifier([made.root_certificate()], crl_provider=made.crl_provider())
    token = certs.holder(made, AN)
    assert verifier.verify(DATA, token.sign(DATA), token.chain).verified
    assert made.crl_paths[0].read_bytes() != before  # 20 days old: past half its life


# -- configuration, CLI, messages ----------------------------------------------------------------
def test_build_signing_in_sandbox_mode(tmp_path: Path) -> None:
    config = {"SIM_SIGNING_MODE": "sandbox", "KEYS_DIR": str(tmp_path / "keys"), "SIGNATURE_CRL_FETCH": False}
    built = build_signing(config, MemoryStore())
    assert isinstance(built, Signing) and built.sandbox is not None
    assert built.sandbox.directory == tmp_path / "keys" / "sandbox-pki"
    issued = built.challenges.issue("register", "b")
    signed, chain = sign_with_sandbox_token(built.sandbox, SEN_VANG, "112233", issued.data)
    data = built.challenges.consume(issued.id, "register", "b")
    assert data is not None
    assert built.verifier.verify(data, signed, chain).attributes["tax_code"] == SEN_VANG
    assert built.sim.name == "sim-signing:sandbox"


def test_build_signing_in_http_mode(pki: SandboxPki, tmp_path: Path) -> None:
    config: dict[str, Any] = {"SIM_SIGNING_MODE": "http", "SIM_SIGNING_URL": "https://sim.example.vn/api"}
    with pytest.raises(VerifierMisconfigured, match="SIGNATURE_TRUST_ANCHORS"):
        build_signing(config, MemoryStore())
    config["SIGNATURE_TRUST_ANCHORS"] = str(tmp_path / "missing.pem")
    with pytest.raises(VerifierMisconfigured, match="cannot read"):
        build_signing(config, MemoryStore())
    config.update(
        SIGNATURE_TRUST_ANCHORS=str(pki.root_certificate_path),
        SIGNATURE_CRL_FILES=",".join(str(p) for p in pki.crl_paths),
        SIGNATURE_OCSP_URL="aia",
    )
    built = build_signing(config, MemoryStore())
    assert built.sandbox is None and built.sim.name == "sim-signing:http"
    assert built.verifier.ocsp is not None
    token = certs.holder(pki, AN)  # the sandbox root was configured as an anchor: its tokens verify
    assert built.verifier.verify(DATA, token.sign(DATA), token.chain).verified
    del config["SIM_SIGNING_URL"]
    with pytest.raises(VerifierMisconfigured, match="SIM_SIGNING_URL"):
        build_signing(config, MemoryStore())


def test_the_pki_sandbox_command(tmp_path: Path) -> None:
    from idp.cli import main

    runner = CliRunner()
    target = tmp_path / "made"
    result = runner.invoke(
        main, ["pki", "sandbox", "--dir", str(target)], env={"IDP_KEYS_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    assert "created root CA certificate" in result.output and "PIN 123456" in result.output
    assert (target / "root-ca.pem").is_file()
    again = runner.invoke(main, ["pki", "sandbox", "--dir", str(target)])
    assert "nothing to do" in again.output
    default = runner.invoke(main, ["pki", "sandbox"], env={"IDP_KEYS_DIR": str(tmp_path / "keys")})
    assert default.exit_code == 0, default.output
    assert (tmp_path / "keys" / "sandbox-pki" / "ca.crl").is_file()


def test_every_reason_has_its_own_message() -> None:
    from idp.web.signing import refusal_message

    messages = {reason: refusal_message(reason) for reason in signature.REASONS}
    assert len(set(messages.values())) == len(messages)
    assert messages[signature.EXPIRED] == (
        "Chứng thư số đã hết hạn. Vui lòng gia hạn chứng thư số với nhà cung cấp rồi thử lại."
    )
    assert refusal_message("something else")


def test_the_verifiers_do_not_import_flask() -> None:
    """idp.verifiers are adapters without Flask or Authlib (STYLE): read their imports."""
    import ast

    import idp.verifiers.signature as module

    folder = Path(module.__file__).parent
    for name in ("signature", "revocation", "sim", "sandbox_pki", "signing"):
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] in ("flask", "flask_babel", "authlib")}, name
