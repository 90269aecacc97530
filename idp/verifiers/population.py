"""The national population register (CSDL quốc gia về dân cư) over HTTP: docs/verifiers.md, "Population register".

Both calls are read-only checks, so they are declared idempotent and retried on transient failures.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from idp.identity.identifiers import accent_free_name, mask_id
from idp.outbound import Guard
from idp.verifiers import common
from idp.verifiers.base import Verification
from idp.verifiers.contract import read_person_check
from idp.verifiers.http import HttpClient, HttpSettings, JsonAnswer

log = logging.getLogger("idp.verifiers")

CHECK_PATH = "/v1/citizens/check"
LEGACY_CHECK_PATH = "/v1/citizens/legacy-check"
CHECK_FIELDS = ("id_number", "full_name", "birth_date", "gender", "id_issue_date", "phone")
LEGACY_FIELDS = ("legacy_id_number", "full_name", "birth_date")


class HttpPopulationRegister:
    """:class:`idp.verifiers.base.PopulationRegister` over the gateway's HTTP contract."""

    name = "population-register:http"

    def __init__(self, settings: HttpSettings, guard: Guard | None = None) -> None:
        self.client = HttpClient(self.name, settings, guard=guard)

    def check_citizen(
        self,
        *,
        id_number: str,
        full_name: str,
        birth_date: dt.date,
        gender: str | None = None,
        id_issue_date: dt.date | None = None,
        phone: str | None = None,
    ) -> Verification:
        number = common.id_number(self.name, id_number)
        name = common.full_name(self.name, full_name)
        body: dict[str, Any] = {
            "id_number": number,
            "full_name": name,
            "full_name_key": accent_free_name(name),
            "birth_date": birth_date.isoformat(),
        }
        if gender is not None:
            body["gender"] = common.gender(self.name, gender)
        if id_issue_date is not None:
            body["id_issue_date"] = id_issue_date.isoformat()
        if phone is not None:
            body["phone"] = common.phone(self.name, phone)
        echoed = {"id_number": number, "birth_date": body["birth_date"]}
        if gender is not None:
            echoed["gender"] = gender

        def read(answer: JsonAnswer) -> Verification:
            return read_person_check(
                answer,
                submitted_name=name,
                echoed=echoed,
                fields=tuple(f for f in CHECK_FIELDS if f in body),
                no_record_field="id_number",
            )

        result = self.client.post_json(CHECK_PATH, body, read, idempotent=True, no_record_on_404=True)
        log.info("%s: citizen %s: %s", self.name, mask_id(number), common.outcome(result))
        return result

    def find_by_legacy_id(
        self, *, legacy_id_number: str, full_name: str, birth_date: dt.date
    ) -> Verification:
        legacy = common.legacy_id_number(self.name, legacy_id_number)
        name = common.full_name(self.name, full_name)
        body = {
            "legacy_id_number": legacy,
            "full_name": name,
            "full_name_key": accent_free_name(name),
            "birth_date": birth_date.isoformat(),
        }

        def read(answer: JsonAnswer) -> Verification:
            return read_person_check(
                answer,
                submitted_name=name,
                echoed={"legacy_id_number": legacy, "birth_date": body["birth_date"]},
                fields=LEGACY_FIELDS,
                no_record_field="legacy_id_number",
                extra={"legacy_id_number": legacy},
            )

        result = self.client.post_json(LEGACY_CHECK_PATH, body, read, idempotent=True, no_record_on_404=True)
        log.info("%s: legacy ID %s: %s", self.name, mask_id(legacy), common.outcome(result))
        return result
