"""What a person reads when a digital signature or certificate is refused (idp.verifiers.signature).

One short Vietnamese sentence per refusal reason, saying what happened and what to do. It lives
in the flows because flask_babel imports Flask, which the verifiers must not.
"""

from __future__ import annotations

from flask_babel import gettext as _

from idp.verifiers import signature


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
