"""Claim profiles (idp.upstreams.profiles): every row of the national portal's and VNeID's claims
maps into one UpstreamIdentity as the shared reference file describes; absent, empty and
malformed fields are not vouched for."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from idp.upstreams import profiles
from idp.upstreams.identity import CITIZEN, ENTERPRISE, ORGANIZATION

PORTAL_CITIZEN = {
    "sub": "7f0c4e1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
    "TechID": "c1d2e3f4-0000-4000-8000-123456789abc",
    "SoDinhDanh": "046090001234",
    "SoCMND": "191234567",
    "HoVaTen": "Nguyễn Văn An",
    "NgayThangNamSinh": "19900315",
    "GioiTinh": "1",
    "LoaiTaiKhoan": "1",
    "SoDienThoai": "0912345678",
    "ThuDienTu": "",
    "loAs": "2",
    "loginIdp": "BCA",
}


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        pytest.param({}, "id_number", "046090001234", id="SoDinhDanh"),
        pytest.param({}, "legacy_id_number", "191234567", id="SoCMND"),
        pytest.param({}, "full_name", "Nguyễn Văn An", id="HoVaTen-kept-in-order"),
        pytest.param(
            {"HoVaTen": "Nguye\u0302\u0303n Va\u0306n An"}, "full_name", "Nguyễn Văn An", id="HoVaTen-NFC"
        ),
        pytest.param({}, "birth_date", dt.date(1990, 3, 15), id="NgayThangNamSinh-yyyyMMdd"),
        pytest.param({"NgayThangNamSinh": "19900231"}, "birth_date", None, id="impossible-date"),
        pytest.param({"NgayThangNamSinh": "15/03/1990"}, "birth_date", None, id="other-date-format"),
        pytest.param({}, "gender", "male", id="GioiTinh-1"),
        pytest.param({"GioiTinh": "Nữ"}, "gender", "female", id="GioiTinh-word"),
        pytest.param({}, "phone", "+84912345678", id="SoDienThoai-E164"),
        pytest.param({"SoDienThoai": "12"}, "phone", None, id="bad-phone"),
        pytest.param({}, "email", None, id="ThuDienTu-empty"),
        pytest.param({}, "tech_id", "c1d2e3f4-0000-4000-8000-123456789abc", id="TechID"),
        pytest.param({}, "login_idp", "BCA", id="loginIdp"),
        pytest.param({}, "level", 2, id="LoA2-by-default"),
        pytest.param({}, "upstream_level", "2", id="loAs-recorded"),
        pytest.param({}, "account_kind", CITIZEN, id="LoaiTaiKhoan-1"),
        pytest.param({"LoaiTaiKhoan": 1}, "account_kind", CITIZEN, id="LoaiTaiKhoan-number"),
        pytest.param({"SoDinhDanh": "04609000123"}, "id_number", None, id="short-ID-number"),
        pytest.param({"SoDinhDanh": None}, "id_number", None, id="absent-ID-number"),
    ],
)
def test_national_portal_citizen(changes: dict[str, Any], field: str, expected: Any) -> None:
    found = profiles.national_portal({**PORTAL_CITIZEN, **changes}, subject=PORTAL_CITIZEN["sub"])
    assert getattr(found, field) == expected
    assert found.upstream == "national-portal" and found.subject == PORTAL_CITIZEN["sub"]


def test_national_portal_levels_follow_a_configured_map() -> None:
    found = profiles.national_portal(PORTAL_CITIZEN, subject="s", levels={"2": 3})
    assert found.level == 3
    assert profiles.national_portal({**PORTAL_CITIZEN, "loAs": "x"}, subject="s", levels={"2": 3}).level == 2


@pytest.mark.parametrize(
    ("kind", "expected"),
    [pytest.param("2", ENTERPRISE, id="enterprise"), pytest.param(3, ORGANIZATION, id="organization")],
)
def test_national_portal_organizations_carry_their_tax_code(kind: Any, expected: str) -> None:
    claims = {
        "sub": "s",
        "LoaiTaiKhoan": kind,
        "MaSoThue": "0100233488",
        "TenDoanhNghiep": "Công ty Cổ phần Thử Nghiệm",
        "HoVaTen": "Trần Văn Đại Diện",
        "SoDinhDanh": "046090001234",
    }
    found = profiles.national_portal(claims, subject="s")
    assert found.account_kind == expected
    assert (found.tax_code, found.organization_name) == ("0100233488", "Công ty Cổ phần Thử Nghiệm")
    assert found.full_name == "Trần Văn Đại Diện"  # the representative


def test_a_tax_code_with_a_wrong_check_digit_is_not_vouched_for() -> None:
    found = profiles.national_portal({"LoaiTaiKhoan": "2", "MaSoThue": "0100233489"}, subject="s")
    assert found.tax_code is None


@pytest.mark.parametrize(
    ("claims", "level", "id_number"),
    [
        pytest.param({"IAL": 2, "SoDinhDanh": "046185004321"}, 3, "046185004321", id="IAL2-is-LoA3"),
        pytest.param({"IAL": "1", "SoDinhDanh": "046185004321"}, 2, "046185004321", id="IAL1-is-LoA2"),
        pytest.param(
            {"IAL": 2, "preferred_username": "046185004321"}, 3, "046185004321", id="preferred_username"
        ),
        pytest.param({"IAL": 2, "acr": "0"}, 3, None, id="acr-is-not-a-level"),
        pytest.param({"acr": "1"}, 2, None, id="no-IAL"),
    ],
)
def test_vneid(claims: dict[str, Any], level: int, id_number: str | None) -> None:
    found = profiles.vneid({"sub": "v-1", "HoVaTen": "Trần Thị Bình", **claims}, subject="v-1")
    assert (found.level, found.id_number, found.upstream) == (level, id_number, "vneid")
    assert found.full_name == "Trần Thị Bình"


def test_vneid_organization_identity() -> None:
    claims = {"LoaiTaiKhoan": "3", "MaSoThue": "0100233488", "TenDoanhNghiep": "Sở Thử Nghiệm", "IAL": 2}
    found = profiles.vneid(claims, subject="org-1")
    assert (found.account_kind, found.tax_code, found.organization_name) == (
        ORGANIZATION,
        "0100233488",
        "Sở Thử Nghiệm",
    )
