"""Playwright steps shared by the browser tests of the account area and the accessibility check:
signing in through the pages a person sees, and running axe-core on a page.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.browser import DemoStack
from tests.support.live import ROOT
from tests.support.people import SandboxPerson
from tests.support.services import CI

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def require_axe() -> None:
    if not AXE.exists():
        message = f"{AXE} is missing: run `npm ci` (make test does)"
        if CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of WCAG 2.1 A and AA on the page as it is now.

    The script is injected, so the page's Content-Security-Policy (script-src 'self') must be
    bypassed: only contexts created with bypass_csp=True can run this.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
        }""",
        WCAG_TAGS,
    )
    return list(result)


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(f"    at {node['target']}: {node['summary']}")
    return "\n".join(lines)


def choose_citizen_door(page: Any) -> None:
    page.locator("a.door[data-account-kind=citizen]").click()
    page.wait_for_url(re.compile(r"/citizen"))


def submit_password(page: Any, person: SandboxPerson, password: str | None = None) -> None:
    page.fill("input[name=username]", person.username)
    page.fill("input[name=password]", password or person.password)
    page.get_by_role("button", name="Đăng nhập", exact=True).click()
    page.wait_for_load_state()


def submit_otp(page: Any, stack: DemoStack, person: SandboxPerson, button: str = "Xác nhận") -> None:
    page.fill("input[name=otp]", stack.outbox.last_code(person.phone))
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()


def sign_in_from_chooser(page: Any, stack: DemoStack, person: SandboxPerson) -> None:
    """On the chooser: the citizen door, password, OTP; the page then follows the redirects."""
    choose_citizen_door(page)
    submit_password(page, person)
    page.wait_for_url(re.compile(r"/otp"))
    submit_otp(page, stack, person)


def sign_in_at_portal(page: Any, stack: DemoStack, person: SandboxPerson, url: str | None = None) -> None:
    """From a demo portal's home page to signed in there (the chooser only without an SSO session)."""
    base = url or stack.portal_url
    page.goto(base + "/")
    page.get_by_role("link", name="Đăng nhập").click()
    page.wait_for_load_state()
    if "/login/" in page.url:
        sign_in_from_chooser(page, stack, person)
    if "/consent/" in page.url:
        page.get_by_role("button", name="Đồng ý").click()
    page.wait_for_url(re.compile("^" + re.escape(base) + "/"))


def open_account(page: Any, stack: DemoStack, person: SandboxPerson, path: str = "/account") -> None:
    """An account page, signing in on the way when the browser has no session."""
    page.goto(stack.idp.base + path)
    page.wait_for_load_state()
    if "/login/" in page.url:
        sign_in_from_chooser(page, stack, person)
    page.wait_for_url(re.compile(re.escape(stack.idp.base + path.split("?")[0])))
