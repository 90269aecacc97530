"""The interaction: one opaque id that carries an authorization request from /authorize through
the flows and back, bound to the browser that started it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from idp.store.ephemeral import EphemeralStore


@dataclass
class LoginResult:
    account_id: int
    subject: str
    auth_time: int
    acr: str
    amr: list[str]
    loa: int


@dataclass
class OrgProgress:
    """How far a staff member got at the organization door (idp.flows.signin.organization)."""

    account_id: int
    phone: str | None
    totp: bool
    recovery: bool
    challenge: str | None = None
    verified_amr: list[str] | None = None  # the second factor passed
    used_recovery: bool = False
    enrol_secret: str | None = None  # encrypted, until the first code confirms it


@dataclass
class Interaction:
    id: str
    browser: str
    client_id: str
    client_name: str
    params: dict[str, str]
    created_at: int
    expires_at: int
    first_party: bool = False
    login_hint: str | None = None
    ui_locales: str | None = None
    expected_subject: str | None = None
    scope: str = ""
    # The personal claims the request would release (its scopes' and the `claims` parameter's):
    # what the consent page lists and the consent records.
    claims: list[str] = field(default_factory=list)
    # The request's own assurance wishes (idp.oidc.authorize): demanded (essential acr, the
    # client's require_acr) and preferred (acr_values or the client's default_acr_values).
    required_acr: list[str] | None = None
    acr_values: list[str] = field(default_factory=list)
    # Door skipping: the door the relying party named (`door=`), and whether it was taken already.
    door: str | None = None
    door_taken: bool = False
    # Progress of the citizen door: password checked, OTP sent; `step_up`: only the OTP is asked
    # (the SSO session's sign-in was a remembered device's password alone).
    pending_account_id: int | None = None
    otp_challenge: str | None = None
    otp_phone: str | None = None
    step_up: bool = False
    # Progress of the organization door.
    org: OrgProgress | None = None
    # The captcha is asked in this interaction (risk was high once: it stays asked).
    captcha: bool = False
    # The raise of the identity level offered to reach this request's acr (idp.oidc.views).
    raise_to: int | None = None
    # Outcome; `applied`: the result is in the SSO session already.
    result: LoginResult | None = None
    applied: bool = False
    consent_given: bool = False
    cancelled: bool = False


_FIELDS = frozenset(Interaction.__dataclass_fields__)
# What an interaction saved before typed progress kept in its `extra` dict (kept for the
# interactions under way across an upgrade: they live INTERACTION_LIFETIME at most).
_LEGACY_EXTRA = ("step_up", "captcha", "raise_to", "applied", "org")


def _known(kind: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The fields `kind` has (a field an older release wrote and this one dropped is ignored)."""
    return {k: v for k, v in data.items() if k in kind.__dataclass_fields__}


def _upgraded(data: dict[str, Any]) -> dict[str, Any]:
    extra = data.pop("extra", None) or {}
    for key in _LEGACY_EXTRA:
        if key in extra and key not in data:
            data[key] = extra[key]
    return {k: v for k, v in data.items() if k in _FIELDS}


class InteractionStore:
    def __init__(self, store: EphemeralStore, lifetime: int) -> None:
        self.store = store
        self.lifetime = lifetime

    def create(self, **fields: Any) -> Interaction:
        now = int(time.time())
        ix = Interaction(
            id=secrets.token_urlsafe(24), created_at=now, expires_at=now + self.lifetime, **fields
        )
        self.save(ix)
        return ix

    def save(self, ix: Interaction) -> None:
        ttl = ix.expires_at - int(time.time())
        if ttl > 0:
            self.store.set("ix:" + ix.id, json.dumps(asdict(ix)), ttl)

    def load(self, ix_id: str, browser: str | None) -> Interaction | None:
        """The interaction, or None when unknown, expired or started in another browser."""
        if not ix_id or len(ix_id) > 64:
            return None
        raw = self.store.get("ix:" + ix_id)
        if raw is None:
            return None
        data = _upgraded(json.loads(raw))
        result, org = data.pop("result", None), data.pop("org", None)
        ix = Interaction(**data)
        ix.result = LoginResult(**result) if result else None
        ix.org = OrgProgress(**_known(OrgProgress, org)) if org else None
        if not browser or not secrets.compare_digest(ix.browser, browser):
            return None
        return ix

    def delete(self, ix: Interaction) -> None:
        self.store.delete("ix:" + ix.id)
