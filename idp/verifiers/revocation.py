"""Certificate revocation for :mod:`idp.verifiers.signature`: CRLs (RFC 5280 §5.1) and OCSP (RFC 6960).

The verifier asks a :class:`CrlProvider` for the revocation lists that may cover one certificate
and decides itself which of them it trusts (signed by the issuer, current at the verification
time). Two providers exist, and :class:`CompositeCrlProvider` chains them:

- :class:`FileCrlProvider`: CRL files (PEM or DER) or folders of them that an operator (or a cron
  job) keeps up to date; a file is read again whenever its size or modification time changes.
- :class:`HttpCrlProvider`: the HTTP(S) URLs of the certificate's CRL distribution points, fetched
  with a timeout and a size cap and cached until the list's nextUpdate.

:class:`OcspClient` asks an OCSP responder about a subscriber certificate; the verifier falls back
to the CRL when the responder cannot be reached or gives no usable answer.

No Flask here; nothing is logged beyond URLs and outcomes (CRLs and certificates are public data,
but subjects name people).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

log = logging.getLogger("idp.verifiers.signature")

Clock = Callable[[], dt.datetime]

# Tolerated difference between our clock and a CA's when checking thisUpdate.
CLOCK_SKEW = dt.timedelta(minutes=5)
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.S)
_CRL_SUFFIXES = (".crl", ".pem", ".der")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- CRLs -------------------------------------------------------------------------------------------
class CrlProvider(Protocol):
    """Where the revocation lists come from."""

    def crls_for(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> Sequence[x509.CertificateRevocationList]:
        """Candidate CRLs for ``certificate`` (issued by ``issuer``); the caller checks each one."""
        ...


def parse_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """One DER CRL, or any number of PEM CRLs. Raises ValueError when nothing parses."""
    if b"-----BEGIN" in data[:4096]:
        blocks = _PEM_CRL.findall(data)
        if not blocks:
            raise ValueError("no PEM CRL in the data")
        return [x509.load_pem_x509_crl(block) for block in blocks]
    return [x509.load_der_x509_crl(data)]


def is_current_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, at: dt.datetime) -> bool:
    """Is this CRL one we may rely on at ``at``: issued by ``issuer`` (name and signature) and
    current (thisUpdate not in the future, a nextUpdate still ahead)?

    A CRL without nextUpdate is refused: RFC 5280 §5.1.2.5 requires the field, and without it
    nothing says how stale the list may be.
    """
    if crl.issuer != issuer.subject:
        return False
    next_update = crl.next_update_utc
    if next_update is None or next_update <= at or crl.last_update_utc > at + CLOCK_SKEW:
        return False
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


class FileCrlProvider:
    """CRLs from configured files or folders (``*.crl``, ``*.pem``, ``*.der``), PEM or DER.

    Each call looks at the files' size and modification time and reads a changed file again, so
    an operator (or a cron job downloading the CAs' lists) replaces files without a restart. A
    file that does not parse (say, half written) keeps its previous content until it parses.
    """

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self._lock = threading.Lock()
        self._loaded: dict[Path, tuple[tuple[int, int], list[x509.CertificateRevocationList]]] = {}
        self._warned: set[Path] = set()

    def _files(self) -> list[Path]:
        found: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                found += sorted(
                    p for p in path.iterdir() if p.suffix.lower() in _CRL_SUFFIXES and p.is_file()
                )
            elif path.is_file():
                found.append(path)
            elif path not in self._warned:
                self._warned.add(path)
                log.warning("signature: CRL file not found: %s", path)
        return found

    def _refresh(self) -> list[x509.CertificateRevocationList]:
        result: list[x509.CertificateRevocationList] = []
        files = self._files()
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            stamp = (stat.st_mtime_ns, stat.st_size)
            known = self._loaded.get(path)
            if known is None or known[0] != stamp:
                try:
                    crls = parse_crls(path.read_bytes())
                except (OSError, ValueError) as exc:
                    log.warning("signature: CRL file %s could not be read: %s", path, exc.__class__.__name__)
                    if known is not None:
                        result += known[1]
                    continue
                self._loaded[path] = (stamp, crls)
                known = self._loaded[path]
            result += known[1]
        for gone in set(self._loaded) - set(files):
            del self._loaded[gone]
        return result

    def crls_for(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> Sequence[x509.CertificateRevocationList]:
        with self._lock:
            every = self._refresh()
        return [crl for crl in every if crl.issuer == issuer.subject]


def distribution_points(certificate: x509.Certificate) -> list[str]:
    """The http(s) URLs of a certificate's CRL distribution points (LDAP ones are skipped)."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls: list[str] = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and urlsplit(name.value).scheme in (
                "http",
                "https",
            ):
                urls.append(name.value)
    return urls


