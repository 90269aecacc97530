"""The deployment under test: a throw-away PostgreSQL database, Redis prefix, keys, clients and citizens, and `idp serve` started and stopped."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from idpbench.common import (
    MOBILE_CALLBACK,
    MOBILE_ID,
    PASSWORD,
    PORTAL_CALLBACK,
    PORTAL_ID,
    PORTAL_SECRET,
    ROOT,
    BenchError,
)
from idpbench.measure import children_of


# ================================================================================================
# The environment: database, Redis prefix, keys, clients, accounts, server
# ================================================================================================
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _idp_command() -> list[str]:
    script = Path(sys.executable).parent / "idp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "idp.cli"]


def _create_accounts(spec_file: str) -> None:
    """(Runs in a subprocess with the server's environment.) Create the bench citizens."""
    from argon2 import PasswordHasher

    from idp import create_app
    from idp.identity.accounts import NewCitizen, create_citizen

    spec = json.loads(Path(spec_file).read_text())
    hasher = PasswordHasher(memory_cost=spec["memory_kib"], time_cost=spec["time_cost"], parallelism=1)
    stored = hasher.hash(PASSWORD)

    class OneHash:  # every bench citizen has the same password: hash it once
        def hash(self, password: str) -> str:
            assert password == PASSWORD
            return stored

    app = create_app()
    with app.app_context():
        for username, phone in spec["accounts"]:
            create_citizen(
                NewCitizen(
                    id_number=username,
                    full_name="Người Thử Tải",
                    birth_date=dt.date(1990, 1, 1),
                    phone=phone,
                    gender="male",
                    loa=2,
                ),
                PASSWORD,
                OneHash(),  # type: ignore[arg-type]
                actor="operator:bench",
                method="operator",
                verifier="operator",
            )


@dataclass
class Settings:
    host: str
    port: int
    tmp: Path
    db_url: str
    db_name: str
    redis_url: str
    prefix: str
    outbox: Path
    env: dict[str, str]
    accounts: list[tuple[str, str]]


@contextlib.contextmanager
def environment(args: argparse.Namespace, signin_argon2: dict[str, int]) -> Iterator[Settings]:
    import psycopg
    import redis
    import yaml

    from idp.clients import hash_secret

    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    db_name = "idp_bench_" + secrets.token_hex(5)
    prefix = f"idpbench:{secrets.token_hex(4)}:"
    base = args.pg_admin_url.rpartition("/")[0]
    db_url = f"{base}/{db_name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(args.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        port = _free_port()
        clients = [
            {
                "client_id": PORTAL_ID,
                "client_name": "Cổng thử tải",
                "redirect_uris": [PORTAL_CALLBACK],
                "client_secret_hash": hash_secret(PORTAL_SECRET),
                "scope": "openid profile email phone offline_access",
                "first_party": True,
            },
            {
                "client_id": MOBILE_ID,
                "client_name": "Ứng dụng thử tải",
                "redirect_uris": [MOBILE_CALLBACK],
                "token_endpoint_auth_method": "none",
                "scope": "openid profile phone offline_access",
                "first_party": True,
            },
        ]
        (tmp / "clients.yaml").write_text(yaml.safe_dump({"clients": clients}, allow_unicode=True), "utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update(
            IDP_ISSUER=f"http://127.0.0.1:{port}",
            IDP_DATABASE_URL=db_url,
            IDP_REDIS_URL=args.redis_url,
            IDP_REDIS_PREFIX=prefix,
            IDP_CLIENTS_FILE=str(tmp / "clients.yaml"),
            IDP_KEYS_DIR=str(tmp / "keys"),
            IDP_SMS_OUTBOX=str(tmp / "sms-outbox.jsonl"),
            IDP_ARGON2_MEMORY_KIB=str(signin_argon2["memory_kib"]),
            IDP_ARGON2_TIME_COST=str(signin_argon2["time_cost"]),
            # Many sign-ins per account: the OTP limits would refuse them (accounts rotate anyway).
            IDP_OTP_RESEND_COOLDOWN="1",
            IDP_OTP_DAILY_LIMIT="1000000",
            IDP_OTP_PHONE_HOURLY_LIMIT="1000000",
            IDP_OTP_PHONE_DAILY_LIMIT="1000000",
            IDP_OTP_ADDRESS_HOURLY_LIMIT="1000000",
            IDP_OTP_GLOBAL_PER_MINUTE="1000000",
        )
        (tmp / "keys").mkdir()
        run = {"cwd": tmp, "env": env, "capture_output": True, "text": True, "timeout": 300}
        done = subprocess.run([*_idp_command(), "init"], **run)  # type: ignore[call-overload]
        if done.returncode != 0:
            raise BenchError(f"idp init failed:\n{done.stdout}\n{done.stderr}")
        accounts = [(f"0460900{i:05d}", f"+8491{i:07d}") for i in range(args.accounts)]
        spec = tmp / "accounts.json"
        spec.write_text(json.dumps({"accounts": accounts, **signin_argon2}))
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "run.py"), "--_create-accounts", str(spec)], **run
        )  # type: ignore[call-overload]
        if done.returncode != 0:
            raise BenchError(f"creating accounts failed:\n{done.stdout}\n{done.stderr}")
        yield Settings(
            "127.0.0.1",
            port,
            tmp,
            db_url,
            db_name,
            args.redis_url,
            prefix,
            tmp / "sms-outbox.jsonl",
            env,
            accounts,
        )
    finally:
        with (
            contextlib.suppress(Exception),
            psycopg.connect(args.pg_admin_url, autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            client = redis.Redis.from_url(args.redis_url)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
            client.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


class Server:
    def __init__(self, s: Settings, args: argparse.Namespace, profile_dir: Path | None) -> None:
        self.log_path = s.tmp / "server.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [
            "serve",
            "--host",
            s.host,
            "--port",
            str(s.port),
            "--workers",
            "1",
            "--threads",
            str(args.threads),
        ]
        env = dict(s.env)
        if profile_dir is not None:
            command = [
                sys.executable,
                str(ROOT / "bench" / "profiled_serve.py"),
                *cmd,
            ]
            env["BENCH_PROFILE_DIR"] = str(profile_dir)
        else:
            command = [*_idp_command(), *cmd]
        pin = {args.server_cpu} if args.pin else None
        self.proc = subprocess.Popen(
            command,
            cwd=s.tmp,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None,  # noqa: PLW1509
        )
        self.host, self.port = s.host, s.port
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"idp serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection(s.host, s.port, timeout=2)
                conn.request("GET", "/health/ready")
                status = conn.getresponse().status
                conn.close()
                if status == 200 and children_of(self.proc.pid):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"idp serve did not become ready:\n{self.tail()}")
            time.sleep(0.2)

    def control(self, query: str) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        conn.request("GET", "/__bench__/profile?" + query)
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            raise BenchError(f"profiler control {query}: HTTP {response.status}")

    def tail(self, lines: int = 40) -> str:
        self.log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        workers = children_of(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in [self.proc.pid, *workers]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()
