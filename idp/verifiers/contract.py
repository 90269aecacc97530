"""Reading the gateways' check answers (docs/verifiers.md, "Check answers"), shared by the adapters.

A check answer is ``{"reference", "match", "mismatched", "person"}`` (200) or ``{"reason":
"no_record"}`` (404). The register compares; idp then re-checks the name against the register's
spelling with its own rule (tone marks count, their placement does not), because registers compare
accent-free names and idp keeps the name the person typed.
"""

from __future__ import annotations

from collections.abc import Mapping

from idp.identity.identifiers import normalize_name
from idp.verifiers.base import Verification, VerifierUnavailable
from idp.verifiers.common import E164_VN, GENDERS, ID_NUMBER, LEGACY_ID, register_name_agrees, utcnow
from idp.verifiers.http import REFERENCE, JsonAnswer


def person_attributes(person: JsonAnswer) -> dict[str, str]:
    """The canonical attributes of a ``person`` object; required: id_number, full_name, birth_date."""
    attributes = {
        "id_number": person.text("id_number", ID_NUMBER),
        "full_name": normalize_name(person.text("full_name")),
        "birth_date": person.iso_date("birth_date") or "",
    }
    optional = {
        "legacy_id_number": person.optional_text("legacy_id_number", LEGACY_ID),
        "gender": person.choice("gender", GENDERS, optional=True),
        "phone": person.optional_text("phone", E164_VN),
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    return attributes


def read_person_check(
    answer: JsonAnswer,
    *,
    submitted_name: str,
    echoed: Mapping[str, str],
    fields: tuple[str, ...],
    no_record_field: str,
    extra: Mapping[str, str] | None = None,
) -> Verification:
    """Turn a check answer into a Verification.

    ``echoed``: values the register's ``person`` must repeat (the ID number and birth date sent);
    a register that says "match" and contradicts them is broken (VerifierUnavailable), not a
    mismatch. ``fields``: the submitted field names, in the order ``mismatched`` reports them.
    ``extra``: attributes idp adds on a match (e.g. the bhxh_code it asked about).
    """
    verifier = answer.verifier
    if answer.status == 404:
        return Verification(
            verified=False,
            verifier=verifier,
            verified_at=utcnow(),
            evidence_id=answer.optional_text("reference", REFERENCE),
            mismatched=(no_record_field,),
        )
    reference = answer.text("reference", REFERENCE)
    if not answer.flag("match"):
        return Verification(
            verified=False,
            verifier=verifier,
            verified_at=utcnow(),
            evidence_id=reference,
            mismatched=answer.names("mismatched", fields),
        )
    person = person_attributes(answer.object("person"))
    for key, value in echoed.items():
        if person.get(key, value) != value:
            raise VerifierUnavailable(verifier, f"the register's match contradicts the {key} sent")
    if not register_name_agrees(submitted_name, person["full_name"]):
        return Verification(
            verified=False,
            verifier=verifier,
            verified_at=utcnow(),
            evidence_id=reference,
            mismatched=("full_name",),
        )
    return Verification(
        verified=True,
        verifier=verifier,
        verified_at=utcnow(),
        evidence_id=reference,
        attributes={**person, **(extra or {})},
    )
