"""The sandbox registers over sandbox_data/registers.json: the same protocols and matching rules as the
real registers (names insensitive to case, spaces and tone-mark placement), mismatches named by field,
deterministic evidence ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from idp.verifiers.base import (
    PopulationRegister,
    SocialInsuranceRegister,
    SubscriberRegister,
    Verification,
    VerifierRejected,
)
from idp.verifiers.sandbox import (
    SandboxPopulationRegister,
    SandboxSocialInsuranceRegister,
    SandboxSubscriberRegister,
    load_dataset,
)

D = dt.date
POPULATION = SandboxPopulationRegister()
SUBSCRIBERS = SandboxSubscriberRegister()
INSURANCE = SandboxSocialInsuranceRegister()

HOA: dict[str, Any] = {"id_number": "046192023456", "full_name": "Võ Thị Hòa", "birth_date": D(1992, 1, 5)}
HOA_ATTRIBUTES = {
    "id_number": "046192023456",
    "full_name": "Võ Thị Hòa",
    "birth_date": "1992-01-05",
    "gender": "female",
    "phone": "+84388123456",
}


def test_the_sandbox_implements_the_protocols() -> None:
    assert isinstance(POPULATION, PopulationRegister)
    assert isinstance(SUBSCRIBERS, SubscriberRegister)
    assert isinstance(INSURANCE, SocialInsuranceRegister)
    assert (POPULATION.name, SUBSCRIBERS.name, INSURANCE.name) == (
        "population-register:sandbox",
        "subscriber-register:sandbox",
        "social-insurance-register:sandbox",
    )


# -- population register ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "mismatched"),
    [
        pytest.param({}, (), id="as-registered"),
        pytest.param({"full_name": "Võ Thị Hoà"}, (), id="other-tone-mark-placement"),
        pytest.param({"full_name": "VÕ THỊ HÒA"}, (), id="upper-case"),
        pytest.param({"full_name": "  võ   thị  hoà "}, (), id="spaces-and-case"),
        pytest.param({"full_name": "Vo\u0303 Thi\u0323 Hoa\u0300"}, (), id="decomposed"),
        pytest.param({"gender": "female"}, (), id="with-gender"),
        pytest.param({"id_issue_date": D(2021, 8, 22)}, (), id="with-issue-date"),
        pytest.param({"phone": "0388123456"}, (), id="with-phone-national"),
        pytest.param({"phone": "+84388123456"}, (), id="with-phone-e164"),
        pytest.param({"full_name": "Võ Thị Hóa"}, ("full_name",), id="other-tone"),
        pytest.param({"full_name": "Vo Thi Hoa"}, ("full_name",), id="no-accents"),
        pytest.param({"full_name": "Võ Thị Hoà Bình"}, ("full_name",), id="longer-name"),
        pytest.param({"birth_date": D(1992, 5, 1)}, ("birth_date",), id="day-month-swapped"),
        pytest.param(
            {"full_name": "Võ Thị Hoa", "birth_date": D(1991, 1, 5)}, ("full_name", "birth_date"), id="both"
        ),
        pytest.param({"gender": "male"}, ("gender",), id="gender"),
        pytest.param({"id_issue_date": D(2021, 8, 23)}, ("id_issue_date",), id="issue-date"),
        pytest.param({"phone": "0911222333"}, ("phone",), id="someone-elses-phone"),
        pytest.param(
            {"birth_date": D(1992, 1, 6), "gender": "male", "phone": "0911222333"},
            ("birth_date", "gender", "phone"),
            id="several",
        ),
        pytest.param({"id_number": "046192023457"}, ("id_number",), id="unknown-id-number"),
    ],
)
def test_population_check(changes: dict[str, Any], mismatched: tuple[str, ...]) -> None:
    result = POPULATION.check_citizen(**{**HOA, **changes})
    assert isinstance(result, Verification)
    assert (result.verified, result.mismatched) == (not mismatched, mismatched)
    assert result.verifier == "population-register:sandbox"
    assert result.evidence_id and result.evidence_id.startswith("sandbox-pop-")
    if mismatched:
        assert dict(result.attributes) == {}  # nothing about the record leaks on a mismatch
    else:
        assert dict(result.attributes) == HOA_ATTRIBUTES  # the register's spelling


@pytest.mark.parametrize(
    ("person", "name", "birth"),
    [
        ("046090001234", "Nguyễn Văn An", D(1990, 3, 15)),
        ("046185004321", "TRẦN THỊ BÌNH", D(1985, 9, 2)),
        ("046301007777", "Lê Hoàng Cúc", D(2001, 11, 20)),
        ("046088012345", "phạm minh đức", D(1988, 7, 12)),
        ("046198045678", "\u00d0\u1eb7ng Thu Trang", D(1998, 2, 14)),  # Ð (U+00D0) look-alike typed
        ("046075034567", "huỳnh văn lộc", D(1975, 4, 30)),
        ("046090078901", "Trịnh Văn Nam", D(1990, 3, 3)),
    ],
)
def test_everyone_in_the_dataset_is_found(person: str, name: str, birth: dt.date) -> None:
    result = POPULATION.check_citizen(id_number=person, full_name=name, birth_date=birth)
    assert result.verified and result.attributes["id_number"] == person


def test_phone_attribute_is_absent_for_a_person_without_phones() -> None:
    result = POPULATION.check_citizen(
        id_number="046090078901", full_name="Trịnh Văn Nam", birth_date=D(1990, 3, 3)
    )
    assert result.verified and "phone" not in result.attributes


def test_evidence_ids_are_deterministic() -> None:
    first = POPULATION.check_citizen(**HOA)
    again = POPULATION.check_citizen(**{**HOA, "full_name": "VÕ THỊ HOÀ"})  # same check, other spelling
    other = POPULATION.check_citizen(**{**HOA, "birth_date": D(1992, 1, 6)})
    assert first.evidence_id == again.evidence_id != other.evidence_id
    assert first.verified_at.tzinfo is None


@pytest.mark.parametrize(
    ("legacy", "name", "birth", "verified", "mismatched"),
    [
        ("191234567", "Phạm Văn Dũng", D(1970, 7, 4), True, ()),
        ("191234567", "PHẠM  VĂN DŨNG", D(1970, 7, 4), True, ()),
        ("191234567", "Phạm Văn Dung", D(1970, 7, 4), False, ("full_name",)),
        ("191234567", "Phạm Văn Dũng", D(1970, 4, 7), False, ("birth_date",)),
        ("191234568", "Phạm Văn Dũng", D(1970, 7, 4), False, ("legacy_id_number",)),
    ],
)
def test_legacy_lookup(
    legacy: str, name: str, birth: dt.date, verified: bool, mismatched: tuple[str, ...]
) -> None:
    result = POPULATION.find_by_legacy_id(legacy_id_number=legacy, full_name=name, birth_date=birth)
    assert (result.verified, result.mismatched) == (verified, mismatched)
    assert result.evidence_id and result.evidence_id.startswith("sandbox-cmnd-")
    if verified:
        assert result.attributes["id_number"] == "046070009999"
        assert result.attributes["legacy_id_number"] == "191234567"
        assert result.attributes["birth_date"] == "1970-07-04"


# -- subscriber register ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("phone", "id_number", "verified", "mismatched"),
    [
        pytest.param("+84903111222", "046088012345", True, (), id="owned"),
        pytest.param("0903111222", "046088012345", True, (), id="owned-national-form"),
        pytest.param("+84911222333", "046090078901", False, ("id_number",), id="someone-elses"),
        pytest.param("+84903111222", "046090001234", False, ("id_number",), id="not-owned"),
        pytest.param("+84399999999", "046088012345", False, ("phone",), id="unknown-phone"),
    ],
)
def test_subscriber_check(phone: str, id_number: str, verified: bool, mismatched: tuple[str, ...]) -> None:
    result = SUBSCRIBERS.check_subscriber(phone=phone, id_number=id_number)
    assert (result.verified, result.mismatched) == (verified, mismatched)
    assert result.verifier == "subscriber-register:sandbox"
    assert result.evidence_id and result.evidence_id.startswith("sandbox-sub-")
    expected = {"phone": "+84903111222", "id_number": id_number} if verified else {}
    assert dict(result.attributes) == expected


# -- social-insurance register ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "name", "birth", "mismatched"),
    [
        pytest.param("4692023456", "Võ Thị Hoà", D(1992, 1, 5), (), id="other-tone-mark-placement"),
        pytest.param("4692023456", "võ thị hòa", D(1992, 1, 5), (), id="lower-case"),
        pytest.param("4692023456", "Võ Thị Hòa", D(1992, 1, 15), ("birth_date",), id="wrong-birth-date"),
        pytest.param("4692023456", "Võ Thị Hà", D(1992, 1, 5), ("full_name",), id="wrong-name"),
        pytest.param("4692023457", "Võ Thị Hòa", D(1992, 1, 5), ("bhxh_code",), id="unknown-code"),
    ],
)
def test_social_insurance_check(code: str, name: str, birth: dt.date, mismatched: tuple[str, ...]) -> None:
    result = INSURANCE.check_insured(bhxh_code=code, full_name=name, birth_date=birth)
    assert (result.verified, result.mismatched) == (not mismatched, mismatched)
    assert result.evidence_id and result.evidence_id.startswith("sandbox-bhxh-")
    if not mismatched:
        assert dict(result.attributes) == {**HOA_ATTRIBUTES, "bhxh_code": "4692023456"}
    else:
        assert dict(result.attributes) == {}


@pytest.mark.parametrize(
    ("code", "id_number", "phone"),
    [
        ("4690001234", "046090001234", "+84912345678"),
        ("4688012345", "046088012345", "+84903111222"),
        ("4675034567", "046075034567", "+84834567890"),
    ],
)
def test_bhxh_code_gives_the_id_number(code: str, id_number: str, phone: str) -> None:
    person = next(p for p in load_dataset().people.values() if p.bhxh_code == code)
    result = INSURANCE.check_insured(bhxh_code=code, full_name=person.full_name, birth_date=person.birth_date)
    assert result.verified
    assert (result.attributes["id_number"], result.attributes["phone"]) == (id_number, phone)


# -- input refused like a register's 400 ------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: POPULATION.check_citizen(
            id_number="04619202345", full_name="Võ Thị Hòa", birth_date=D(1992, 1, 5)
        ),
        lambda: POPULATION.check_citizen(id_number="046192023456", full_name="  ", birth_date=D(1992, 1, 5)),
        lambda: POPULATION.check_citizen(**HOA, gender="nữ"),
        lambda: POPULATION.check_citizen(**HOA, phone="0123"),
        lambda: POPULATION.find_by_legacy_id(
            legacy_id_number="1912345", full_name="A", birth_date=D(1970, 7, 4)
        ),
        lambda: SUBSCRIBERS.check_subscriber(phone="+1 555 0100", id_number="046088012345"),
        lambda: SUBSCRIBERS.check_subscriber(phone="0903111222", id_number="46088012345"),
        lambda: INSURANCE.check_insured(
            bhxh_code="469202345A", full_name="Võ Thị Hòa", birth_date=D(1992, 1, 5)
        ),
    ],
)
def test_malformed_input_is_rejected(call: Any) -> None:
    with pytest.raises(VerifierRejected):
        call()
