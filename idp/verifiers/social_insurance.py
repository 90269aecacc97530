"""The social-insurance register (CSDL BHXH) over HTTP: docs/verifiers.md, "Social-insurance register".

A read-only check, declared idempotent and retried on transient failures.
"""

from __future__ import annotations

import datetime as dt
import logging

from idp.identity.identifiers import accent_free_name, mask_id
from idp.outbound import Guard
from idp.verifiers import common
from idp.verifiers.base import Verification
from idp.verifiers.contract import read_person_check
from idp.verifiers.http import HttpClient, HttpSettings, JsonAnswer

log = logging.getLogger("idp.verifiers")

CHECK_PATH = "/v1/insured/check"
CHECK_FIELDS = ("bhxh_code", "full_name", "birth_date")


class HttpSocialInsuranceRegister:
    """:class:`idp.verifiers.base.SocialInsuranceRegister` over the gateway's HTTP contract."""

    name = "social-insurance-register:http"

    def __init__(self, settings: HttpSettings, guard: Guard | None = None) -> None:
        self.client = HttpClient(self.name, settings, guard=guard)

    def check_insured(self, *, bhxh_code: str, full_name: str, birth_date: dt.date) -> Verification:
        code = common.bhxh_code(self.name, bhxh_code)
        name = common.full_name(self.name, full_name)
        body = {
            "bhxh_code": code,
            "full_name": name,
            "full_name_key": accent_free_name(name),
            "birth_date": birth_date.isoformat(),
        }

        def read(answer: JsonAnswer) -> Verification:
            return read_person_check(
                answer,
                submitted_name=name,
                echoed={"birth_date": body["birth_date"]},
                fields=CHECK_FIELDS,
                no_record_field="bhxh_code",
                extra={"bhxh_code": code},
            )

        result = self.client.post_json(CHECK_PATH, body, read, idempotent=True, no_record_on_404=True)
        log.info("%s: insured %s: %s", self.name, mask_id(code), common.outcome(result))
        return result