@dataclass
class _Cached:
    crl: x509.CertificateRevocationList | None
    fresh_until: dt.datetime  # refetch after this moment
    failed_at: dt.datetime | None = None


class HttpCrlProvider:
    """CRLs fetched from the certificate's distribution points, cached until their nextUpdate.

    Only certificates whose path to a trust anchor was verified reach this provider, so the URLs
    come from a CA, not from the person. The download is capped (``max_bytes``; national CAs'
    lists run to megabytes) and times out; a failed URL is not tried again for
    ``retry_after`` seconds (the cached list, if any, is still offered: the verifier decides
    whether it is current).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_bytes: int = 32 * 1024 * 1024,
        retry_after: float = 60.0,
        session: requests.Session | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retry_after = dt.timedelta(seconds=retry_after)
        self._session = session
        self._clock = clock or utc_now
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._url_locks: dict[str, threading.Lock] = {}

    def _http(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["User-Agent"] = "idp-crl/1"
            self._session = session
        return self._session

    def crls_for(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> Sequence[x509.CertificateRevocationList]:
        found: list[x509.CertificateRevocationList] = []
        for url in distribution_points(certificate):
            crl = self._get(url)
            if crl is not None and crl.issuer == issuer.subject:
                found.append(crl)
        return found

    def _get(self, url: str) -> x509.CertificateRevocationList | None:
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:  # one download per URL at a time; the others wait and use it
            now = self._clock()
            cached = self._cache.get(url)
            if cached is not None:
                if now < cached.fresh_until:
                    return cached.crl
                if cached.failed_at is not None and now - cached.failed_at < self.retry_after:
                    return cached.crl
            try:
                crl = self._fetch(url)
            except (requests.RequestException, ValueError, OSError) as exc:
                log.warning("signature: CRL %s could not be fetched: %s", url, exc)
                stale = cached.crl if cached else None
                self._cache[url] = _Cached(stale, now, failed_at=now)
                return stale
            next_update = crl.next_update_utc
            fresh_until = next_update if next_update is not None else now
            self._cache[url] = _Cached(crl, fresh_until)
            return crl

    def _fetch(self, url: str) -> x509.CertificateRevocationList:
        with self._http().get(url, timeout=(min(5.0, self.timeout), self.timeout), stream=True) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise ValueError(f"larger than {self.max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > self.max_bytes:
                    raise ValueError(f"larger than {self.max_bytes} bytes")
                chunks.append(chunk)
        crls = parse_crls(b"".join(chunks))
        return crls[0]


class CompositeCrlProvider:
    """Ask providers in order; stop at the first that has a current CRL signed by the issuer
    (so that local files spare a download)."""

    def __init__(self, *providers: CrlProvider) -> None:
        self.providers = providers

    def crls_for(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
    ) -> Sequence[x509.CertificateRevocationList]:
        found: list[x509.CertificateRevocationList] = []
        for provider in self.providers:
            these = list(provider.crls_for(certificate, issuer, at))
            found += these
            if any(is_current_crl(crl, issuer, at) for crl in these):
                break
        return found


def split_paths(value: str | None) -> list[str]:
    """A setting that lists paths: separated by commas or the OS path separator."""
    if not value:
        return []
    return [part.strip() for part in re.split(rf"[,{re.escape(os.pathsep)}]", value) if part.strip()]


# -- OCSP -------------------------------------------------------------------------------------------
class OcspUnavailable(Exception):
    """No usable OCSP answer (unreachable, HTTP error, malformed, badly signed, stale)."""


@dataclass(frozen=True)
class OcspAnswer:
    status: str  # "good", "revoked" or "unknown"
    this_update: dt.datetime
    next_update: dt.datetime | None


_OCSP_STATUS = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}


def verify_signed_bytes(
    public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    """Check a signature made by a CA or an OCSP responder (PKCS#1 v1.5 or PSS, ECDSA, EdDSA)."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            try:
                public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
            except InvalidSignature:
                pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
                public_key.verify(signature, data, pss, algorithm)
            return True
        if isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
            return True
        if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
            return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return False


def ocsp_urls(certificate: x509.Certificate) -> list[str]:
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value
        for d in access
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and urlsplit(d.access_location.value).scheme in ("http", "https")
    ]


