"""The browser binding: a random id in the signed session cookie that ties an interaction (and a
pending logout) to the browser that started it, so a link copied to another browser is useless.
"""

from __future__ import annotations

import secrets
from typing import Literal, overload

from flask import session


@overload
def browser_id(*, create: Literal[True]) -> str: ...
@overload
def browser_id(*, create: Literal[False]) -> str | None: ...


def browser_id(*, create: bool) -> str | None:
    bid = session.get("bid")
    if bid is None and create:
        bid = secrets.token_urlsafe(16)
        session["bid"] = bid
    return bid


SSO_COOKIE = "idp_sso"


def sso_cookie() -> str | None:
    """The SSO session cookie of this browser (see idp.flows.sessions)."""
    from flask import request

    return request.cookies.get(SSO_COOKIE)
