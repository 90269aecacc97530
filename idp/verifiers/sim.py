"""Remote signing with a digital-signature SIM ("Sim ký số", seed 003 §1.3).

The person types the SIM's phone number; idp asks the carrier's or the CA's mobile signing
service to have the SIM sign a challenge; the phone shows the request, the person confirms with
the SIM's PIN; idp polls the service until the signature (and the SIM's certificate chain) is
there, then verifies both with :class:`idp.verifiers.signature.SignatureVerifier`. The service is
not trusted: it only carries the signature, the certificate chain and the signature are checked.

Two implementations of :class:`SimSigningService`:

- :class:`HttpSimSigning`: the service over HTTP (``docs/signatures.md`` has the contract), through
  the shared :class:`idp.verifiers.http.HttpClient` (timeouts, retries for the idempotent poll
  only, circuit breaker).
- :class:`SandboxSimSigning`: requests kept in the short-lived store; a sandbox "phone" page
  lists them (:meth:`~SandboxSimSigning.pending_for`) and approves one with the PIN of the
  fictional holder's SIM (:mod:`idp.verifiers.sandbox_pki`), or refuses it.

No Flask here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from idp.outbound import Guard
from idp.store.ephemeral import EphemeralStore
from idp.verifiers import common
from idp.verifiers.base import VerifierRejected, VerifierUnavailable
from idp.verifiers.http import HttpClient, HttpSettings, JsonAnswer
from idp.verifiers.sandbox_pki import SandboxPki, WrongPin, sign_with_sandbox_token
from idp.verifiers.signature import (
    MAX_CHAIN_CERTIFICATES,
    MAX_SIGNATURE_BYTES,
    SIM_NOT_ENROLLED,
    CertificateRefused,
)

PENDING, SIGNED, REFUSED, EXPIRED = "pending", "signed", "refused", "expired"
STATES = (PENDING, SIGNED, REFUSED, EXPIRED)
MAX_DATA_BYTES = 4096
MAX_MESSAGE_CHARS = 500
TRANSACTION_ID = re.compile(r"^[A-Za-z0-9._~-]{8,128}$")


@dataclass(frozen=True)
class SimSigningStatus:
    """Where a signing request stands. ``signature`` and ``chain`` (DER certificates, leaf first)
    only when ``state`` is "signed"."""

    state: str
    signature: bytes | None = None
    chain: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        object.__setattr__(self, "chain", tuple(self.chain))


@runtime_checkable
class SimSigningService(Protocol):
    """The mobile signing service behind "Sim ký số"."""

    name: str

    def request_signature(self, *, phone: str, data: bytes, message: str) -> str:
        """Ask the SIM of ``phone`` (E.164) to sign ``data``, showing ``message``; returns the
        transaction id. Raises CertificateRefused(SIM_NOT_ENROLLED) when the number has no
        signing SIM, VerifierRejected for bad input, VerifierUnavailable when the service is down."""
        ...

    def poll(self, transaction_id: str) -> SimSigningStatus:
        """The request's state; an unknown or forgotten transaction is "expired"."""
        ...


