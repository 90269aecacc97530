"""PKCE (RFC 7636) S256: the challenge of a verifier, and a fresh pair for idp's own relying parties."""

from __future__ import annotations

import base64
import hashlib
import secrets


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding; a non-ASCII verifier never matches."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge): 64 characters of 48 random bytes."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)
