"""The OAuth 2.0 / OpenID Connect server on Authlib: clients, grants, token endpoint extensions.

Grants are composed the Authlib way (``register_grant(Grant, [extensions])``); what Authlib leaves
to us or gets wrong in its current release is handled here:
- PKCE: only S256; required at /authorize for public clients and ``require_pkce`` clients
  (see idp.oidc.authorize); the verifier is checked at the token endpoint.
- codes: single use via an atomic consume; a replay revokes the grant the code produced.
- refresh tokens: rotated for public clients, with reuse detection that revokes the family.
- ID tokens: ``iss``, ``aud``, ``azp``, ``sid``, ``acr``, ``amr``, ``auth_time``, ``at_hash``, and
  a ``kid`` in every header; never signed with a random key.
- client secrets: keyed digests compared in constant time (idp.clients).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
from typing import Any

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnsupportedTokenTypeError,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from idp.clients import ClientConfig, ClientRegistry
from idp.oidc.authorize import AuthorizationChecks
from idp.oidc.claims import load_person_claims, released_claims, requested_claims
from idp.oidc.jsonlimits import check_jwt
from idp.oidc.keys import KeyRing
from idp.oidc.logout import EndSession
from idp.oidc.tokens import (
    AccessTokenRecord,
    CodeRecord,
    Principal,
    RefreshTokenRecord,
    TokenService,
)
from idp.store.ephemeral import EphemeralStore, StoreUnavailable
from idp.store.models import db, epoch

ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class OAuthClient(ClientMixin):
    """Authlib's view of a relying party from clients.yaml."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.client_id = config.client_id

    def get_client_id(self) -> str:
        return self.config.client_id

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.config.post_logout_redirect_uris)}

    def get_default_redirect_uri(self) -> str | None:
        # A redirect_uri is always required in the request (OpenID Connect Core §3.1.2.1).
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.config.scope
        if not scope:
            return " ".join(s for s in allowed if s != "offline_access")
        return " ".join(dict.fromkeys(s for s in scope.split() if s in allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return self.config.matches_redirect_uri(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.config.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.config.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.config.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.config.grant_types


def half_hash(value: str) -> str:
    """at_hash for ES256/RS256: base64url of the left half of SHA-256 (OpenID Connect Core §3.1.3.6)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


class IdpServer(AuthorizationServer):
    def __init__(
        self,
        *,
        issuer: str,
        clients: ClientRegistry,
        keys: KeyRing,
        tokens: TokenService,
        store: EphemeralStore,
        config: dict[str, Any],
    ) -> None:
        super().__init__()
        self.issuer = issuer
        self.clients = clients
        self.keys = keys
        self.tokens = tokens
        self.store = store
        self.config = config
        self._query_client = self._find_client
        self._jwks_cache: dict[str, tuple[float, KeySet]] = {}
        self._jwks_lock = threading.Lock()

    def _find_client(self, client_id: str) -> OAuthClient | None:
        config = self.clients.get(client_id) if isinstance(client_id, str) else None
        return OAuthClient(config) if config else None

    def validate_requested_scope(self, scope: str | None) -> None:
        # Unknown scopes are dropped, not refused (OpenID Connect Core §3.1.2.1); each grant
        # narrows the scope to what the client may have.
        return None

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def consent_allows(
        self, client: OAuthClient, account_id: int, scope: str, claims: dict[str, Any] | None
    ) -> bool:
        """Whether tokens for `scope` and the `claims` request may go to the client now: a
        first-party portal needs no consent; any other, the person's covering both (read in the
        current transaction, FOR SHARE; see TokenService.consent_covers)."""
        return client.config.first_party or self.tokens.consent_covers(
            account_id, client.client_id, scope, requested_claims(scope, claims)
        )

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Any:
        check_one_authentication_method(request)
        return super().authenticate_client(request, methods, endpoint)

    # -- tokens --------------------------------------------------------------------------
    def id_token(
        self,
        client: OAuthClient,
        *,
        subject: str,
        auth_time: int,
        acr: str,
        amr: list[str],
        sid: str | None,
        access_token: str | None,
        nonce: str | None = None,
        account_id: int | None = None,
        claims_request: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {}
        requested = (claims_request or {}).get("id_token") or {}
        if requested and account_id is not None:
            names = released_claims("", client.config.scope, requested)
            claims.update(load_person_claims(account_id, names))
        claims.update(
            {
                "iss": self.issuer,
                "sub": subject,
                "aud": client.client_id,
                "azp": client.client_id,
                "iat": now,
                "exp": now + self.config["ID_TOKEN_LIFETIME"],
                "auth_time": auth_time,
                "acr": acr,
                "amr": amr,
            }
        )
        if sid:
            claims["sid"] = sid
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        return self.keys.sign(claims, client.config.id_token_signed_response_alg)

    def token_response(
        self,
        client: OAuthClient,
        access_token: str,
        scope: str,
        refresh_token: str | None,
        id_token: str | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.tokens.access_token_lifetime,
            "scope": scope,
        }
        if refresh_token:
            body["refresh_token"] = refresh_token
        if id_token:
            body["id_token"] = id_token
        return body

    # -- private_key_jwt -----------------------------------------------------------------
    def client_public_keys(self, client: OAuthClient) -> KeySet:
        config = client.config
        if config.jwks is not None:
            return KeySet.import_key_set(config.jwks)  # type: ignore[arg-type]
        assert config.jwks_uri is not None
        now = time.monotonic()
        with self._jwks_lock:
            cached = self._jwks_cache.get(config.jwks_uri)
            if cached and now - cached[0] < 300:
                return cached[1]
        response = requests.get(config.jwks_uri, timeout=3)
        response.raise_for_status()
        keyset = KeySet.import_key_set(response.json())
        with self._jwks_lock:
            self._jwks_cache[config.jwks_uri] = (now, keyset)
        return keyset


def check_one_authentication_method(request: OAuth2Request) -> None:
    """RFC 6749 §2.3: a client uses one authentication method per request. HTTP Basic, a
    client_secret in the body and a client assertion are each a method; a client_id in the body
    beside HTTP Basic must name the same client."""
    form = request.form
    basic = request.headers.get("Authorization", "")[:6].lower() == "basic "
    body_secret = "client_secret" in form
    assertion = "client_assertion" in form or "client_assertion_type" in form
    if basic + body_secret + assertion > 1:
        raise InvalidRequestError(description="the client authenticated by more than one method")
    if basic and form.get("client_id"):
        basic_id, _ = extract_basic_authorization(request.headers)
        if basic_id is not None and basic_id != form["client_id"]:
            raise InvalidRequestError(description="client_id differs from the HTTP Basic credentials")


# RFC 7523 §3 leaves the assertion's lifetime to the server: a few minutes suffice for a request
# made at once, and the replay cache keeps a jti no longer than its assertion could be used.
MAX_ASSERTION_LIFETIME = 300


class PrivateKeyJwtAuth(JWTBearerClientAssertion):
    """RFC 7523 client authentication, with the assertion's jti remembered to refuse replays, and
    an assertion that expires more than MAX_ASSERTION_LIFETIME seconds from now refused."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: IdpServer) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def __call__(self, query_client: Any, request: OAuth2Request) -> Any:
        assertion = request.form.get("client_assertion")
        if assertion:
            try:
                check_jwt(assertion)
            except ValueError:
                raise InvalidClientError(description="the client assertion is malformed") from None
        return super().__call__(query_client, request)

    def get_audiences(self) -> list[str]:
        return [self.server.issuer, self.server.issuer + "/token"]

    def verify_claims(self, claims: Any) -> None:
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            if exp - time.time() > MAX_ASSERTION_LIFETIME + self.leeway:
                raise InvalidClientError(description="the client assertion lives too long")
            iat = claims.get("iat")
            if isinstance(iat, (int, float)) and exp - iat > MAX_ASSERTION_LIFETIME + self.leeway:
                raise InvalidClientError(description="the client assertion lives too long")
        super().verify_claims(claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        ttl = min(MAX_ASSERTION_LIFETIME, max(0, int(claims["exp"] - time.time()))) + self.leeway + 30
        return self.server.store.set(f"jti:{claims['sub']}:{jti}", "1", ttl, only_if_absent=True)

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet:
        if client.config.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD:
            # A client registered for another method has no keys to check an assertion with.
            raise InvalidClientError(description="the client does not use private_key_jwt")
        try:
            return self.server.client_public_keys(client)
        except (requests.RequestException, ValueError) as exc:
            raise InvalidClientError(description="client keys could not be loaded") from exc


class S256Only(CodeChallenge):
    """PKCE verifier check at the token endpoint; only S256 exists (plain is refused at /authorize)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_token_request", self.validate_code_verifier)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    server: IdpServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        record: CodeRecord = request.idp_code_record
        self.server.tokens.save_code(code, record)

    def query_authorization_code(self, code: str, client: OAuthClient) -> CodeRecord | None:
        if not isinstance(code, str) or not 20 <= len(code) <= 128:
            return None
        record, first_use = self.server.tokens.consume_code(code)
        if record is None:
            return None
        if not first_use:
            # RFC 6749 §4.1.2: a code used twice revokes what it produced. The mark comes first:
            # the first exchange may still be writing the grant (not yet visible to the UPDATE),
            # and it looks for the mark once its grant is committed (create_token_response).
            self.server.tokens.mark_revoked([record.grant_id], "code_replay")
            self.server.tokens.revoke_grants([record.grant_id], "code_replay")
            return None
        if record.client_id != client.client_id or record.expires_at < time.time():
            return None
        return record

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        return None  # consumed atomically by query_authorization_code

    def authenticate_user(self, authorization_code: CodeRecord) -> Principal:
        return Principal(authorization_code.account_id, authorization_code.subject)

    def create_token_response(self):
        """Issue the tokens. The code was consumed when it was looked up; when a store fails
        before the grant is committed, the code is given back (spent only when its tokens are
        issued) and the outage answered as such (503), so that the client may retry."""
        committed: list[bool] = []
        try:
            return self._issue_tokens(committed)
        except (SQLAlchemyError, StoreUnavailable):
            if not committed:
                with contextlib.suppress(StoreUnavailable):
                    self.server.tokens.unspend_code(self.request.payload.data.get("code") or "")
            raise

    def _issue_tokens(self, committed: list[bool]):
        client: OAuthClient = self.request.client
        record: CodeRecord = self.request.authorization_code
        server = self.server
        offline = "offline_access" in record.scope.split()
        lifetime = server.config["REFRESH_TOKEN_LIFETIME"] if offline else server.config["SESSION_LIFETIME"]
        if not server.tokens.account_is_active(record.account_id):
            # Locked or cancelled since the sign-in that produced the code: no tokens.
            db.session.rollback()
            raise InvalidGrantError()
        if not server.consent_allows(client, record.account_id, record.scope, record.claims):
            # The person withdrew their consent after the code was issued: no tokens.
            db.session.rollback()
            raise InvalidGrantError()
        try:
            refresh = server.tokens.create_grant(
                record,
                offline=offline,
                lifetime=lifetime,
                with_refresh=client.check_grant_type("refresh_token"),
            )
        except IntegrityError:
            # The grant exists: an earlier exchange of this code committed it though its answer
            # was lost. A second redemption: revoke what the first issued, issue nothing.
            db.session.rollback()
            committed.append(True)
            server.tokens.mark_revoked([record.grant_id], "code_replay")
            server.tokens.revoke_grants([record.grant_id], "code_replay")
            raise InvalidGrantError() from None
        except SQLAlchemyError:
            db.session.rollback()
            raise
        # The access token is stored before the grant is committed, and withdrawn if the commit
        # fails: whichever store fails, nothing half-issued remains.
        access, _ = server.tokens.issue_access_token(
            client_id=client.client_id,
            scope=record.scope,
            subject=record.subject,
            account_id=record.account_id,
            grant_id=record.grant_id,
            sid=record.sid,
            claims=(record.claims or {}).get("userinfo"),
        )
        try:
            db.session.commit()
        except SQLAlchemyError:
            db.session.rollback()
            server.tokens.revoke_access_token(access)
            raise
        committed.append(True)
        if server.tokens.is_marked_revoked(record.grant_id):
            # The code was replayed while this grant was being written: revoke it, issue nothing.
            server.tokens.revoke_grants([record.grant_id], "code_replay")
            raise InvalidGrantError()
        id_token = None
        if "openid" in record.scope.split():
            id_token = server.id_token(
                client,
                subject=record.subject,
                auth_time=record.auth_time,
                acr=record.acr,
                amr=record.amr,
                sid=record.sid,
                access_token=access,
                nonce=record.nonce,
                account_id=record.account_id,
                claims_request=record.claims,
            )
        body = server.token_response(client, access, record.scope, refresh, id_token)
        return 200, body, self.TOKEN_RESPONSE_HEADER


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    server: IdpServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshTokenRecord | None:
        if not isinstance(refresh_token, str) or not 20 <= len(refresh_token) <= 128:
            return None
        record = self.server.tokens.find_refresh_token(refresh_token)
        if record is None:
            return None
        if record.consumed:
            successor = self.server.tokens.uncertain_successor(record)
            if successor is None:
                # A rotated-away token came back: someone holds a copy. Revoke the whole family.
                self.server.tokens.revoke_grants([record.grant.id], "refresh_reuse")
                return None
            # The client's retry after a rotation idp could not confirm (see TokenService).
            record.retry_of = successor
        if record.grant.revoked_at is not None or record.is_expired() or record.account_status != "active":
            return None
        return record

    def authenticate_user(self, refresh_token: RefreshTokenRecord) -> Principal:
        return Principal(refresh_token.grant.account_id, refresh_token.grant.subject)

    def revoke_old_credential(self, refresh_token: RefreshTokenRecord) -> None:
        return None  # rotation happens in create_token_response

    def create_token_response(self):
        client: OAuthClient = self.request.client
        record: RefreshTokenRecord = self.request.refresh_token
        grant = record.grant
        server = self.server
        scope = self.request.payload.scope or grant.scope
        if not server.consent_allows(client, grant.account_id, scope, grant.claims):
            # A grant from before consents recorded claims, a client no longer first-party, a
            # consent withdrawn or narrowed: nothing the consent does not cover.
            db.session.rollback()
            raise InvalidGrantError()
        new_refresh = None
        if client.config.is_public:
            try:
                new_refresh = server.tokens.rotate_refresh_token(record)
                if new_refresh is None:
                    db.session.rollback()
                    server.tokens.revoke_grants([grant.id], "refresh_reuse")
                    raise InvalidGrantError()
            except SQLAlchemyError:
                db.session.rollback()
                raise
        # The rotation is committed below, once the response is ready: if the short-lived store
        # fails first, the web tier rolls it back and the presented token stays unspent.
        access, _ = server.tokens.issue_access_token(
            client_id=client.client_id,
            scope=scope,
            subject=grant.subject,
            account_id=grant.account_id,
            grant_id=grant.id,
            sid=grant.sid,
            claims=(grant.claims or {}).get("userinfo"),
        )
        id_token = None
        if "openid" in scope.split():
            id_token = server.id_token(
                client,
                subject=grant.subject,
                auth_time=grant.auth_time,
                acr=grant.acr,
                amr=list(grant.amr),
                sid=grant.sid,
                access_token=access,
                account_id=grant.account_id,
                claims_request=grant.claims,
            )
        if new_refresh is not None:
            try:
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                server.tokens.revoke_access_token(access)  # never delivered
                # The commit may have happened all the same: let the client's retry continue.
                with contextlib.suppress(StoreUnavailable):
                    server.tokens.note_uncertain_rotation(record, new_refresh)
                raise
        body = server.token_response(client, access, scope, new_refresh, id_token)
        return 200, body, self.TOKEN_RESPONSE_HEADER


class ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS
    server: IdpServer

    def create_token_response(self):
        client: OAuthClient = self.request.client
        requested = self.request.payload.scope
        scope = client.get_allowed_scope(requested)
        scope = " ".join(s for s in scope.split() if s not in ("openid", "offline_access"))
        if requested and not scope:
            raise InvalidScopeError()
        access, _ = self.server.tokens.issue_access_token(
            client_id=client.client_id, scope=scope, subject=client.client_id
        )
        return 200, self.server.token_response(client, access, scope, None, None), self.TOKEN_RESPONSE_HEADER


def _find_token(
    server: IdpServer, token: str, hint: str | None
) -> AccessTokenRecord | RefreshTokenRecord | None:
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        return None
    # RFC 7009 §2.1: the hint only orders the search; a token not found under it is looked for
    # among the other types too.
    lookups = [server.tokens.load_access_token, server.tokens.find_refresh_token]
    if hint == "refresh_token":
        lookups.reverse()
    for lookup in lookups:
        found = lookup(token)
        if found is not None:
            return found
    return None


def _check_token_params(request: OAuth2Request) -> None:
    """RFC 7009 §2.1, RFC 7662 §2.1: a token is required; a hint, if any, names a known type."""
    if "token" not in request.form:
        raise InvalidRequestError()
    hint = request.form.get("token_type_hint")
    if hint and hint not in ("access_token", "refresh_token"):
        # An error response of RFC 6749 §5.2, so 400 (Authlib's class answers 401).
        raise OAuth2Error(error=UnsupportedTokenTypeError.error, status_code=400)


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token revokes its grant and every access token it produced."""

    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS
    server: IdpServer

    def check_params(self, request: OAuth2Request, client: OAuthClient) -> None:
        _check_token_params(request)

    def authenticate_token(self, request: OAuth2Request, client: OAuthClient):
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        # Another client's token is answered like an unknown one (200), revealing nothing.
        return token if token is not None and token.check_client(client) else None

    def query_token(self, token_string: str, token_type_hint: str | None):
        return _find_token(self.server, token_string, token_type_hint)

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        if isinstance(token, RefreshTokenRecord):
            self.server.tokens.revoke_grants([token.grant.id], "revoked_by_client")
        else:
            self.server.tokens.revoke_access_token(request.form["token"])


class Introspection(IntrospectionEndpoint):
    """RFC 7662. A client sees its own tokens; a `resource_server` client sees every token."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS
    server: IdpServer

    def check_params(self, request: OAuth2Request, client: OAuthClient) -> None:
        _check_token_params(request)

    def query_token(self, token_string: str, token_type_hint: str | None):
        found = _find_token(self.server, token_string, token_type_hint)
        if isinstance(found, RefreshTokenRecord) and found.account_status != "active":
            return None
        # A resource server must not honour the token of an account locked since it was issued.
        if (
            isinstance(found, AccessTokenRecord)
            and found.account_id is not None
            and not self.server.tokens.account_is_active(found.account_id)
        ):
            return None
        return found

    def check_permission(self, token: Any, client: OAuthClient, request: OAuth2Request) -> bool:
        return client.config.resource_server or token.check_client(client)

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token, RefreshTokenRecord):
            grant = token.grant
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": grant.client_id,
                "scope": grant.scope,
                "sub": grant.subject,
                "iss": self.server.issuer,
                "iat": epoch(grant.created_at),
                "exp": epoch(grant.expires_at),
                "acr": grant.acr,
                "auth_time": grant.auth_time,
            }
        body = {
            "active": True,
            "token_type": "Bearer",
            "client_id": token.client_id,
            "scope": token.scope,
            "iss": self.server.issuer,
            "iat": token.iat,
            "exp": token.exp,
            "aud": token.client_id,
        }
        if token.subject:
            body["sub"] = token.subject
        if token.sid:
            body["sid"] = token.sid
        return body


def create_server(**kwargs: Any) -> IdpServer:
    server = IdpServer(**kwargs)
    server.register_client_auth_method("private_key_jwt", PrivateKeyJwtAuth(server))
    server.register_grant(CodeGrant, [S256Only(), AuthorizationChecks()])
    server.register_grant(RefreshGrant)
    server.register_grant(ClientCredentials)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_endpoint(EndSession)
    return server
