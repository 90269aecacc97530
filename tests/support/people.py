"""The sandbox people (idp/sandbox/accounts.json), as the tests use them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxPerson:
    username: str
    password: str
    phone: str  # E.164, where OTPs go first
    name: str
    loa: int


AN = SandboxPerson("046090001234", "DemoAn@2026", "+84912345678", "Nguyễn Văn An", 2)
BINH = SandboxPerson("046185004321", "DemoBinh@2026", "+84987654321", "Trần Thị Bình", 3)
CUC = SandboxPerson("046301007777", "DemoCuc@2026", "+84935123456", "Lê Hoàng Cúc", 2)
DUNG = SandboxPerson("191234567", "DemoDung@2026", "+84903456789", "Phạm Văn Dũng", 2)
