"""Reading the SMS outbox of the test contract (IDP_SMS_OUTBOX: one JSON object per line)."""

from __future__ import annotations

import json
import re
from pathlib import Path


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [
            json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]

    def last(self, to: str | None = None) -> dict:
        found = [m for m in self.messages() if to is None or m["to"] == to]
        assert found, f"no SMS{' to ' + to if to else ''} in {self.path}"
        return found[-1]

    def last_code(self, to: str | None = None) -> str:
        match = re.search(r"\b(\d{6})\b", self.last(to)["text"])
        assert match, "the SMS carries no 6-digit code"
        return match.group(1)

    def count(self, to: str | None = None) -> int:
        return len([m for m in self.messages() if to is None or m["to"] == to])
