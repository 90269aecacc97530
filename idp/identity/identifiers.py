"""Vietnamese identifiers: ID numbers, legacy CMND, tax codes, phone numbers; masking for logs and pages.

Formats follow shared/reference/vietnam-identifiers.md (Circular 07/2016/TT-BCA for the
12-digit personal identification number).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

PROVINCE_CODES = frozenset(
    [
        "001",
        "002",
        "004",
        "006",
        "008",
        "010",
        "011",
        "012",
        "014",
        "015",
        "017",
        "019",
        "020",
        "022",
        "024",
        "025",
        "026",
        "027",
        "030",
        "031",
        "033",
        "034",
        "035",
        "036",
        "037",
        "038",
        "040",
        "042",
        "044",
        "045",
        "046",
        "048",
        "049",
        "051",
        "052",
        "054",
        "056",
        "058",
        "060",
        "062",
        "064",
        "066",
        "067",
        "068",
        "070",
        "072",
        "074",
        "075",
        "077",
        "079",
        "080",
        "082",
        "083",
        "084",
        "086",
        "087",
        "089",
        "091",
        "092",
        "093",
        "094",
        "095",
        "096",
    ]
)

# Mobile prefixes by carrier (reference "Mobile numbers"). Numbers are portable between carriers
# since 2018: the carrier is a hint only, never a check.
CARRIER_PREFIXES: dict[str, str] = {
    **dict.fromkeys(
        ["032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098"], "Viettel"
    ),
    **dict.fromkeys(["081", "082", "083", "084", "085", "088", "091", "094"], "VinaPhone"),
    **dict.fromkeys(["070", "076", "077", "078", "079", "089", "090", "093"], "MobiFone"),
    **dict.fromkeys(["052", "056", "058", "092"], "Vietnamobile"),
    **dict.fromkeys(["059", "099"], "Gmobile"),
    "087": "Itelecom",
}

MOBILE_PREFIXES = frozenset(CARRIER_PREFIXES)

_DIGITS12 = re.compile(r"^\d{12}$")
_DIGITS9 = re.compile(r"^\d{9}$")


class InvalidIdentifier(ValueError):
    """Input that is not a well-formed identifier.

    ``code`` says which rule it broke, from a fixed vocabulary (``<identifier>.<rule>``, e.g.
    ``id_number.birth_year``): pages choose their Vietnamese message by it. The message is short
    English for logs and the command line, safe to show.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_id_number(value: str) -> bool:
    """A 12-digit personal identification number with a known birth-registration code."""
    if not _DIGITS12.match(value):
        return False
    code = value[:3]
    return code in PROVINCE_CODES or "100" <= code <= "299"  # abroad: country codes 1xx–2xx


def is_legacy_id(value: str) -> bool:
    """A 9-digit CMND (old ID card); no check digit exists."""
    return bool(_DIGITS9.match(value))


@dataclass(frozen=True)
class IdNumberFacts:
    """What a 12-digit ID number says about its holder (Circular 07/2016/TT-BCA); no check digit exists."""

    region_code: str  # birth-registration province (001-096) or country abroad (1xx-2xx)
    birth_year: int
    gender: str  # "male" / "female"


