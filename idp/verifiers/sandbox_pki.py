"""The sandbox test PKI: a fictional national root CA, a licensed CA under it, and a certificate on
a SIM or a USB token for every fictional person and enterprise of ``registers.json`` that has one.

    create_sandbox_pki(directory) writes, and keeps on later calls:
      root-ca.pem  root-ca.key  root-ca.crl     "Sandbox Root CA (mô phỏng Root CA quốc gia)"
      ca.pem       ca.key       ca.crl          the licensed CA (like VNPT-CA, Viettel-CA), pathLen 0
      holders/<holder key>.pem  .key           subscriber certificates and keys (PKCS#8, mode 0600)

A holder's key is the person's 12-digit ID number or the enterprise's tax code. Persons: CN = full
name, UID = "CCCD:<id_number>" (or "CMND:<legacy_id_number>" for a certificate that ``registers.json``
marks ``"names": "cmnd"``, as CAs issued before the 12-digit number); enterprises: CN = O = name, UID = "MST:<tax_code>"; the e-mail
address in the subjectAltName when known; keyUsage digitalSignature + nonRepudiation; two years
from the first day of the month of issue (so that tests see the same dates all month). One extra
fictional person's certificate is revoked and listed in the licensed CA's CRL.

The private keys stay in the directory (under KEYS_DIR, which git ignores): the PIN stands in for
the token's PIN check, :func:`sign_with_sandbox_token` plays the USB token. Nothing here is for
production; no Flask here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hmac
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idp.identity.identifiers import InvalidIdentifier, normalize_name, normalize_phone
from idp.verifiers.revocation import CrlProvider, FileCrlProvider, is_current_crl, utc_now

DEFAULT_REGISTERS = Path(__file__).with_name("sandbox_data") / "registers.json"
# A reserved top-level domain (RFC 2606): the URLs are written in the certificates but never
# fetched; the sandbox reads its CRLs from the files.
DEFAULT_CRL_BASE_URL = "http://sandbox-pki.idp.invalid"
ROOT_NAME = "Sandbox Root CA (mô phỏng Root CA quốc gia)"
CA_NAME = "Sandbox CA (mô phỏng VNPT-CA, Viettel-CA)"
ORGANIZATION = "Sandbox idp (dữ liệu giả lập)"
SUBSCRIBER_DAYS = 730
CA_DAYS = 10 * 365
ROOT_DAYS = 20 * 365
RENEW_BEFORE = dt.timedelta(days=30)
CRL_DAYS = 30

# The fictional person whose certificate the sandbox CA has revoked.
REVOKED_PERSON: Mapping[str, Any] = {
    "id_number": "046095088888",
    "full_name": "Đoàn Văn Khải",
    "phones": ["0905888888"],
    "certificate": {"device": "usb", "pin": "000000"},
}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class WrongPin(Exception):
    """The PIN is not the token's. ``tries_left``: None when the token does not count."""

    def __init__(self, tries_left: int | None = None) -> None:
        super().__init__("wrong PIN" if tries_left is None else f"wrong PIN ({tries_left} tries left)")
        self.tries_left = tries_left


class UnknownToken(LookupError):
    """No sandbox token with this holder key."""


@dataclass(frozen=True)
class SandboxHolder:
    """A fictional person or enterprise with a certificate on a SIM or a USB token."""

    key: str  # the ID number or the tax code
    kind: str  # "person" | "enterprise"
    name: str
    identifier: str  # what the certificate names: ID number, old CMND number or tax code
    device: str  # "sim" | "usb"
    pin: str
    phone: str | None  # E.164 number of the signing SIM (device "sim")
    email: str | None
    revoked: bool
    certificate_path: Path
    private_key_path: Path
    legacy: bool = False  # a person's certificate naming the old 9-digit CMND

    @property
    def uid(self) -> str:
        """The subject's UID attribute, as Vietnamese CAs write it."""
        if self.kind == "enterprise":
            return f"MST:{self.identifier}"
        return f"CMND:{self.identifier}" if self.legacy else f"CCCD:{self.identifier}"


