"""Assurance levels (DESIGN §4): a session's acr is the lower of the identity's level and the
strength of this sign-in.

Sign-in strength by what was used (RFC 8176 method names):
- a password alone ("pwd") is level 1;
- a password and a one-time code to a verified phone or an authenticator ("pwd" + "otp") is level 3,
  so the identity's proven level (2 or 3) decides;
- the certificate and federation doors of later issues add their own rows here.
"""

from __future__ import annotations

# The one table of level names: acr values (discovery, clients.yaml, tokens) and levels.
ACR_LEVEL = {"LoA1": 1, "LoA2": 2, "LoA3": 3}
LEVEL_ACR = {level: name for name, level in ACR_LEVEL.items()}
ACR_VALUES = tuple(ACR_LEVEL)
IDENTITY_LEVELS = (2, 3)  # an identity is proven at level 2 or 3; level 1 is a sign-in's strength


def sign_in_strength(amr: list[str]) -> int:
    methods = set(amr)
    if "pwd" in methods and ("otp" in methods or "hwk" in methods or "swk" in methods):
        return 3
    if methods & {"hwk", "swk"}:
        return 3
    return 1


def session_acr(identity_level: int, amr: list[str]) -> str:
    return LEVEL_ACR[max(1, min(identity_level, sign_in_strength(amr)))]


def acr_level(acr: str | None) -> int:
    return ACR_LEVEL.get(acr or "", 0)


def satisfies(acr: str, required: list[str]) -> bool:
    """True when `acr` meets one of the required values (a higher level meets a lower one)."""
    level = acr_level(acr)
    return any(level >= acr_level(r) for r in required if r in ACR_LEVEL)
