"""Debian's chromium driven by Playwright, and the demo set-up (idp + demo portal) on free ports.

The stack is `make demo` on free ports: idp on SQLite with the embedded store, one worker, and
the demo portal from demo/portal.py. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.live import ROOT, IdpProcess, free_port, idp_env, run_cli, wait_for_port
from tests.support.outbox import Outbox
from tests.support.services import CI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (make chromium installs Debian's package)"
        if CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@dataclass
class DemoStack:
    idp: IdpProcess
    portal_url: str
    outbox: Outbox
    partner_url: str | None = None  # the demo partner application, when started


def _move(entry: dict[str, Any], url: str) -> None:
    """Point a demo relying party of clients.yaml at the port it runs on in this test."""
    entry["redirect_uris"] = [url + "/callback"]
    entry["post_logout_redirect_uris"] = [url + "/"]
    entry["backchannel_logout_uri"] = url + "/backchannel-logout"


def _start_portal(tmp: Path, name: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The demo portal's code (demo/portal.py) under gunicorn, as `make demo` runs it."""
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed once the child has it
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                "4",
                "--no-control-socket",
                "--bind",
                f"127.0.0.1:{port}",
                "demo.portal:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()


def _stop_portal(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


def start_demo_stack(
    tmp: Path, *, partner: bool = False, settings: dict[str, object] | None = None
) -> Iterator[DemoStack]:
    """`make demo` on free ports: idp, the demo portal and (with `partner`) the demo partner
    application that asks for consent. `settings` (IDP_ names without the prefix) override the
    test defaults of tests.support.live."""
    idp_port, portal_port, partner_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    portal_url = f"http://127.0.0.1:{portal_port}"
    partner_url = f"http://127.0.0.1:{partner_port}"
    secret, partner_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    clients = yaml.safe_load((ROOT / "clients.yaml").read_text(encoding="utf-8"))
    by_id = {c["client_id"]: c for c in clients["clients"]}
    _move(by_id["demo-portal"], portal_url)
    if "demo-partner" in by_id:
        _move(by_id["demo-partner"], partner_url)
    (tmp / "clients.yaml").write_text(yaml.safe_dump(clients, allow_unicode=True), encoding="utf-8")
    outbox = Outbox(tmp / "sms-outbox.jsonl")
    base: dict[str, object] = {
        "ISSUER": issuer,
        "DATABASE_URL": f"sqlite:///{tmp / 'idp.sqlite3'}",
        "KEYS_DIR": tmp / "keys",
        "CLIENTS_FILE": tmp / "clients.yaml",
        "SMS_OUTBOX": outbox.path,
        "OTP_RESEND_COOLDOWN": 60,
    }
    env = idp_env(**{**base, **(settings or {})})
    env["DEMO_PORTAL_CLIENT_SECRET"] = secret
    env["DEMO_PARTNER_CLIENT_SECRET"] = partner_secret
    run_cli(env, "init", "--sandbox", cwd=tmp)
    idp = IdpProcess("idp-demo", env, cwd=tmp, port=idp_port, workers=1).start()
    portal_env = dict(env, DEMO_IDP_ISSUER=issuer, DEMO_PORTAL_URL=portal_url)
    portals: list[subprocess.Popen[bytes]] = []
    try:
        portals.append(_start_portal(tmp, "portal", portal_port, portal_env))
        if partner:
            partner_env = dict(
                portal_env,
                DEMO_PORTAL_URL=partner_url,
                DEMO_PORTAL_CLIENT_ID="demo-partner",
                DEMO_PORTAL_CLIENT_SECRET=partner_secret,
                DEMO_PORTAL_NAME="Ứng dụng đối tác (demo)",
                DEMO_PORTAL_COLOUR="#1e6b35",
            )
            portals.append(_start_portal(tmp, "partner", partner_port, partner_env))
        wait_for_port(portal_port, 20)
        requests.get(portal_url + "/", timeout=10).raise_for_status()
        if partner:
            wait_for_port(partner_port, 20)
            requests.get(partner_url + "/", timeout=10).raise_for_status()
        yield DemoStack(
            idp=idp, portal_url=portal_url, outbox=outbox, partner_url=partner_url if partner else None
        )
    finally:
        for process in portals:
            _stop_portal(process)
        idp.stop()


class Shots:
    """Screenshots of every page a test visits, named test-step.png."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, page: Any, step: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def clear_screenshots() -> None:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)


@dataclass
class CaptchaStack:
    """The demo stack with the captcha on and Redis as its short-lived store, so that a test can
    read a challenge's answer from the store (tests.support.passwords.stored_answer), never from
    the pages."""

    demo: DemoStack
    captchas: Any  # idp.web.captcha.CaptchaService over the stack's Redis prefix
    tmp: Path

    def answer(self, page: Any) -> str:
        from tests.support.passwords import stored_answer

        cid = page.locator("input[name=captcha_id]").get_attribute("value")
        return stored_answer(self.captchas, cid)


def start_captcha_stack(tmp: Path) -> Iterator[CaptchaStack]:
    """`make demo` with the captcha on (see CaptchaStack); removes its Redis keys at the end."""
    from idp.oidc.keys import ensure_secret
    from idp.store.ephemeral import RedisStore
    from idp.web.captcha import CaptchaService
    from tests.support import services

    prefix = f"idpbrowser:{secrets.token_hex(4)}:"
    settings = {"CAPTCHA_ENABLED": "true", "REDIS_URL": services.REDIS_URL, "REDIS_PREFIX": prefix}
    try:
        for demo in start_demo_stack(tmp, settings=settings):
            key = ensure_secret(tmp / "keys").encode() + b":captcha"
            yield CaptchaStack(demo, CaptchaService(RedisStore(services.REDIS_URL, prefix), key, 300), tmp)
    finally:
        services.clear_prefix(services.redis_client(), prefix)
