"""What a relying party asks to receive, in plain words: one line per scope, then one per claim asked
for on its own (the consent page and the account area's consents page say the same)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from idp.identity.claims import SCOPE_CLAIMS

SCOPE_TEXT = {
    "openid": _l("Biết bạn đã đăng nhập (mã định danh ẩn danh của bạn tại cổng này)"),
    "profile": _l("Họ và tên, ngày sinh, giới tính"),
    "email": _l("Địa chỉ thư điện tử"),
    "phone": _l("Số điện thoại di động đã xác thực"),
    "citizen": _l("Số định danh cá nhân (số CCCD) và số CMND cũ"),
    "organization": _l(
        "Tổ chức của bạn (tên, mã số thuế hoặc mã đơn vị) và tên đăng nhập, họ tên, vai trò của bạn trong tổ chức"
    ),
    "offline_access": _l("Giữ kết nối khi bạn không trực tuyến (làm mới phiên mà không hỏi lại)"),
}


# A claim asked for on its own (the `claims` request parameter), beyond what its scope's line says.
CLAIM_TEXT = {
    "name": _l("Họ và tên"),
    "birthdate": _l("Ngày sinh"),
    "gender": _l("Giới tính"),
    "updated_at": _l("Thời điểm thông tin của bạn được cập nhật"),
    "email": _l("Địa chỉ thư điện tử"),
    "email_verified": _l("Địa chỉ thư điện tử đã được xác thực hay chưa"),
    "phone_number": _l("Số điện thoại di động đã xác thực"),
    "phone_number_verified": _l("Số điện thoại đã được xác thực hay chưa"),
    "citizen_id": _l("Số định danh cá nhân (số CCCD)"),
    "legacy_citizen_id": _l("Số CMND cũ"),
    "organization": _l("Tổ chức của bạn (tên, mã số thuế hoặc mã đơn vị)"),
    "staff": _l("Tên đăng nhập, họ tên và vai trò của bạn trong tổ chức"),
}


def describe_scopes(scope: str) -> list[str]:
    return [str(SCOPE_TEXT[s]) for s in scope.split() if s in SCOPE_TEXT]


def describe_consent(scope: str, claims: list[str] | str) -> list[str]:
    """One line per scope, then one per claim asked for on its own (not released by those scopes);
    "…_verified" is not said again beside the claim it qualifies."""
    names = claims.split() if isinstance(claims, str) else list(claims)
    by_scope = {c for s in scope.split() for c in SCOPE_CLAIMS.get(s, ())}
    alone = [c for c in names if c not in by_scope and c in CLAIM_TEXT]
    shown = set(alone)
    lines = describe_scopes(scope)
    lines += [
        str(CLAIM_TEXT[c])
        for c in sorted(alone, key=list(CLAIM_TEXT).index)
        if not (c.endswith("_verified") and c.removesuffix("_verified") in shown | by_scope)
    ]
    return lines
