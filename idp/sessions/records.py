"""Short-lived records of a multi-page flow (a password reset, a registration), kept in the
ephemeral store under a random id and bound to the browser that started them: another browser,
an unknown id or an expired record all read as None, and the page says the flow has expired."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict
from typing import Any, Generic, Protocol, TypeVar

from idp.runtime import runtime
from idp.sessions.browser import browser_id


class BoundRecord(Protocol):
    id: str
    browser: str
    expires_at: float


R = TypeVar("R", bound=BoundRecord)


class BrowserRecords(Generic[R]):
    """Records of one kind (a dataclass with ``id``, ``browser`` and ``expires_at``) under a key prefix."""

    def __init__(self, prefix: str, kind: type[R]) -> None:
        self.prefix = prefix
        self.kind = kind

    def key(self, rid: str) -> str:
        return self.prefix + rid

    def save(self, record: R) -> None:
        ttl = int(record.expires_at - time.time())
        if ttl > 0:
            runtime().store.set(self.key(record.id), json.dumps(asdict(record)), ttl)  # type: ignore[call-overload]

    def load(self, rid: str) -> R | None:
        """The record, when it exists and belongs to this browser."""
        raw = runtime().store.get(self.key(rid)) if 0 < len(rid) <= 64 else None
        record = self._read(json.loads(raw)) if raw else None
        bid = browser_id(create=False)
        if record is None or not bid or not secrets.compare_digest(record.browser, bid):
            return None
        return record

    def _read(self, data: dict[str, Any]) -> R:
        """The record from its stored form (a kind may upgrade older forms: ``from_stored``)."""
        reader = getattr(self.kind, "from_stored", None)
        return reader(data) if reader is not None else self.kind(**data)

    def take(self, rid: str) -> dict[str, Any] | None:
        """Remove the record and return what it held (atomically: a second submission gets None)."""
        raw = runtime().store.take(self.key(rid))
        return json.loads(raw) if raw else None

    def forget(self, rid: str) -> None:
        runtime().store.delete(self.key(rid))
