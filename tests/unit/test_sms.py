"""SMS adapters: the outbox of the test contract and the HTTP gateway of production."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from idp.messaging.sms import HttpSmsGateway, OutboxSms, SmsUnavailable
from tests.support.people import AN


class Gateway:
    """A stand-in for a carrier's SMS gateway that records requests and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        self.delay = 0.0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.requests.append((dict(self.headers), body))
                if gateway.delay:
                    threading.Event().wait(gateway.delay)
                self.send_response(gateway.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Any:
    g = Gateway()
    yield g
    g.close()


def test_outbox_appends_one_json_line_per_message(tmp_path: Path) -> None:
    outbox = OutboxSms(tmp_path / "sms.jsonl")
    outbox.send("+84912345678", "Ma OTP 123456")
    outbox.send("+84987654321", "Mã OTP 654321")
    lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(m["to"], m["text"]) for m in lines] == [
        ("+84912345678", "Ma OTP 123456"),
        ("+84987654321", "Mã OTP 654321"),
    ]
    assert all("at" in m for m in lines)


def test_gateway_posts_json_with_the_bearer_token(gateway: Gateway) -> None:
    HttpSmsGateway(gateway.url, "tok-123", "IDP", 2.0).send("+84912345678", "Ma OTP 123456")
    headers, body = gateway.requests[0]
    assert headers["Authorization"] == "Bearer tok-123"
    assert body == {"to": "+84912345678", "text": "Ma OTP 123456", "sender": "IDP"}


@pytest.mark.parametrize(("status", "delay"), [(500, 0.0), (503, 0.0), (400, 0.0), (200, 1.5)])
def test_gateway_failures_raise_sms_unavailable(gateway: Gateway, status: int, delay: float) -> None:
    gateway.status, gateway.delay = status, delay
    with pytest.raises(SmsUnavailable):
        HttpSmsGateway(gateway.url, None, "IDP", 0.5).send("+84912345678", "x")


def test_gateway_down_during_sign_in_shows_a_page_and_allows_a_retry(
    make_app: Any, gateway: Gateway, browser: Any
) -> None:
    """A failed SMS is a Vietnamese 503 page, and the person can try again once it works."""
    from tests.support.driver import Browser

    app = make_app(SMS_GATEWAY_URL=gateway.url, SMS_GATEWAY_TIMEOUT=1.0)
    person = Browser(app.test_client(), browser.outbox)
    response, _ = person.start()
    login = person.follow(response).request.path
    gateway.status = 503
    response = person.submit_password(login, AN.username, AN.password)
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "Chưa gửi được" in page and "E-" in page and "Traceback" not in page
    gateway.status = 200
    response = person.submit_password(login, AN.username, AN.password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/otp")
    assert gateway.requests[-1][1]["to"] == AN.phone


@pytest.mark.parametrize(("status", "delay"), [(503, 0.0), (200, 1.5)], ids=["gateway-503", "gateway-hangs"])
def test_failed_sms_do_not_use_up_the_persons_otp_quota(
    make_app: Any, gateway: Gateway, browser: Any, status: int, delay: float
) -> None:
    """Every failed send says nothing was sent, so it must not count: after more failures than
    the day's cap (OTP_DAILY_LIMIT) and the phone's hourly cap, the person still gets a code."""
    from tests.support.driver import Browser

    app = make_app(
        SMS_GATEWAY_URL=gateway.url,
        SMS_GATEWAY_TIMEOUT=0.5,
        SMS_GATEWAY_BREAKER_THRESHOLD=100,  # this test is about the quota, not the breaker
        OTP_DAILY_LIMIT=3,
        OTP_PHONE_HOURLY_LIMIT=3,
    )
    person = Browser(app.test_client(), browser.outbox)
    response, _ = person.start()
    login = person.follow(response).request.path
    gateway.status, gateway.delay = status, delay
    for _ in range(5):
        failed = person.submit_password(login, AN.username, AN.password)
        assert failed.status_code == 503, failed.status_code
        assert "Chưa gửi được" in failed.get_data(as_text=True)
    gateway.status, gateway.delay = 200, 0.0
    response = person.submit_password(login, AN.username, AN.password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/otp"), response.get_data(
        as_text=True
    )[:600]
    assert gateway.requests[-1][1]["to"] == AN.phone


def test_a_gateway_refusing_a_number_neither_opens_the_breaker_nor_gives_the_quota_back(
    make_app: Any, gateway: Gateway, browser: Any
) -> None:
    """A 4xx is the gateway answering (it is up) about this message: it counts against the
    person's caps like a sent message, and never stops OTPs for everyone else."""
    from tests.support.driver import Browser

    app = make_app(
        SMS_GATEWAY_URL=gateway.url,
        SMS_GATEWAY_BREAKER_THRESHOLD=2,
        SMS_GATEWAY_BREAKER_COOLDOWN=60,
        OTP_DAILY_LIMIT=3,
        OTP_PHONE_HOURLY_LIMIT=100,
    )
    person = Browser(app.test_client(), browser.outbox)
    response, _ = person.start()
    login = person.follow(response).request.path
    gateway.status = 400
    for _ in range(3):
        refused = person.submit_password(login, AN.username, AN.password)
        assert refused.status_code == 503 and "Chưa gửi được" in refused.get_data(as_text=True)
    # The three refusals counted: the day's cap of three is reached.
    gateway.status = 200
    capped = person.submit_password(login, AN.username, AN.password)
    assert capped.status_code == 429, capped.status_code
    # And the circuit stayed closed: another person's OTP goes out at once.
    other = Browser(app.test_client(), browser.outbox)
    response, _ = other.start()
    from tests.support.people import CUC

    sent = other.submit_password(other.follow(response).request.path, CUC.username, CUC.password)
    assert sent.status_code == 302 and sent.headers["Location"].endswith("/otp")
