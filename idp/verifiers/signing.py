"""Build the digital-signature verifier, the challenges and the SIM signing service from the
configuration (the ``SIGNATURE_*``, ``SIM_SIGNING_*`` and ``SANDBOX_PKI_DIR`` settings).

In sandbox mode the sandbox PKI (:mod:`idp.verifiers.sandbox_pki`) is created if absent, its root
is trusted (besides any configured anchor), its CRLs are read from its files, and the sandbox SIM
service signs for the fictional holders. The flows reach all of it through :class:`Signing`.
No Flask here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from idp.outbound import Guards
from idp.store.ephemeral import EphemeralStore
from idp.verifiers import guard_for
from idp.verifiers.base import VerifierMisconfigured
from idp.verifiers.http import HttpSettings
from idp.verifiers.revocation import (
    CompositeCrlProvider,
    CrlProvider,
    FileCrlProvider,
    HttpCrlProvider,
    OcspClient,
    split_paths,
)
from idp.verifiers.sandbox_pki import DEFAULT_REGISTERS, SandboxPki, create_sandbox_pki
from idp.verifiers.signature import ChallengeStore, SignatureVerifier
from idp.verifiers.sim import HttpSimSigning, SandboxSimSigning, SimSigningService

log = logging.getLogger("idp.verifiers.signature")
_CERTIFICATE_SUFFIXES = (".pem", ".crt", ".cer", ".der")


@dataclass(frozen=True)
class Signing:
    verifier: SignatureVerifier
    challenges: ChallengeStore
    sim: SimSigningService
    sandbox: SandboxPki | None  # in sandbox mode: the fictional holders, their PINs, the USB signer


def load_certificate_files(setting: str, value: str | None) -> list[x509.Certificate]:
    """Certificates from a comma-separated list of PEM/DER files or folders of them."""
    found: list[x509.Certificate] = []
    for part in split_paths(value):
        path = Path(part)
        files = (
            sorted(p for p in path.iterdir() if p.suffix.lower() in _CERTIFICATE_SUFFIXES)
            if path.is_dir()
            else [path]
        )
        for file in files:
            try:
                data = file.read_bytes()
                found += (
                    x509.load_pem_x509_certificates(data)
                    if b"-----BEGIN" in data
                    else [x509.load_der_x509_certificate(data)]
                )
            except OSError:
                raise VerifierMisconfigured("signature", f"IDP_{setting}: cannot read {file}") from None
            except ValueError:
                raise VerifierMisconfigured(
                    "signature", f"IDP_{setting}: {file} holds no certificate"
                ) from None
    return found


def sandbox_pki_dir(config: Mapping[str, Any]) -> Path:
    configured = config.get("SANDBOX_PKI_DIR")
    return Path(configured) if configured else Path(config.get("KEYS_DIR") or "keys") / "sandbox-pki"


def build_signing(config: Mapping[str, Any], store: EphemeralStore, guards: Guards | None = None) -> Signing:
    """Raises VerifierMisconfigured naming the setting when something is missing or unreadable."""
    mode = config.get("SIM_SIGNING_MODE") or "sandbox"
    anchors = load_certificate_files("SIGNATURE_TRUST_ANCHORS", config.get("SIGNATURE_TRUST_ANCHORS"))
    intermediates = load_certificate_files("SIGNATURE_INTERMEDIATES", config.get("SIGNATURE_INTERMEDIATES"))
    crl_providers: list[CrlProvider] = []
    crl_files = split_paths(config.get("SIGNATURE_CRL_FILES"))
    if crl_files:
        crl_providers.append(FileCrlProvider(crl_files))

    sandbox: SandboxPki | None = None
    sim: SimSigningService
    if mode == "sandbox":
        log.warning(
            "IDP_SIM_SIGNING_MODE=sandbox: the sandbox PKI is trusted and anyone can sign as its fictional "
            "people; never use it in production"
        )
        # The same fictional people as the sandbox registers (IDP_REGISTERS_SANDBOX_FILE, if set).
        registers_file = config.get("REGISTERS_SANDBOX_FILE") or DEFAULT_REGISTERS
        sandbox = create_sandbox_pki(sandbox_pki_dir(config), registers_file=Path(registers_file))
        anchors.append(sandbox.root_certificate())
        intermediates.append(sandbox.ca_certificate())
        crl_providers.insert(0, sandbox.crl_provider())
        sim = SandboxSimSigning(
            store, sandbox, lifetime=int(config.get("SIM_SIGNING_REQUEST_LIFETIME") or 180)
        )
    elif mode == "http":
        if not anchors:
            raise VerifierMisconfigured("signature", "IDP_SIGNATURE_TRUST_ANCHORS: is required in http mode")
        url = config.get("SIM_SIGNING_URL")
        if not url:
            raise VerifierMisconfigured("sim-signing:http", "IDP_SIM_SIGNING_URL: is required in http mode")
        settings = HttpSettings(
            base_url=url,
            token=config.get("SIM_SIGNING_TOKEN"),
            connect_timeout=float(config.get("SIM_SIGNING_CONNECT_TIMEOUT") or 2.0),
            read_timeout=float(config.get("SIM_SIGNING_TIMEOUT") or 5.0),
            max_answer_bytes=256 * 1024,
            client_cert=config.get("SIM_SIGNING_CLIENT_CERT"),
            client_key=config.get("SIM_SIGNING_CLIENT_KEY"),
            ca_bundle=config.get("SIM_SIGNING_CA_BUNDLE"),
            budget=float(config.get("REGISTERS_CALL_BUDGET") or 8.0),
            max_concurrent=int(config.get("REGISTERS_MAX_CONCURRENT") or 2),
        )
        sim = HttpSimSigning(
            settings,
            lifetime=int(config.get("SIM_SIGNING_REQUEST_LIFETIME") or 180),
            guard=guard_for(guards, HttpSimSigning.name, settings),
        )
    else:
        raise VerifierMisconfigured("signature", f"IDP_SIM_SIGNING_MODE: unknown mode {mode!r}")

    if config.get("SIGNATURE_CRL_FETCH", True):
        crl_providers.append(
            HttpCrlProvider(
                timeout=float(config.get("SIGNATURE_CRL_TIMEOUT") or 10.0),
                max_bytes=int(config.get("SIGNATURE_CRL_MAX_BYTES") or 32 * 1024 * 1024),
            )
        )
    ocsp_url = config.get("SIGNATURE_OCSP_URL")
    ocsp = (
        OcspClient(ocsp_url, timeout=float(config.get("SIGNATURE_OCSP_TIMEOUT") or 5.0)) if ocsp_url else None
    )
    verifier = SignatureVerifier(
        anchors,
        intermediates=intermediates,
        crl_provider=CompositeCrlProvider(*crl_providers),
        ocsp=ocsp,
    )
    challenges = ChallengeStore(store, int(config.get("SIGNATURE_CHALLENGE_LIFETIME") or 300))
    return Signing(verifier=verifier, challenges=challenges, sim=sim, sandbox=sandbox)
