"""Certificates for the signature tests: the sandbox PKI (idp.verifiers.sandbox_pki) and bad
certificates made on the fly with the same CA keys (expired, not yet valid, from an unknown CA,
for key encipherment only, naming another person, a CMND, a branch tax code, no identifier …).

    signer = issue(pki, uid="CCCD:046195011111", key="p384")
    signature = signer.sign(data)
    verifier.verify(data, signature, signer.chain)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idp.verifiers.sandbox_pki import (
    CA_SUBJECT,
    ROOT_SUBJECT,
    SIGNING_USAGE,
    PrivateKey,
    SandboxPki,
    build_crl,
    create_sandbox_pki,
    crl_point,
)

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM

# Fictional holders of the certificates made here (not in registers.json).
THU_ID = "046195011111"  # Hồ Thị Thử
THU_NAME = "Hồ Thị Thử"
LEGACY_CMND = "191000111"
BRANCH_TAX_CODE = "0314409058-002"

KEY_ENCIPHERMENT_ONLY = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Authority:
    """A CA that can issue certificates (the sandbox's licensed CA, or a stranger)."""

    certificate: x509.Certificate
    key: PrivateKey
    root: x509.Certificate


@dataclass(frozen=True)
class Signer:
    """A certificate, its private key and the chain a token would send (DER, leaf first)."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[bytes, ...]

    def sign(self, data: bytes, *, pss: bool = False, raw_ecdsa: bool = False) -> bytes:
        key = self.key
        if isinstance(key, rsa.RSAPrivateKey):
            scheme: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if pss else padding.PKCS1v15()
            )
            return key.sign(data, scheme, hashes.SHA256())
        size = (key.curve.key_size + 7) // 8
        algorithm: hashes.HashAlgorithm = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
        signature = key.sign(data, ec.ECDSA(algorithm))
        if raw_ecdsa:
            r, s = decode_dss_signature(signature)
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return signature

    @property
    def pem_chain(self) -> str:
        return "".join(x509.load_der_x509_certificate(c).public_bytes(PEM).decode() for c in self.chain)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number


def make_sandbox_pki(directory: Path) -> SandboxPki:
    return create_sandbox_pki(directory)


def licensed_ca(pki: SandboxPki) -> Authority:
    return Authority(pki.ca_certificate(), pki.ca_private_key(), pki.root_certificate())


def new_key(kind: str) -> PrivateKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def unknown_ca() -> Authority:
    """A root and a licensed CA with the very names of the sandbox's, but other keys."""
    root_key = new_key("rsa")
    ca_key = new_key("rsa")
    start = now() - dt.timedelta(days=30)
    root = (
        x509.CertificateBuilder()
        .subject_name(ROOT_SUBJECT)
        .issuer_name(ROOT_SUBJECT)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(CA_SUBJECT)
        .issuer_name(ROOT_SUBJECT)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return Authority(ca, ca_key, root)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    pki: SandboxPki,
    *,
    common_name: str = THU_NAME,
    uid: str | None = f"CCCD:{THU_ID}",
    organization: str | None = None,
    serial_number_attribute: str | None = None,
    email: str | None = None,
    key: str = "rsa",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    usage: x509.KeyUsage | None = SIGNING_USAGE,
    extended_usage: Sequence[x509.ObjectIdentifier] | None = (
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ),
    authority: Authority | None = None,
    crl_url: str | None = None,
    ocsp_url: str | None = None,
) -> Signer:
    """A subscriber certificate issued (by default) by the sandbox's licensed CA."""
    authority = authority or licensed_ca(pki)
    private_key = new_key(key)
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    if uid:
        attributes.append(x509.NameAttribute(NameOID.USER_ID, uid))
    if serial_number_attribute:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number_attribute))
    start = not_before or now() - dt.timedelta(days=10)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(authority.certificate.subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False
        )
        .add_extension(crl_point(crl_url or f"{pki.crl_base_url}/ca.crl"), critical=False)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if extended_usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_usage)), critical=False)
    if email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    certificate = builder.sign(authority.key, hashes.SHA256())
    return Signer(
        private_key, certificate, (certificate.public_bytes(DER), authority.certificate.public_bytes(DER))
    )


def holder(pki: SandboxPki, holder_key: str) -> Signer:
    """A sandbox holder's token (registers.json), with its chain."""
    return Signer(pki.private_key(holder_key), pki.certificate(holder_key), pki.chain(holder_key))


# -- the bad ones -----------------------------------------------------------------------------------
def expired(pki: SandboxPki) -> Signer:
    return issue(pki, not_before=now() - dt.timedelta(days=800), not_after=now() - dt.timedelta(days=1))


def not_yet_valid(pki: SandboxPki) -> Signer:
    return issue(pki, not_before=now() + dt.timedelta(days=2))


def from_unknown_ca(pki: SandboxPki) -> Signer:
    return issue(pki, authority=unknown_ca())


def key_encipherment_only(pki: SandboxPki) -> Signer:
    return issue(pki, usage=KEY_ENCIPHERMENT_ONLY)


def naming(pki: SandboxPki, id_number: str, name: str = THU_NAME) -> Signer:
    """A good certificate of someone else (another ID number)."""
    return issue(pki, common_name=name, uid=f"CCCD:{id_number}")


def cmnd(pki: SandboxPki) -> Signer:
    return issue(pki, uid=f"CMND:{LEGACY_CMND}")


def branch_enterprise(pki: SandboxPki) -> Signer:
    name = "Công ty TNHH Thử Nghiệm - Chi nhánh Huế"
    return issue(pki, common_name=name, organization=name, uid=f"MST: {BRANCH_TAX_CODE}")


def no_identifier(pki: SandboxPki) -> Signer:
    return issue(pki, uid=None)


def revoked(pki: SandboxPki) -> Signer:
    """The sandbox holder whose certificate the sandbox CA's CRL lists."""
    return holder(pki, pki.revoked_holder.key)


def crl_pem(
    pki: SandboxPki,
    revoked_serials: Sequence[int] = (),
    *,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    authority: Authority | None = None,
) -> bytes:
    """A CRL of the licensed CA (or ``authority``), current unless dates say otherwise."""
    authority = authority or licensed_ca(pki)
    this_update = this_update or now() - dt.timedelta(hours=1)
    crl = build_crl(
        authority.certificate,
        authority.key,
        revoked_serials,
        this_update=this_update,
        next_update=next_update or this_update + dt.timedelta(days=7),
    )
    return crl.public_bytes(PEM)
