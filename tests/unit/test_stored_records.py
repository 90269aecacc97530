"""Short-lived records written before an upgrade still read after it: an interaction or a
registration under way when the servers are replaced continues (they kept their progress in a
string-keyed `extra` dict before it became typed)."""

from __future__ import annotations

import json
import time

from idp.flows.register.steps import CertificateProgress, Registration
from idp.sessions.interaction import InteractionStore, OrgProgress
from idp.store.ephemeral import MemoryStore

BEFORE_THE_UPGRADE = {
    "id": "ix-before",
    "browser": "b1",
    "client_id": "portal",
    "client_name": "Cổng",
    "params": {"state": "s"},
    "created_at": 0,
    "expires_at": 0,
    "pending_account_id": 7,
    "otp_challenge": None,
    "otp_phone": "+84912345678",
    "result": None,
    "consent_given": False,
    "cancelled": False,
    "extra": {
        "step_up": True,
        "captcha": True,
        "raise_to": 3,
        "org": {"account_id": 9, "phone": None, "totp": True, "recovery": False, "methods_seen": ["totp"]},
    },
}


def test_an_interaction_saved_before_typed_progress_reads_after_it() -> None:
    store = MemoryStore()
    now = int(time.time())
    store.set(
        "ix:ix-before", json.dumps({**BEFORE_THE_UPGRADE, "created_at": now, "expires_at": now + 600}), 600
    )
    ix = InteractionStore(store, 600).load("ix-before", "b1")
    assert ix is not None
    assert (ix.step_up, ix.captcha, ix.raise_to, ix.applied) == (True, True, 3, False)
    assert ix.org == OrgProgress(account_id=9, phone=None, totp=True, recovery=False)
    assert ix.pending_account_id == 7 and ix.otp_phone == "+84912345678"


def test_a_registration_saved_before_typed_progress_reads_after_it() -> None:
    stored = {
        "id": "r1",
        "browser": "b1",
        "method": "usb",
        "kind": "enterprise",
        "ix_id": None,
        "expires_at": time.time() + 600,
        "extra": {"challenge_id": "c1", "code": "0421", "verified": True, "tax_code": "0100233488"},
    }
    reg = Registration.from_stored(json.loads(json.dumps(stored)))
    assert reg.cert == CertificateProgress(
        challenge_id="c1", code="0421", verified=True, tax_code="0100233488"
    )
