"""The SIM and USB signing ceremony that registration and the raise of an identity level share.

A page issues a single-use challenge bound to its flow, shows a four-digit confirmation code that
the SIM's prompt repeats (or hands the data to the USB plugin), then verifies the signature and
the certificate chain (idp.verifiers.signing). What a person reads when a signature or
certificate is refused is one short Vietnamese sentence per reason, saying what happened and what
to do; it lives here because flask_babel imports Flask, which the verifiers must not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from flask import url_for
from flask_babel import gettext as _

from idp.runtime import runtime
from idp.verifiers import signature
from idp.verifiers.base import Verification
from idp.verifiers.signature import (
    ChainInput,
    verify_challenge_signature,
)
from idp.verifiers.signing import Signing
from idp.web.forms import ActionForm


def refusal_message(reason: str) -> str:
    """The message for a CertificateRefused ``reason`` (a generic one for an unknown reason)."""
    if reason == signature.EXPIRED:
        return _("Chứng thư số đã hết hạn. Vui lòng gia hạn chứng thư số với nhà cung cấp rồi thử lại.")
    if reason == signature.NOT_YET_VALID:
        return _(
            "Chứng thư số chưa đến ngày có hiệu lực. Vui lòng kiểm tra ngày giờ của máy tính, điện thoại "
            "hoặc thử lại khi chứng thư số có hiệu lực."
        )
    if reason == signature.REVOKED:
        return _(
            "Chứng thư số đã bị thu hồi. Vui lòng liên hệ nhà cung cấp chứng thư số để được cấp chứng thư số mới."
        )
    if reason == signature.UNKNOWN_ISSUER:
        return _(
            "Chứng thư số không do tổ chức cung cấp dịch vụ chứng thực chữ ký số được cấp phép phát hành. "
            "Vui lòng dùng chứng thư số của nhà cung cấp được cấp phép hoặc chọn cách đăng ký khác."
        )
    if reason == signature.KEY_USAGE:
        return _(
            "Chứng thư số này không dùng để ký số. Vui lòng chọn chứng thư số ký số của bạn trên thiết bị rồi thử lại."
        )
    if reason == signature.BAD_SIGNATURE:
        return _("Chữ ký số không khớp với yêu cầu ký. Vui lòng thực hiện ký lại.")
    if reason == signature.CHALLENGE:
        return _("Yêu cầu ký đã hết hạn hoặc đã được dùng. Vui lòng bắt đầu lại để nhận yêu cầu ký mới.")
    if reason == signature.REVOCATION_UNKNOWN:
        return _(
            "Chưa kiểm tra được chứng thư số còn hiệu lực hay đã bị thu hồi. Vui lòng thử lại sau ít phút."
        )
    if reason == signature.NO_IDENTIFIER:
        return _(
            "Chứng thư số không ghi số định danh cá nhân, số CMND hoặc mã số thuế nên không dùng để đăng ký được. "
            "Vui lòng dùng chứng thư số khác hoặc chọn cách đăng ký khác."
        )
    if reason == signature.MALFORMED:
        return _(
            "Không đọc được chữ ký số hoặc chứng thư số. Vui lòng kiểm tra thiết bị ký số đã được cắm và "
            "phần mềm ký số đang chạy, rồi thử lại."
        )
    if reason == signature.SIM_NOT_ENROLLED:
        return _(
            "Số điện thoại này chưa đăng ký dịch vụ Sim ký số. Vui lòng kiểm tra lại số điện thoại hoặc "
            "liên hệ nhà mạng để đăng ký Sim ký số."
        )
    return _("Chưa xác thực được chữ ký số. Vui lòng thử lại hoặc chọn cách đăng ký khác.")


POLL_SECONDS = 2


# -- what the signing verifier gives (idp.verifiers.signing.build_signing) -----------------------
def signing() -> Signing:
    found: Signing = runtime().signing  # wired by create_app
    return found


def refusal_text(reason: str) -> str:
    """The Vietnamese message of a refusal (each reason its own)."""
    return str(refusal_message(reason))


def confirmation_code(data: bytes) -> str:
    """Four digits the waiting page and the SIM's prompt both show, so that the person approves
    the request that this page made (and not someone else's)."""
    return f"{int.from_bytes(hashlib.sha256(data).digest()[:4], 'big') % 10000:04d}"


def sim_prompt(action: str, code: str) -> str:
    """What the SIM shows before asking for the PIN: who asks, for what, and the code."""
    province = runtime().config["PROVINCE_NAME"]
    return _(
        "Hệ thống đăng nhập một lần – Cổng dịch vụ công %(province)s đề nghị ký để %(action)s. Mã xác nhận: %(code)s. Chỉ nhập mã PIN nếu trang web đang hiển thị đúng mã này.",
        province=province,
        action=action,
        code=code,
    )


def decode_signature(form: Mapping[str, str]) -> tuple[bytes, str] | None:
    """The plugin's post: `signature` in base64 (or base64url), `chain` in PEM (or base64 DER
    certificates separated by commas; the verifier reads both). None when either is missing or
    the signature is not base64."""
    raw = re.sub(r"\s", "", form.get("signature") or "").replace("-", "+").replace("_", "/")
    chain = (form.get("chain") or "").strip()
    if not raw or not chain or len(raw) > 8192 or len(chain) > 64 * 1024:
        return None
    try:
        signature = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return (signature, chain) if signature else None


def verify_signed(
    challenge_id: str | None, binding: str, signature: bytes, chain: ChainInput, purpose: str
) -> Verification:
    """Use up the challenge (single use: a replay finds nothing) and verify the signature over it
    and the certificate chain. Raises CertificateRefused."""
    s = signing()
    return verify_challenge_signature(
        s.verifier,
        s.challenges,
        challenge_id,
        purpose=purpose,
        binding=binding,
        signature=signature,
        chain=chain,
    )


def attribute(found: Verification, name: str) -> str | None:
    """What the certificate says (idp.verifiers.signature.subject_attributes)."""
    return found.attributes.get(name) or None


def subject_kind(found: Verification) -> str:
    """ "person" or "enterprise"."""
    return found.attributes.get("subject_kind") or "person"


def issuer_of(verifier: str | None) -> str:
    """'signature:Sandbox CA' -> 'Sandbox CA' (the CA, as the page shows it)."""
    return (verifier or "").split(":", 1)[-1]


def usb_context(data_b64: str | None, code: str | None, return_to: str) -> dict[str, Any]:
    """What the page that hands the challenge to the plugin needs: the data to sign (base64),
    where the plugin posts back, and in the sandbox the sandbox plugin's address."""
    s = signing()
    data_b64 = data_b64 or ""
    sandbox_url = None
    if getattr(s, "sandbox", None) is not None:
        sandbox_url = url_for("sandbox.usb_token", data=data_b64, return_to=return_to)
    return {
        "form": ActionForm(),
        "data_b64": data_b64,
        "return_to": return_to,
        "sandbox_url": sandbox_url,
        "code": code,
    }