def id_number_facts(value: str) -> IdNumberFacts:
    """Read the region, birth year and gender out of an ID number of the right shape.

    Digit 4 is century and gender: 0/1 = 1900s, 2/3 = 2000s, ... 8/9 = 2300s; even male, odd female.
    """
    if not _DIGITS12.match(value):
        raise InvalidIdentifier("id_number.format", "ID number must be 12 digits")
    century_digit = int(value[3])
    century = 1900 + 100 * (century_digit // 2)
    return IdNumberFacts(
        region_code=value[:3],
        birth_year=century + int(value[4:6]),
        gender="male" if century_digit % 2 == 0 else "female",
    )


def check_id_number(value: str, birth_date: dt.date | None = None, gender: str | None = None) -> str:
    """Validate a 12-digit ID number; cross-check century, year and gender when they are given."""
    value = value.strip()
    if not _DIGITS12.match(value):
        raise InvalidIdentifier("id_number.format", "ID number must be 12 digits")
    if not is_id_number(value):
        raise InvalidIdentifier("id_number.province", "unknown province code in ID number")
    facts = id_number_facts(value)
    if birth_date is not None and birth_date.year != facts.birth_year:
        raise InvalidIdentifier("id_number.birth_year", "ID number does not match the birth year")
    if gender in ("male", "female") and gender != facts.gender:
        raise InvalidIdentifier("id_number.gender", "ID number does not match the gender")
    return value


_BHXH_CODE = re.compile(r"^\d{10}$")
# The 15-character health-insurance card code (e.g. DN4791234567890): two letters (beneficiary
# group), one digit (benefit level), two digits (province), then the 10-digit BHXH code.
_HEALTH_CARD_CODE = re.compile(r"^[A-Z]{2}\d{13}$")


def check_bhxh_code(value: str) -> str:
    """Validate a social-insurance code (mã số BHXH): 10 digits, no public check digit.

    People often copy the 15-character health-insurance card code instead; its last 10 characters
    are the BHXH code, so that form is accepted too.
    """
    compact = re.sub(r"\s", "", value).upper()
    if _HEALTH_CARD_CODE.match(compact):
        return compact[-10:]
    if not _BHXH_CODE.match(compact):
        raise InvalidIdentifier("bhxh_code.format", "social-insurance code must be 10 digits")
    return compact


# Tax code (mã số thuế), Circular 105/2020/TT-BTC kept by 86/2024/TT-BTC: weights on digits 1-9.
TAX_CODE_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
_TAX_CODE = re.compile(r"^(\d{10})(?:-?(\d{3}))?$")
# Province-issued code of an agency or public unit: the electronic identifier of QCVN 102:2016/BTTTT
# (e.g. 000.00.15.H57: four levels, the last a letter and two digits naming the province).
_PROVINCE_ORG_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
TAX_CODE = "tax"
PROVINCE_CODE = "province"


def tax_check_digit(first9: str) -> int | None:
    """The check digit of a tax code from its first nine digits; None when the rule never issues one."""
    remainder = sum(int(d) * w for d, w in zip(first9, TAX_CODE_WEIGHTS, strict=True)) % 11
    return None if remainder == 0 else 10 - remainder


def check_tax_code(value: str) -> str:
    """Validate a tax code: 10 digits with the check digit, or 10 + "-" + 001..999 for a branch.

    Returns the normal form (0314409058-002 for a branch, whether written with the hyphen or not).
    """
    match = _TAX_CODE.match(re.sub(r"\s", "", value))
    if not match:
        raise InvalidIdentifier(
            "tax_code.format", "tax code must be 10 digits, or 10 digits, '-' and 3 digits for a branch"
        )
    main, branch = match.group(1), match.group(2)
    if tax_check_digit(main[:9]) != int(main[9]):
        raise InvalidIdentifier("tax_code.check_digit", "tax code check digit is wrong")
    if branch is not None and branch == "000":
        raise InvalidIdentifier("tax_code.branch", "branch number of a tax code runs from 001 to 999")
    return main if branch is None else f"{main}-{branch}"


def is_tax_code(value: str) -> bool:
    try:
        check_tax_code(value)
    except InvalidIdentifier:
        return False
    return True


def check_organization_code(value: str) -> tuple[str, str]:
    """An organization's key: a valid tax code, or a province-issued code (QCVN 102 form).

    Returns (normal form, TAX_CODE or PROVINCE_CODE).
    """
    value = value.strip()
    if _PROVINCE_ORG_CODE.match(value.upper()):
        return value.upper(), PROVINCE_CODE
    if re.fullmatch(r"[\d\s-]+", value):
        return check_tax_code(value), TAX_CODE
    raise InvalidIdentifier(
        "organization_code.format",
        "organization code must be a tax code (10 or 10-3 digits) or a province-issued code like 000.00.15.H57",
    )


def normalize_phone(value: str) -> str:
    """Return a Vietnamese mobile number in E.164 (+84…), or raise InvalidIdentifier."""
    digits = re.sub(r"[\s.\-()]", "", value.strip())
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if not re.fullmatch(r"0\d{9}", digits):
        raise InvalidIdentifier("phone.format", "phone number must be 10 digits starting with 0, or +84")
    if digits[:3] not in MOBILE_PREFIXES:
        raise InvalidIdentifier("phone.prefix", "not a Vietnamese mobile number prefix")
    return "+84" + digits[1:]


def national_phone(e164: str) -> str:
    """+84912345678 -> 0912345678."""
    return "0" + e164[3:] if e164.startswith("+84") else e164


def mask_id(value: str | None) -> str:
    """Show only the last three digits: 046090001234 -> *********234."""
    if not value:
        return ""
    return "*" * max(0, len(value) - 3) + value[-3:]


def mask_phone(e164: str) -> str:
    """0912345678 -> 091****678, as SMS confirmation pages show it."""
    local = national_phone(e164)
    return local[:3] + "*" * max(0, len(local) - 6) + local[-3:]


_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")  # no daylight saving time
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)  # ID numbers start with the 1900s (century digit 0/1)


