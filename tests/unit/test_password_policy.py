"""The password policy of the guides (idp.identity.passwords.check_policy) and its common lists."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.identity.passwords import check_policy, common_passwords, is_common
from tests.support.people import AN, BINH, CUC, DUNG, SandboxPerson

BIRTH = dt.date(1990, 3, 15)
ID = "046090001234"
PHONE = "+84912345678"

TABLE = [
    ("Hoa-Sen#2027q", []),
    ("Tr@ngAn-Hue#24", []),
    ("Ab#1", ["too_short"]),
    ("A" * 100 + "b#1" + "c" * 30, ["too_long"]),
    ("HOASEN#2027", ["no_lower"]),
    ("hoasen#2027", ["no_upper"]),
    ("Hoa-Sen#Vang", ["no_digit"]),
    ("HoaSen2027q", ["no_special"]),
    ("hoasen", ["too_short", "no_upper", "no_digit", "no_special"]),
    # The person's own numbers, however they are written around.
    ("Sen#046090001234", ["personal"]),
    ("Sen#0912345678", ["personal"]),
    ("Sen#912-345-678", ["personal"]),
    ("Sen#15031990", ["personal"]),
    ("Sen#19900315", ["personal"]),
    ("Sen#150390x", ["personal"]),
    # Common passwords: listed as such, or a listed word padded to meet the rules.
    ("Password1!", ["common"]),
    ("P@ssw0rd2024", ["common"]),
    ("Sunshine!2024", ["common"]),
    ("Iloveyou@1", ["common"]),
    ("Matkhau@123", ["common"]),
    ("Anhyeuem@99", ["common"]),
    ("Dichvucong@2024", ["common"]),
    ("Aa@123456", ["common"]),
    ("Qwerty@123", ["common"]),
]


@pytest.mark.parametrize(("password", "codes"), TABLE, ids=[t[0][:20] for t in TABLE])
def test_policy_table(password: str, codes: list[str]) -> None:
    found = [v.code for v in check_policy(password, id_number=ID, phone=PHONE, birth_date=BIRTH)]
    assert found == codes


def test_legacy_cmnd_counts_as_the_id_number() -> None:
    assert [v.code for v in check_policy("Sen#191234567", id_number="191234567")] == ["personal"]


def test_common_lists_are_bundled_and_loaded() -> None:
    common = common_passwords()
    assert len(common) > 10_000  # the world's top 10,000 plus the Vietnamese list
    assert {"123456", "password", "matkhau", "anhyeuem"} <= common


@pytest.mark.parametrize("password", ["Ab#Cd9xy", "Nguyen@Van@A1", "Q7#kLm!2vz"])
def test_uncommon_passwords_pass(password: str) -> None:
    assert not is_common(password)


@pytest.mark.parametrize("person", [AN, BINH, CUC, DUNG], ids=lambda p: p.username)
def test_sandbox_passwords_meet_the_policy(person: SandboxPerson) -> None:
    assert check_policy(person.password) == []