@dataclass(frozen=True)
class SandboxPki:
    directory: Path
    holders: Mapping[str, SandboxHolder]
    crl_base_url: str = DEFAULT_CRL_BASE_URL
    changes: tuple[str, ...] = ()  # what create_sandbox_pki did this time, for the CLI
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- files -----------------------------------------------------------------------------------
    @property
    def root_certificate_path(self) -> Path:
        return self.directory / "root-ca.pem"

    @property
    def ca_certificate_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_paths(self) -> tuple[Path, Path]:
        """The licensed CA's CRL and the root's."""
        return self.directory / "ca.crl", self.directory / "root-ca.crl"

    def root_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.root_certificate_path.read_bytes())

    def ca_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.ca_certificate_path.read_bytes())

    def root_private_key(self) -> PrivateKey:
        return _load_key(self.directory / "root-ca.key")

    def ca_private_key(self) -> PrivateKey:
        return _load_key(self.directory / "ca.key")

    def holder(self, holder_key: str) -> SandboxHolder:
        try:
            return self.holders[holder_key]
        except KeyError:
            raise UnknownToken(holder_key) from None

    def certificate(self, holder_key: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.holder(holder_key).certificate_path.read_bytes())

    def private_key(self, holder_key: str) -> PrivateKey:
        return _load_key(self.holder(holder_key).private_key_path)

    def chain(self, holder_key: str) -> tuple[bytes, ...]:
        """What the token hands out: its certificate and the licensed CA's, DER, leaf first."""
        return (
            self.certificate(holder_key).public_bytes(serialization.Encoding.DER),
            self.ca_certificate().public_bytes(serialization.Encoding.DER),
        )

    def holder_for_phone(self, phone: str) -> SandboxHolder | None:
        """The holder whose signing SIM is this number (E.164 or national form)."""
        try:
            number = normalize_phone(phone)
        except InvalidIdentifier:
            return None
        return next((h for h in self.holders.values() if h.device == "sim" and h.phone == number), None)

    @property
    def revoked_holder(self) -> SandboxHolder:
        return next(h for h in self.holders.values() if h.revoked)

    # -- CRLs ------------------------------------------------------------------------------------
    def refresh_crls(self, now: dt.datetime | None = None) -> bool:
        """Issue the CRLs again when missing, past half their life, stale or not matching the
        revoked certificates; returns whether one was written."""
        now = now or utc_now()
        with _locked(self.directory):
            written = _ensure_crls(self, now)
        self._cache["crl_renew_at"] = now + dt.timedelta(days=CRL_DAYS / 2)
        return bool(written)

    def crl_provider(self) -> CrlProvider:
        """The sandbox CA "publishes" its CRLs as files, issued again when due (real time)."""
        return _SandboxCrls(self)


