"""Drive the sign-in pages over real HTTP, as a person's browser would: a requests.Session keeps
the cookies, forms are read from the HTML (their action and CSRF token), the OTP comes from the
SMS outbox of the test contract (DESIGN §8).

The provider may be served by several processes: every address of the provider (the issuer's
and each process's) counts as "the provider", and requests go to the process set in
:attr:`HtmlSignIn.provider`, which a test may switch half-way through a sign-in.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit, urlunsplit

import requests

from tests.support.outbox import Outbox
from tests.support.people import SandboxPerson

REDIRECTS = (301, 302, 303, 307, 308)
COOLDOWN = re.compile(r"(?:đợi|wait) (\d+) (?:giây|second)")


@dataclass
class Form:
    action: str
    method: str
    attrs: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Page:
    forms: list[Form] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)

    def form(self, **attrs: str) -> Form:
        """The first form whose attributes (action=, data-account-kind=...) contain these values."""
        for f in self.forms:
            values = {**f.attrs, "action": f.action}
            if all(expected in values.get(name.replace("_", "-"), "") for name, expected in attrs.items()):
                return f
        raise AssertionError(f"no form with {attrs} among {[f.action for f in self.forms]}")

    def form_with(self, name: str) -> Form:
        """The first form with a field or button called `name`."""
        for f in self.forms:
            if name in f.fields or any(button == name for button, _ in f.buttons):
                return f
        raise AssertionError(f"no form with a field {name!r} among {[f.action for f in self.forms]}")


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=a.get("method", "get").lower(), attrs=a)
            self.page.forms.append(self._form)
        elif tag == "a":
            self.page.links.append(a)
        elif self._form is not None and tag in ("input", "select", "textarea") and a.get("name"):
            self._form.fields[a["name"]] = a.get("value", "")
        elif self._form is not None and tag == "button" and a.get("name"):
            self._form.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def parse_page(html: str) -> Page:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


class SignInError(AssertionError):
    """A page did not answer as a sign-in expects; carries the response for the message."""

    def __init__(self, what: str, response: requests.Response) -> None:
        super().__init__(f"{what}: {response.status_code} {response.url}\n{response.text[:1500]}")
        self.response = response


class HtmlSignIn:
    def __init__(self, provider: str, outbox: Outbox, *, issuer: str | None = None) -> None:
        self.http = requests.Session()
        self.outbox = outbox
        self.provider = provider.rstrip("/")
        self.hosts = {urlsplit(self.provider).netloc}
        if issuer:
            self.hosts.add(urlsplit(issuer).netloc)

    # -- addresses ---------------------------------------------------------------------------
    def use(self, provider: str) -> None:
        """Send the following requests to another process of the same provider."""
        self.provider = provider.rstrip("/")
        self.hosts.add(urlsplit(self.provider).netloc)

    def is_provider(self, url: str) -> bool:
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc:
            return True  # a path on the provider
        return parts.scheme in ("http", "https") and parts.netloc in self.hosts

    def to_provider(self, url: str) -> str:
        """An address of the provider (relative, or on any of its hosts) on the current process."""
        absolute = urljoin(self.provider + "/", url)
        parts = urlsplit(absolute)
        if parts.netloc not in self.hosts:
            return absolute
        base = urlsplit(self.provider)
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))

    # -- HTTP --------------------------------------------------------------------------------
    def get(self, url: str) -> requests.Response:
        return self.http.get(self.to_provider(url), allow_redirects=False, timeout=15)

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(self.to_provider(url), data=data, allow_redirects=False, timeout=15)

    def follow(self, response: requests.Response, limit: int = 10) -> requests.Response:
        """Follow redirects inside the provider; stop at a page or at a redirect that leaves it."""
        for _ in range(limit):
            if response.status_code not in REDIRECTS:
                return response
            location = response.headers["Location"]
            if not self.is_provider(location):
                return response
            response = self.get(location)
        raise AssertionError("too many redirects")

    def open(self, url: str) -> requests.Response:
        return self.follow(self.get(url))

    def submit(self, response: requests.Response, form: Form, values: dict[str, str]) -> requests.Response:
        """Post `form` of the page in `response` with its hidden fields (CSRF) and `values`."""
        assert "csrf_token" in form.fields, f"form {form.action} has no CSRF token"
        action = urljoin(response.url, form.action or response.url)
        return self.post(action, {**form.fields, **values})

    # -- the steps of a citizen sign-in --------------------------------------------------------
    @staticmethod
    def leaving(response: requests.Response) -> str | None:
        """The address a redirect leaves the provider for (the client's redirect_uri), if any."""
        if response.status_code in REDIRECTS:
            return response.headers["Location"]
        return None

    def start(self, authorization_url: str) -> requests.Response:
        """Open the authorization request: the chooser page (or a redirect back to the client)."""
        return self.open(authorization_url)

    def citizen_door(self, chooser: requests.Response) -> requests.Response:
        if chooser.status_code != 200:
            raise SignInError("the chooser did not open", chooser)
        doors = {a.get("data-account-kind"): a.get("href", "") for a in parse_page(chooser.text).links}
        assert {"national-portal", "vneid", "organization", "citizen"} <= set(doors), doors
        page = self.open(urljoin(chooser.url, doors["citizen"]))
        if page.status_code != 200:
            raise SignInError("the citizen door did not open", page)
        return page

    def password(self, chooser: requests.Response, username: str, password: str) -> requests.Response:
        """From the chooser: the citizen door, then ID number and password (the raw POST answer)."""
        return self.submit_password(self.citizen_door(chooser), username, password)

    def submit_password(self, page: requests.Response, username: str, password: str) -> requests.Response:
        """Post the citizen form of `page`. Answers the raw POST response."""
        for _ in range(3):
            form = parse_page(page.text).form(data_account_kind="citizen")
            assert "username" in form.fields and "password" in form.fields, form.fields
            answer = self.submit(page, form, {"username": username, "password": password})
            # The same person signed in a moment ago: the OTP resend cooldown (IDP_OTP_RESEND_
            # COOLDOWN, 1 s in these tests) asks to wait. A person would wait; so does this.
            wait = COOLDOWN.search(answer.text) if answer.status_code == 429 else None
            if wait is None:
                return answer
            time.sleep(int(wait.group(1)) + 0.2)
            page = answer
        return answer

    def otp(self, after_password: requests.Response, phone: str) -> requests.Response:
        """Open the OTP page the password step led to and enter the newest code sent to `phone`."""
        if after_password.status_code not in REDIRECTS:
            raise SignInError("the password step did not lead to the OTP page", after_password)
        page = self.open(after_password.headers["Location"])
        if page.status_code != 200 or "/otp" not in urlsplit(page.url).path:
            raise SignInError("the OTP page did not open", page)
        form = parse_page(page.text).form_with("otp")
        return self.submit(page, form, {"otp": self.outbox.last_code(phone)})

    def finish(self, after_otp: requests.Response) -> str:
        """Follow the provider's redirects (consent if asked) to the client: the callback URL."""
        response = self.follow(after_otp)
        if response.status_code == 200 and "/consent/" in urlsplit(response.url).path:
            form = parse_page(response.text).form_with("decision")
            response = self.follow(self.submit(response, form, {"decision": "allow"}))
        callback = self.leaving(response)
        if callback is None:
            raise SignInError("the sign-in did not return to the client", response)
        return callback

    def sign_in(self, authorization_url: str, person: SandboxPerson) -> str:
        """A whole citizen sign-in (password, then SMS OTP); answers the callback URL with the code.

        With a live SSO session the provider answers at once, and so does this."""
        chooser = self.start(authorization_url)
        callback = self.leaving(chooser)
        if callback is not None:
            return callback
        sent = self.outbox.count(person.phone)
        after_password = self.password(chooser, person.username, person.password)
        if after_password.status_code not in REDIRECTS:
            raise SignInError("the password step did not lead to the OTP page", after_password)
        assert self.outbox.count(person.phone) == sent + 1, "no OTP was sent"
        return self.finish(self.otp(after_password, person.phone))
