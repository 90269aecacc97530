"""Authenticator-app (TOTP) enrolment that the organization door and the account area share: the
per-deployment key that encrypts a pending secret, and the QR code and grouped secret a person scans."""

from __future__ import annotations

import base64
from typing import Any

from flask import current_app

from idp.identity.totp import (
    SecondFactorKeys,
    provisioning_uri,
)
from idp.runtime import runtime


# -- shared helpers (also used by the security page) ------------------------------------------
def second_factor_keys() -> SecondFactorKeys:
    keys = current_app.extensions.get("idp_second_factor")
    if keys is None:
        keys = SecondFactorKeys(current_app.config["SECRET_KEY"])
        current_app.extensions["idp_second_factor"] = keys
    return keys


def qr_data_uri(text: str) -> str:
    """A QR code of `text` as an SVG data URI (the CSP allows data: images)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, border=2)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def enrolment_context(secret: str, username: str) -> dict[str, Any]:
    issuer = runtime().config["PROVINCE_NAME"]
    return {
        "qr": qr_data_uri(provisioning_uri(secret, username, issuer)),
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "username": username,
        "issuer": issuer,
    }
