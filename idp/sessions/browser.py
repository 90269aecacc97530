"""The browser binding and the cookies a browser holds.

Interactions, pending account-area sign-ins and multi-page flow records are bound to a random
browser id, so that a link copied to another browser is useless. The page session (the signed
Flask cookie) does not carry that id itself: it carries a binding key, and the short-lived store
maps the key's digest to the id. At every successful authentication step the key is replaced
(``renew_binding``) and the old one forgotten, together with the page session's CSRF token: a
copy of the cookie taken or planted before the step (session fixation, cookie tossing from a
sibling subdomain) then reaches nothing, while this browser's own records stay bound to it.

On an https issuer every cookie is named with the ``__Host-`` prefix (Secure, Path=/, no Domain):
browsers refuse such a cookie from a sibling subdomain or with a Domain attribute. A loopback
issuer on plain http keeps the plain names, as browsers keep no Secure cookie from http.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal, overload

from flask import current_app, g, request, session
from werkzeug.wrappers import Response as BaseResponse

from idp.store.ephemeral import EphemeralStore

BINDING_KEY = "bk"  # in the page session
BINDING_LIFETIME = 24 * 3600  # seconds; longer than any record bound to a browser
_PREFIX = "bind:"

SESSION_COOKIE = "idp_s"
SSO_COOKIE = "idp_sso"
DEVICE_COOKIE = "idp_device"
LANG_COOKIE = "idp_lang"
HOST_PREFIX = "__Host-"


def cookie_name(base: str) -> str:
    """The name a cookie has on this deployment (``__Host-`` + base on an https issuer)."""
    return str(current_app.config["COOKIE_PREFIX"]) + base


def _store() -> EphemeralStore:
    from idp.runtime import runtime

    return runtime().store


def _digest(key: str) -> str:
    return _PREFIX + hashlib.sha256(key.encode()).hexdigest()


@overload
def browser_id(*, create: Literal[True]) -> str: ...
@overload
def browser_id(*, create: Literal[False]) -> str | None: ...


def browser_id(*, create: bool) -> str | None:
    """This browser's id (one store read per request), or a new one when `create`."""
    cached = g.get("browser_id")
    if cached is not None:
        return str(cached)
    key = session.get(BINDING_KEY)
    bid = _store().get(_digest(key)) if isinstance(key, str) and 0 < len(key) <= 64 else None
    if bid is None and create:
        bid = secrets.token_urlsafe(16)
        _bind(bid)
    if bid is not None:
        g.browser_id = bid
    return bid


def _bind(bid: str) -> None:
    key = secrets.token_urlsafe(24)
    _store().set(_digest(key), bid, BINDING_LIFETIME)
    session[BINDING_KEY] = key


def renew_binding() -> None:
    """After a successful authentication step: a new binding key for the same browser id, the old
    key forgotten, and a new CSRF token (the page session is reissued)."""
    bid = browser_id(create=False)
    if bid is None:
        return
    old = session.get(BINDING_KEY)
    _bind(bid)
    if isinstance(old, str):
        _store().delete(_digest(old))
    session.pop("csrf_token", None)
    g.pop("csrf_token", None)  # Flask-WTF's per-request copy: the next form gets a new one


def client_address() -> str:
    """The browser's address as the proxy in front of idp reported it (TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def sso_cookie() -> str | None:
    """The SSO session cookie of this browser (see idp.sessions.sso)."""
    return request.cookies.get(cookie_name(SSO_COOKIE))


def set_sso_cookie(response: BaseResponse, value: str) -> None:
    response.set_cookie(
        cookie_name(SSO_COOKIE),
        value,
        httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        samesite="Lax",
        path="/",
    )


def drop_sso_cookie(response: BaseResponse) -> None:
    response.delete_cookie(
        cookie_name(SSO_COOKIE), path="/", secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax"
    )
