"""The carriers' subscriber register ("thuê bao chính chủ") over HTTP: docs/verifiers.md, "Subscriber register".

Not idempotent: carriers bill each subscriber query and record it against the subscription, so a
call whose answer was lost is not sent again (the person retries instead).
"""

from __future__ import annotations

import logging

from idp.identity.identifiers import mask_id, mask_phone
from idp.outbound import Guard
from idp.verifiers import common
from idp.verifiers.base import Verification
from idp.verifiers.http import REFERENCE, HttpClient, HttpSettings, JsonAnswer

log = logging.getLogger("idp.verifiers")

CHECK_PATH = "/v1/subscribers/check"


class HttpSubscriberRegister:
    """:class:`idp.verifiers.base.SubscriberRegister` over the gateway's HTTP contract."""

    name = "subscriber-register:http"

    def __init__(self, settings: HttpSettings, guard: Guard | None = None) -> None:
        self.client = HttpClient(self.name, settings, guard=guard)

    def check_subscriber(self, *, phone: str, id_number: str) -> Verification:
        e164 = common.phone(self.name, phone)
        number = common.id_number(self.name, id_number)

        def read(answer: JsonAnswer) -> Verification:
            now = common.utcnow()
            if answer.status == 404:  # no active subscription with this number
                reference = answer.optional_text("reference", REFERENCE)
                return Verification(False, self.name, now, evidence_id=reference, mismatched=("phone",))
            reference = answer.text("reference", REFERENCE)
            if not answer.flag("match"):
                return Verification(False, self.name, now, evidence_id=reference, mismatched=("id_number",))
            return Verification(
                True, self.name, now, evidence_id=reference, attributes={"phone": e164, "id_number": number}
            )

        result = self.client.post_json(
            CHECK_PATH, {"phone": e164, "id_number": number}, read, idempotent=False, no_record_on_404=True
        )
        log.info(
            "%s: %s for %s: %s",
            self.name,
            mask_phone(e164),
            mask_id(number),
            "owner" if result.verified else f"not the owner ({', '.join(result.mismatched)})",
        )
        return result