class OcspClient:
    """Ask an OCSP responder (RFC 6960) about one certificate, over HTTP POST.

    ``url``: the responder to ask; ``None`` (or ``"aia"``) means the one named in the certificate's
    Authority Information Access. The answer must be signed by the issuer or by a responder
    certificate the issuer delegated (id-kp-OCSPSigning), cover this certificate, be current, and
    echo our nonce when it carries one. Anything else raises :class:`OcspUnavailable`, and the
    verifier falls back to the CRL.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 5.0,
        max_bytes: int = 64 * 1024,
        max_age: float = 3600.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = None if url in (None, "", "aia") else url
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_age = dt.timedelta(seconds=max_age)  # for answers without nextUpdate
        self._session = session

    def _http(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["User-Agent"] = "idp-ocsp/1"
            self._session = session
        return self._session

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> OcspAnswer:
        url = self.url or next(iter(ocsp_urls(certificate)), None)
        if url is None:
            raise OcspUnavailable("no OCSP responder for this certificate")
        nonce = secrets.token_bytes(16)
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, issuer, hashes.SHA1())  # noqa: S303 - CertID hash RFC 6960 §4.1.1 / 5019
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        body = self._post(url, request.public_bytes(Encoding.DER))
        try:
            response = ocsp.load_der_ocsp_response(body)
        except ValueError:
            raise OcspUnavailable("malformed OCSP answer") from None
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise OcspUnavailable(f"OCSP answer status {response.response_status.name}")
        self._check_signature(response, issuer, at)
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed is not None and echoed != nonce:
            raise OcspUnavailable("OCSP answer carries another nonce")
        for single in response.responses:
            if (
                single.serial_number == certificate.serial_number
                and single.issuer_key_hash == request.issuer_key_hash
                and single.issuer_name_hash == request.issuer_name_hash
            ):
                this_update = single.this_update_utc
                next_update = single.next_update_utc
                if this_update > at + CLOCK_SKEW:
                    raise OcspUnavailable("OCSP answer from the future")
                if next_update is not None and next_update <= at:
                    raise OcspUnavailable("OCSP answer is stale (nextUpdate passed)")
                if next_update is None and at - this_update > self.max_age:
                    raise OcspUnavailable("OCSP answer is stale")
                return OcspAnswer(_OCSP_STATUS[single.certificate_status], this_update, next_update)
        raise OcspUnavailable("OCSP answer does not cover this certificate")

    def _post(self, url: str, body: bytes) -> bytes:
        try:
            with self._http().post(
                url,
                data=body,
                headers={"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"},
                timeout=(min(3.0, self.timeout), self.timeout),
                stream=True,
                allow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise OcspUnavailable(f"OCSP responder answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_content(16384):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise OcspUnavailable("OCSP answer too large")
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.RequestException as exc:
            raise OcspUnavailable(f"OCSP responder unreachable ({exc.__class__.__name__})") from None

    def _check_signature(
        self, response: ocsp.OCSPResponse, issuer: x509.Certificate, at: dt.datetime
    ) -> None:
        issuer_key_id = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
        signer: x509.Certificate | None = None
        if response.responder_name == issuer.subject or response.responder_key_hash == issuer_key_id:
            signer = issuer
        else:
            for candidate in response.certificates:
                key_id = x509.SubjectKeyIdentifier.from_public_key(candidate.public_key()).digest
                if candidate.subject == response.responder_name or key_id == response.responder_key_hash:
                    self._check_delegate(candidate, issuer, at)
                    signer = candidate
                    break
        if signer is None:
            raise OcspUnavailable("OCSP answer signed by an unknown responder")
        if not verify_signed_bytes(
            signer.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        ):
            raise OcspUnavailable("OCSP answer signature does not verify")

    @staticmethod
    def _check_delegate(responder: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        """RFC 6960 §4.2.2.2: a delegated responder is issued by the CA and marked id-kp-OCSPSigning."""
        try:
            responder.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise OcspUnavailable("OCSP responder certificate not issued by the CA") from None
        try:
            usages = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            raise OcspUnavailable("OCSP responder certificate is not for OCSP signing") from None
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            raise OcspUnavailable("OCSP responder certificate is not for OCSP signing")
        if not responder.not_valid_before_utc <= at <= responder.not_valid_after_utc:
            raise OcspUnavailable("OCSP responder certificate is outside its validity")
