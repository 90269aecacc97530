"""Driving the certificate registration (idp.flows.register.certificate), the assurance page
and the sandbox signing devices (idp.sandbox.signers) with Flask's test client."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.support.driver import Browser, csrf_of
from tests.support.passwords import text_of

PASSWORD = "Kiem-Thu#5831z"
ALERT = re.compile(r'<div class="alert" role="alert"[^>]*>(.*?)</div>', re.S)
SANDBOX_LINK = re.compile(r'href="(/sandbox/usb-token\?[^"]+)"')


@dataclass(frozen=True)
class Holder:
    """A holder of a sandbox certificate (idp/verifiers/sandbox_data/registers.json)."""

    key: str  # the sandbox PKI's holder key, as the sandbox plugin page lists it
    name: str
    number: str  # ID number or tax code
    pin: str
    phone: str | None = None  # the SIM's number, as typed (0…)

    @property
    def e164(self) -> str:
        assert self.phone
        return "+84" + self.phone[1:]


def alert(response: Any) -> str:
    match = ALERT.search(text_of(response))
    assert match, text_of(response)[:3000]
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def location(response: Any) -> str:
    assert response.status_code in (302, 303), (response.status_code, text_of(response)[:3000])
    return urlsplit(response.headers["Location"]).path


def post_page(browser: Browser, path: str, **fields: str) -> Any:
    page = browser.client.get(path)
    assert page.status_code == 200, (path, page.status_code, text_of(page)[:1500])
    return browser.client.post(path, data={"csrf_token": csrf_of(text_of(page)), **fields})


def hidden(page_html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page_html)
    assert match, f"no field {name}"
    return html.unescape(match.group(1))


@dataclass
class Signed:
    """What the sandbox plugin posts back: kept so that a test can post it again (replay)."""

    action: str
    fields: dict[str, str]


def plugin_sign(browser: Browser, sign_page_path: str, holder: Holder, pin: str | None = None) -> Signed:
    """On a page that hands a challenge to the plugin: open the sandbox plugin, pick the holder's
    token, type the PIN; returns the post the plugin would send back (not sent yet)."""
    page = browser.client.get(sign_page_path)
    assert page.status_code == 200, text_of(page)[:1500]
    link = SANDBOX_LINK.search(text_of(page))
    assert link, "no sandbox plugin link on " + sign_page_path
    plugin = browser.client.get(html.unescape(link.group(1)))
    assert plugin.status_code == 200, text_of(plugin)[:1500]
    body = text_of(plugin)
    assert f'value="{holder.key}"' in body, f"holder {holder.key} not offered by the sandbox plugin"
    signed = browser.client.post(
        "/sandbox/usb-token",
        data={
            "csrf_token": csrf_of(body),
            "holder": holder.key,
            "pin": holder.pin if pin is None else pin,
            "data": hidden(body, "data"),
            "return_to": hidden(body, "return_to"),
        },
    )
    assert signed.status_code == 200, text_of(signed)[:1500]
    answer = text_of(signed)
    action = re.search(r'<form method="post" action="([^"]+)"', answer)
    assert action
    return Signed(
        action=html.unescape(action.group(1)),
        fields={name: hidden(answer, name) for name in ("csrf_token", "signature", "chain")},
    )


def send(browser: Browser, signed: Signed, **changes: str) -> Any:
    return browser.client.post(signed.action, data={**signed.fields, **changes})


def sim_requests(browser: Browser, phone: str) -> list[str]:
    page = browser.client.get("/sandbox/sim", query_string={"phone": phone})
    assert page.status_code == 200, text_of(page)[:1500]
    return re.findall(r'name="transaction" value="([^"]+)"', text_of(page))


def sim_answer(browser: Browser, phone: str, pin: str | None, decision: str = "approve") -> Any:
    """On the sandbox SIM's page: answer the one waiting request."""
    page = browser.client.get("/sandbox/sim", query_string={"phone": phone})
    transactions = re.findall(r'name="transaction" value="([^"]+)"', text_of(page))
    assert len(transactions) == 1, transactions
    return browser.client.post(
        "/sandbox/sim/answer",
        data={
            "csrf_token": csrf_of(text_of(page)),
            "transaction": transactions[0],
            "phone": phone,
            "pin": pin or "",
            "decision": decision,
        },
    )


# -- certificates the sandbox PKI does not hand out: made here to be refused --------------------------
def data_to_sign(browser: Browser, sign_page_path: str) -> bytes:
    """The challenge a plugin page hands to the signing plugin (data-sign-data, base64)."""
    import base64

    page = text_of(browser.client.get(sign_page_path))
    match = re.search(r'data-sign-data="([^"]+)"', page)
    assert match, page[:1500]
    return base64.b64decode(match.group(1))


def forged(pki: Any, what: str, id_number: str, name: str, uid: str | None = None) -> tuple[Any, list[Any]]:
    """(private key, chain leaf first) of a certificate for a person that the sandbox PKI does
    not hand out: "expired" (by the sandbox CA), "key_usage" (keyEncipherment only, by the
    sandbox CA), "unknown_issuer" (by a CA nobody trusts), or "valid" (by the sandbox CA, with
    the subject UID `uid`, e.g. an old "CMND:…")."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, ca_key = pki.ca_certificate(), pki.ca_private_key()
    chain_tail = [ca_cert]
    if what == "unknown_issuer":
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA không được tin cậy")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )  # fmt: skip
        chain_tail = [ca_cert]
    usage = (
        x509.KeyUsage(False, False, True, False, False, False, False, False, False)
        if what == "key_usage"
        else x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    )
    start, end = now - dt.timedelta(days=30), now + dt.timedelta(days=365)
    if what == "expired":
        start, end = now - dt.timedelta(days=800), now - dt.timedelta(days=70)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.USER_ID, uid or f"CCCD:{id_number}"),
        ]
    )
    leaf = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return key, [leaf, *chain_tail]


def post_signature(browser: Browser, sign_page_path: str, key: Any, chain: list[Any]) -> Any:
    """Sign the page's challenge with `key` and post it with `chain`, as a plugin would."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    page = text_of(browser.client.get(sign_page_path))
    data = data_to_sign(browser, sign_page_path)
    signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    action = re.search(r'<form method="post" action="([^"]+)" id="usb-sign-form"', page)
    assert action, page[:1500]
    return browser.client.post(
        html.unescape(action.group(1)),
        data={
            "csrf_token": csrf_of(page),
            "signature": base64.b64encode(signature).decode(),
            "chain": "".join(c.public_bytes(Encoding.PEM).decode() for c in chain),
        },
    )
