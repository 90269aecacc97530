"""SMS adapters behind one interface; they import neither Flask nor Authlib.

- ``OutboxSms`` appends one JSON object per line (``to``, ``text``, ``at``) to a file: the test
  contract's ``IDP_SMS_OUTBOX``; the demo prints the same lines on the console.
- ``HttpSmsGateway`` posts ``{"to", "text", "sender"}`` as JSON with a Bearer token to a
  provider's endpoint and expects a 2xx answer; timeouts and 5xx raise ``SmsUnavailable``. With a
  guard (idp.outbound) a bounded number of sends are under way at a time from one process, and a
  gateway that failed repeatedly is not called during its cool-down (one trial send after it, for
  every worker): both answer ``SmsUnavailable`` at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import sys
from pathlib import Path
from typing import Protocol

import requests

from idp.outbound import Guard, Refused

log = logging.getLogger("idp.sms")


class SmsUnavailable(RuntimeError):
    """The message could not be handed to the carrier; the person may retry."""


class SmsRefused(SmsUnavailable):
    """The gateway answered and refused this message (a 4xx): it is up, and the message counts."""


class SmsSender(Protocol):
    def send(self, to: str, text: str) -> None: ...


class OutboxSms:
    def __init__(self, path: Path, echo: bool = False) -> None:
        self.path = path
        self.echo = echo
        path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, to: str, text: str) -> None:
        line = json.dumps(
            {"to": to, "text": text, "at": dt.datetime.now(dt.UTC).isoformat()}, ensure_ascii=False
        )
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.write(line + "\n")
        except OSError as exc:
            raise SmsUnavailable(f"outbox: {exc.__class__.__name__}") from exc
        if self.echo:
            print(f"[SMS to {to}] {text}", file=sys.stderr, flush=True)


class HttpSmsGateway:
    def __init__(
        self, url: str, token: str | None, sender: str, timeout: float, guard: Guard | None = None
    ) -> None:
        self.url = url
        self.sender = sender
        self.timeout = timeout
        self.guard = guard
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def send(self, to: str, text: str) -> None:
        if self.guard is None:
            return self._send(to, text)
        guard = self.guard
        try:
            with guard.bulkhead.slot() if guard.bulkhead is not None else contextlib.nullcontext():
                if not guard.breaker.allow():
                    raise SmsUnavailable(
                        f"gateway: circuit open, next try in {guard.breaker.retry_in():.0f} s"
                    )
                try:
                    self._send(to, text)
                except SmsRefused:
                    guard.breaker.record_success()  # the gateway answered: it is up
                    raise
                except SmsUnavailable:
                    guard.breaker.record_failure()
                    raise
                guard.breaker.record_success()
        except Refused as exc:
            raise SmsUnavailable(f"gateway: {exc}") from None
        return None

    def _send(self, to: str, text: str) -> None:
        # Not retried: a timeout may mean the message went out, and a second OTP SMS confuses people.
        try:
            response = self.session.post(
                self.url, json={"to": to, "text": text, "sender": self.sender}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise SmsUnavailable(f"gateway: {exc.__class__.__name__}") from exc
        if response.status_code >= 300:
            log.warning("sms gateway answered %s", response.status_code)
            if 400 <= response.status_code < 500:
                raise SmsRefused(f"gateway: HTTP {response.status_code}")
            raise SmsUnavailable(f"gateway: HTTP {response.status_code}")
