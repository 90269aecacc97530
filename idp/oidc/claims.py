"""Claims: which scope releases which claim, the `claims` request parameter, and their values.

Per OpenID Connect Core §5.4, claims of the profile, email and phone scopes are returned from the
UserInfo endpoint when an access token is issued; the ID token carries them only when the
`claims` parameter asks for them under ``id_token``. A claim asked for through `claims` is kept
only if the client may receive the scope it belongs to (``restrict_claims_request``, at the
authorization request, so that a scope allowed to the client later releases nothing agreed to
before), and a relying party that is not first-party receives it only once the person agreed to
that claim (``requested_claims`` is what the consent must cover, idp.identity.consents).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from idp.identity.accounts import verified_phones
from idp.identity.claims import CLAIM_SCOPE, PROTOCOL_CLAIMS, SCOPE_CLAIMS
from idp.identity.organizations import ORGANIZATION, organization_claim, role_names
from idp.oidc.jsonlimits import check_json
from idp.store.models import Account, Person, db, epoch

CLAIMS_SUPPORTED = tuple(sorted(set(CLAIM_SCOPE) | PROTOCOL_CLAIMS))


MAX_CLAIMS_LENGTH = 4096


class ClaimsParameterError(ValueError):
    """The `claims` request parameter is not what OpenID Connect Core §5.5 describes."""


def parse_claims_parameter(raw: str | None) -> dict[str, dict[str, Any]] | None:
    """Validate the `claims` request parameter; returns {"userinfo": {...}, "id_token": {...}}."""
    if raw is None or raw == "":
        return None
    try:
        check_json(raw, max_length=MAX_CLAIMS_LENGTH)
    except ValueError as exc:
        raise ClaimsParameterError(f"claims parameter is {exc}") from None
    try:
        value = json.loads(raw)
    except ValueError:
        raise ClaimsParameterError("claims parameter is not valid JSON") from None
    if not isinstance(value, dict):
        raise ClaimsParameterError("claims parameter must be a JSON object")
    result: dict[str, dict[str, Any]] = {}
    for member in ("userinfo", "id_token"):
        requested = value.get(member)
        if requested is None:
            continue
        if not isinstance(requested, dict):
            raise ClaimsParameterError(f"claims.{member} must be a JSON object")
        for name, spec in requested.items():
            if spec is None:
                continue
            if not isinstance(spec, dict):
                raise ClaimsParameterError(f"claims.{member}.{name} must be null or an object")
            if "essential" in spec and not isinstance(spec["essential"], bool):
                raise ClaimsParameterError(f"claims.{member}.{name}.essential must be true or false")
            if "values" in spec and not isinstance(spec["values"], list):
                raise ClaimsParameterError(f"claims.{member}.{name}.values must be an array")
        result[member] = requested
    return result


def restrict_claims_request(
    claims: dict[str, dict[str, Any]] | None, allowed_scopes: tuple[str, ...]
) -> dict[str, dict[str, Any]] | None:
    """The `claims` request without the personal claims the client may never receive (and names
    nobody knows); protocol claims (an essential ``acr``) stay."""
    if not claims:
        return claims
    kept: dict[str, dict[str, Any]] = {}
    for member, requested in claims.items():
        kept[member] = {
            name: spec
            for name, spec in requested.items()
            if name in PROTOCOL_CLAIMS or CLAIM_SCOPE.get(name) in allowed_scopes
        }
    return kept


def requested_claims(scope: str, claims: dict[str, dict[str, Any]] | None) -> frozenset[str]:
    """The personal claims a request releases: those of its scopes and those named in `claims`
    (userinfo or ID token), protocol claims left out. What a consent must cover."""
    names: set[str] = set()
    for s in scope.split():
        names.update(SCOPE_CLAIMS.get(s, ()))
    for requested in (claims or {}).values():
        names.update(name for name in requested if name in CLAIM_SCOPE)
    return frozenset(names - PROTOCOL_CLAIMS)


def essential_acr(claims: dict[str, dict[str, Any]] | None) -> list[str] | None:
    """The acr values an essential `acr` claim demands, if any."""
    spec = ((claims or {}).get("id_token") or {}).get("acr")
    if not isinstance(spec, dict) or not spec.get("essential"):
        return None
    if "value" in spec and isinstance(spec["value"], str):
        return [spec["value"]]
    values = spec.get("values")
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else None


def released_claims(
    scope: str, allowed_scopes: tuple[str, ...], requested: dict[str, Any] | None
) -> set[str]:
    """Claim names released by the granted scope plus those requested via `claims` the client may have."""
    names: set[str] = set()
    for s in scope.split():
        names.update(SCOPE_CLAIMS.get(s, ()))
    for name in requested or {}:
        owner = CLAIM_SCOPE.get(name)
        if owner is not None and owner in allowed_scopes:
            names.add(name)
    return names


def load_person_claims(account_id: int, names: set[str]) -> dict[str, Any]:
    """Values of the named claims for the person behind `account_id` (never calls a verifier)."""
    names = names - PROTOCOL_CLAIMS
    if not names:
        return {}
    account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one_or_none()
    if account is None or account.person_id is None:
        return {}
    person: Person = account.person  # type: ignore[assignment]
    values: dict[str, Any] = {}
    if "name" in names:
        values["name"] = person.full_name
    if "birthdate" in names and person.birth_date:
        values["birthdate"] = person.birth_date.isoformat()
    if "gender" in names and person.gender:
        values["gender"] = person.gender
    if "updated_at" in names:
        values["updated_at"] = epoch(person.loa_verified_at)
    if "email" in names and person.email:
        values["email"] = person.email
        if "email_verified" in names:
            values["email_verified"] = False
    if "phone_number" in names:
        phones = verified_phones(account)
        if phones:
            values["phone_number"] = phones[0]
            if "phone_number_verified" in names:
                values["phone_number_verified"] = True
    if "citizen_id" in names and person.id_number:
        values["citizen_id"] = person.id_number
    if "legacy_citizen_id" in names and person.legacy_id_number:
        values["legacy_citizen_id"] = person.legacy_id_number
    if account.kind == ORGANIZATION and account.organization is not None:
        if "organization" in names:
            values["organization"] = organization_claim(account.organization)
        if "staff" in names:
            values["staff"] = {
                "username": account.username,
                "name": person.full_name,
                "roles": role_names(account),
            }
    return values
