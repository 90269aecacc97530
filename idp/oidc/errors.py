"""OAuth and OpenID Connect errors not in Authlib, and safe construction of any of them.

Authlib refuses ``error_description`` values with characters outside RFC 6749's set (quotes,
backslashes, non-ASCII) by raising ``ValueError``, which would become a 500. Descriptions built
from request input go through :func:`safe_description` first.
"""

from __future__ import annotations

import re

from authlib.oauth2 import OAuth2Error

_ALLOWED = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def safe_description(text: str, limit: int = 200) -> str:
    cleaned = _ALLOWED.sub("?", text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Unmet Authentication Requirements 1.0: an essential acr cannot be met."""

    error = "unmet_authentication_requirements"


class InvalidTokenError(OAuth2Error):
    error = "invalid_token"
    status_code = 401
