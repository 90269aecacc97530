"""What every part of the benchmark shares: paths, the bench clients' ids and secrets, targets, errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


RESULTS = ROOT / "bench" / "results"


TICK = os.sysconf("SC_CLK_TCK")


PRODUCTION_ARGON2 = {"memory_kib": 19 * 1024, "time_cost": 2}


MINIMAL_ARGON2 = {"memory_kib": 8, "time_cost": 1}  # argon2's floor: 8 KiB per lane


PORTAL_ID = "bench-portal"


PORTAL_SECRET = "bench-portal-secret-" + "0123456789abcdefghijklmnop"


PORTAL_CALLBACK = "https://portal.example.vn/callback"


MOBILE_ID = "bench-mobile"


MOBILE_CALLBACK = "http://127.0.0.1/oauth/callback"


PASSWORD = "Bench@Pass2026!"


TARGET_SIGNIN_MS = 2.5


TARGET_REFRESH_PER_CORE = 1500


TARGET_PASSWORD_LOGINS_PER_CORE = 40


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


OTP_CODE = re.compile(r"\b(\d{6})\b")


class BenchError(RuntimeError):
    """An answer the benchmark did not expect: the run fails."""


FORM = "application/x-www-form-urlencoded"
