"""Upstream identity providers that idp brokers: the national public-service portal and VNeID.

Adapters, like idp.verifiers: no Flask. ``client.py`` is an OpenID Connect relying party of its
own (discovery, JWKS with key rotation, the code exchange, ID token and userinfo checks) written on
joserfc and requests, never on the provider's Authlib server; ``profiles.py`` maps each upstream's
claims into one :class:`~idp.upstreams.identity.UpstreamIdentity`. Policy (linking, levels) lives
elsewhere (idp.identity, idp.flows.signin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp.upstreams.client import UpstreamClient, UpstreamConfig

# The doors' names and their settings' prefixes (idp.config.UPSTREAMS).
DOORS = {"national-portal": "NATIONAL_PORTAL", "vneid": "VNEID"}


class UpstreamMisconfigured(ValueError):
    """An upstream's secret is missing where idp serves (the message names the IDP_ key)."""


def upstream_config(
    config: Mapping[str, Any], door: str, environ: Mapping[str, str]
) -> UpstreamConfig | None:
    """The door's upstream as configured (IDP_<PREFIX>_*), or None when its issuer is unset.
    idp's redirect URI there is exactly {IDP_ISSUER}/upstream/<door>/callback."""
    prefix = DOORS[door]
    issuer = config.get(f"{prefix}_ISSUER")
    if not issuer:
        return None
    secret = config.get(f"{prefix}_CLIENT_SECRET")
    secret_env = config.get(f"{prefix}_CLIENT_SECRET_ENV")
    if secret_env:
        secret = environ.get(str(secret_env))
        if not secret:
            raise UpstreamMisconfigured(
                f"IDP_{prefix}_CLIENT_SECRET_ENV: environment variable {secret_env} is not set"
            )
    return UpstreamConfig(
        name=door,
        issuer=str(issuer),
        client_id=str(config[f"{prefix}_CLIENT_ID"]),
        client_secret=str(secret),
        redirect_uri=f"{config['ISSUER']}/upstream/{door}/callback",
        token_endpoint_auth_method=str(
            config.get(f"{prefix}_TOKEN_ENDPOINT_AUTH_METHOD") or "client_secret_basic"
        ),
        scope=str(config.get(f"{prefix}_SCOPE") or "openid"),
        acr_values=config.get(f"{prefix}_ACR_VALUES") or None,
        timeout=float(config.get("UPSTREAM_TIMEOUT") or 5.0),
        authorization_endpoint=config.get(f"{prefix}_AUTHORIZATION_ENDPOINT") or None,
        token_endpoint=config.get(f"{prefix}_TOKEN_ENDPOINT") or None,
        userinfo_endpoint=config.get(f"{prefix}_USERINFO_ENDPOINT") or None,
        jwks_uri=config.get(f"{prefix}_JWKS_URI") or None,
        end_session_endpoint=config.get(f"{prefix}_END_SESSION_ENDPOINT") or None,
    )


def build_upstreams(
    config: Mapping[str, Any], environ: Mapping[str, str], guards: Any = None
) -> dict[str, UpstreamClient]:
    """A client per configured upstream door, each behind its outbound guard when `guards` is given."""
    found = {}
    for door in DOORS:
        upstream = upstream_config(config, door, environ)
        if upstream is None:
            continue
        guard = None
        if guards is not None:
            guard = guards.guard(
                f"upstream-{door}", concurrency=4, threshold=5, cooldown=10.0, budget=upstream.timeout * 2
            )
        found[door] = UpstreamClient(upstream, guard=guard)
    return found
