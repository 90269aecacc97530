"""The audit trail: one row per security-relevant action, written in the caller's transaction."""

from __future__ import annotations

import logging
from typing import Any

from idp.store.models import AuditEvent, db

log = logging.getLogger("idp.audit")


def record(
    action: str,
    *,
    actor: str,
    account_id: int | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits, so both land or neither).

    `detail` must never carry a password, an OTP or an unmasked ID number.
    """
    event = AuditEvent(
        actor=actor, action=action, account_id=account_id, client_id=client_id, ip=ip, detail=detail or None
    )
    db.session.add(event)
    log.info("audit %s actor=%s account=%s client=%s %s", action, actor, account_id, client_id, detail)
    return event
