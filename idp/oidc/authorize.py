"""The authorization endpoint as a pipeline of small checks that reads like the specifications.

Request checks run inside Authlib's validation, after the client and redirect URI are known (so
their errors are redirected to the client with ``iss``, RFC 9207); errors before that point are
shown as a page. The interaction policy (idp.oidc.policy) then compares the request with the
browser's SSO session and either answers at once (code, or login_required / consent_required /
unmet_authentication_requirements) or hands an interaction to a journey's page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import (
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from joserfc.errors import JoseError

from idp.identity.assurance import acr_level
from idp.oidc.claims import (
    ClaimsParameterError,
    essential_acr,
    parse_claims_parameter,
    requested_claims,
    restrict_claims_request,
)
from idp.oidc.errors import UnmetAuthenticationRequirementsError, safe_description
from idp.oidc.jsonlimits import check_jwt
from idp.web.inputs import deferred_refusal

# "create": Initiating User Registration via OpenID Connect 1.0 — the registration pages first.
PROMPTS = frozenset({"none", "login", "consent", "select_account", "create"})
_PKCE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
MAX_PARAM_LENGTH = 4096


@dataclass
class AuthorizationContext:
    """What the checks learned about one authorization request."""

    client: Any
    redirect_uri: str
    scope: str
    prompts: set[str] = field(default_factory=set)
    max_age: int | None = None
    claims: dict[str, Any] | None = None
    # The personal claims this request would release (its scopes' and the `claims` parameter's):
    # what the person's consent must cover.
    requested_claims: frozenset[str] = frozenset()
    acr_values: list[str] = field(default_factory=list)
    required_acr: list[str] | None = None  # essential: cannot be answered with less
    hint_subject: str | None = None
    login_hint: str | None = None
    ui_locales: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None


Check = Callable[[OAuth2Request, AuthorizationContext, Any], None]


def check_input(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """A parameter with a control character or NUL (refused where input enters, idp.web.inputs)."""
    refused = deferred_refusal()
    if refused is not None:
        raise InvalidRequestError(refused.description())


def check_lengths(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """Refuse absurdly long values instead of storing them."""
    for key, value in request.payload.data.items():
        if isinstance(value, str) and len(value) > MAX_PARAM_LENGTH:
            raise InvalidRequestError(safe_description(f"parameter {key} is too long"))


def check_no_duplicates(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """RFC 6749 §3.1: no parameter may appear twice (Authlib checks only five of them)."""
    for key, values in request.payload.datalist.items():
        if len(values) > 1:
            raise InvalidRequestError(safe_description(f"parameter {key} appears more than once"))


def check_request_object(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """Request objects are not processed, so they are refused (OpenID Connect Core §6)."""
    data = request.payload.data
    if data.get("request"):
        raise RequestNotSupportedError("request objects are not supported")
    if data.get("request_uri"):
        raise RequestURINotSupportedError("request_uri is not supported")


def check_response_mode(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    mode = request.payload.data.get("response_mode")
    if mode not in (None, "", "query"):
        raise InvalidRequestError("response_mode must be query")


def check_pkce(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """RFC 7636 with RFC 9700: S256 only; required for public clients and require_pkce clients."""
    data = request.payload.data
    challenge = data.get("code_challenge")
    method = data.get("code_challenge_method")
    required = ctx.client.config.is_public or ctx.client.config.require_pkce
    if not challenge:
        if method:
            raise InvalidRequestError("code_challenge_method without code_challenge")
        if required:
            raise InvalidRequestError("code_challenge (PKCE, S256) is required")
        return
    if method != "S256":
        raise InvalidRequestError("code_challenge_method must be S256")
    if not _PKCE.match(challenge):
        raise InvalidRequestError("code_challenge is malformed")
    ctx.code_challenge, ctx.code_challenge_method = challenge, method


def check_nonce(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    ctx.nonce = request.payload.data.get("nonce") or None


def check_prompt(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """OpenID Connect Core §3.1.2.1: known values; none may not be combined with others."""
    raw = request.payload.data.get("prompt") or ""
    prompts = set(raw.split())
    unknown = prompts - PROMPTS
    if unknown:
        raise InvalidRequestError(safe_description(f"unsupported prompt value {sorted(unknown)[0]}"))
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values")
    if "select_account" in prompts:
        # There is one account per browser session; choosing means signing in again.
        prompts.discard("select_account")
        prompts.add("login")
    ctx.prompts = prompts


def check_max_age(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    raw = request.payload.data.get("max_age")
    if raw is None or raw == "":
        return
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        raise InvalidRequestError("max_age must be a non-negative integer")
    ctx.max_age = int(raw)


def check_claims(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """OpenID Connect Core §5.5; a claim the client may never receive is dropped, not asked for."""
    try:
        parsed = parse_claims_parameter(request.payload.data.get("claims"))
    except ClaimsParameterError as exc:
        raise InvalidRequestError(safe_description(str(exc))) from None
    ctx.claims = restrict_claims_request(parsed, ctx.client.config.scope)
    ctx.requested_claims = requested_claims(ctx.scope, ctx.claims)


def check_acr(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """acr_values are preferences; an essential acr claim or the client's require_acr is a demand."""
    ctx.acr_values = (request.payload.data.get("acr_values") or "").split() or list(
        ctx.client.config.default_acr_values
    )
    demanded = essential_acr(ctx.claims)
    required = ctx.client.config.require_acr
    if demanded is not None:
        known = [a for a in demanded if acr_level(a)]
        if not known:
            raise UnmetAuthenticationRequirementsError("none of the essential acr values is supported")
        ctx.required_acr = known
    if required:
        floor = acr_level(required)
        ctx.required_acr = [a for a in (ctx.required_acr or [required]) if acr_level(a) >= floor] or [
            required
        ]


def check_id_token_hint(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    """An ID token we issued (expired is fine) names who the client expects to be signed in."""
    hint = request.payload.data.get("id_token_hint")
    if not hint:
        return
    try:
        check_jwt(hint)
        _, claims = server.keys.decode(hint)
    except (JoseError, ValueError):
        raise InvalidRequestError("id_token_hint is not an ID token issued here") from None
    if claims.get("iss") != server.issuer or not isinstance(claims.get("sub"), str):
        raise InvalidRequestError("id_token_hint is not an ID token issued here")
    ctx.hint_subject = claims["sub"]


def check_hints(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    data = request.payload.data
    ctx.login_hint = (data.get("login_hint") or "").strip()[:120] or None
    ctx.ui_locales = data.get("ui_locales") or None


# The order is the order the specifications read in; every check is one rule.
CHECKS: tuple[Check, ...] = (
    check_input,
    check_no_duplicates,
    check_lengths,
    check_request_object,
    check_response_mode,
    check_pkce,
    check_nonce,
    check_prompt,
    check_max_age,
    check_claims,
    check_acr,
    check_id_token_hint,
    check_hints,
)


def run_checks(request: OAuth2Request, ctx: AuthorizationContext, server: Any) -> None:
    for check in CHECKS:
        check(request, ctx, server)


class AuthorizationChecks:
    """Grant extension: runs the pipeline once Authlib has verified client and redirect URI."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.run)

    def run(self, grant: Any, _result: Any) -> None:
        # Authlib hands "after" hooks the hooked function's return value (None here), not its
        # arguments; the redirect URI it verified is the request's (a default is never used).
        request = grant.request
        ctx = AuthorizationContext(
            client=request.client, redirect_uri=request.payload.redirect_uri, scope=request.scope
        )
        run_checks(request, ctx, grant.server)
        request.idp_ctx = ctx
