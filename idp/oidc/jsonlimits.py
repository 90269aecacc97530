"""Bounds on JSON from outside (the `claims` parameter, the JWTs of id_token_hint and
private_key_jwt): a length and a nesting depth, checked before json.loads, whose recursion a
few kilobytes of brackets exhaust (RecursionError, a 500). Legitimate values nest 4 levels deep.
"""

from __future__ import annotations

import base64
import binascii

MAX_DEPTH = 10
MAX_JWT_LENGTH = 8192


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (brackets inside strings ignored)."""
    openings = text.count("[") + text.count("{")
    if openings <= MAX_DEPTH:
        return openings  # an upper bound, and small: no scan needed
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def check_json(text: str, *, max_length: int, max_depth: int = MAX_DEPTH) -> None:
    """Raise ValueError when `text` is longer or nests deeper than allowed."""
    if len(text) > max_length:
        raise ValueError("too long")
    if nesting_depth(text) > max_depth:
        raise ValueError("nested too deeply")


def check_jwt(token: str, *, max_length: int = MAX_JWT_LENGTH) -> None:
    """Raise ValueError unless `token` is a compact JWS whose header and payload are bounded JSON."""
    if not isinstance(token, str) or len(token) > max_length or token.count(".") != 2:
        raise ValueError("not a compact JWS")
    for segment in token.split(".")[:2]:
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("not base64url") from None
        check_json(raw.decode("utf-8", "replace"), max_length=max_length)
