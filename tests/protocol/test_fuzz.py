"""Property-based fuzzing (Hypothesis) of every form and endpoint: whatever arrives, the answer is
never a 5xx and nothing is logged as an unhandled error (issue 8, item 6).

Three layers, against PostgreSQL and Redis:
- every route of the application, with random path arguments, query and form fields, files and
  headers (shallow: most land on "expired" pages, which must hold too);
- every form of every page, reached in a real state (an interaction at the chooser, at the OTP
  page, at an organization's second factor, at the consent page; a registration and a password
  reset under way; the account area signed in; a certificate registration; the sandbox signers),
  submitted with its CSRF token and each field kept, replaced by hostile text, sent as a file or
  left out; the page's query string fuzzed too;
- the protocol endpoints with valid client authentication and fuzzed parameters.

Bounded for CI: FUZZ_EXAMPLES examples per form or route (default 8); raise it for a long
fuzz (`FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/test_fuzz.py`).
"""

from __future__ import annotations

import base64
import io
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.account import follow, open_account
from tests.support.clients import PARTNER_CALLBACK, PORTAL_CALLBACK, PORTAL_SECRET, RESOURCE_SECRET
from tests.support.crawl import Form, forms_and_links
from tests.support.driver import Browser, basic, csrf_of, pkce_pair
from tests.support.org import LAN, MINH
from tests.support.outbox import Outbox
from tests.support.people import AN, BINH
from tests.support.registration import MAI, form_of, otp_path, submit_check

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# Limits that would otherwise turn most examples into a lockout page after a few tries.
GENEROUS = {
    "PASSWORD_MAX_FAILURES": 100000,
    "OTP_MAX_VOIDED": 100000,
    "OTP_DAILY_LIMIT": 100000,
    "OTP_PHONE_HOURLY_LIMIT": 100000,
    "OTP_PHONE_DAILY_LIMIT": 100000,
    "OTP_ADDRESS_HOURLY_LIMIT": 100000,
    "OTP_GLOBAL_PER_MINUTE": 100000,
    "OTP_RESEND_COOLDOWN": 1,
    "REGISTRATION_CHECKS_PER_HOUR": 100000,
}

# -- what is sent ---------------------------------------------------------------------------------
KEEP, FILE, ABSENT = "<keep>", "<file>", "<absent>"
HOSTILE = [
    "", " ", "\x00", "a\x00b", "\r\nSet-Cookie: x=1", "\t", "\x1b[31m", "\x7f", "\x85", "%00", "%0d%0a",
    "\ufeff", "\u202e", "\U0001d54f", "Nguyễn Văn An", "'\"<>&", "' OR '1'='1' --", "../../etc/passwd",
    "0" * 5000, "9" * 25, "-1", "1e309", "NaN", "null", "[]", "{}", '{"a":' * 50, "[" * 3000,
    "046090001234", "191234567", "+84912345678", "0912345678", "31/02/2020", "00/00/0000",
    "15/03/1990", "javascript:alert(1)", "//evil.example", "https://evil.example/",
    "/account/\r\n", "\\\\evil", "a" * 300, "ẞ" * 100, "sotn.lan", "partner", "LoA3", "none",
]  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=120),
    st.text(alphabet="0123456789/-+.:", max_size=24),
)
VALUE = st.one_of(st.just(KEEP), st.just(KEEP), TEXT, st.just(FILE), st.just(ABSENT))
NAME = st.one_of(st.sampled_from(["ix", "next", "lang", "done", "sent", "state", "code", "x"]), TEXT)


@dataclass
class Target:
    method: str
    path: str
    fields: dict[str, str]
    headers: dict[str, str] | None = None


