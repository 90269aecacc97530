"""People's passwords: argon2id hashing and the password policy of the guides.

Policy (seeds 002, 004): at least 8 characters with a lower-case letter, an upper-case letter,
a digit and a special character; also refused: the person's ID number, phone or birth date inside
the password, and common passwords. Client secrets are not hashed here (see idp.clients).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DATA = Path(__file__).parent / "data"
# Bundled lists (sources in each file's header): the 10,000 most common passwords worldwide and
# the ones common in Vietnam.
COMMON_FILES = ("common-passwords.txt", "common-passwords-vi.txt")
# Leet-speak a person uses to satisfy the composition rules ("P@ssw0rd" is "password").
_UNLEET = str.maketrans(
    {"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t"}
)
# A common word is refused inside a password only when it is all the letters there are.
MIN_STEM = 4


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    words: set[str] = set()
    for name in COMMON_FILES:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("# "):
                words.add(line.strip().lower())
    return frozenset(words)


def is_common(password: str) -> bool:
    """A listed password, or one made of a listed word plus digits and symbols ("Sunshine@2024")."""
    common = common_passwords()
    lower = password.lower()
    alnum = re.sub(r"[^a-z0-9]", "", lower)
    letters = re.sub(r"[^a-z]", "", lower)
    # Symbols and digits around the word are padding; inside it they stand for letters.
    core = re.sub(r"^[^a-z]+|[^a-z]+$", "", lower)
    stem = re.sub(r"[^a-z]", "", core.translate(_UNLEET))
    return (
        lower in common
        or alnum in common
        or (len(letters) >= MIN_STEM and letters in common)
        or (len(stem) >= MIN_STEM and stem in common)
    )


@dataclass(frozen=True)
class PolicyViolation:
    code: str  # stable, for tests and translations
    message: str  # Vietnamese, shown to the person


def check_policy(
    password: str,
    *,
    id_number: str | None = None,
    phone: str | None = None,
    birth_date: dt.date | None = None,
) -> list[PolicyViolation]:
    problems: list[PolicyViolation] = []
    if len(password) < 8:
        problems.append(PolicyViolation("too_short", "Mật khẩu phải có ít nhất 8 ký tự."))
    if len(password) > 128:
        problems.append(PolicyViolation("too_long", "Mật khẩu không được dài quá 128 ký tự."))
    if not re.search(r"[a-z]", password):
        problems.append(PolicyViolation("no_lower", "Mật khẩu phải có chữ thường."))
    if not re.search(r"[A-Z]", password):
        problems.append(PolicyViolation("no_upper", "Mật khẩu phải có chữ hoa."))
    if not re.search(r"\d", password):
        problems.append(PolicyViolation("no_digit", "Mật khẩu phải có chữ số."))
    if not re.search(r"[^A-Za-z0-9]", password):
        problems.append(PolicyViolation("no_special", "Mật khẩu phải có ký tự đặc biệt."))
    digits = re.sub(r"\D", "", password)
    personal = []
    if id_number:
        personal.append(id_number)
    if phone:
        local = "0" + phone[3:] if phone.startswith("+84") else phone
        personal.extend([local, local[1:]])
    if birth_date:
        personal.extend(birth_date.strftime(f) for f in ("%d%m%Y", "%Y%m%d", "%d%m%y"))
    if any(p and len(p) >= 6 and p in digits for p in personal):
        problems.append(
            PolicyViolation("personal", "Mật khẩu không được chứa số định danh, số điện thoại hay ngày sinh.")
        )
    if is_common(password):
        problems.append(PolicyViolation("common", "Mật khẩu này quá phổ biến, hãy chọn mật khẩu khác."))
    return problems


class PasswordHashing:
    """argon2id with the configured cost (OWASP: m=19 MiB, t=2, p=1)."""

    def __init__(self, memory_kib: int, time_cost: int) -> None:
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=1)
        # Verifying against this keeps the time of a login for an unknown account the same.
        self._dummy = self._hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