def _check_request(verifier: str, phone: str, data: bytes, message: str) -> str:
    number = common.phone(verifier, phone)
    if not data or len(data) > MAX_DATA_BYTES:
        raise VerifierRejected(verifier, "data to sign is empty or too long")
    if not message.strip() or len(message) > MAX_MESSAGE_CHARS:
        raise VerifierRejected(verifier, "message is empty or too long")
    return number


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- the real service over HTTP ----------------------------------------------------------------------
class HttpSimSigning:
    """The carrier's or CA's mobile signing service, through a gateway speaking the contract of
    ``docs/signatures.md``:

        POST {base}/signatures       {"phone", "data", "data_sha256", "message", "expires_in"}
             201/200 {"transaction_id"}; 404 {"reason": "no_record"}: no signing SIM on the number
        GET  {base}/signatures/{id}  200 {"state", "signature"?, "certificate_chain"?}
             404 {"reason": "no_record"}: unknown transaction (reported as "expired")

    The request is not retried (a second request would ask the person twice); the poll is.
    """

    name = "sim-signing:http"

    def __init__(
        self,
        settings: HttpSettings,
        *,
        lifetime: int = 180,
        client: HttpClient | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.lifetime = lifetime
        self.client = client or HttpClient(self.name, settings, guard=guard)

    def request_signature(self, *, phone: str, data: bytes, message: str) -> str:
        number = _check_request(self.name, phone, data, message)
        body = {
            "phone": number,
            "data": _b64(data),
            "data_sha256": _b64(hashlib.sha256(data).digest()),
            "message": message,
            "expires_in": self.lifetime,
        }

        def read(answer: JsonAnswer) -> str:
            if answer.status == 404:
                raise CertificateRefused(
                    SIM_NOT_ENROLLED, "no signing SIM on this number", verifier=self.name
                )
            return answer.text("transaction_id", TRANSACTION_ID)

        return self.client.post_json("signatures", body, read, idempotent=False, no_record_on_404=True)

    def poll(self, transaction_id: str) -> SimSigningStatus:
        if not TRANSACTION_ID.match(transaction_id or ""):
            return SimSigningStatus(EXPIRED)
        return self.client.get_json(
            "signatures/" + quote(transaction_id, safe=""), self._read_status, no_record_on_404=True
        )

    def _read_status(self, answer: JsonAnswer) -> SimSigningStatus:
        if answer.status == 404:
            return SimSigningStatus(EXPIRED)
        state = answer.choice("state", STATES)
        if state != SIGNED:
            return SimSigningStatus(str(state))
        signature = self._decode(answer.text("signature"), "signature")
        if len(signature) > MAX_SIGNATURE_BYTES:
            raise VerifierUnavailable(self.name, "answer field 'signature' is too long")
        chain = answer.data.get("certificate_chain")
        if (
            not isinstance(chain, list)
            or not 1 <= len(chain) <= MAX_CHAIN_CERTIFICATES
            or not all(isinstance(c, str) and c for c in chain)
        ):
            raise VerifierUnavailable(
                self.name, "answer field 'certificate_chain' is not a list of certificates"
            )
        return SimSigningStatus(SIGNED, signature, tuple(self._decode(c, "certificate_chain") for c in chain))

    def _decode(self, value: str, field: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise VerifierUnavailable(self.name, f"answer field {field!r} is not base64") from None


# -- the sandbox -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimSigningRequest:
    """A request as the sandbox phone shows it."""

    transaction_id: str
    phone: str
    message: str
    data: bytes
    expires_at: dt.datetime  # UTC, aware


class SandboxSimSigning:
    """Signing requests kept in the short-lived store, approved on a sandbox "phone" page.

    :meth:`approve` signs with the sandbox key of the person or enterprise whose signing SIM is
    the phone, only with that SIM's PIN; every wrong PIN counts, and the ``max_pin_tries``-th
    refuses the request (raises WrongPin with ``tries_left`` 0).
    """

    name = "sim-signing:sandbox"
    PREFIX = "simsign:"
    GRACE = 300  # seconds an ended request stays readable (the poll that reports it)

    def __init__(
        self,
        store: EphemeralStore,
        pki: SandboxPki,
        *,
        lifetime: int = 180,
        max_pin_tries: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pki = pki
        self.lifetime = lifetime
        self.max_pin_tries = max_pin_tries
        self._clock = clock

    def _key(self, transaction_id: str) -> str:
        return f"{self.PREFIX}tx:{transaction_id}"

    def _phone_key(self, phone: str) -> str:
        return f"{self.PREFIX}phone:{phone}"

    def request_signature(self, *, phone: str, data: bytes, message: str) -> str:
        number = _check_request(self.name, phone, data, message)
        holder = self.pki.holder_for_phone(number)
        if holder is None:
            raise CertificateRefused(SIM_NOT_ENROLLED, "no signing SIM on this number", verifier=self.name)
        transaction_id = secrets.token_urlsafe(18)
        record = {
            "phone": number,
            "holder": holder.key,
            "data": _b64(data),
            "message": message,
            "state": PENDING,
            "expires": self._clock() + self.lifetime,
        }
        self._save(transaction_id, record)
        self.store.sadd(self._phone_key(number), transaction_id, self.lifetime + self.GRACE)
        return transaction_id

    def _save(self, transaction_id: str, record: dict[str, Any]) -> None:
        ttl = max(1, int(record["expires"] - self._clock()) + self.GRACE)
        self.store.set(self._key(transaction_id), json.dumps(record), ttl)

    def _load(self, transaction_id: str) -> dict[str, Any] | None:
        if not TRANSACTION_ID.match(transaction_id or ""):
            return None
        value = self.store.get(self._key(transaction_id))
        if value is None:
            return None
        record: dict[str, Any] = json.loads(value)
        return record

    def _status(self, record: dict[str, Any] | None) -> SimSigningStatus:
        if record is None:
            return SimSigningStatus(EXPIRED)
        if record["state"] == PENDING and self._clock() > record["expires"]:
            return SimSigningStatus(EXPIRED)
        if record["state"] == SIGNED:
            return SimSigningStatus(
                SIGNED,
                base64.b64decode(record["signature"]),
                tuple(base64.b64decode(c) for c in record["chain"]),
            )
        return SimSigningStatus(record["state"])

    def poll(self, transaction_id: str) -> SimSigningStatus:
        return self._status(self._load(transaction_id))

    def pending_for(self, phone: str) -> list[SimSigningRequest]:
        """The requests waiting on this phone's SIM, oldest first."""
        try:
            number = common.phone(self.name, phone)
        except VerifierRejected:
            return []
        found: list[SimSigningRequest] = []
        for transaction_id in self.store.smembers(self._phone_key(number)):
            record = self._load(transaction_id)
            if record is None or self._status(record).state != PENDING:
                self.store.srem(self._phone_key(number), transaction_id)
                continue
            found.append(
                SimSigningRequest(
                    transaction_id=transaction_id,
                    phone=number,
                    message=record["message"],
                    data=base64.b64decode(record["data"]),
                    expires_at=dt.datetime.fromtimestamp(record["expires"], dt.UTC),
                )
            )
        return sorted(found, key=lambda r: r.expires_at)

    def approve(self, transaction_id: str, pin: str) -> SimSigningStatus:
        """Confirm on the phone with the PIN: the request is signed. A request that is no longer
        pending is left as it is (its status is returned). Raises WrongPin."""
        record = self._load(transaction_id)
        status = self._status(record)
        if record is None or status.state != PENDING:
            return status
        data = base64.b64decode(record["data"])
        try:
            signature, chain = sign_with_sandbox_token(self.pki, record["holder"], pin, data)
        except WrongPin:
            tries = self.store.incr(f"{self.PREFIX}tries:{transaction_id}", self.lifetime + self.GRACE)
            left = max(0, self.max_pin_tries - tries)
            if left == 0:
                record["state"] = REFUSED
                self._save(transaction_id, record)
            raise WrongPin(left) from None
        record.update(state=SIGNED, signature=_b64(signature), chain=[_b64(c) for c in chain])
        self._save(transaction_id, record)
        return self._status(record)

    def refuse(self, transaction_id: str) -> SimSigningStatus:
        """The person presses "Từ chối" on the phone."""
        record = self._load(transaction_id)
        status = self._status(record)
        if record is None or status.state != PENDING:
            return status
        record["state"] = REFUSED
        self._save(transaction_id, record)
        return self._status(record)
