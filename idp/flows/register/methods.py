"""The ways to register (DESIGN §5), one object each: who may use it, what the pages say, which
fields the form asks, and which register check proves it (idp.proofing.register_checks) — or
none, for a certificate signature (idp.flows.register.certificate).

A new method is one entry here, its check (and, when it needs a new register, one verifier
adapter), and its level in idp.identity.registration.METHOD_LEVELS. The start page, the form,
the form's checks and the check step all read this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import url_for
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from idp.identity.registration import METHOD_LEVELS
from idp.proofing import register_checks as checks
from idp.proofing.register_checks import RegisterCheck

CITIZEN = "citizen"
ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class RegistrationMethod:
    key: str  # stored on the identity proof (IdentityProof.method); its level: METHOD_LEVELS
    kinds: tuple[str, ...]  # who may use it: citizens, and enterprises with their certificate
    titles: Mapping[str, LazyString]  # the pages' title, per kind
    doors: Mapping[str, tuple[LazyString, LazyString]]  # the start page's entry per kind
    check: RegisterCheck | None = None  # a register check; None: a certificate signature
    help: LazyString | None = None  # the form's first paragraph
    fields: tuple[str, ...] = ()  # the form's fields in order (_register_field.html renders each)
    refusals: Mapping[str, LazyString] = field(default_factory=dict)  # the check's reasons, worded

    @property
    def level(self) -> int:
        return METHOD_LEVELS[self.key]

    @property
    def by_register(self) -> bool:
        return self.check is not None

    def door_id(self, kind: str) -> str:
        """The start page's data-method: the key, prefixed for an enterprise."""
        return self.key if kind == CITIZEN else f"{kind}-{self.key}"

    def start_url(self, kind: str, ix_id: str | None) -> str:
        if self.by_register:
            return url_for("register.register_form", method=self.key, ix=ix_id)
        return url_for("register.register_certificate", kind=kind, device=self.key, ix=ix_id)


_NO_POPULATION_MATCH = _l(
    "Không tìm thấy dữ liệu dân cư trùng khớp. Vui lòng kiểm tra lại số định danh, họ tên và ngày sinh đã nhập (đúng như trên căn cước công dân)."
)

METHODS: tuple[RegistrationMethod, ...] = (
    RegistrationMethod(
        "subscriber",
        (CITIZEN,),
        titles={CITIZEN: _l("Đăng ký bằng thuê bao di động")},
        doors={
            CITIZEN: (
                _l("Thuê bao di động"),
                _l(
                    "Số điện thoại phải là thuê bao chính chủ, đăng ký đúng số định danh của bạn. Tài khoản mức 2."
                ),
            )
        },
        check=checks.check_subscriber,
        help=_l(
            "Số điện thoại dùng để đăng ký phải là thuê bao di động chính chủ, đăng ký đúng số định danh của bạn. Để xem thông tin thuê bao, soạn tin TTTB gửi 1414."
        ),
        fields=("id_number_or_cmnd", "full_name", "birth_date", "phone", "email"),
        refusals={
            checks.NO_POPULATION_MATCH: _NO_POPULATION_MATCH,
            checks.PHONE_NOT_OWNED: _l(
                "Số điện thoại %(phone)s chưa được đăng ký thuê bao chính chủ với số định danh này. Bạn có thể soạn tin TTTB gửi 1414 để xem thông tin thuê bao, rồi liên hệ nhà mạng để cập nhật, hoặc chọn cách đăng ký khác."
            ),
        },
    ),
    RegistrationMethod(
        "social_insurance",
        (CITIZEN,),
        titles={CITIZEN: _l("Đăng ký bằng mã số bảo hiểm xã hội")},
        doors={
            CITIZEN: (
                _l("Mã số bảo hiểm xã hội"),
                _l("Thông tin được kiểm tra với cơ sở dữ liệu bảo hiểm xã hội. Tài khoản mức 2."),
            )
        },
        check=checks.check_social_insurance,
        help=_l(
            "Thông tin bạn nhập được so với cơ sở dữ liệu bảo hiểm xã hội. Tài khoản đăng ký bằng mã số BHXH có mức xác minh 2."
        ),
        fields=("bhxh_code", "full_name", "birth_date", "phone", "email"),
        refusals={
            checks.NO_INSURANCE_MATCH: _l(
                "Thông tin đã nhập không khớp với cơ sở dữ liệu bảo hiểm xã hội nên chưa đăng ký được tài khoản. Vui lòng kiểm tra lại mã số BHXH, họ tên và ngày sinh."
            )
        },
    ),
    RegistrationMethod(
        "population",
        (CITIZEN,),
        titles={CITIZEN: _l("Đăng ký bằng thông tin dân cư")},
        doors={
            CITIZEN: (
                _l("Thông tin dân cư"),
                _l(
                    "Như trên ứng dụng công dân của tỉnh: số định danh, họ tên, ngày sinh, ngày cấp căn cước và số điện thoại được đối chiếu với cơ sở dữ liệu quốc gia về dân cư. Tài khoản mức 2."
                ),
            )
        },
        check=checks.check_population,
        help=_l(
            "Số định danh, họ tên, ngày sinh, ngày cấp căn cước và số điện thoại được đối chiếu với cơ sở dữ liệu quốc gia về dân cư."
        ),
        fields=("id_number", "full_name", "birth_date", "id_issue_date", "phone", "email"),
        refusals={
            checks.NO_POPULATION_MATCH_WITH_ISSUE_DATE: _l(
                "Không tìm thấy dữ liệu dân cư trùng khớp. Vui lòng kiểm tra lại số định danh, họ tên, ngày sinh, ngày cấp căn cước và số điện thoại đã nhập."
            )
        },
    ),
    RegistrationMethod(
        "sim",
        (CITIZEN, ENTERPRISE),
        titles={
            CITIZEN: _l("Đăng ký bằng Sim ký số"),
            ENTERPRISE: _l("Đăng ký doanh nghiệp bằng Sim ký số"),
        },
        doors={
            CITIZEN: (
                _l("Sim ký số"),
                _l(
                    "Xác nhận bằng mã PIN trên Sim ký số đang gắn trong điện thoại. Tài khoản mức 3, như đăng ký trực tiếp."
                ),
            ),
            ENTERPRISE: (_l("Sim ký số của doanh nghiệp"), _l("Tài khoản mức 3.")),
        },
    ),
    RegistrationMethod(
        "usb",
        (CITIZEN, ENTERPRISE),
        titles={
            CITIZEN: _l("Đăng ký bằng USB ký số"),
            ENTERPRISE: _l("Đăng ký doanh nghiệp bằng USB ký số"),
        },
        doors={
            CITIZEN: (
                _l("USB ký số"),
                _l(
                    "Ký xác nhận bằng chứng thư số trong USB ký số còn hạn. Tài khoản mức 3, như đăng ký trực tiếp."
                ),
            ),
            ENTERPRISE: (_l("USB ký số của doanh nghiệp"), _l("Tài khoản mức 3.")),
        },
    ),
)
BY_KEY = {m.key: m for m in METHODS}


def method(key: str) -> RegistrationMethod | None:
    return BY_KEY.get(key)


def for_kind(kind: str) -> list[RegistrationMethod]:
    return [m for m in METHODS if kind in m.kinds]


def by_register() -> list[RegistrationMethod]:
    return [m for m in METHODS if m.by_register]


def by_certificate() -> list[RegistrationMethod]:
    return [m for m in METHODS if not m.by_register]