class _SandboxCrls:
    def __init__(self, pki: SandboxPki) -> None:
        self.pki = pki
        self.files = FileCrlProvider(pki.crl_paths)
        self._lock = threading.Lock()

    def crls_for(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> Sequence[x509.CertificateRevocationList]:
        now = utc_now()
        with self._lock:
            renew_at = self.pki._cache.get("crl_renew_at")
            if renew_at is None or now >= renew_at:
                self.pki.refresh_crls(now)
        return self.files.crls_for(certificate, issuer, at)


# -- signing like a token --------------------------------------------------------------------------
def sign_data(key: PrivateKey, data: bytes) -> bytes:
    """RSA PKCS#1 v1.5 with SHA-256; ECDSA (DER) with SHA-256 on P-256, SHA-384 on P-384."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    algorithm: hashes.HashAlgorithm = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    return key.sign(data, ec.ECDSA(algorithm))


def sign_with_sandbox_token(
    pki: SandboxPki, holder_key: str, pin: str, data: bytes
) -> tuple[bytes, tuple[bytes, ...]]:
    """The sandbox USB token (and the SIM behind the sandbox SIM service): with the right PIN,
    the signature over ``data`` and the certificate chain (DER, leaf first).

    Raises UnknownToken, or WrongPin (this token does not count tries: a real token locks after
    a few; the sandbox SIM service counts them itself)."""
    holder = pki.holder(holder_key)
    if not hmac.compare_digest(pin.encode("utf-8"), holder.pin.encode("utf-8")):
        raise WrongPin()
    return sign_data(pki.private_key(holder_key), data), pki.chain(holder_key)


# -- creation --------------------------------------------------------------------------------------
def create_sandbox_pki(
    directory: Path,
    *,
    registers_file: Path = DEFAULT_REGISTERS,
    crl_base_url: str = DEFAULT_CRL_BASE_URL,
    now: dt.datetime | None = None,
) -> SandboxPki:
    """Create what is missing under ``directory`` and keep what exists (idempotent).

    Keys are never replaced; a certificate is issued again only when it is missing, no longer
    matches its issuer's key or its holder's data, or expires within 30 days; the CRLs when due.
    Safe when several processes start at once (a lock file).
    """
    now = now or utc_now()
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / "holders").mkdir(mode=0o700, exist_ok=True)
    changes: list[str] = []
    with _locked(directory):
        start = dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)
        root_key, root_key_new = _ensure_key(directory / "root-ca.key", "rsa")
        root = _ensure_root(directory, root_key, start, now, force=root_key_new, changes=changes)
        ca_key, ca_key_new = _ensure_key(directory / "ca.key", "rsa")
        ca = _ensure_ca(
            directory, ca_key, root, root_key, start, now, crl_base_url, force=ca_key_new, changes=changes
        )
        holders = _holders(directory, registers_file)
        for holder in holders.values():
            key, key_new = _ensure_key(holder.private_key_path, "ec" if holder.device == "sim" else "rsa")
            _ensure_subscriber(
                holder, key, ca, ca_key, start, now, crl_base_url, force=key_new, changes=changes
            )
        pki = SandboxPki(directory, holders, crl_base_url)
        changes += _ensure_crls(pki, now)
    pki._cache["crl_renew_at"] = now + dt.timedelta(days=CRL_DAYS / 2)
    return SandboxPki(directory, holders, crl_base_url, tuple(changes), pki._cache)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _holders(directory: Path, registers_file: Path) -> dict[str, SandboxHolder]:
    data = json.loads(Path(registers_file).read_text(encoding="utf-8"))
    holders: dict[str, SandboxHolder] = {}
    entries: list[tuple[str, Mapping[str, Any], bool]] = [
        ("person", p, False) for p in data.get("people", [])
    ]
    entries += [("enterprise", e, False) for e in data.get("enterprises", [])]
    entries.append(("person", REVOKED_PERSON, True))
    for kind, entry, revoked in entries:
        certificate = entry.get("certificate")
        if not certificate:
            continue
        key = str(entry["id_number"] if kind == "person" else entry["tax_code"])
        device = str(certificate["device"])
        phones = entry.get("phones") or [] if kind == "person" else [entry.get("phone")]
        phone_text = next((p for p in phones if p), None)
        legacy = kind == "person" and certificate.get("names") == "cmnd"
        holders[key] = SandboxHolder(
            key=key,
            kind=kind,
            name=normalize_name(str(entry["full_name"] if kind == "person" else entry["name"])),
            identifier=str(entry["legacy_id_number"]) if legacy else key,
            device=device,
            pin=str(certificate["pin"]),
            phone=normalize_phone(phone_text) if device == "sim" and phone_text else None,
            email=entry.get("email"),
            revoked=revoked,
            certificate_path=directory / "holders" / f"{key}.pem",
            private_key_path=directory / "holders" / f"{key}.key",
            legacy=legacy,
        )
    return holders


def _load_key(path: Path) -> PrivateKey:
    # The sandbox's own keys, generated by _new_key and kept mode 0600: RSA key validation (about
    # 45 ms a key) would make every application start pay half a second for eleven fictional keys.
    key = serialization.load_pem_private_key(
        path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an RSA or EC key")
    return key


def _new_key(kind: str) -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ensure_key(path: Path, kind: str) -> tuple[PrivateKey, bool]:
    if path.exists():
        with contextlib.suppress(PermissionError):
            os.chmod(path, 0o600)
        return _load_key(path), False
    key = _new_key(kind)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(temporary, path)
    return key, True


def _write_public(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _load_certificate(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _usable(
    existing: x509.Certificate | None,
    key: PrivateKey,
    subject: x509.Name,
    issuer: x509.Certificate | None,
    now: dt.datetime,
) -> bool:
    """Keep an existing certificate: same subject and key, still signed by its issuer, not near expiry."""
    if existing is None or existing.subject != subject or existing.public_key() != key.public_key():
        return False
    if existing.not_valid_after_utc - now < RENEW_BEFORE or existing.not_valid_before_utc > now:
        return False
    try:
        existing.verify_directly_issued_by(issuer or existing)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")] + [x509.NameAttribute(o, v) for o, v in attributes]
    )


ROOT_SUBJECT = _name((NameOID.ORGANIZATION_NAME, ORGANIZATION), (NameOID.COMMON_NAME, ROOT_NAME))
CA_SUBJECT = _name((NameOID.ORGANIZATION_NAME, ORGANIZATION), (NameOID.COMMON_NAME, CA_NAME))
_CA_USAGE = x509.KeyUsage(
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
SIGNING_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def crl_point(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
    )


def _ensure_root(
    directory: Path, key: PrivateKey, start: dt.datetime, now: dt.datetime, *, force: bool, changes: list[str]
) -> x509.Certificate:
    path = directory / "root-ca.pem"
    existing = _load_certificate(path)
    if not force and _usable(existing, key, ROOT_SUBJECT, None, now):
        assert existing is not None
        return existing
    certificate = (
        x509.CertificateBuilder()
        .subject_name(ROOT_SUBJECT)
        .issuer_name(ROOT_SUBJECT)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_public(path, certificate.public_bytes(serialization.Encoding.PEM))
    changes.append(f"created root CA certificate {path} ({ROOT_NAME})")
    return certificate


def _ensure_ca(
    directory: Path,
    key: PrivateKey,
    root: x509.Certificate,
    root_key: PrivateKey,
    start: dt.datetime,
    now: dt.datetime,
    crl_base_url: str,
    *,
    force: bool,
    changes: list[str],
) -> x509.Certificate:
    path = directory / "ca.pem"
    existing = _load_certificate(path)
    if not force and _usable(existing, key, CA_SUBJECT, root, now):
        assert existing is not None
        return existing
    certificate = (
        x509.CertificateBuilder()
        .subject_name(CA_SUBJECT)
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .add_extension(crl_point(f"{crl_base_url}/root-ca.crl"), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    _write_public(path, certificate.public_bytes(serialization.Encoding.PEM))
    changes.append(f"created licensed CA certificate {path} ({CA_NAME})")
    return certificate


def holder_subject(holder: SandboxHolder) -> x509.Name:
    if holder.kind == "enterprise":
        return _name(
            (NameOID.ORGANIZATION_NAME, holder.name),
            (NameOID.COMMON_NAME, holder.name),
            (NameOID.USER_ID, holder.uid),
        )
    return _name((NameOID.COMMON_NAME, holder.name), (NameOID.USER_ID, holder.uid))


def _ensure_subscriber(
    holder: SandboxHolder,
    key: PrivateKey,
    ca: x509.Certificate,
    ca_key: PrivateKey,
    start: dt.datetime,
    now: dt.datetime,
    crl_base_url: str,
    *,
    force: bool,
    changes: list[str],
) -> x509.Certificate:
    subject = holder_subject(holder)
    existing = _load_certificate(holder.certificate_path)
    if not force and _usable(existing, key, subject, ca, now):
        assert existing is not None
        return existing
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=SUBSCRIBER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(SIGNING_USAGE, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(crl_point(f"{crl_base_url}/ca.crl"), critical=False)
    )
    if holder.email:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(holder.email)]), critical=False
        )
    certificate = builder.sign(ca_key, hashes.SHA256())
    _write_public(holder.certificate_path, certificate.public_bytes(serialization.Encoding.PEM))
    changes.append(
        f"created {holder.device} certificate for {holder.name} ({holder.kind} {holder.identifier})"
        + (" - revoked" if holder.revoked else "")
    )
    return certificate


def build_crl(
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: Sequence[int],
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
    revoked_at: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL of ``issuer`` listing ``revoked`` serial numbers (reason keyCompromise)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    for serial in sorted(set(revoked)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revoked_at or this_update)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _ensure_crls(pki: SandboxPki, now: dt.datetime) -> list[str]:
    changes: list[str] = []
    ca = pki.ca_certificate()
    revoked = sorted(pki.certificate(h.key).serial_number for h in pki.holders.values() if h.revoked)
    ca_crl, root_crl = pki.crl_paths
    for path, issuer, key, serials in (
        (ca_crl, ca, pki.ca_private_key(), revoked),
        (root_crl, pki.root_certificate(), pki.root_private_key(), []),
    ):
        existing: x509.CertificateRevocationList | None
        try:
            existing = x509.load_pem_x509_crl(path.read_bytes())
        except (OSError, ValueError):
            existing = None
        if (
            existing is not None
            and is_current_crl(existing, issuer, now)
            and existing.next_update_utc is not None
            and existing.next_update_utc - now > dt.timedelta(days=CRL_DAYS / 2)
            and sorted(r.serial_number for r in existing) == serials
        ):
            continue
        crl = build_crl(
            issuer,
            key,
            serials,
            this_update=now - dt.timedelta(hours=1),
            next_update=now + dt.timedelta(days=CRL_DAYS),
        )
        _write_public(path, crl.public_bytes(serialization.Encoding.PEM))
        changes.append(
            f"issued CRL {path} ({len(serials)} revoked, next update {crl.next_update_utc:%Y-%m-%d})"
        )
    return changes
