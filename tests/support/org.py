"""The sandbox organizations and staff (idp/sandbox/accounts.json), and driving the organization door."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyotp

from tests.support.driver import Browser, csrf_of


@dataclass(frozen=True)
class SandboxStaff:
    username: str
    password: str
    phone: str  # E.164
    name: str
    org_code: str
    org_code_type: str
    org_name: str
    org_kind: str
    roles: tuple[str, ...]
    totp_secret: str | None = None
    recovery_codes: tuple[str, ...] = ()


LAN = SandboxStaff(
    "sotn.lan",
    "DemoLan@2026",
    "+84905111222",
    "Võ Thị Lan",
    "000.99.01.H57",
    "province",
    "Sở Thử nghiệm Chuyển đổi số (dữ liệu mẫu)",
    "department",
    ("admin", "staff"),
)
MINH = SandboxStaff(
    "senvang.minh",
    "DemoMinh@2026",
    "+84978333444",
    "Đặng Quang Minh",
    "0100233488",
    "tax",
    "Công ty TNHH Sen Vàng Thử nghiệm (dữ liệu mẫu)",
    "enterprise",
    ("staff",),
    "SUJ6XKPFWVDPNUCUC54VXIPUXI3SLEHJ",
    ("GR4VK-NRD8X", "JLBPQ-CDGKU"),
)


def totp_code(secret: str, offset: int = 0, at: float | None = None) -> str:
    """The authenticator's code `offset` steps from now."""
    return pyotp.TOTP(secret).generate_otp(int(time.time() if at is None else at) // 30 + offset)


def fresh_totp_code(secret: str) -> str:
    """A code whose step has not been used yet in a test that already used the current one."""
    return totp_code(secret, 1)


class OrgDoor:
    """The organization door of one browser (Flask test client)."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.client = browser.client

    def open(self, **start: Any) -> str:
        """Start an authorization at the portal; returns the organization door's path."""
        response, self.auth = self.browser.start(**start)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        login = urlsplit(response.headers["Location"]).path
        assert login.startswith("/login/"), login
        self.login = login.rstrip("/").split("/door/")[0]
        return self.login + "/organization"

    def post(self, path: str, **fields: str) -> Any:
        """GET the page (for its CSRF token), then POST the form."""
        page = self.client.get(path)
        assert page.status_code == 200, (path, page.status_code, page.get_data(as_text=True)[:500])
        return self.client.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True)), **fields})

    def password(self, username: str, password: str, **start: Any) -> Any:
        return self.post(self.open(**start), username=username, password=password)

    def path(self, step: str) -> str:
        return f"{self.login}/organization/{step}"
