"""The remembered-device cookie and the rules of the citizen door that depend on it.

See idp.identity.remembered_devices for what a remembered device may skip and how that lowers acr.
The cookie holds a random secret only: HttpOnly, SameSite=Lax, Secure outside loopback, kept for
REMEMBER_DEVICE_DAYS.
"""

from __future__ import annotations

from flask import current_app, request
from werkzeug.wrappers import Response as BaseResponse

from idp.identity import remembered_devices
from idp.identity.accounts import find_citizen
from idp.identity.assurance import satisfies
from idp.sessions.browser import DEVICE_COOKIE, client_address, cookie_name
from idp.sessions.devices import describe_user_agent
from idp.sessions.interaction import Interaction
from idp.store.models import RememberedDevice

SKIPPED_OTP_AMR = ["pwd"]  # a password alone: sign-in strength 1, acr LoA1


def enabled() -> bool:
    return int(current_app.config["REMEMBER_DEVICE_DAYS"]) > 0


def browser_secret() -> str | None:
    secret = request.cookies.get(cookie_name(DEVICE_COOKIE))
    return secret if remembered_devices.valid_secret(secret) else None


def remembered(account_id: int) -> RememberedDevice | None:
    """This browser's record for the account, when remembering is on and the record is valid."""
    if not enabled():
        return None
    return remembered_devices.find(account_id, browser_secret())


def otp_may_be_skipped(ix: Interaction) -> bool:
    """A sign-in without the OTP is LoA1: allowed only when the request neither demands nor
    prefers more (otherwise the OTP is asked: a step-up instead of an unmet requirement)."""
    if ix.required_acr and not satisfies("LoA1", ix.required_acr):
        return False
    return not (ix.acr_values and not satisfies("LoA1", ix.acr_values))


def throttle_name(login: str) -> str:
    """The name the password-failure counter uses for `login` in this browser.

    A browser remembered for that account counts its own failures ("device:<id>"), so a lockout
    that a stranger caused on the account's name does not keep its owner out on their own device.
    """
    if not enabled() or browser_secret() is None:
        return login
    account = find_citizen(login)
    device = remembered(account.id) if account is not None else None
    return f"device:{device.id}" if device is not None else login


def remember_browser(account_id: int) -> str:
    """Remember this browser for the account (the caller commits); returns the browser's new secret
    for :func:`set_device_cookie`."""
    browser, platform = describe_user_agent(request.headers.get("User-Agent"))
    secret, _ = remembered_devices.remember(
        account_id,
        old_secret=browser_secret(),
        days=int(current_app.config["REMEMBER_DEVICE_DAYS"]),
        browser=browser,
        platform=platform,
        actor=f"account:{account_id}",
        ip=client_address(),
    )
    return secret


def set_device_cookie(response: BaseResponse, secret: str) -> None:
    response.set_cookie(
        cookie_name(DEVICE_COOKIE),
        secret,
        max_age=int(current_app.config["REMEMBER_DEVICE_DAYS"]) * 86400,
        httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        samesite="Lax",
        path="/",
    )
