"""Captcha generated locally: a distorted image of digits with a spoken (Vietnamese) alternative.

Shown where the risk is high (DESIGN §2): always on the forgotten-password page, and on the citizen
sign-in page once a login name or a client address has failed CAPTCHA_AFTER_FAILURES times.
A challenge lives in the short-lived store for CAPTCHA_LIFETIME seconds, bound to the browser that
asked for it; the answer is kept only as an HMAC (checked) and sealed with AES-GCM (to draw the
image and speak the audio on request), never in clear. Any answer, right or wrong, uses the
challenge up: a new one is drawn for the next try. Answers are compared without spaces and case.
IDP_CAPTCHA_ENABLED=false switches every captcha off (automated tests only).

The images and sounds come from the `captcha` package (ImageCaptcha, AudioCaptcha); the digits are
spoken from the voices in captcha_voices/ (espeak-ng's Vietnamese voice, see make_voices.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from io import BytesIO
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, Response, abort, current_app, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from idp.runtime import runtime
from idp.sessions.browser import browser_id, client_address
from idp.sessions.interaction import Interaction
from idp.sessions.throttle import ADDRESS_FACTOR
from idp.store.ephemeral import EphemeralStore

bp = Blueprint("captcha", __name__)

DIGITS = "0123456789"
LENGTH = 5
VOICES = Path(__file__).parent / "captcha_voices"
# Each challenge may be drawn or spoken only so often: the sound costs real CPU to make.
MAX_IMAGES = 5
MAX_SOUNDS = 3
# Failed sign-ins count towards "risk is high" for this long.
RISK_WINDOW = 3600


def normalize(answer: str) -> str:
    """Full-width digits, spaces and case do not matter."""
    return "".join(unicodedata.normalize("NFKC", answer).split()).upper()


@dataclass(frozen=True)
class Challenge:
    id: str
    length: int = LENGTH


class CaptchaService:
    def __init__(self, store: EphemeralStore, key: bytes, lifetime: int) -> None:
        self.store = store
        self.lifetime = lifetime
        self._mac_key = hashlib.sha256(key + b":captcha-mac").digest()
        self._seal = AESGCM(hashlib.sha256(key + b":captcha-seal").digest())

    @cached_property
    def _image(self) -> Any:
        from captcha.image import ImageCaptcha

        return ImageCaptcha(width=220, height=80, font_sizes=(50, 56, 62))

    @cached_property
    def _audio(self) -> Any:
        from captcha.audio import AudioCaptcha

        return AudioCaptcha(voicedir=str(VOICES))

    def _mac(self, cid: str, text: str) -> str:
        return hmac.new(self._mac_key, f"{cid}:{normalize(text)}".encode(), hashlib.sha256).hexdigest()

    def create(self, browser: str) -> Challenge:
        text = "".join(secrets.choice(DIGITS) for _ in range(LENGTH))
        cid = secrets.token_urlsafe(18)
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._seal.encrypt(nonce, text.encode(), cid.encode())
        record = {
            "browser": browser,
            "mac": self._mac(cid, text),
            "sealed": base64.b64encode(sealed).decode(),
            "expires_at": time.time() + self.lifetime,
        }
        self.store.set("captcha:" + cid, json.dumps(record), self.lifetime)
        return Challenge(cid)

    def _record(self, cid: str, browser: str | None) -> dict[str, Any] | None:
        if not cid or len(cid) > 40 or not browser:
            return None
        raw = self.store.get("captcha:" + cid)
        if raw is None:
            return None
        record = json.loads(raw)
        if not secrets.compare_digest(record["browser"], browser) or record["expires_at"] <= time.time():
            return None
        return record

    def _text(self, cid: str, record: dict[str, Any]) -> str:
        sealed = base64.b64decode(record["sealed"])
        return self._seal.decrypt(sealed[:12], sealed[12:], cid.encode()).decode()

    def _allowed(self, cid: str, kind: str, limit: int) -> bool:
        return self.store.incr(f"captcha_{kind}:{cid}", self.lifetime + 5) <= limit

    def image(self, cid: str, browser: str | None) -> bytes | None:
        """The PNG of a live challenge of this browser."""
        record = self._record(cid, browser)
        if record is None or not self._allowed(cid, "img", MAX_IMAGES):
            return None
        out = BytesIO()
        # Dark digits on a near-white ground: at least 5:1 contrast whatever colours are drawn.
        ink = (*(secrets.randbelow(91) + 10 for _ in range(3)), 255)
        self._image.generate_image(self._text(cid, record), fg_color=ink).save(out, format="PNG")
        return out.getvalue()

    def audio(self, cid: str, browser: str | None) -> bytes | None:
        """The WAV of a live challenge of this browser, each digit spoken in Vietnamese."""
        record = self._record(cid, browser)
        if record is None or not self._allowed(cid, "snd", MAX_SOUNDS):
            return None
        return bytes(self._audio.generate(self._text(cid, record)))

    def verify(self, cid: str | None, answer: str | None, browser: str | None) -> bool:
        """True for the right answer; any answer uses the challenge up (single use)."""
        if not cid or len(cid) > 40 or not browser:
            return False
        raw = self.store.take("captcha:" + cid)
        if raw is None:
            return False
        record = json.loads(raw)
        return (
            secrets.compare_digest(record["browser"], browser)
            and record["expires_at"] > time.time()
            and bool(answer)
            and len(answer or "") <= 20
            and hmac.compare_digest(record["mac"], self._mac(cid, answer or ""))
        )


class SignInRisk:
    """Failed citizen sign-ins per login name and per client address, for deciding on a captcha.

    Kept apart from the lockout counters (idp.sessions.throttle): a lockout resets those, while the
    risk stays high for RISK_WINDOW after the failures. An address is shared by many people behind
    a carrier's NAT, so it gets ADDRESS_FACTOR times the room of one name.
    """

    def __init__(self, store: EphemeralStore, threshold: int) -> None:
        self.store = store
        self.threshold = threshold

    @staticmethod
    def _key(kind: str, value: str) -> str:
        return f"risk:{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:32]

    def failure(self, *, name: str, address: str) -> None:
        self.store.incr(self._key("name", name), RISK_WINDOW)
        self.store.incr(self._key("ip", address), RISK_WINDOW)

    def success(self, *, name: str) -> None:
        self.store.delete(self._key("name", name))

    def high(self, *, name: str | None, address: str) -> bool:
        keys = [self._key("ip", address)] + ([self._key("name", name)] if name else [])
        counts = [int(v) if v else 0 for v in self.store.get_many(keys)]
        by_address = counts[0] >= self.threshold * ADDRESS_FACTOR
        return by_address or (len(counts) > 1 and counts[1] >= self.threshold)


# -- the web side ------------------------------------------------------------------------------
def enabled() -> bool:
    return bool(current_app.config["CAPTCHA_ENABLED"])


def service() -> CaptchaService:
    found = current_app.extensions.get("idp_captcha")
    if found is None:
        config = current_app.config
        found = CaptchaService(
            runtime().store, config["SECRET_KEY"].encode() + b":captcha", config["CAPTCHA_LIFETIME"]
        )
        current_app.extensions["idp_captcha"] = found
    return found


def sign_in_risk() -> SignInRisk:
    return SignInRisk(runtime().store, current_app.config["CAPTCHA_AFTER_FAILURES"])


def new_challenge() -> dict[str, str] | None:
    """A fresh challenge for the page about to be shown, as _captcha.html reads it (None when
    captchas are switched off)."""
    if not enabled():
        return None
    challenge = service().create(browser_id(create=True))
    return {
        "id": challenge.id,
        "image": url_for("captcha.captcha_image", cid=challenge.id),
        "audio": url_for("captcha.captcha_audio", cid=challenge.id),
        "length": str(challenge.length),
    }


def answered() -> bool:
    """Whether this form submission carries the right answer to its challenge (uses it up)."""
    if not enabled():
        return True
    return service().verify(
        request.form.get("captcha_id"), request.form.get("captcha"), browser_id(create=False)
    )


def wants_new() -> bool:
    """The person pressed "Đổi mã khác" (another challenge) rather than the form's main button."""
    return enabled() and request.form.get("new_captcha") == "1"


