"""An OpenID Connect relying party for one upstream (OpenID Connect Core 1.0, Discovery 1.0,
RFC 7636 PKCE, RFC 9207 iss): discovery, JWKS with key rotation, the code exchange, and the checks
of the ID token and of userinfo.

Every call is bounded by the upstream's timeout (IDP_UPSTREAM_TIMEOUT) and, when idp wires one, by
its guard (idp.outbound: a bulkhead and a circuit breaker shared by every worker). Failures are one
of two errors a door turns into a page: :class:`UpstreamUnavailable` (unreachable, timeout, 5xx,
breaker open: 503) and :class:`UpstreamRefused` (a bad answer: malformed JSON, an error from the
token endpoint, a forged or expired ID token, a replayed nonce: 502).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.outbound import Deadline, Guard, Refused

SIGNING_ALGS = ("RS256", "ES256", "PS256", "RS384", "ES384", "RS512", "EdDSA")
LEEWAY = 60  # seconds of clock skew accepted on exp / iat / nbf
DISCOVERY_LIFETIME = 3600  # seconds a discovery document is reused
JWKS_LIFETIME = 3600  # seconds a JWKS is reused while every kid is known
JWKS_REFETCH_INTERVAL = 10.0  # unknown kids refetch the JWKS at most this often
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class UpstreamError(Exception):
    def __init__(self, upstream: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{upstream}: {reason}" + (f" ({detail})" if detail else ""))
        self.upstream = upstream
        self.reason = reason  # short, ASCII, stable: for the audit trail and the tests
        self.detail = detail


class UpstreamUnavailable(UpstreamError):
    """Not reached, too slow, 5xx, or its circuit is open: try again later (503)."""


class UpstreamRefused(UpstreamError):
    """It answered, but not what a correct provider answers (502): nothing may be trusted."""


@dataclass(frozen=True)
class UpstreamConfig:
    name: str  # "national-portal" | "vneid"
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105 - a method name
    scope: str = "openid"
    acr_values: str | None = None
    timeout: float = 5.0
    # Explicit endpoints for an upstream without discovery (each overrides discovery's).
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    end_session_endpoint: str | None = None


@dataclass(frozen=True)
class Authorization:
    """What a door keeps (server side, bound to the browser and the interaction) to finish."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Tokens:
    id_token: str
    id_claims: dict[str, Any]
    access_token: str | None
    refresh_token: str | None = None
    userinfo: dict[str, Any] = field(default_factory=dict)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class UpstreamClient:
    def __init__(
        self,
        config: UpstreamConfig,
        *,
        guard: Guard | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.token_endpoint_auth_method not in AUTH_METHODS:
            raise ValueError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
        self.config = config
        self.guard = guard
        self.http = session or requests.Session()
        self.clock = clock
        self._lock = threading.Lock()
        self._discovery: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, KeySet] | None = None
        self._refetched_at = -JWKS_REFETCH_INTERVAL  # monotonic: the last refetch for an unknown kid

    # -- HTTP ------------------------------------------------------------------------------------
    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        name = self.config.name
        deadline = Deadline.after(self.guard.budget if self.guard else self.config.timeout)
        if self.guard is not None and not self.guard.breaker.allow():
            raise UpstreamUnavailable(name, "circuit_open")
        try:
            if self.guard is not None and self.guard.bulkhead is not None:
                with self.guard.bulkhead.slot():
                    response = self._send(method, url, deadline, **kwargs)
            else:
                response = self._send(method, url, deadline, **kwargs)
        except Refused as exc:
            raise UpstreamUnavailable(name, "busy", str(exc)) from None
        except requests.Timeout:
            self._failed()
            raise UpstreamUnavailable(name, "timeout", url) from None
        except requests.RequestException as exc:
            self._failed()
            raise UpstreamUnavailable(name, "unreachable", type(exc).__name__) from None
        if response.status_code >= 500:
            self._failed()
            raise UpstreamUnavailable(name, "server_error", f"{response.status_code} from {url}")
        if self.guard is not None:
            self.guard.breaker.record_success()
        return response

    def _send(self, method: str, url: str, deadline: Deadline, **kwargs: Any) -> requests.Response:
        timeout = deadline.cap(self.config.timeout)
        return self.http.request(method, url, timeout=(timeout, timeout), allow_redirects=False, **kwargs)

    def _failed(self) -> None:
        if self.guard is not None:
            self.guard.breaker.record_failure()

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise UpstreamRefused(self.config.name, "malformed_json", what) from None
        if not isinstance(body, dict):
            raise UpstreamRefused(self.config.name, "malformed_json", what)
        return body

    # -- discovery and keys -----------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The discovery document (cached DISCOVERY_LIFETIME), with the explicit endpoints applied."""
        c = self.config
        explicit = {
            "authorization_endpoint": c.authorization_endpoint,
            "token_endpoint": c.token_endpoint,
            "userinfo_endpoint": c.userinfo_endpoint,
            "jwks_uri": c.jwks_uri,
            "end_session_endpoint": c.end_session_endpoint,
        }
        if all(explicit[k] for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")):
            return {"issuer": c.issuer, **{k: v for k, v in explicit.items() if v}}
        now = self.clock()
        cached = self._discovery
        if cached is None or now - cached[0] > DISCOVERY_LIFETIME:
            url = c.issuer.rstrip("/") + "/.well-known/openid-configuration"
            response = self._call("GET", url)
            if response.status_code != 200:
                raise UpstreamRefused(c.name, "discovery_failed", str(response.status_code))
            document = self._json(response, "discovery")
            if document.get("issuer") != c.issuer:
                raise UpstreamRefused(c.name, "discovery_issuer_mismatch", str(document.get("issuer"))[:100])
            cached = (now, document)
            self._discovery = cached
        return {**cached[1], **{k: v for k, v in explicit.items() if v}}

    def _endpoint(self, name: str) -> str:
        value = self.metadata().get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise UpstreamRefused(self.config.name, "missing_endpoint", name)
        return value

    def _fetch_jwks(self) -> KeySet:
        response = self._call("GET", self._endpoint("jwks_uri"))
        if response.status_code != 200:
            raise UpstreamRefused(self.config.name, "jwks_failed", str(response.status_code))
        try:
            keys = KeySet.import_key_set(self._json(response, "jwks"))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise UpstreamRefused(self.config.name, "malformed_jwks") from None
        self._jwks = (self.clock(), keys)
        return keys

    def keys_for(self, kid: str | None) -> KeySet:
        """The upstream's keys, refetched at once when `kid` is unknown (a key rotation), but not
        more often than JWKS_REFETCH_INTERVAL (tokens with made-up kids cannot flood it)."""
        with self._lock:
            cached = self._jwks
            if cached is None or self.clock() - cached[0] > JWKS_LIFETIME:
                return self._fetch_jwks()
            keys = cached[1]
            known = {k.kid for k in keys.keys}
            refetch_allowed = time.monotonic() - self._refetched_at >= JWKS_REFETCH_INTERVAL
            if kid is not None and kid not in known and refetch_allowed:
                self._refetched_at = time.monotonic()
                return self._fetch_jwks()
            return keys

    # -- the authorization request -------------------------------------------------------------------
    def authorization(self, *, prompt: str | None = None, max_age: int | None = None) -> Authorization:
        c = self.config
        state, nonce, verifier = (
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
        )
        params = {
            "response_type": "code",
            "client_id": c.client_id,
            "redirect_uri": c.redirect_uri,
            "scope": c.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        if c.acr_values:
            params["acr_values"] = c.acr_values
        if prompt:
            params["prompt"] = prompt
        if max_age is not None:
            params["max_age"] = str(max_age)
        endpoint = self._endpoint("authorization_endpoint")
        return Authorization(
            endpoint + ("&" if "?" in endpoint else "?") + urlencode(params), state, nonce, verifier
        )

    def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: when the upstream advertises it, the authorization response names it."""
        advertised = bool(self.metadata().get("authorization_response_iss_parameter_supported"))
        if (advertised or iss is not None) and iss != self.config.issuer:
            raise UpstreamRefused(self.config.name, "wrong_response_issuer", str(iss)[:100])

    # -- the code exchange and the checks --------------------------------------------------------------
    def exchange(self, code: str, authorization: Authorization) -> Tokens:
        c = self.config
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": c.redirect_uri,
            "code_verifier": authorization.code_verifier,
        }
        auth = None
        if c.token_endpoint_auth_method == "client_secret_post":  # noqa: S105 - a method name
            form.update(client_id=c.client_id, client_secret=c.client_secret)
        else:
            auth = (c.client_id, c.client_secret)
        response = self._call("POST", self._endpoint("token_endpoint"), data=form, auth=auth)
        body = self._json(response, "token")
        if response.status_code != 200:
            raise UpstreamRefused(c.name, "token_error", str(body.get("error"))[:60])
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamRefused(c.name, "no_id_token")
        claims = self.validate_id_token(id_token, nonce=authorization.nonce)
        access = body.get("access_token") if isinstance(body.get("access_token"), str) else None
        refresh = body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None
        info = (
            self.userinfo(access, claims["sub"])
            if access and self.metadata().get("userinfo_endpoint")
            else {}
        )
        return Tokens(id_token, claims, access, refresh, info)

    def validate_id_token(self, token: str, *, nonce: str | None) -> dict[str, Any]:
        """Signature by kid from the JWKS, iss, aud (and azp), exp/iat/nbf within LEEWAY, nonce."""
        name = self.config.name
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            raise UpstreamRefused(name, "malformed_id_token") from None
        if not isinstance(header, dict) or header.get("alg") not in SIGNING_ALGS:
            alg = header.get("alg") if isinstance(header, dict) else None
            raise UpstreamRefused(name, "unsigned_or_unknown_alg", str(alg)[:20])
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        keys = self.keys_for(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(SIGNING_ALGS))
        except JoseError as exc:
            raise UpstreamRefused(name, "bad_signature", type(exc).__name__) from None
        except (ValueError, TypeError):
            raise UpstreamRefused(name, "malformed_id_token") from None
        claims = dict(decoded.claims)
        now = self.clock()
        audience = claims.get("aud")
        audiences = (
            [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        )
        if claims.get("iss") != self.config.issuer:
            raise UpstreamRefused(name, "wrong_issuer", str(claims.get("iss"))[:100])
        if self.config.client_id not in audiences:
            raise UpstreamRefused(name, "wrong_audience")
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise UpstreamRefused(name, "wrong_azp")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise UpstreamRefused(name, "no_subject")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, (int, float)) or exp + LEEWAY < now:
            raise UpstreamRefused(name, "expired")
        if not isinstance(iat, (int, float)) or iat - LEEWAY > now:
            raise UpstreamRefused(name, "issued_in_the_future")
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf - LEEWAY > now:
            raise UpstreamRefused(name, "not_yet_valid")
        if nonce is not None and not (
            isinstance(claims.get("nonce"), str) and secrets.compare_digest(claims["nonce"], nonce)
        ):
            raise UpstreamRefused(name, "wrong_nonce")
        return claims

    def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """Userinfo with the access token; its `sub` must be the ID token's (Core §5.3.2)."""
        response = self._call(
            "GET", self._endpoint("userinfo_endpoint"), headers={"Authorization": f"Bearer {access_token}"}
        )
        if response.status_code != 200:
            raise UpstreamRefused(self.config.name, "userinfo_failed", str(response.status_code))
        info = self._json(response, "userinfo")
        if info.get("sub") != subject:
            raise UpstreamRefused(self.config.name, "userinfo_subject_mismatch")
        return info
