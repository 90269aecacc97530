"""Measurement: CPU time of process trees from /proc, PostgreSQL's and Redis's CPU, argon2's cost, the machine and the versions."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from idpbench.common import PASSWORD, TICK, BenchError


# ================================================================================================
# Measuring CPU of processes
# ================================================================================================
def proc_stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime seconds) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[0] == pid:
                found.append(int(entry))
    return sorted(found)


class Meters:
    """Samples CPU: the idp process tree (the figure), PostgreSQL backends of our database and
    the Redis server (context only: Redis is shared with whatever else uses it)."""

    def __init__(self, master_pid: int, pg_admin_url: str, db_name: str, redis_url: str) -> None:
        import psycopg
        import redis

        self.master = master_pid
        self.workers = children_of(master_pid)
        self.pg = psycopg.connect(pg_admin_url, autocommit=True)
        self.db_name = db_name
        self.redis = redis.Redis.from_url(redis_url)

    def close(self) -> None:
        self.pg.close()
        self.redis.close()

    def server_cpu(self) -> float:
        workers = children_of(self.master)
        if workers != self.workers:
            raise BenchError(f"gunicorn workers changed from {self.workers} to {workers} (crash or timeout?)")
        total = 0.0
        for pid in [self.master, *workers]:
            stat = proc_stat(pid)
            if stat is None:
                raise BenchError(f"server process {pid} is gone")
            total += stat[1]
        return total

    def pg_backends(self) -> dict[int, float]:
        rows = self.pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            (self.db_name,),
        ).fetchall()
        out = {}
        for (pid,) in rows:
            stat = proc_stat(pid)
            if stat is not None:
                out[pid] = stat[1]
        return out

    def redis_cpu(self) -> float:
        info = self.redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def sample(self) -> dict[str, Any]:
        return {
            "t": time.perf_counter(),
            "server": self.server_cpu(),
            "pg": self.pg_backends(),
            "redis": self.redis_cpu(),
        }


def pg_delta(before: dict[int, float], after: dict[int, float]) -> float | None:
    if not after and not before:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# ================================================================================================
# Argon2id, measured in this process
# ================================================================================================
def measure_argon2(memory_kib: int, time_cost: int, seconds: float) -> dict[str, float]:
    from argon2 import PasswordHasher

    hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=1)
    stored = hasher.hash(PASSWORD)
    hasher.verify(stored, PASSWORD)  # warm-up
    n, cpu0, t0 = 0, time.thread_time(), time.perf_counter()
    while True:
        hasher.verify(stored, PASSWORD)
        n += 1
        if time.perf_counter() - t0 >= seconds and n >= 5:
            break
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - t0
    return {
        "memory_kib": memory_kib,
        "time_cost": time_cost,
        "verifies": n,
        "cpu_ms": 1000 * cpu / n,
        "wall_ms": 1000 * wall / n,
        "per_core": n / cpu,
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    versions = {}
    for name in (
        "flask",
        "werkzeug",
        "authlib",
        "joserfc",
        "cryptography",
        "sqlalchemy",
        "psycopg",
        "redis",
        "gunicorn",
        "argon2-cffi",
        "flask-wtf",
        "jinja2",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "cpu_model": model,
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "loadavg_start": os.getloadavg(),
        "python_speed_ms": python_speed(),
    }


def python_speed() -> float:
    """CPU ms of a fixed pure-Python workload (JSON, SHA-256, dicts): compares machines."""
    record = {"client_id": "portal", "scope": "openid profile", "iat": 1, "exp": 2, "amr": ["pwd"]}
    best = float("inf")
    for _ in range(5):
        t0 = time.thread_time()
        for i in range(2000):
            text = json.dumps({**record, "n": i})
            hashlib.sha256(text.encode()).hexdigest()
            json.loads(text)
            sorted({str(k): k for k in range(20)}.items())
        best = min(best, time.thread_time() - t0)
    return 1000 * best


def service_versions(args: argparse.Namespace) -> dict[str, str]:
    import psycopg
    import redis

    out = {}
    with psycopg.connect(args.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        out["postgresql"] = row[0] if row else "?"
    client = redis.Redis.from_url(args.redis_url)
    out["redis"] = str(client.info("server").get("redis_version"))
    client.close()
    return out
