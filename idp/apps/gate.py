"""The sign-in gate of idp's own relying parties (the account area, later the operator console).

Each app is a client of idp itself, registered in code (idp.clients.account_client): a person who
opens one of its pages without having signed in to it is sent through /authorize as from any
portal — the same chooser, doors, OTP and acr rules; an SSO session already open answers at once —
and the app's callback redeems the code (``runtime().redeem_code``) and checks that it belongs to
this browser's SSO session. The app stays signed in exactly as long as that SSO session: signing
out anywhere signs it out too.

A view is guarded with ``signed_in`` and reads who it serves with ``current_person()``::

    @bp.route("/account/password", methods=["GET", "POST"])
    @signed_in(recent=True)     # a POST route with recent=True should also answer GET
    def change_password() -> BaseResponse:
        me = current_person()   # me.account_id, me.session (the SsoSession of this browser)

``signed_in(client=…, roles=…, acr=…, recent=…)``: the app's client id (the account area by
default); staff roles the account must hold (a page of the operator console); an acr the session
must satisfy (otherwise the person signs in again asking for it); a sign-in within
ACCOUNT_RECENT_SIGNIN seconds for a sensitive action.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from flask import g, redirect, request, session, url_for
from flask_babel import get_locale
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.clients import ACCOUNT_CLIENT_ID
from idp.identity.assurance import satisfies
from idp.oidc.pkce import pkce_pair
from idp.runtime import runtime
from idp.sessions.browser import browser_id, sso_cookie
from idp.sessions.sso import SsoSession
from idp.store.models import Account, AccountRole, db
from idp.web.errors import NotAllowed

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class App:
    """One of idp's own relying parties: its client, callback, home and the paths it serves."""

    client_id: str
    callback: str  # path on the issuer: the client's one redirect URI
    home_endpoint: str
    prefix: str  # the app's pages; `next` may only point inside it
    session_key: str  # Flask session key: the SSO session the app signed in with


APPS = {
    ACCOUNT_CLIENT_ID: App(
        ACCOUNT_CLIENT_ID, "/account/callback", "account.account_home", "/account", "account_sid"
    ),
}
PENDING_PREFIX = "acct_login:"


@dataclass(frozen=True)
class SignedInPerson:
    account_id: int
    session: SsoSession


def current_person() -> SignedInPerson:
    """The person the page serves (inside a view decorated with ``signed_in``)."""
    me = g.get("signed_in_person")
    if me is None:
        raise RuntimeError("current_person() outside a view decorated with signed_in")
    return cast(SignedInPerson, me)


def is_recent(s: SsoSession) -> bool:
    return time.time() - s.auth_time <= runtime().config["ACCOUNT_RECENT_SIGNIN"]


def _signed_in_here(app: App) -> SignedInPerson | None:
    sso = runtime().sessions.load(sso_cookie())
    if sso is None or session.get(app.session_key) != sso.sid:
        return None
    status = db.session.execute(select(Account.status).where(Account.id == sso.account_id)).scalar()
    if status != "active":
        return None  # /authorize ends the session of a locked account and asks to sign in
    return SignedInPerson(sso.account_id, sso)


def _holds_roles(account_id: int, roles: tuple[str, ...]) -> bool:
    held = set(
        db.session.execute(select(AccountRole.role).where(AccountRole.account_id == account_id)).scalars()
    )
    return set(roles) <= held


def signed_in(
    view: F | None = None,
    *,
    client: str = ACCOUNT_CLIENT_ID,
    roles: tuple[str, ...] = (),
    acr: str | None = None,
    recent: bool = False,
) -> Any:
    """Let the view run only for a person signed in to the app of `client` (see the module doc)."""
    app = APPS[client]

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            me = _signed_in_here(app)
            back = _back_after_sign_in(app)
            if me is None:
                return begin_sign_in(back, client=client, acr=acr)
            if acr is not None and not satisfies(me.session.acr, [acr]):
                return begin_sign_in(back, client=client, acr=acr)
            if recent and not is_recent(me.session):
                return begin_sign_in(
                    back, client=client, acr=acr, max_age=runtime().config["ACCOUNT_RECENT_SIGNIN"]
                )
            if roles and not _holds_roles(me.account_id, roles):
                return NotAllowed(f"account {me.account_id} lacks one of {roles}").response()
            g.signed_in_person = me
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate(view) if view is not None else decorate


