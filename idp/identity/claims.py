"""The personal claims an identity can release and the scope each belongs to (OpenID Connect
Core §5.4, plus idp's citizen and organization scopes): the vocabulary that the protocol layer
releases by, the consent records, and the consent pages describe."""

from __future__ import annotations

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "birthdate", "gender", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "citizen": ("citizen_id", "legacy_citizen_id"),
    # Staff accounts: which organization (code, code_type, name, kind) and which staff member
    # (username, name, roles). Citizens have neither claim.
    "organization": ("organization", "staff"),
}
SCOPES_SUPPORTED = ("openid", "profile", "email", "phone", "citizen", "organization", "offline_access")
CLAIM_SCOPE = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}
# Claims the ID token always carries or that the protocol layer fills in itself.
PROTOCOL_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid"}
)