class Guard:
    """Sends requests and fails on a 5xx or an error logged by the application."""

    def __init__(self, app: Any, client: Any, caplog: pytest.LogCaptureFixture) -> None:
        self.app = app
        self.client = client
        self.caplog = caplog
        self.adapter = app.url_map.bind("localhost")

    def send(
        self, method: str, path: str, fields: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        seen = len(self.caplog.records)
        files = {k: v for k, v in fields.items() if v is FILE or v == FILE}
        data: dict[str, Any] = {k: v for k, v in fields.items() if k not in files}
        for name in files:
            data[name] = (io.BytesIO(secrets.token_bytes(16)), "upload.bin")
        if method == "GET":
            sep = "&" if "?" in path else "?"
            url = path + (sep + urlencode(data, doseq=True) if data and not files else "")
            response = self.client.get(url, headers=headers)
        else:
            kwargs: dict[str, Any] = {"data": data, "headers": headers}
            if files:
                kwargs["content_type"] = "multipart/form-data"
            response = self.client.open(path, method=method, **kwargs)
        errors = [r for r in self.caplog.records[seen:] if r.levelno >= logging.ERROR]
        assert response.status_code < 500, (
            method,
            path,
            fields,
            response.status_code,
            response.get_data()[:400],
        )
        assert not errors, (method, path, fields, [r.getMessage() for r in errors])
        return response


def compose(original: dict[str, str], choice: dict[str, str], extra: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in original.items():
        picked = choice.get(name, KEEP)
        if picked == ABSENT:
            continue
        fields[name] = value if picked == KEEP else picked
    for name, value in extra.items():
        fields.setdefault(name, value)
    return fields


def fuzz_form(guard: Guard, form: Form) -> None:
    names = sorted(set(form.fields))
    buttons = [(name, value) for name, values in form.buttons.items() for value in values] or [(None, None)]

    @FUZZ
    @given(
        choice=st.fixed_dictionaries({n: VALUE for n in names}),
        extra=st.dictionaries(NAME, TEXT, max_size=2),
        button=st.sampled_from(buttons),
    )
    def run(choice: dict[str, str], extra: dict[str, str], button: tuple[str | None, str | None]) -> None:
        fields = compose(form.fields, choice, extra)
        if button[0] is not None:
            fields[button[0]] = button[1]
        guard.send(form.method, form.action, fields)

    run()


def fuzz_query(guard: Guard, path: str) -> None:
    @FUZZ
    @given(query=st.dictionaries(NAME, TEXT, max_size=4))
    def run(query: dict[str, str]) -> None:
        guard.send("GET", path, query)

    run()


# -- states: a browser somewhere in a journey, and the pages it has open -----------------------------
@dataclass
class Ctx:
    app: Any
    outbox: Outbox

    def browser(self) -> Browser:
        return Browser(self.app.test_client(), self.outbox)


def at_chooser(ctx: Ctx, **start: str) -> tuple[Browser, str]:
    browser = ctx.browser()
    response, _ = browser.start(**start)
    page = browser.follow(response)
    assert page.status_code == 200 and page.request.path.startswith("/login/"), page.request.path
    return browser, "/login/" + page.request.path.split("/")[2]


def state_chooser(ctx: Ctx) -> tuple[Browser, list[str]]:
    browser, login = at_chooser(ctx)
    ix = login.split("/")[2]
    pages = [
        login,
        login + "/citizen",
        login + "/organization",
        login + "/door/citizen",
        f"/register?ix={ix}",
    ]
    pages += [f"/register/citizen/{m}?ix={ix}" for m in ("subscriber", "social_insurance", "population")]
    pages += [f"/register/{k}/{d}?ix={ix}" for k in ("citizen", "enterprise") for d in ("sim", "usb")]
    pages += [f"/password/forgot?ix={ix}"]
    return browser, pages


def state_citizen_otp(ctx: Ctx) -> tuple[Browser, list[str]]:
    browser, login = at_chooser(ctx)
    response = browser.submit_password(login + "/citizen", AN.username, AN.password)
    assert response.status_code == 302
    return browser, [urlsplit(response.headers["Location"]).path]


def state_organization(ctx: Ctx) -> tuple[Browser, list[str]]:
    pages = []
    browser = None
    for staff in (LAN, MINH):
        browser, login = at_chooser(ctx)
        page = browser.client.get(login + "/organization")
        response = browser.client.post(
            login + "/organization",
            data={
                "csrf_token": csrf_of(page.get_data(as_text=True)),
                "username": staff.username,
                "password": staff.password,
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        base = login + "/organization"
        pages += [urlsplit(response.headers["Location"]).path] + [
            f"{base}/{step}"
            for step in ("method", "sms", "app", "recovery", "authenticator", "authenticator/setup")
        ]
        if staff is LAN:
            break  # the second staff member needs a browser of their own
    assert browser is not None
    return browser, pages


def state_consent(ctx: Ctx) -> tuple[Browser, list[str]]:
    browser, login = at_chooser(
        ctx, client_id="partner", redirect_uri=PARTNER_CALLBACK, scope="openid profile"
    )
    response = browser.submit_password(login + "/citizen", AN.username, AN.password)
    response = browser.submit_otp(response.headers["Location"], ctx.outbox.last_code(AN.phone))
    page = browser.follow(response)
    assert page.request.path.startswith("/consent/"), page.request.path
    return browser, [page.request.path]


def state_level_required(ctx: Ctx) -> tuple[Browser, list[str]]:
    browser = ctx.browser()
    browser.sign_in(AN.username, AN.password)
    response, _ = browser.start(client_id="strict-portal", redirect_uri="https://strict.example.vn/cb")
    assert response.status_code == 403, response.status_code
    forms, _ = forms_and_links("/authorize", response.get_data(as_text=True))
    return browser, [f.action for f in forms if f.method == "GET"] + ["/account/assurance"]


def state_account(ctx: Ctx) -> tuple[Browser, list[str]]:
    browser = ctx.browser()
    page = open_account(browser, AN, "/account")
    assert page.status_code == 200 and page.request.path == "/account", page.request.path
    pages = ["/account", "/account/sessions", "/account/consents", "/account/password", "/account/assurance"]
    pages += ["/account/assurance/sim", "/account/assurance/usb", "/account/signed-out", "/logout/done"]
    return browser, pages


def state_account_staff(ctx: Ctx) -> tuple[Browser, list[str]]:
    from tests.support.org import OrgDoor

    browser = ctx.browser()
    response = follow(browser, browser.client.get("/account/authenticator"))
    assert response.request.path.startswith("/login/")
    door = OrgDoor(browser)
    door.login = "/login/" + response.request.path.split("/")[2]
    sms = door.post(door.login + "/organization", username=LAN.username, password=LAN.password)
    assert sms.status_code == 302
    follow(browser, door.post(urlsplit(sms.headers["Location"]).path, otp=ctx.outbox.last_code(LAN.phone)))
    return browser, [
        "/account/authenticator",
        "/account/authenticator/setup",
        "/account/authenticator/recovery-codes",
    ]


def state_password_change(ctx: Ctx) -> tuple[Browser, list[str]]:
    from tests.support.account import post_form

    browser = ctx.browser()
    page = open_account(browser, AN, "/account/password")
    fields = {
        "current_password": AN.password,
        "new_password": "Fz9#kLm-Qrs2031",
        "confirm_password": "Fz9#kLm-Qrs2031",
    }
    response = post_form(browser, page, "/account/password", **fields)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    return browser, ["/account/password/otp"]


def state_registration(ctx: Ctx) -> tuple[Browser, list[str]]:
    browser = ctx.browser()
    path = otp_path(submit_check(browser, "population", form_of(MAI, "population")))
    pages = [path]
    other = ctx.browser()
    second = otp_path(submit_check(other, "population", form_of(MAI, "population")))
    from tests.support.registration import confirm_phone, step

    response = confirm_phone(other, second, MAI.e164)
    assert response.status_code == 302
    # The second registration is at its password page, in its own browser: fuzz it there.
    return browser, pages + [f"@other:{step(second, 'password')}", f"@other:{step(second, 'done')}"]


def state_password_reset(ctx: Ctx) -> tuple[Browser, list[str]]:
    browser = ctx.browser()
    page = browser.client.get("/password/forgot")
    response = browser.client.post(
        "/password/forgot",
        data={"csrf_token": csrf_of(page.get_data(as_text=True)), "username": BINH.username},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    otp = urlsplit(response.headers["Location"]).path
    base = otp.rsplit("/", 1)[0]
    return browser, [otp, base + "/new", base + "/done"]


def state_certificate(ctx: Ctx) -> tuple[Browser, list[str]]:
    from tests.support.signing import location, post_page

    browser = ctx.browser()
    usb = location(post_page(browser, "/register/citizen/usb"))
    sim = location(post_page(browser, "/register/citizen/sim", phone="0767890123"))
    base = usb.rsplit("/", 1)[0]
    return browser, [usb, sim, base + "/certificate", sim + "/status", "/sandbox/sim?phone=0767890123"]


STATES: dict[str, Callable[[Ctx], tuple[Browser, list[str]]]] = {
    "chooser": state_chooser,
    "citizen-otp": state_citizen_otp,
    "organization": state_organization,
    "consent": state_consent,
    "level-required": state_level_required,
    "account": state_account,
    "account-staff": state_account_staff,
    "password-change": state_password_change,
    "registration": state_registration,
    "password-reset": state_password_reset,
    "certificate": state_certificate,
}


@pytest.fixture
def fuzz_app(make_app: Any) -> Any:
    return make_app(**GENEROUS)


def crawl(ctx: Ctx, name: str) -> tuple[Browser, dict[str, list[Form]]]:
    """The state's browser, and the forms on each of its pages (pages fetched once)."""
    browser, pages = STATES[name](ctx)
    found: dict[str, list[Form]] = {}
    for path in pages:
        client = browser.client
        if path.startswith("@other:"):
            continue
        response = follow(browser, client.get(path))
        assert response.status_code < 500, (path, response.status_code)
        here = response.request.path + (
            "?" + response.request.query_string.decode() if response.request.query_string else ""
        )
        found[path] = forms_and_links(here, response.get_data(as_text=True))[0]
    return browser, found


@pytest.mark.parametrize("state", sorted(STATES))
def test_every_form_of_the_state(
    fuzz_app: Any, outbox: Outbox, caplog: pytest.LogCaptureFixture, state: str
) -> None:
    ctx = Ctx(fuzz_app, outbox)
    browser, found = crawl(ctx, state)
    assert any(found.values()), f"state {state}: no form found on {sorted(found)}"
    guard = Guard(fuzz_app, browser.client, caplog)
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for path, forms in found.items():
        fuzz_query(guard, path)
        for form in forms:
            if form.key() in seen:
                continue
            seen.add(form.key())
            # A fresh copy of the page first: its CSRF token may have been renewed meanwhile.
            fresh = forms_and_links(path, follow(browser, browser.client.get(path)).get_data(as_text=True))[0]
            form = next((f for f in fresh if f.key() == form.key()), form)
            fuzz_form(guard, form)


# -- every route, with random arguments ------------------------------------------------------------
def routes(app: Any) -> list[tuple[str, str, list[str]]]:
    """(endpoint, method, argument names) of every rule but static files."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, sorted(rule.arguments)))
    return sorted(found)


def test_every_route_with_random_arguments(
    fuzz_app: Any, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    browser, _ = state_chooser(Ctx(fuzz_app, outbox))  # a browser with a page session
    guard = Guard(fuzz_app, browser.client, caplog)
    table = routes(fuzz_app)
    assert len(table) > 60, table
    for rule, method, arguments in table:
        fuzz_route(guard, rule, method, arguments)


def fuzz_route(guard: Guard, rule: str, method: str, arguments: list[str]) -> None:
    @FUZZ
    @given(
        args=st.fixed_dictionaries({a: TEXT.filter(lambda t: t not in ("", ".", "..")) for a in arguments}),
        fields=st.dictionaries(NAME, st.one_of(TEXT, st.just(FILE)), max_size=4),
        bearer=st.one_of(st.none(), TEXT.filter(lambda t: t.isascii() and t.isprintable())),
    )
    def run(args: dict[str, str], fields: dict[str, Any], bearer: str | None) -> None:
        path = rule
        for name, value in args.items():
            for pattern in (f"<{name}>", f"<path:{name}>"):
                path = path.replace(pattern, quote(value, safe=""))
        headers = {"Authorization": "Bearer " + bearer} if bearer else None
        guard.send(method, path, fields, headers)

    run()


# -- the protocol endpoints, with valid client authentication -----------------------------------------
def test_authorization_requests(fuzz_app: Any, outbox: Outbox, caplog: pytest.LogCaptureFixture) -> None:
    browser = Browser(fuzz_app.test_client(), outbox)
    browser.sign_in(AN.username, AN.password)  # half the examples meet an SSO session
    guard = Guard(fuzz_app, browser.client, caplog)
    _, challenge = pkce_pair()
    base = {
        "client_id": "portal", "redirect_uri": PORTAL_CALLBACK, "response_type": "code", "scope": "openid profile",
        "state": "s" * 12, "nonce": "n" * 12, "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    names = sorted(base) + [
        "prompt", "max_age", "claims", "acr_values", "login_hint", "id_token_hint", "ui_locales", "request",
        "request_uri", "response_mode", "display", "door",
    ]  # fmt: skip

    @FUZZ
    @given(
        choice=st.fixed_dictionaries({n: VALUE for n in names}),
        method=st.sampled_from(["GET", "POST"]),
    )
    def run(choice: dict[str, str], method: str) -> None:
        fields = compose({**base, **{n: "" for n in names if n not in base}}, choice, {})
        guard.send(
            method,
            "/authorize",
            {k: v for k, v in fields.items() if v != "" or choice.get(k) not in (KEEP, None)},
        )

    run()


def test_token_revocation_and_introspection(
    fuzz_app: Any, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(fuzz_app.test_client(), outbox)
    callback, auth = browser.sign_in(AN.username, AN.password, scope="openid profile offline_access")
    token = browser.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": PORTAL_CALLBACK,
            "code_verifier": auth.verifier,
        },
        headers=basic("portal", PORTAL_SECRET),
    ).json
    guard = Guard(fuzz_app, browser.client, caplog)
    garbled = "Basic " + base64.b64encode(b"\x00\xff:x").decode()
    auths = st.sampled_from(
        [
            basic("portal", PORTAL_SECRET),
            basic("resource-api", RESOURCE_SECRET),
            basic("portal", "wrong"),
            {"Authorization": garbled},
            {},
        ]
    )
    base = {
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"], "code": "c" * 43,
        "redirect_uri": PORTAL_CALLBACK, "code_verifier": "v" * 43, "token": token["access_token"],
        "token_type_hint": "access_token", "scope": "openid", "client_id": "portal", "client_secret": PORTAL_SECRET,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": "a.b.c",
    }  # fmt: skip

    @FUZZ
    @given(
        path=st.sampled_from(["/token", "/revoke", "/introspect"]),
        grant=st.sampled_from(
            ["authorization_code", "refresh_token", "client_credentials", KEEP, "password"]
        ),
        choice=st.fixed_dictionaries({n: st.one_of(st.just(ABSENT), VALUE) for n in sorted(base)}),
        headers=auths,
    )
    def run(path: str, grant: str, choice: dict[str, str], headers: dict[str, str]) -> None:
        fields = compose(base, choice, {})
        if grant != KEEP:
            fields["grant_type"] = grant
        guard.send("POST", path, fields, headers)

    run()
    # The person's tokens still work after all that (nothing was corrupted by bad input).
    info = browser.client.get("/userinfo", headers={"Authorization": "Bearer " + token["access_token"]})
    assert info.status_code in (200, 401)


def test_userinfo_and_logout(fuzz_app: Any, outbox: Outbox, caplog: pytest.LogCaptureFixture) -> None:
    browser = Browser(fuzz_app.test_client(), outbox)
    browser.sign_in(AN.username, AN.password)
    guard = Guard(fuzz_app, browser.client, caplog)
    base = {
        "access_token": "t" * 43, "id_token_hint": "a.b.c", "post_logout_redirect_uri": "https://portal.example.vn/signed-out",
        "state": "s", "client_id": "portal", "ui_locales": "vi", "decision": "stay",
    }  # fmt: skip

    @FUZZ
    @given(
        target=st.sampled_from(
            [
                ("GET", "/userinfo"),
                ("POST", "/userinfo"),
                ("GET", "/logout"),
                ("POST", "/logout"),
                ("POST", "/logout/confirm"),
            ]
        ),
        choice=st.fixed_dictionaries({n: st.one_of(st.just(ABSENT), VALUE) for n in sorted(base)}),
        bearer=st.one_of(st.none(), st.sampled_from(["", " ", "x" * 200, "a.b.c"])),
    )
    def run(target: tuple[str, str], choice: dict[str, str], bearer: str | None) -> None:
        headers = {"Authorization": "Bearer " + bearer} if bearer is not None else None
        guard.send(target[0], target[1], compose(base, choice, {}), headers)

    run()
