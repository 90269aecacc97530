"""Digital signatures over a server challenge: "Sim ký số" and "USB ký số" (DESIGN §5, seed 003).

A person proves who they are by signing a fresh challenge with the private key of a certificate
that a licensed Vietnamese CA issued (VNPT-CA, Viettel-CA, …, under the national root CA). This
module verifies that for real:

1. :class:`ChallengeStore` issues single-use challenges bound to a purpose and to the browser's
   transaction, and consumes each at most once (a replay finds nothing).
2. :class:`SignatureVerifier` checks the certificate path to a configured trust anchor, validity
   dates, key usage, the signature over the challenge, revocation (CRL; OCSP when configured), and
   reads the person's ID number or the enterprise's tax code from the subject.

Every refusal raises :class:`CertificateRefused` with one of the reason constants below; the
flows show :func:`idp.web.signing.refusal_message` for it. No Flask here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import verification as pkix
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from idp.identity.identifiers import InvalidIdentifier, check_tax_code, is_id_number, normalize_name
from idp.store.ephemeral import EphemeralStore
from idp.verifiers.base import Verification, VerifierMisconfigured, VerifierRejected
from idp.verifiers.revocation import (
    CompositeCrlProvider,
    CrlProvider,
    FileCrlProvider,
    HttpCrlProvider,
    OcspClient,
    OcspUnavailable,
    distribution_points,
    is_current_crl,
    utc_now,
)

__all__ = [
    "BAD_SIGNATURE",
    "CHALLENGE",
    "EXPIRED",
    "KEY_USAGE",
    "MALFORMED",
    "NOT_YET_VALID",
    "NO_IDENTIFIER",
    "REASONS",
    "REVOCATION_UNKNOWN",
    "REVOKED",
    "SIM_NOT_ENROLLED",
    "UNKNOWN_ISSUER",
    "CertificateRefused",
    "Challenge",
    "ChallengeStore",
    "CompositeCrlProvider",
    "CrlProvider",
    "FileCrlProvider",
    "HttpCrlProvider",
    "OcspClient",
    "SignatureVerifier",
    "load_certificates",
    "subject_attributes",
    "verify_challenge_signature",
]

log = logging.getLogger("idp.verifiers.signature")

# -- refusal reasons (idp.web.signing has a message for each) ----------------------------
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
REVOKED = "revoked"
UNKNOWN_ISSUER = "unknown_issuer"
KEY_USAGE = "key_usage"
BAD_SIGNATURE = "bad_signature"
CHALLENGE = "challenge"  # unknown, expired, replayed, or issued for another purpose or binding
REVOCATION_UNKNOWN = "revocation_unknown"
NO_IDENTIFIER = "no_identifier"
MALFORMED = "malformed"  # a certificate or signature that does not parse
SIM_NOT_ENROLLED = "sim_not_enrolled"  # idp.verifiers.sim: the phone has no signing SIM
REASONS = (
    EXPIRED,
    NOT_YET_VALID,
    REVOKED,
    UNKNOWN_ISSUER,
    KEY_USAGE,
    BAD_SIGNATURE,
    CHALLENGE,
    REVOCATION_UNKNOWN,
    NO_IDENTIFIER,
    MALFORMED,
    SIM_NOT_ENROLLED,
)

VERIFIER = "signature"
Clock = Callable[[], dt.datetime]


class CertificateRefused(VerifierRejected):
    """The certificate or the signature is refused; ``reason`` is one of the module's constants.

    ``detail`` is for the log (English, no personal data); people see the reason's message.
    """

    def __init__(self, reason: str, detail: str = "", *, verifier: str = VERIFIER) -> None:
        super().__init__(verifier, f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- challenges -------------------------------------------------------------------------------------
_PURPOSE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_CHALLENGE_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
CHALLENGE_RANDOM_BYTES = 32


@dataclass(frozen=True)
class Challenge:
    """What the signer signs: ``data`` = ``idp:<purpose>:`` followed by 32 random bytes written
    in base64url (text, so that a SIM or a signing plugin can show it)."""

    id: str
    data: bytes
    expires_at: dt.datetime  # UTC, aware


class ChallengeStore:
    """Single-use challenges in the short-lived store, bound to a purpose and a binding.

    ``binding`` ties the challenge to whatever must present its signature (the registration's id
    and the browser's cookie, say): only its SHA-256 is stored. :meth:`consume` is atomic (the
    store's consume primitive counts uses in the same step as it reads): the first caller gets the
    data, any later caller (a replay) gets None, and so does a caller with another purpose or
    binding, which also uses the challenge up.
    """

    PREFIX = "sigchallenge:"

    def __init__(
        self, store: EphemeralStore, lifetime: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self.store = store
        self.lifetime = int(lifetime)
        self._clock = clock

    @staticmethod
    def _digest(binding: str) -> str:
        return hashlib.sha256(binding.encode("utf-8")).hexdigest()

    def issue(self, purpose: str, binding: str) -> Challenge:
        if not _PURPOSE.match(purpose):
            raise ValueError("purpose must be a short lower-case word")
        challenge_id = secrets.token_urlsafe(24)
        token = base64.urlsafe_b64encode(secrets.token_bytes(CHALLENGE_RANDOM_BYTES)).rstrip(b"=")
        data = f"idp:{purpose}:".encode("ascii") + token
        expires = self._clock() + self.lifetime
        record = {"p": purpose, "b": self._digest(binding), "d": data.decode("ascii"), "e": expires}
        self.store.set(self.PREFIX + challenge_id, json.dumps(record), self.lifetime)
        return Challenge(challenge_id, data, dt.datetime.fromtimestamp(expires, dt.UTC))

    def consume(self, challenge_id: str, purpose: str, binding: str) -> bytes | None:
        """The challenge's data, once; None when unknown, expired, replayed, or for another
        purpose or binding."""
        if not challenge_id or not _CHALLENGE_ID.match(challenge_id):
            return None
        value, uses = self.store.consume(self.PREFIX + challenge_id, self.lifetime)
        if value is None:
            return None
        if uses != 1:
            log.warning("signature: challenge %s… presented again (use %d): refused", challenge_id[:6], uses)
            return None
        # The value is no longer needed: its use counter keeps refusing replays until it expires.
        self.store.delete(self.PREFIX + challenge_id)
        try:
            record = json.loads(value)
            expected_purpose, digest, data, expires = (
                record["p"],
                record["b"],
                record["d"],
                float(record["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if expected_purpose != purpose or not hmac.compare_digest(digest, self._digest(binding)):
            log.warning("signature: challenge %s… presented for another purpose or binding", challenge_id[:6])
            return None
        if self._clock() > expires:
            return None
        return str(data).encode("ascii")


# -- certificates in ---------------------------------------------------------------------------------
ChainInput = bytes | str | Sequence[bytes | str]
MAX_CHAIN_CERTIFICATES = 10
MAX_CHAIN_BYTES = 64 * 1024
MAX_SIGNATURE_BYTES = 1024  # RSA 8192
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def _from_base64(text: str) -> bytes:
    text = re.sub(r"\s", "", text)
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _load_item(item: bytes | str) -> list[x509.Certificate]:
    if isinstance(item, bytes | bytearray):
        raw = bytes(item)
        if _PEM_CERTIFICATE.encode() in raw:
            return x509.load_pem_x509_certificates(raw)
        if raw[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER
            return [x509.load_der_x509_certificate(raw)]
        item = raw.decode("ascii")
    text = item.strip()
    if _PEM_CERTIFICATE in text:
        return x509.load_pem_x509_certificates(text.encode("ascii"))
    # Base64 DER certificates (signing plugins), several separated by commas; line breaks inside
    # one certificate's base64 are ignored.
    return [
        x509.load_der_x509_certificate(_from_base64(part)) for part in re.split(r"[,;]", text) if part.strip()
    ]


def load_certificates(chain: ChainInput) -> list[x509.Certificate]:
    """Certificates from what a signer sends, leaf first: DER or PEM bytes, PEM text, base64 DER
    (comma separated), or a sequence of those. Raises CertificateRefused(MALFORMED)."""
    items: list[bytes | str] = [chain] if isinstance(chain, bytes | bytearray | str) else list(chain)
    if sum(len(i) for i in items) > MAX_CHAIN_BYTES:
        raise CertificateRefused(MALFORMED, "certificate chain too large")
    certificates: list[x509.Certificate] = []
    try:
        for item in items:
            certificates += _load_item(item)
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise CertificateRefused(MALFORMED, "certificate chain does not parse") from None
    if not certificates:
        raise CertificateRefused(MALFORMED, "no certificate")
    if len(certificates) > MAX_CHAIN_CERTIFICATES:
        raise CertificateRefused(MALFORMED, "too many certificates")
    return certificates


def _configured_certificates(
    what: str, items: Iterable[x509.Certificate | bytes | str]
) -> list[x509.Certificate]:
    found: list[x509.Certificate] = []
    for item in items:
        if isinstance(item, x509.Certificate):
            found.append(item)
            continue
        try:
            found += _load_item(item)
        except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
            raise VerifierMisconfigured(VERIFIER, f"{what}: a certificate does not parse") from None
    return found


# -- identifiers in the subject ---------------------------------------------------------------------
# Vietnamese CAs write the holder's identifier in the UID attribute: "CMND:123456789",
# "CCCD:046090001234", "MST:0100233488", also "MST: 0100233488" or "MST:0314409058-002".
_PREFIXED = re.compile(r"^\s*(CMND|CMT|CCCD|CCD|MST)\s*[:=]?\s*([0-9][0-9 .\-]*[0-9])\s*$", re.I)
EMAIL_ADDRESS = NameOID.EMAIL_ADDRESS
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _texts(name: x509.Name, oid: ObjectIdentifier) -> list[str]:
    return [a.value for a in name.get_attributes_for_oid(oid) if isinstance(a.value, str)]


def _identifiers(subject: x509.Name) -> dict[str, str]:
    found: dict[str, str] = {}
    values = _texts(subject, NameOID.USER_ID) + _texts(subject, NameOID.SERIAL_NUMBER)
    for value in values:
        match = _PREFIXED.match(value)
        if match is None:
            plain = value.strip()
            if plain.isdigit() and len(plain) == 12 and is_id_number(plain):
                found.setdefault("id_number", plain)  # a plain 12-digit serialNumber
            continue
        kind, number = match.group(1).upper(), match.group(2)
        digits = re.sub(r"[ .]", "", number)
        if kind in ("CCCD", "CCD") and is_id_number(digits):
            found.setdefault("id_number", digits)
        elif kind in ("CMND", "CMT"):
            if len(digits) == 9 and digits.isdigit():
                found.setdefault("legacy_id_number", digits)
            elif is_id_number(digits):  # 12-digit CMND (2012-2016) = the personal ID number
                found.setdefault("id_number", digits)
        elif kind == "MST":
            try:
                found.setdefault("tax_code", check_tax_code(digits))
            except InvalidIdentifier:
                continue
    return found


def _email(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for address in names.get_values_for_type(x509.RFC822Name):
            if _EMAIL.match(address.strip()):
                return address.strip()
    except x509.ExtensionNotFound:
        pass
    for address in _texts(certificate.subject, EMAIL_ADDRESS):
        if _EMAIL.match(address.strip()):
            return address.strip()
    return None


def _common_name(name: x509.Name) -> str | None:
    values = _texts(name, NameOID.COMMON_NAME)
    return normalize_name(values[0]) if values and values[0].strip() else None


def subject_attributes(certificate: x509.Certificate) -> dict[str, str]:
    """The canonical attributes a certificate's subject proves (DESIGN §5).

    A personal ID number (CCCD, or a CMND) makes it a person's certificate, even when it also
    names an organization (a staff member's certificate): the person's attributes only. Else a
    tax code makes it an enterprise's. Raises CertificateRefused(NO_IDENTIFIER) otherwise.
    """
    ids = _identifiers(certificate.subject)
    attributes: dict[str, str] = {}
    if "id_number" in ids or "legacy_id_number" in ids:
        attributes["subject_kind"] = "person"
        for key in ("id_number", "legacy_id_number"):
            if key in ids:
                attributes[key] = ids[key]
        name = _common_name(certificate.subject)
        if name:
            attributes["full_name"] = name
    elif "tax_code" in ids:
        attributes["subject_kind"] = "enterprise"
        attributes["tax_code"] = ids["tax_code"]
        organization = _texts(certificate.subject, NameOID.ORGANIZATION_NAME)
        name = normalize_name(organization[0]) if organization and organization[0].strip() else None
        name = name or _common_name(certificate.subject)
        if name:
            attributes["organization_name"] = name
    else:
        raise CertificateRefused(NO_IDENTIFIER, "no CCCD, CMND or MST in the subject")
    email = _email(certificate)
    if email:
        attributes["email"] = email
    return attributes


# -- the verifier -----------------------------------------------------------------------------------
# Extended key usages that fit a signature by a person or an enterprise. A leaf without the
# extension is fine (it restricts nothing); one that lists only other purposes (a TLS server
# certificate, code signing) is refused as KEY_USAGE.
SIGNING_EXTENDED_USAGES = frozenset(
    {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
        ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
        ObjectIdentifier("1.2.840.113583.1.1.5"),  # Adobe PDF signing
    }
)
_CURVE_HASHES: Mapping[str, tuple[type[hashes.HashAlgorithm], ...]] = {
    "secp256r1": (hashes.SHA256,),
    "secp384r1": (hashes.SHA384, hashes.SHA256),
}


class SignatureVerifier:
    """Verify a signature over ``data`` and the signer's certificate chain (leaf first).

    Path building and validation use ``cryptography.x509.verification`` (a ClientVerifier):
    chain building by name and signature, basicConstraints (CA flag, path length), name
    constraints, validity dates of every certificate, at least 2048-bit RSA, no SHA-1 — a
    tested implementation of RFC 5280 path validation, which we would otherwise re-write. Its
    defaults are the Web PKI's (CA/Browser Forum), which fit the Vietnamese CA profile (national
    root, licensed CAs with pathLen 0) except for the leaf: Vietnamese subscriber certificates
    often carry no subjectAltName and no or other extended key usages than TLS clientAuth. So
    the end-entity extension policy is ``permit_all`` (unknown critical extensions are still
    refused) and this class checks the leaf itself (key usage, CA flag, extended key usage). The
    CA policy stays the Web PKI's, except that a CA's extended key usage, when present, is not
    required to name clientAuth. Revocation (which the library does not do) and the signature
    over ``data`` are checked here.
    """

    name = VERIFIER

    def __init__(
        self,
        trust_anchors: Iterable[x509.Certificate | bytes | str],
        *,
        intermediates: Iterable[x509.Certificate | bytes | str] = (),
        crl_provider: CrlProvider,
        ocsp: OcspClient | None = None,
        clock: Clock | None = None,
        check_ca_revocation: bool = True,
        max_chain_depth: int = 5,
    ) -> None:
        self.trust_anchors = _configured_certificates("trust anchors", trust_anchors)
        if not self.trust_anchors:
            raise VerifierMisconfigured(VERIFIER, "no trust anchor configured")
        self.intermediates = _configured_certificates("intermediate CAs", intermediates)
        self.crl_provider = crl_provider
        self.ocsp = ocsp
        self.check_ca_revocation = check_ca_revocation
        self.max_chain_depth = max_chain_depth
        self._clock = clock or utc_now
        self._store = pkix.Store(self.trust_anchors)
        ca_policy = pkix.ExtensionPolicy.webpki_defaults_ca().may_be_present(
            x509.ExtendedKeyUsage, pkix.Criticality.AGNOSTIC, None
        )
        self._policies = {"ca_policy": ca_policy, "ee_policy": pkix.ExtensionPolicy.permit_all()}

    def now(self) -> dt.datetime:
        at = self._clock()
        return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)

    def verify(self, data: bytes, signature: bytes, chain: ChainInput) -> Verification:
        """Verify ``signature`` over ``data`` by the leaf of ``chain``; raises CertificateRefused.

        Order: parse; path, with every certificate's dates; the leaf's usage; the signature over
        ``data``; the identifier; revocation last, as the one step that may use the network (no
        CRL download or OCSP request for a signature that fails anyway).
        """
        at = self.now()
        if not signature or len(signature) > MAX_SIGNATURE_BYTES:
            raise CertificateRefused(MALFORMED, "empty or oversized signature")
        certificates = load_certificates(chain)
        leaf, supplied = certificates[0], certificates[1:]
        path = self._build_path(leaf, supplied, at)
        self._check_leaf_usage(leaf)
        self._check_signature(leaf, data, signature)
        attributes = subject_attributes(leaf)
        self._check_revocation(path, at)
        issuer_name = _common_name(leaf.issuer) or leaf.issuer.rfc4514_string()
        serial = f"{leaf.serial_number:X}"
        attributes.update(
            certificate_serial=serial if len(serial) % 2 == 0 else "0" + serial,
            certificate_issuer=issuer_name,
            certificate_not_after=leaf.not_valid_after_utc.isoformat(),
        )
        return Verification(
            verified=True,
            verifier=f"{VERIFIER}:{issuer_name}",
            verified_at=at.astimezone(dt.UTC).replace(tzinfo=None),
            evidence_id="sha256:" + leaf.fingerprint(hashes.SHA256()).hex(),
            attributes=attributes,
        )

    # -- the path --------------------------------------------------------------------------------
    def _build_path(
        self, leaf: x509.Certificate, supplied: list[x509.Certificate], at: dt.datetime
    ) -> list[x509.Certificate]:
        verifier = (
            pkix.PolicyBuilder()
            .store(self._store)
            .time(at)
            .max_chain_depth(self.max_chain_depth)
            .extension_policies(**self._policies)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, supplied + self.intermediates)
        except pkix.VerificationError as exc:
            self._explain_path_failure(leaf, supplied, at, str(exc))
        return list(verified.chain)

    def _explain_path_failure(
        self, leaf: x509.Certificate, supplied: list[x509.Certificate], at: dt.datetime, detail: str
    ) -> NoReturn:
        """Turn the library's refusal into a reason a person can act on: dates first (of the
        leaf, then of the CAs named above it), else an issuer we do not trust."""
        known = supplied + self.intermediates + self.trust_anchors
        current: x509.Certificate | None = leaf
        seen: set[bytes] = set()
        while current is not None and current.fingerprint(hashes.SHA256()) not in seen:
            seen.add(current.fingerprint(hashes.SHA256()))
            if at > current.not_valid_after_utc:
                raise CertificateRefused(EXPIRED, f"{'leaf' if current is leaf else 'a CA'} expired")
            if at < current.not_valid_before_utc:
                raise CertificateRefused(
                    NOT_YET_VALID, f"{'leaf' if current is leaf else 'a CA'} not yet valid"
                )
            if current.issuer == current.subject:
                break
            current = next((c for c in known if c.subject == current.issuer), None)
        log.info("signature: no trusted path: %s", detail.split(" (encountered", 1)[0])
        raise CertificateRefused(UNKNOWN_ISSUER, "no path to a trust anchor")

    # -- the leaf --------------------------------------------------------------------------------
    @staticmethod
    def _check_leaf_usage(leaf: x509.Certificate) -> None:
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise CertificateRefused(KEY_USAGE, "no keyUsage") from None
        if not (usage.digital_signature or usage.content_commitment):
            raise CertificateRefused(KEY_USAGE, "neither digitalSignature nor nonRepudiation")
        try:
            if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise CertificateRefused(KEY_USAGE, "a CA certificate")
        except x509.ExtensionNotFound:
            pass
        try:
            purposes = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return
        if not SIGNING_EXTENDED_USAGES.intersection(purposes):
            raise CertificateRefused(KEY_USAGE, "extended key usage excludes signing")

    @staticmethod
    def _check_signature(leaf: x509.Certificate, data: bytes, signature: bytes) -> None:
        """RSA PKCS#1 v1.5 or PSS with SHA-256; ECDSA P-256 with SHA-256, P-384 with SHA-384 (or
        SHA-256). ECDSA signatures in DER, or raw r‖s as some plugins send them."""
        key = leaf.public_key()
        try:
            if isinstance(key, rsa.RSAPublicKey):
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                for scheme in (padding.PKCS1v15(), pss):
                    try:
                        key.verify(signature, data, scheme, hashes.SHA256())
                        return
                    except InvalidSignature:
                        continue
                raise CertificateRefused(BAD_SIGNATURE, "RSA signature does not verify")
            if isinstance(key, ec.EllipticCurvePublicKey):
                allowed = _CURVE_HASHES.get(key.curve.name)
                if allowed is None:
                    raise CertificateRefused(MALFORMED, f"unsupported curve {key.curve.name}")
                candidates = [signature]
                size = (key.curve.key_size + 7) // 8
                if len(signature) == 2 * size:
                    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
                    candidates.append(encode_dss_signature(r, s))
                for candidate in candidates:
                    for algorithm in allowed:
                        try:
                            key.verify(candidate, data, ec.ECDSA(algorithm()))
                            return
                        except InvalidSignature:
                            continue
                raise CertificateRefused(BAD_SIGNATURE, "ECDSA signature does not verify")
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise CertificateRefused(MALFORMED, "signature does not parse") from None
        raise CertificateRefused(MALFORMED, f"unsupported key type {type(key).__name__}")

    # -- revocation ------------------------------------------------------------------------------
    def _check_revocation(self, path: list[x509.Certificate], at: dt.datetime) -> None:
        """The leaf (OCSP when configured, else or on failure its CRL), then every CA below the
        trust anchor (CRL). A certificate without a current CRL is REVOCATION_UNKNOWN."""
        last = len(path) - 1 if self.check_ca_revocation else min(1, len(path) - 1)
        for index in range(last):
            certificate, issuer = path[index], path[index + 1]
            if index == 0 and self.ocsp is not None:
                try:
                    answer = self.ocsp.check(certificate, issuer, at)
                except OcspUnavailable as exc:
                    log.warning("signature: OCSP gave no answer (%s); trying the CRL", exc)
                else:
                    if answer.status == "revoked":
                        raise CertificateRefused(REVOKED, "OCSP: revoked")
                    if answer.status == "good":
                        continue
                    log.info("signature: OCSP does not know the certificate; trying the CRL")
            self._check_crl(certificate, issuer, at)

    def _check_crl(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        candidates = self.crl_provider.crls_for(certificate, issuer, at)
        current = [c for c in candidates if is_current_crl(c, issuer, at) and _covers(c, certificate)]
        if not current:
            what = "leaf" if not _is_ca(certificate) else "CA"
            raise CertificateRefused(REVOCATION_UNKNOWN, f"no current CRL for the {what}")
        for crl in current:
            entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if entry is not None and _reason(entry) != x509.ReasonFlags.remove_from_crl:
                raise CertificateRefused(REVOKED, "listed in the CRL")


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _covers(crl: x509.CertificateRevocationList, certificate: x509.Certificate) -> bool:
    """Does this complete CRL's scope include the certificate (RFC 5280 §5.2.5, §6.3.3)? Delta
    CRLs, indirect CRLs and lists of some reasons only do not count as complete."""
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        return False
    except x509.ExtensionNotFound:
        pass
    try:
        scope = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    if scope.only_some_reasons or scope.indirect_crl or scope.only_contains_attribute_certs:
        return False
    is_ca = _is_ca(certificate)
    if (scope.only_contains_user_certs and is_ca) or (scope.only_contains_ca_certs and not is_ca):
        return False
    if scope.full_name:
        points = set(distribution_points(certificate))
        names = {n.value for n in scope.full_name if isinstance(n, x509.UniformResourceIdentifier)}
        if points and not points & names:
            return False
    return True


def verify_challenge_signature(
    verifier: SignatureVerifier,
    challenges: ChallengeStore,
    challenge_id: str | None,
    *,
    purpose: str,
    binding: str,
    signature: bytes,
    chain: ChainInput,
) -> Verification:
    """Use the challenge up (whatever comes next), then verify the signature over it.

    Raises CertificateRefused(CHALLENGE) for an unknown, expired, replayed or foreign challenge."""
    data = challenges.consume(challenge_id, purpose, binding) if challenge_id else None
    if data is None:
        raise CertificateRefused(CHALLENGE, "unknown, expired or used challenge")
    return verifier.verify(data, signature, chain)