def _back_after_sign_in(app: App) -> str:
    """Where to come back to: this page, or for a form post the page if it answers GET too (a
    post cannot be replayed after the sign-in pages), else the app's home."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    rule = request.url_rule
    if rule is not None and rule.methods is not None and "GET" in rule.methods:
        return request.path
    return url_for(app.home_endpoint)


def safe_next(value: str | None, client: str = ACCOUNT_CLIENT_ID) -> str:
    """Only a path of the app: never another site, never a protocol endpoint."""
    app = APPS[client]
    home = url_for(app.home_endpoint)
    if not value or len(value) > 300 or "\\" in value or ".." in value:
        return home
    # urlsplit drops tabs and line breaks and strips spaces before it parses: what it checked
    # must be exactly what is returned (a CR LF here once reached a Location header).
    if not value.isprintable() or value != value.strip():
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return home
    if not (parts.path == app.prefix or parts.path.startswith(app.prefix + "/")):
        return home
    if parts.path.startswith(app.callback):
        return home
    return value


def _redirect_uri(app: App) -> str:
    return str(runtime().config["ISSUER"]) + app.callback


def begin_sign_in(
    next_path: str, *, client: str = ACCOUNT_CLIENT_ID, max_age: int | None = None, acr: str | None = None
) -> BaseResponse:
    """Send the browser through /authorize as the app's relying party."""
    rt = runtime()
    app = APPS[client]
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
    verifier, challenge = pkce_pair()
    pending = {
        "client": client,
        "browser": browser_id(create=True),
        "verifier": verifier,
        "nonce": nonce,
        "next": safe_next(next_path, client),
        "max_age": max_age,
        "acr": acr,
    }
    rt.store.set(PENDING_PREFIX + state, json.dumps(pending), rt.config["INTERACTION_LIFETIME"])
    params = {
        "response_type": "code",
        "client_id": client,
        "redirect_uri": _redirect_uri(app),
        "scope": "openid",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "ui_locales": str(get_locale()),
    }
    if max_age is not None:
        params["max_age"] = str(max_age)
    if acr is not None:
        # Essential (OpenID Connect Core §5.5.1.1), not a preference: a session below it steps up,
        # is offered the raise of its level, or the sign-in ends with unmet_authentication_requirements.
        params["claims"] = json.dumps({"id_token": {"acr": {"essential": True, "values": [acr]}}})
    return redirect(url_for("oidc.authorize") + "?" + urlencode(params), 303)


@dataclass(frozen=True)
class Callback:
    """What the callback found: the path to go on to, or why not (`cancelled`, or nothing: expired)."""

    next: str | None
    cancelled: bool = False


def finish_sign_in(client: str = ACCOUNT_CLIENT_ID) -> Callback:
    """The app's callback: redeem the code, check it belongs to this browser's SSO session and
    remember that session as the app's. ``next`` is None when the sign-in cannot be used."""
    rt = runtime()
    app = APPS[client]
    state = request.args.get("state", "")
    raw = rt.store.take(PENDING_PREFIX + state) if 20 <= len(state) <= 64 else None
    pending = json.loads(raw) if raw else None
    if (
        pending is None
        or pending.get("client", ACCOUNT_CLIENT_ID) != client
        or pending["browser"] != browser_id(create=False)
        or request.args.get("iss") != rt.config["ISSUER"]
    ):
        return Callback(None)
    if "error" in request.args:
        cancelled = request.args["error"] == "access_denied"  # the person cancelled at the chooser
        return Callback(pending["next"] if cancelled else None, cancelled=cancelled)
    redeemed = rt.redeem_code(request.args.get("code", ""), client, _redirect_uri(app), pending["verifier"])
    sso = rt.sessions.load(sso_cookie())
    if (
        redeemed is None
        or sso is None
        or redeemed.sid != sso.sid
        or redeemed.nonce != pending["nonce"]
        or (pending["max_age"] is not None and time.time() - redeemed.auth_time > pending["max_age"] + 60)
        or (pending.get("acr") and not satisfies(redeemed.acr, [pending["acr"]]))
    ):
        return Callback(None)
    session[app.session_key] = sso.sid
    return Callback(pending["next"])


def forget(client: str = ACCOUNT_CLIENT_ID) -> None:
    """The app signs out in this browser (the SSO session is ended by the caller)."""
    session.pop(APPS[client].session_key, None)