def _media(body: bytes | None, mimetype: str) -> BaseResponse:
    if body is None:
        abort(404)
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/captcha/<cid>/image")
def captcha_image(cid: str) -> BaseResponse:
    if not enabled():
        abort(404)
    return _media(service().image(cid, browser_id(create=False)), "image/png")


@bp.get("/captcha/<cid>/audio")
def captcha_audio(cid: str) -> BaseResponse:
    if not enabled():
        abort(404)
    return _media(service().audio(cid, browser_id(create=False)), "audio/wav")


# -- the citizen sign-in: a captcha once the risk is high --------------------------------------
def _risky(ix: Interaction, name: str | None) -> bool:
    return ix.captcha or sign_in_risk().high(name=name, address=client_address())


@bp.app_context_processor
def _sign_in_globals() -> dict[str, Any]:
    return {"sign_in_captcha": sign_in_challenge}


def sign_in_challenge(ix: Interaction, name: str | None = None) -> dict[str, str] | None:
    """A challenge for the sign-in page about to be shown, when the risk is high (templates call it)."""
    if not enabled() or not _risky(ix, (name or "").strip() or None):
        return None
    return new_challenge()


def check_sign_in(ix: Interaction, name: str) -> tuple[int, str] | None:
    """Before the password is checked: when the risk is high the captcha must be answered first.

    Returns the status and message of the page to show again (with a new challenge) instead.
    """
    if not enabled() or not _risky(ix, name):
        return None
    if wants_new():
        return 200, _("Đã đổi mã xác thực. Vui lòng nhập lại mật khẩu và mã mới.")
    if answered():
        return None
    if not ix.captcha:
        ix.captcha = True
        runtime().interactions.save(ix)
    return 400, _("Mã xác thực không đúng hoặc đã hết hạn. Vui lòng nhập lại mật khẩu và mã trong hình mới.")


def sign_in_failed(ix: Interaction, name: str) -> None:
    """A wrong password: count it, and from the threshold on ask a captcha in this sign-in."""
    if not enabled():
        return
    risk = sign_in_risk()
    risk.failure(name=name, address=client_address())
    if not ix.captcha and risk.high(name=name, address=client_address()):
        ix.captcha = True
        runtime().interactions.save(ix)


def sign_in_succeeded(name: str) -> None:
    if enabled():
        sign_in_risk().success(name=name)