def parse_date(value: str) -> dt.date:
    """dd/mm/yyyy (the way people write dates here) or ISO yyyy-mm-dd; impossible dates are refused."""
    value = value.strip()
    if match := _DMY.match(value):
        day, month, year = (int(g) for g in match.groups())
    elif match := _ISO.match(value):
        year, month, day = (int(g) for g in match.groups())
    else:
        raise InvalidIdentifier("date.format", "date must be written dd/mm/yyyy")
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise InvalidIdentifier("date.impossible", "this date does not exist") from None


def vietnam_today() -> dt.date:
    return dt.datetime.now(VIETNAM).date()


def check_birth_date(value: dt.date, *, today: dt.date | None = None) -> dt.date:
    """A birth date a living person can have: not in the future (Vietnam's calendar day), not before 1900."""
    if value > (today or vietnam_today()):
        raise InvalidIdentifier("birth_date.future", "birth date is in the future")
    if value < EARLIEST_BIRTH_DATE:
        raise InvalidIdentifier("birth_date.too_early", "birth date is before 1900")
    return value


# Look-alikes of Đ/đ that people paste from other keyboards: Ð/ð (U+00D0/U+00F0, Icelandic eth).
_D_LOOKALIKES = str.maketrans({"\u00d0": "\u0110", "\u00f0": "\u0111"})
# Vietnamese tone marks as combining characters: huyền, sắc, ngã, hỏi, nặng. Vowel marks (circumflex,
# breve, horn) are not tones and stay where they are.
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")


def normalize_name(value: str) -> str:
    """Store names in NFC with single spaces; map the look-alike Ð (U+00D0) to Đ."""
    value = unicodedata.normalize("NFC", value).replace("\u00d0", "\u0110")
    return " ".join(value.split())


def name_key(value: str) -> str:
    """A comparison key: case-folded, single-spaced, each syllable's tone mark moved to its end.

    Both tone-mark placements are in use (hoà/hòa, thuỷ/thủy, oá/óa, uý/úy) and stay different
    after NFC, so the key takes the tone off its vowel and appends it: "hoà" and "hòa" both give
    "hoa" + U+0300, while "hoa" and "hóa" stay different.
    """
    words = []
    for word in normalize_name(value).translate(_D_LOOKALIKES).casefold().split():
        decomposed = unicodedata.normalize("NFD", word)
        tones = "".join(c for c in decomposed if c in _TONE_MARKS)
        base = "".join(c for c in decomposed if c not in _TONE_MARKS)
        words.append(unicodedata.normalize("NFC", base) + tones)
    return " ".join(words)


def names_match(a: str, b: str) -> bool:
    """Same name up to case, extra spaces, tone-mark placement and the Ð look-alike; empty never matches."""
    key = name_key(a)
    return bool(key) and key == name_key(b)


def accent_free_name(value: str) -> str:
    """The form registers compare: upper-case, no diacritics, Đ as D, single spaces ("VO THI HOA")."""
    text = normalize_name(value).translate(_D_LOOKALIKES).replace("\u0111", "d").replace("\u0110", "D")
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(stripped.upper().split())


def carrier_hint(phone: str) -> str | None:
    """The carrier a mobile number's prefix was issued to (Viettel, VinaPhone, ...), or None.

    A hint for messages only: numbers keep their prefix when ported to another carrier.
    """
    try:
        e164 = normalize_phone(phone)
    except InvalidIdentifier:
        return None
    return CARRIER_PREFIXES.get(national_phone(e164)[:3])
