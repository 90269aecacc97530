"""Input formats (idp.identity.identifiers): ID numbers with their century/gender digit and province code,
BHXH codes, names compared insensitive to tone-mark placement, carrier hints, dates.
The tax-code checks are in test_organizations.py."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.identity.identifiers import (
    InvalidIdentifier,
    accent_free_name,
    carrier_hint,
    check_bhxh_code,
    check_birth_date,
    check_id_number,
    id_number_facts,
    is_id_number,
    mask_id,
    name_key,
    names_match,
    normalize_name,
    normalize_phone,
    parse_date,
)

D = dt.date


# -- ID numbers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("number", "year", "gender"),
    [
        ("046090001234", 1990, "male"),  # digit 0: 1900s, male
        ("046185004321", 1985, "female"),  # 1: 1900s, female
        ("046201007777", 2001, "male"),  # 2: 2000s, male
        ("046301007777", 2001, "female"),  # 3: 2000s, female
        ("001400000001", 2100, "male"),  # 4/5: 2100s
        ("001599000001", 2199, "female"),
        ("079605000001", 2205, "male"),  # 6/7: 2200s
        ("079712000001", 2212, "female"),
        ("096823000001", 2323, "male"),  # 8/9: 2300s
        ("096999000001", 2399, "female"),
    ],
)
def test_century_and_gender_digit(number: str, year: int, gender: str) -> None:
    facts = id_number_facts(number)
    assert (facts.birth_year, facts.gender, facts.region_code) == (year, gender, number[:3])
    assert check_id_number(number, D(year, 6, 1), gender) == number


@pytest.mark.parametrize(
    ("number", "birth", "gender", "says"),
    [
        ("04609000123", None, None, "12 digits"),
        ("0460900012345", None, None, "12 digits"),
        ("04609000123A", None, None, "12 digits"),
        ("003090001234", None, None, "unknown province"),  # 003 is not a province code
        ("097090001234", None, None, "unknown province"),  # past the last province (096)
        ("000090001234", None, None, "unknown province"),
        ("300090001234", None, None, "unknown province"),  # past the country codes (1xx-2xx)
        ("046090001234", D(1991, 3, 15), None, "birth year"),
        ("046090001234", D(2090, 3, 15), None, "birth year"),  # right year digits, wrong century
        ("046190001234", D(1990, 3, 15), "male", "gender"),
        ("046090001234", D(1990, 3, 15), "female", "gender"),
        ("046090001234", None, "female", "gender"),  # gender checked even without a birth date
        ("046290001234", D(1990, 3, 15), None, "birth year"),  # digit 2 is the 2000s
    ],
)
def test_bad_id_numbers(number: str, birth: dt.date | None, gender: str | None, says: str) -> None:
    with pytest.raises(InvalidIdentifier, match=says) as refused:
        check_id_number(number, birth, gender)
    # Pages choose their Vietnamese message by this code, never by the English text.
    assert refused.value.code == CODES[says]


CODES = {
    "12 digits": "id_number.format",
    "unknown province": "id_number.province",
    "birth year": "id_number.birth_year",
    "gender": "id_number.gender",
    "10 digits": "bhxh_code.format",
    "does not exist": "date.impossible",
    "dd/mm/yyyy": "date.format",
    "future": "birth_date.future",
    "before 1900": "birth_date.too_early",
}


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("001090001234", True),
        ("096090001234", True),
        ("046090001234", True),
        ("124090001234", True),  # birth registered abroad: a country code
        ("299090001234", True),
        ("003090001234", False),
        ("046 90001234", False),
    ],
)
def test_is_id_number(number: str, valid: bool) -> None:
    assert is_id_number(number) is valid


def test_check_id_number_strips_spaces_and_keeps_a_valid_number() -> None:
    assert check_id_number(" 046192023456 ", D(1992, 1, 5), "female") == "046192023456"


# -- BHXH code -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4692023456", "4692023456"),
        (" 46 9202 3456 ", "4692023456"),
        ("DN4464692023456", "4692023456"),  # the health-insurance card code: its last 10 characters
        ("dn4464692023456", "4692023456"),
    ],
)
def test_bhxh_codes(value: str, expected: str) -> None:
    assert check_bhxh_code(value) == expected


@pytest.mark.parametrize(
    "value", ["469202345", "46920234567", "469202345A", "", "D4464692023456", "DN446469202345"]
)
def test_bad_bhxh_codes(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="10 digits") as refused:
        check_bhxh_code(value)
    assert refused.value.code == CODES["10 digits"]


# -- names ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Võ Thị Hoà", "Võ Thị Hòa"),  # oà / òa
        ("Nguyễn Thị Thuỷ", "Nguyễn Thị Thủy"),  # uỷ / ủy
        ("Lê Khoá", "Lê Khóa"),  # oá / óa
        ("Trần Văn Huý", "Trần Văn Húy"),  # uý / úy
        ("Đỗ Thị Hoè", "Đỗ Thị Hòe"),  # oè / òe
        ("Phạm Quỳnh Hoạ", "Phạm Quỳnh Họa"),  # nặng below either vowel
        ("VÕ THỊ HÒA", "võ thị hoà"),
        ("  Võ   Thị\tHòa ", "Võ Thị Hòa"),
        ("Vo\u0303 Thi\u0323 Hoa\u0300", "Võ Thị Hòa"),  # decomposed input
        ("\u00d0ặng Thu Trang", "Đặng Thu Trang"),  # Ð (U+00D0) look-alike
        ("\u00f0ặng thu trang", "ĐẶNG THU TRANG"),  # ð (U+00F0) look-alike
        ("Nguyễn Văn An", "NGUYỄN VĂN AN"),
    ],
)
def test_names_that_match(a: str, b: str) -> None:
    assert names_match(a, b) and names_match(b, a)
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Võ Thị Hòa", "Võ Thị Hóa"),  # a different tone is a different name
        ("Võ Thị Hòa", "Võ Thị Hoa"),
        ("Võ Thị Hòa", "Vo Thi Hoa"),  # accents are not stripped
        ("Nguyễn Văn An", "Nguyễn Văn Ân"),  # vowel marks count
        ("Đặng Thu Trang", "Dặng Thu Trang"),
        ("Võ Thị Hòa", "Võ Hòa"),
        ("Võ Thị Hòa", "Võ Thị Hòa Bình"),
        ("", ""),  # an empty name matches nothing
        (" ", " "),
    ],
)
def test_names_that_differ(a: str, b: str) -> None:
    assert not names_match(a, b)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Võ Thị Hòa", "VO THI HOA"),
        ("  Đặng   thu trang ", "DANG THU TRANG"),
        ("\u00d0ặng", "DANG"),
        ("Nguyễn Thị Thuỷ", "NGUYEN THI THUY"),
        ("Huỳnh Văn Lộc", "HUYNH VAN LOC"),
        ("Phạm Ngọc Ước", "PHAM NGOC UOC"),
    ],
)
def test_accent_free_name_is_what_registers_compare(name: str, key: str) -> None:
    assert accent_free_name(name) == key


def test_normalize_name_keeps_nfc_and_the_written_tone_placement() -> None:
    assert normalize_name("Vo\u0303  Thi\u0323 Hoa\u0300") == "Võ Thị Hoà"
    assert normalize_name("\u00d0ặng") == "Đặng"


# -- phones --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("phone", "carrier"),
    [
        ("0388123456", "Viettel"),
        ("0868123456", "Viettel"),
        ("+84978123456", "Viettel"),
        ("0912345678", "VinaPhone"),
        ("0834567890", "VinaPhone"),
        ("0888123456", "VinaPhone"),
        ("0935123456", "MobiFone"),
        ("0767890123", "MobiFone"),
        ("0903111222", "MobiFone"),
        ("0921234567", "Vietnamobile"),
        ("0561234567", "Vietnamobile"),
        ("0591234567", "Gmobile"),
        ("0991234567", "Gmobile"),
        ("0871234567", "Itelecom"),
        ("84 87 123 4567", "Itelecom"),
        ("0241234567", None),  # a Hà Nội landline
        ("0123", None),
        ("", None),
    ],
)
def test_carrier_hint(phone: str, carrier: str | None) -> None:
    assert carrier_hint(phone) == carrier


@pytest.mark.parametrize(
    ("phone", "e164"),
    [("0912345678", "+84912345678"), ("+84 912 345 678", "+84912345678"), ("84912345678", "+84912345678")],
)
def test_normalize_phone(phone: str, e164: str) -> None:
    assert normalize_phone(phone) == e164


# -- dates ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("15/03/1990", D(1990, 3, 15)),
        ("5/1/1992", D(1992, 1, 5)),
        (" 29/02/2024 ", D(2024, 2, 29)),
        ("1990-03-15", D(1990, 3, 15)),
    ],
)
def test_parse_date(text: str, date: dt.date) -> None:
    assert parse_date(text) == date


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("31/02/2020", "does not exist"),
        ("29/02/2023", "does not exist"),
        ("32/01/2020", "does not exist"),
        ("15/13/1990", "does not exist"),
        ("00/01/1990", "does not exist"),
        ("15/03/90", "dd/mm/yyyy"),
        ("15-03-1990", "dd/mm/yyyy"),
        ("03/15/1990 ", "does not exist"),  # month/day order refused, not guessed
        ("15/03/1990 10:00", "dd/mm/yyyy"),
        ("", "dd/mm/yyyy"),
    ],
)
def test_parse_date_refuses(text: str, says: str) -> None:
    with pytest.raises(InvalidIdentifier, match=says) as refused:
        parse_date(text)
    assert refused.value.code == CODES[says]


@pytest.mark.parametrize(
    ("birth", "says"),
    [
        (D(2025, 6, 2), "future"),
        (D(1899, 12, 31), "before 1900"),
    ],
)
def test_check_birth_date_refuses(birth: dt.date, says: str) -> None:
    with pytest.raises(InvalidIdentifier, match=says) as refused:
        check_birth_date(birth, today=D(2025, 6, 1))
    assert refused.value.code == CODES[says]


@pytest.mark.parametrize("birth", [D(2025, 6, 1), D(1900, 1, 1), D(1992, 1, 5)])
def test_check_birth_date_accepts(birth: dt.date) -> None:
    assert check_birth_date(birth, today=D(2025, 6, 1)) == birth


def test_check_birth_date_uses_vietnam_today_by_default() -> None:
    vietnam_today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()
    assert check_birth_date(vietnam_today) == vietnam_today
    with pytest.raises(InvalidIdentifier):
        check_birth_date(vietnam_today + dt.timedelta(days=1))


def test_mask_id() -> None:
    assert mask_id("046192023456") == "*********456"
    assert mask_id("191234567") == "******567"
    assert mask_id(None) == ""
