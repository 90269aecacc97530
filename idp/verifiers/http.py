"""The HTTP client every real register adapter uses (DESIGN §5; the wire contract is docs/verifiers.md).

One :class:`HttpClient` per adapter instance, so that one register's outage opens only its own
circuit breaker. What it guarantees, so that the adapters stay small:

- per-call connect/read timeouts, and the whole answer must arrive within the read timeout;
- retries with exponential backoff and jitter, only for calls the adapter declares idempotent, and
  only on connection errors, timeouts and 502/503/504; all of them, backoff included, within one
  time budget per call (``budget``): a register that accepts and never answers holds a thread no
  longer than that;
- a bulkhead (idp.outbound): at most ``max_concurrent`` calls to the register at a time from one
  process, and a share of all outbound calls; a call beyond it is refused at once;
- a circuit breaker that stops calling a register after N consecutive failed calls, then lets one
  trial call through after a cool-down; given a guard (idp.outbound.Guards), its state is shared
  by every worker through the short-lived store;
- a bearer token (``Authorization: Bearer …``), optional mutual TLS and a private CA bundle;
- answers larger than ``max_answer_bytes`` are refused while streaming, never read whole;
- status mapping: 2xx = answer; 404 = "no record" when the adapter allows it and the body says so;
  401/403 and redirects = :class:`VerifierMisconfigured`; other 4xx = :class:`VerifierRejected`;
  5xx, timeouts, malformed or oversized answers = :class:`VerifierUnavailable`.

Nothing here logs a request or answer body: register calls carry ID numbers and names. Logged
lines name the adapter, the path (which by contract carries no personal data), status and timing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3

from idp.outbound import Breaker, BreakerState, CircuitBreaker, Deadline, Guard, Refused
from idp.verifiers.base import VerifierMisconfigured, VerifierRejected, VerifierUnavailable

__all__ = ["BreakerState", "CircuitBreaker", "HttpClient", "HttpSettings", "JsonAnswer"]

log = logging.getLogger("idp.verifiers")

RETRYABLE_STATUSES = frozenset({502, 503, 504})
# The register's reference for one check (evidence id): printable ASCII without spaces.
REFERENCE = re.compile(r"^[\x21-\x7e]{1,128}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
USER_AGENT = "idp-verifiers/1"
T = TypeVar("T")


@dataclass(frozen=True)
class HttpSettings:
    """How to reach one register's gateway (built from the ``IDP_*REGISTER*`` settings)."""

    base_url: str
    token: str | None = None  # sent as "Authorization: Bearer <token>"
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    retries: int = 2  # extra attempts, idempotent calls only
    backoff: float = 0.25  # first retry delay, seconds; doubles each time, with jitter
    backoff_max: float = 2.0
    breaker_threshold: int = 5  # consecutive failed calls that open the circuit
    breaker_cooldown: float = 10.0  # seconds the circuit stays open before one trial call
    budget: float = 8.0  # seconds one call may take in all, retries and backoff included
    max_concurrent: int = 2  # calls to this register at a time from one process (with a guard)
    max_answer_bytes: int = 64 * 1024
    client_cert: str | None = None  # PEM certificate (may also hold the key) for mutual TLS
    client_key: str | None = None  # PEM private key, when not in client_cert
    ca_bundle: str | None = None  # PEM CAs for the gateway's certificate; None = system CAs


