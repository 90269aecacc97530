"""SMS one-time passwords: generation, hashed storage with a lifetime, limited attempts, resend rules
and the caps that keep the SMS gateway from being pumped.

A challenge is stored under a random id with the HMAC of its code (never the code), the phone it
went to and the account it is for. It expires after OTP_LIFETIME seconds and is void after
OTP_MAX_ATTEMPTS wrong entries; the right code consumes it atomically, so it works once.

Before anything is sent: another message for the same sign-in waits OTP_RESEND_COOLDOWN seconds;
then, in one atomic step, the caps are checked and counted together — per account per day
(OTP_DAILY_LIMIT), per destination phone per hour and per day, per client address per hour and for
the whole deployment per minute. A refusal counts nothing, sends nothing and says which cap was
reached (:class:`OtpSendRefused`); none of them depends on whether an account exists. A message the
gateway did not take (SmsUnavailable, but not SmsRefused: a 4xx is the gateway answering) is given
back to every cap but the deployment's. Phones and
addresses appear in the counter keys only as keyed hashes. A "day" is a Vietnam calendar day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from enum import Enum

import pyotp
from flask import has_request_context, request
from flask_babel import gettext as _
from flask_babel import ngettext

from idp.identity.identifiers import VIETNAM
from idp.messaging.sms import SmsRefused, SmsSender
from idp.store.ephemeral import EphemeralStore


class OtpOutcome(Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # unknown, expired or already used
    EXHAUSTED = "exhausted"  # too many wrong entries: the code is void


# Why a message was not sent, in the order the caps are checked.
COOLDOWN = "cooldown"  # the same sign-in asked less than OTP_RESEND_COOLDOWN seconds ago
ACCOUNT_DAILY = "daily_limit"  # OTP_DAILY_LIMIT messages to this account today
PHONE_HOURLY = "phone_hourly"  # OTP_PHONE_HOURLY_LIMIT messages to this number in the hour
PHONE_DAILY = "phone_daily"  # OTP_PHONE_DAILY_LIMIT messages to this number today
ADDRESS_HOURLY = "address_hourly"  # OTP_ADDRESS_HOURLY_LIMIT requests from this address in the hour
GLOBAL = "global"  # OTP_GLOBAL_PER_MINUTE messages from the whole deployment in the minute


class OtpSendRefused(Exception):
    def __init__(self, reason: str, retry_after: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason  # one of the constants above
        self.retry_after = retry_after  # seconds until the refusal ends


def refusal_message(refused: OtpSendRefused, hotline: str) -> str:
    """What the person reads when no code was sent; never says whether an account exists."""
    minutes = max(1, (refused.retry_after + 59) // 60)
    if refused.reason == COOLDOWN:
        return ngettext(
            "Vui lòng đợi %(num)d giây rồi bấm Gửi lại OTP.",
            "Vui lòng đợi %(num)d giây rồi bấm Gửi lại OTP.",
            refused.retry_after,
        )
    if refused.reason == ACCOUNT_DAILY:
        return _(
            "Tài khoản đã nhận quá số mã OTP cho phép trong ngày. Vui lòng thử lại vào ngày mai hoặc gọi tổng đài hỗ trợ %(hotline)s.",
            hotline=hotline,
        )
    if refused.reason == PHONE_HOURLY:
        return ngettext(
            "Số điện thoại này đã nhận quá nhiều mã OTP trong một giờ. Vui lòng thử lại sau %(num)d phút.",
            "Số điện thoại này đã nhận quá nhiều mã OTP trong một giờ. Vui lòng thử lại sau %(num)d phút.",
            minutes,
        )
    if refused.reason == PHONE_DAILY:
        return _(
            "Số điện thoại này đã nhận quá số mã OTP cho phép trong ngày. Vui lòng thử lại vào ngày mai hoặc gọi tổng đài hỗ trợ %(hotline)s.",
            hotline=hotline,
        )
    if refused.reason == ADDRESS_HOURLY:
        return ngettext(
            "Có quá nhiều yêu cầu gửi mã OTP từ mạng bạn đang dùng. Vui lòng thử lại sau %(num)d phút.",
            "Có quá nhiều yêu cầu gửi mã OTP từ mạng bạn đang dùng. Vui lòng thử lại sau %(num)d phút.",
            minutes,
        )
    return ngettext(
        "Hệ thống đang gửi quá nhiều tin nhắn. Vui lòng thử lại sau %(num)d giây.",
        "Hệ thống đang gửi quá nhiều tin nhắn. Vui lòng thử lại sau %(num)d giây.",
        refused.retry_after,
    )


@dataclass(frozen=True)
class OtpCheck:
    outcome: OtpOutcome
    attempts_left: int = 0


@dataclass(frozen=True)
class OtpPolicy:
    lifetime: int
    max_attempts: int
    cooldown: int
    daily_limit: int
    phone_hourly: int = 8
    phone_daily: int = 20
    address_hourly: int = 60
    global_per_minute: int = 300


def seconds_to_midnight(now: dt.datetime | None = None) -> int:
    """Seconds until the Vietnam day ends (when the daily caps start again)."""
    now = (now or dt.datetime.now(VIETNAM)).astimezone(VIETNAM)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


def vietnam_day() -> str:
    return dt.datetime.now(VIETNAM).strftime("%Y%m%d")


def generate_code() -> str:
    """Six digits from a fresh 160-bit HOTP secret (RFC 4226 truncation)."""
    return pyotp.HOTP(pyotp.random_base32(), digits=6).at(0)


class OtpService:
    def __init__(self, store: EphemeralStore, sms: SmsSender, key: bytes, policy: OtpPolicy) -> None:
        self.store = store
        self.sms = sms
        self.key = key
        self.policy = policy

    def _mac(self, challenge_id: str, code: str) -> str:
        return hmac.new(self.key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def _tag(self, kind: str, value: str) -> str:
        """A keyed hash standing for a phone number or an address in counter keys."""
        return hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def _caps(self, account_id: int, phone: str, address: str | None) -> list[tuple[str, str, int, int]]:
        """(reason, key, limit, ttl) of every cap a message to `phone` counts against."""
        p, day, until_midnight = self.policy, vietnam_day(), seconds_to_midnight() + 60
        phone_tag = self._tag("phone", phone)
        caps = [
            (ACCOUNT_DAILY, f"otp_day:{account_id}:{day}", p.daily_limit, until_midnight),
            (PHONE_HOURLY, f"otp_ph:{phone_tag}:h", p.phone_hourly, 3600),
            (PHONE_DAILY, f"otp_ph:{phone_tag}:{day}", p.phone_daily, until_midnight),
        ]
        if address:
            caps.append((ADDRESS_HOURLY, f"otp_ip:{self._tag('ip', address)}:h", p.address_hourly, 3600))
        caps.append((GLOBAL, "otp_all:m", p.global_per_minute, 60))
        return caps

    def send(
        self,
        *,
        account_id: int,
        phone: str,
        purpose: str,
        text: str,
        scope: str,
        address: str | None = None,
    ) -> str:
        """Send a new code to `phone`; returns the challenge id. `text` has a {code} placeholder.

        The cooldown applies to resends within one `scope` (a sign-in attempt), so a person who
        starts over is not told to wait; the caps count every message (see the module docstring).
        `address` is the client address; by default the current request's `remote_addr` (which
        ProxyFix sets from X-Forwarded-For when IDP_TRUSTED_PROXIES says whom to trust).
        Raises OtpSendRefused, having sent and counted nothing.
        """
        if address is None and has_request_context():
            address = request.remote_addr
        cooldown_key = self._cooldown_key(account_id, scope)
        if not self.store.set(cooldown_key, "1", self.policy.cooldown, only_if_absent=True):
            raise OtpSendRefused(COOLDOWN, max(1, self.cooldown_left(account_id, scope)))
        caps = self._caps(account_id, phone, address)
        index, left = self.store.take_quota([(key, limit, ttl) for _, key, limit, ttl in caps])
        if index >= 0:
            self.store.delete(cooldown_key)  # nothing was sent: nothing to wait for
            raise OtpSendRefused(caps[index][0], max(1, left))
        challenge_id = secrets.token_urlsafe(18)
        code = generate_code()
        record = {
            "account_id": account_id,
            "phone": phone,
            "purpose": purpose,
            "mac": self._mac(challenge_id, code),
            "expires_at": time.time() + self.policy.lifetime,
        }
        self.store.set("otp:" + challenge_id, json.dumps(record), self.policy.lifetime)
        try:
            self.sms.send(phone, text.format(code=code))
        except SmsRefused:
            # Handed to the gateway, which refused it: it counts, as a sent message would (else a
            # number the gateway refuses could be tried without end).
            self.store.delete("otp:" + challenge_id, cooldown_key)
            raise
        except Exception:
            # Not handed to the gateway (the person reads that nothing was sent): the caps that are
            # people's quota take it back; the deployment's per-minute cap keeps it, so that a
            # gateway outage does not turn into a storm of retries against it.
            self.store.delete("otp:" + challenge_id, cooldown_key)
            self.store.give_back([key for reason, key, _, _ in caps if reason != GLOBAL])
            raise
        return challenge_id

    def verify(self, challenge_id: str | None, code: str, *, account_id: int, purpose: str) -> OtpCheck:
        if not challenge_id:
            return OtpCheck(OtpOutcome.EXPIRED)
        raw = self.store.get("otp:" + challenge_id)
        if raw is None:
            return OtpCheck(OtpOutcome.EXPIRED)
        record = json.loads(raw)
        if (
            record["account_id"] != account_id
            or record["purpose"] != purpose
            or record["expires_at"] <= time.time()
        ):
            return OtpCheck(OtpOutcome.EXPIRED)
        attempts = self.store.incr(f"otp_try:{challenge_id}", self.policy.lifetime + 5)
        if attempts > self.policy.max_attempts:
            self.store.delete("otp:" + challenge_id)
            return OtpCheck(OtpOutcome.EXHAUSTED)
        code = code.strip()
        if (
            len(code) == 6
            and code.isdigit()
            and hmac.compare_digest(record["mac"], self._mac(challenge_id, code))
        ):
            # The first right answer consumes the challenge; a concurrent second one finds it gone.
            if self.store.take("otp:" + challenge_id) is None:
                return OtpCheck(OtpOutcome.EXPIRED)
            return OtpCheck(OtpOutcome.OK)
        left = self.policy.max_attempts - attempts
        if left <= 0:
            self.store.delete("otp:" + challenge_id)
            return OtpCheck(OtpOutcome.EXHAUSTED)
        return OtpCheck(OtpOutcome.WRONG, left)

    def _cooldown_key(self, account_id: int, scope: str) -> str:
        return f"otp_cool:{account_id}:{scope}"

    def cooldown_left(self, account_id: int, scope: str) -> int:
        """Seconds before this sign-in (`scope`) may ask for another message; 0 when it may now.

        Rounded up: stores count whole seconds down, and a countdown that reaches 0 early would
        let the person press a button the server still refuses."""
        left = self.store.ttl(self._cooldown_key(account_id, scope))
        return 0 if left < 0 else min(self.policy.cooldown, left + 1)

    def sent_today(self, account_id: int) -> int:
        """Messages the account received today (Vietnam day), for "n of OTP_DAILY_LIMIT"."""
        return int(self.store.get(f"otp_day:{account_id}:{vietnam_day()}") or 0)

    def remaining_seconds(self, challenge_id: str | None) -> int:
        if not challenge_id:
            return 0
        raw = self.store.get("otp:" + challenge_id)
        if raw is None:
            return 0
        return max(0, int(json.loads(raw)["expires_at"] - time.time()))