class JsonAnswer:
    """A register's JSON object with typed accessors; a missing or ill-typed field is VerifierUnavailable.

    Error messages name the field, never its value (values are personal data).
    """

    def __init__(self, verifier: str, data: Mapping[str, Any], *, status: int = 200, where: str = "") -> None:
        self.verifier = verifier
        self.data = data
        self.status = status
        self._where = where

    def _bad(self, key: str, what: str) -> VerifierUnavailable:
        return VerifierUnavailable(self.verifier, f"answer field {self._where + key!r} {what}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.data.get(key)
        if value is None:
            raise self._bad(key, "is missing")
        if not isinstance(value, str) or not value.strip():
            raise self._bad(key, "is not a non-empty string")
        if pattern is not None and not pattern.match(value):
            raise self._bad(key, "has the wrong format")
        return value

    def optional_text(self, key: str, pattern: re.Pattern[str] | None = None) -> str | None:
        return self.text(key, pattern) if self.has(key) else None

    def choice(self, key: str, choices: Collection[str], *, optional: bool = False) -> str | None:
        if optional and not self.has(key):
            return None
        value = self.text(key)
        if value not in choices:
            raise self._bad(key, f"is not one of {', '.join(sorted(choices))}")
        return value

    def iso_date(self, key: str, *, optional: bool = False) -> str | None:
        """A calendar date written yyyy-mm-dd, returned as written."""
        if optional and not self.has(key):
            return None
        value = self.text(key, ISO_DATE)
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise self._bad(key, "is not a real date") from None
        return value

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            raise self._bad(key, "is missing")
        if not isinstance(value, bool):
            raise self._bad(key, "is not true or false")
        return value

    def names(self, key: str, allowed: Collection[str]) -> tuple[str, ...]:
        """A list of field names, kept in ``allowed``'s order; names idp did not send are dropped."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "is not a list of field names")
        return tuple(name for name in allowed if name in value)

    def object(self, key: str) -> JsonAnswer:
        value = self.data.get(key)
        if value is None:
            raise self._bad(key, "is missing")
        if not isinstance(value, dict):
            raise self._bad(key, "is not an object")
        return JsonAnswer(self.verifier, value, status=self.status, where=f"{self._where}{key}.")


def _certificate_refused(exc: BaseException) -> bool:
    """Whether a TLS failure is about a certificate (ours refused, or the register's not trusted),
    read from the ssl errors requests and urllib3 wrap, by type and OpenSSL reason code."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        error = pending.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError):
            return True
        if isinstance(error, ssl.SSLError) and "CERTIFICATE" in str(getattr(error, "reason", "") or ""):
            return True
        pending.extend([*error.args, getattr(error, "reason", None), error.__cause__, error.__context__])
    return False


class _Transient(Exception):
    """A failure worth retrying (idempotent calls only): connection, timeout, 502/503/504."""


class HttpClient:
    """JSON over HTTP to one register gateway. Use :meth:`post_json` / :meth:`get_json`."""

    def __init__(
        self,
        verifier: str,
        settings: HttpSettings,
        *,
        guard: Guard | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verifier = verifier
        self.settings = settings
        self.breaker: Breaker = (
            guard.breaker
            if guard is not None
            else CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown, clock)
        )
        self.bulkhead = guard.bulkhead if guard is not None else None
        self.budget = guard.budget if guard is not None else settings.budget
        self._sleep = sleep
        self._clock = clock
        self._check_settings()
        self._local = threading.local()  # requests.Session is not documented as thread-safe
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _check_settings(self) -> None:
        s = self.settings
        parts = urlsplit(s.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VerifierMisconfigured(self.verifier, "the register URL must be an absolute http(s) URL")
        if s.client_key and not s.client_cert:
            raise VerifierMisconfigured(self.verifier, "a client key needs a client certificate")
        for label, path in (
            ("client certificate", s.client_cert),
            ("client key", s.client_key),
            ("CA bundle", s.ca_bundle),
        ):
            if path and not Path(path).is_file():
                raise VerifierMisconfigured(self.verifier, f"{label} file not found: {path}")

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxies, CA bundles and .netrc from the process environment are ignored: the
            # configuration is the only source (idp.config), and the token must not be replaced.
            session.trust_env = False
            session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
            if self.settings.token:
                session.headers["Authorization"] = f"Bearer {self.settings.token}"
            if self.settings.client_cert:
                session.cert = (
                    (self.settings.client_cert, self.settings.client_key)
                    if self.settings.client_key
                    else self.settings.client_cert
                )
            session.verify = self.settings.ca_bundle or True
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every thread's pooled connections."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + "/" + path.lstrip("/")

    # -- the calls ---------------------------------------------------------------------------------
    def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        read: Callable[[JsonAnswer], T],
        *,
        idempotent: bool,
        no_record_on_404: bool = False,
    ) -> T:
        """POST a JSON object and turn the answer (2xx, or 404 "no record") into ``read``'s result.

        ``read`` runs inside the breaker's accounting, so an answer it finds malformed
        (VerifierUnavailable) counts as a failed call. ``idempotent`` is the adapter's promise that
        sending the request twice does no harm, which is what allows retries. ``no_record_on_404``:
        a 404 whose body is ``{"reason": "no_record"}`` is an answer, not an error (any other 404
        means a wrong URL).
        """
        return self._call(
            "POST", path, read, body=body, idempotent=idempotent, no_record_on_404=no_record_on_404
        )

    def get_json(
        self,
        path: str,
        read: Callable[[JsonAnswer], T],
        *,
        params: Mapping[str, str] | None = None,
        no_record_on_404: bool = False,
    ) -> T:
        """GET (always idempotent). Never put personal data in ``params``: URLs end up in access logs."""
        return self._call(
            "GET", path, read, params=params, idempotent=True, no_record_on_404=no_record_on_404
        )

    def _call(
        self,
        method: str,
        path: str,
        read: Callable[[JsonAnswer], T],
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        no_record_on_404: bool,
    ) -> T:
        if self.bulkhead is None:
            return self._guarded(method, path, read, body, params, idempotent, no_record_on_404)
        try:
            with self.bulkhead.slot():
                return self._guarded(method, path, read, body, params, idempotent, no_record_on_404)
        except Refused as exc:
            log.warning("%s: %s %s not made: %s", self.verifier, method, path, exc)
            raise VerifierUnavailable(self.verifier, "too many calls under way; not called") from None

    def _guarded(
        self,
        method: str,
        path: str,
        read: Callable[[JsonAnswer], T],
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        idempotent: bool,
        no_record_on_404: bool,
    ) -> T:
        if not self.breaker.allow():
            raise VerifierUnavailable(
                self.verifier,
                f"circuit open after repeated failures; next try in {self.breaker.retry_in():.0f} s",
            )
        deadline = Deadline.after(self.budget, self._clock)
        attempts = 1 + max(0, self.settings.retries) if idempotent else 1
        request_id = str(uuid.uuid4())  # the same on every retry: the gateway may deduplicate on it
        outcome_recorded = False
        try:
            for attempt in range(1, attempts + 1):
                started = self._clock()
                try:
                    answer = self._attempt(method, path, body, params, request_id, no_record_on_404, deadline)
                except _Transient as exc:
                    log.warning(
                        "%s: %s %s attempt %d/%d failed: %s",
                        self.verifier,
                        method,
                        path,
                        attempt,
                        attempts,
                        exc,
                    )
                    pause = self._backoff(attempt)
                    if attempt == attempts or deadline.left() < pause + 0.1:
                        # No attempt left, or no time left in the budget for another one.
                        raise VerifierUnavailable(self.verifier, str(exc)) from None
                    self._sleep(pause)
                    continue
                log.debug(
                    "%s: %s %s -> %d in %.3f s",
                    self.verifier,
                    method,
                    path,
                    answer.status,
                    self._clock() - started,
                )
                result = read(answer)
                self.breaker.record_success()
                outcome_recorded = True
                return result
            raise AssertionError("unreachable")  # pragma: no cover
        except VerifierUnavailable as exc:
            log.warning("%s %s failed: %s", method, path, exc)
            self.breaker.record_failure()
            outcome_recorded = True
            raise
        except (VerifierRejected, VerifierMisconfigured) as exc:
            # The register (or our configuration) answered clearly: the register is up.
            log.warning("%s %s failed: %s", method, path, exc)
            self.breaker.record_success()
            outcome_recorded = True
            raise
        finally:
            if not outcome_recorded:  # an unexpected error must not leave a half-open trial pending
                self.breaker.record_failure()

    def _backoff(self, attempt: int) -> float:
        """Equal jitter: half the exponential delay fixed, half random, so retries spread out."""
        cap = min(self.settings.backoff_max, self.settings.backoff * 2 ** (attempt - 1))
        return cap / 2 + random.uniform(0, cap / 2)

    def _attempt(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        request_id: str,
        no_record_on_404: bool,
        deadline: Deadline,
    ) -> JsonAnswer:
        s = self.settings
        try:
            response = self._session().request(
                method,
                self.url(path),
                json=body,
                params=params,
                headers={"X-Request-Id": request_id},
                timeout=(deadline.cap(s.connect_timeout), deadline.cap(s.read_timeout)),
                stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            if _certificate_refused(exc):
                raise VerifierMisconfigured(
                    self.verifier, "TLS certificate refused (ours or the register's)"
                ) from None
            raise _Transient("TLS error") from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ):
            raise VerifierMisconfigured(self.verifier, "the register URL is not usable") from None
        except requests.exceptions.Timeout:
            raise _Transient("timed out") from None
        except requests.exceptions.RequestException as exc:
            raise _Transient(f"connection failed ({exc.__class__.__name__})") from None
        except OSError:  # requests raises it for unreadable certificate or CA files
            raise VerifierMisconfigured(self.verifier, "TLS files could not be read") from None
        with response:
            return self._answer(response, no_record_on_404, deadline)

    def _answer(self, response: requests.Response, no_record_on_404: bool, deadline: Deadline) -> JsonAnswer:
        status = response.status_code
        if status in RETRYABLE_STATUSES:
            raise _Transient(f"HTTP {status}")
        if status >= 500:
            raise VerifierUnavailable(self.verifier, f"HTTP {status}")
        if 300 <= status < 400:
            raise VerifierMisconfigured(self.verifier, f"HTTP {status} redirect: check the register URL")
        if status in (401, 403):
            raise VerifierMisconfigured(self.verifier, f"HTTP {status}: the register refused our credentials")
        if status == 404:
            answer = (
                self._json(response, status, strict=False, deadline=deadline) if no_record_on_404 else None
            )
            if answer is None or answer.data.get("reason") != "no_record":
                raise VerifierMisconfigured(
                    self.verifier, "HTTP 404 without a no-record answer: check the register URL"
                )
            return answer
        if 400 <= status < 500:
            raise VerifierRejected(self.verifier, f"HTTP {status}: the register refused the request")
        if not 200 <= status < 300:
            raise VerifierUnavailable(self.verifier, f"unexpected HTTP {status}")
        answer = self._json(response, status, strict=True, deadline=deadline)
        assert answer is not None
        return answer

    def _json(
        self, response: requests.Response, status: int, *, strict: bool, deadline: Deadline
    ) -> JsonAnswer | None:
        """Parse the body as a JSON object; ``strict`` raises VerifierUnavailable, otherwise None."""
        body = self._read_limited(response, deadline)
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict):
            if strict:
                raise VerifierUnavailable(self.verifier, f"HTTP {status} answer is not a JSON object")
            return None
        return JsonAnswer(self.verifier, data, status=status)

    def _read_limited(self, response: requests.Response, budget: Deadline) -> bytes:
        """Read the body while counting: oversized or too slow answers are abandoned mid-stream."""
        limit = self.settings.max_answer_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise VerifierUnavailable(self.verifier, f"answer larger than {limit} bytes")
        deadline = min(self._clock() + self.settings.read_timeout, budget.at)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                # read1 returns what has arrived, so a drip-fed answer still meets the deadline check.
                chunk = response.raw.read1(8192, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise VerifierUnavailable(self.verifier, f"answer larger than {limit} bytes")
                if self._clock() > deadline:
                    raise _Transient("answer too slow")
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
            raise _Transient(f"answer interrupted ({exc.__class__.__name__})") from None
        return b"".join(chunks)
