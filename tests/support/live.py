"""Real `idp serve` processes for the end-to-end, multi-process and fault tests.

An :class:`IdpProcess` is the production command (`python -m idp.cli serve`, gunicorn with
several workers) on a free loopback port, with an environment built by :func:`idp_env` from
nothing but `IDP_` settings. Its stdout and stderr go to a log file; :func:`idp_logs` (a fixture)
prints what every server logged during a test, which pytest shows only when that test fails.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import services
from tests.support.clients import MOBILE_CALLBACK, PORTAL_CALLBACK, PORTAL_SECRET
from tests.support.driver import basic
from tests.support.html_signin import HtmlSignIn
from tests.support.outbox import Outbox

ROOT = Path(__file__).resolve().parents[2]

# Cheap settings for tests: a password hash that is not a benchmark, no captcha, OTPs that can be
# sent again at once and as often as the tests need.
TEST_DEFAULTS = {
    "CAPTCHA_ENABLED": "false",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "OTP_RESEND_COOLDOWN": "1",
    "OTP_DAILY_LIMIT": "1000",
    "OTP_PHONE_HOURLY_LIMIT": "1000",
    "OTP_PHONE_DAILY_LIMIT": "1000",
    "OTP_ADDRESS_HOURLY_LIMIT": "100000",
    "OTP_GLOBAL_PER_MINUTE": "100000",
    "BACKCHANNEL_TIMEOUT": "2",
    "LOG_LEVEL": "INFO",
}

# Every server started in this test session, for the log dump of idp_logs.
STARTED: list[IdpProcess] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def idp_env(**settings: object) -> dict[str, str]:
    """The environment of an idp process: this one's without any IDP_ variable, the test
    defaults, then `settings` (names without the IDP_ prefix; None leaves a setting out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    for name, value in {**TEST_DEFAULTS, **settings}.items():
        if value is not None:
            env["IDP_" + name] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(env: dict[str, str], *args: str, cwd: Path, timeout: float = 120) -> str:
    """Run `idp ARGS` to completion; fails the test with the output when it does not succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "idp.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"idp {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}",
            pytrace=False,
        )
    return done.stdout


class IdpProcess:
    """One `idp serve` (gunicorn master and its workers) on 127.0.0.1."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        *,
        cwd: Path,
        port: int | None = None,
        workers: int = 2,
        threads: int = 4,
    ) -> None:
        self.name = name
        self.env = env
        self.cwd = cwd
        self.port = port or free_port()
        self.workers = workers
        self.threads = threads
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.mark = 0

    def start(self, timeout: float = 40.0) -> IdpProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "idp.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    "--threads",
                    str(self.threads),
                ],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() reaches the workers too
            )
        finally:
            log.close()
        STARTED.append(self)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        """Wait until every worker can answer: /health from several connections in a row."""
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited {self.process.returncode} while starting:\n{self.logs()}",
                    pytrace=False,
                )
            try:
                ok = requests.get(self.base + "/health", timeout=2).status_code == 200
            except requests.RequestException:
                ok = False
            streak = streak + 1 if ok else 0
            if streak >= 2 * self.workers:
                return
            time.sleep(0.05 if ok else 0.2)
        pytest.fail(
            f"{self.name} did not answer /health within {timeout:.0f} s:\n{self.logs()}",
            pytrace=False,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def url(self, path: str) -> str:
        return self.base + path

    def logs(self, since: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def stop_all(processes: list[IdpProcess]) -> None:
    for p in processes:
        p.stop()


@pytest.fixture
def idp_logs() -> Iterator[None]:
    """Print what every idp server logged during the test (pytest shows it when the test fails)."""
    for p in STARTED:
        p.mark = p.log_size()
    yield
    for p in STARTED:
        text = p.logs(p.mark)
        if text:
            print(f"----- {p.name} ({p.base}) log during this test -----\n{text}")


class Deployment:
    """One provider: an issuer, a database, a Redis prefix, keys and relying parties, shared by
    every `idp serve` process started from it (as behind a load balancer)."""

    def __init__(
        self,
        work: Path,
        *,
        database_url: str,
        redis_url: str,
        keys_dir: Path,
        clients_file: Path,
        redis_prefix: str | None = None,
        **settings: Any,
    ) -> None:
        self.work = work
        self.port = free_port()  # of the first process; the issuer names it
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url  # libpq form, for direct checks with psycopg
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix or f"idplive:{secrets.token_hex(4)}:"
        self.outbox = Outbox(work / "sms-outbox.jsonl")
        self.env = idp_env(
            ISSUER=self.issuer,
            DATABASE_URL=services.sqlalchemy_url(database_url),
            REDIS_URL=redis_url,
            REDIS_PREFIX=self.redis_prefix,
            KEYS_DIR=keys_dir,
            CLIENTS_FILE=clients_file,
            SMS_OUTBOX=self.outbox.path,
            **settings,
        )
        self.servers: list[IdpProcess] = []

    def init(self) -> str:
        """`idp init --sandbox`: migrate, keys if none, the sandbox people."""
        return run_cli(self.env, "init", "--sandbox", cwd=self.work)

    def serve(self, name: str, *, workers: int = 2, threads: int = 4, own_port: bool = False) -> IdpProcess:
        """Start one more `idp serve`; the first one gets the issuer's port."""
        port = None if own_port or self.servers else self.port
        server = IdpProcess(name, self.env, cwd=self.work, port=port, workers=workers, threads=threads)
        self.servers.append(server)
        return server.start()

    def browser(self, server: IdpProcess | None = None) -> HtmlSignIn:
        """A fresh browser that talks to `server` (default: the issuer's process)."""
        target = server or self.servers[0]
        return HtmlSignIn(target.base, self.outbox, issuer=self.issuer)

    def stop(self) -> None:
        stop_all(self.servers)


def authorization_url(
    server: IdpProcess,
    client_id: str = "portal",
    redirect_uri: str = "https://portal.example.vn/callback",
    scope: str = "openid profile",
) -> tuple[str, dict[str, str], str]:
    """An authorization request with PKCE for `server`: (URL, parameters, code_verifier)."""
    from urllib.parse import urlencode

    from tests.support.driver import pkce_pair

    verifier, challenge = pkce_pair()
    params = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": scope,
        "state": secrets.token_urlsafe(9),
        "nonce": secrets.token_urlsafe(9),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return server.url("/authorize?" + urlencode(params)), params, verifier


@contextmanager
def own_deployment(
    folder: Path, *, keys_dir: Path, clients_file: Path, redis_url: str, **settings: Any
) -> Iterator[Deployment]:
    """A deployment (`idp init --sandbox` done) on a PostgreSQL database and a Redis prefix of its
    own, with `settings`; its servers stopped and its database and keys removed after."""
    database = services.create_database()
    deployment = Deployment(
        folder,
        database_url=database,
        redis_url=redis_url,
        keys_dir=keys_dir,
        clients_file=clients_file,
        **settings,
    )
    try:
        deployment.init()
        yield deployment
    finally:
        deployment.stop()
        services.drop_database(database)
        services.clear_prefix(services.redis_client(), deployment.redis_prefix)


def shared_deployment(
    folder: Path,
    *,
    names_and_workers: list[tuple[str, int]],
    keys_dir: Path,
    clients_file: Path,
    redis_url: str,
) -> Iterator[Deployment]:
    """A deployment of its own (see own_deployment) with the named servers."""
    with own_deployment(
        folder, keys_dir=keys_dir, clients_file=clients_file, redis_url=redis_url
    ) as deployment:
        for name, workers in names_and_workers:
            deployment.serve(name, workers=workers)
        yield deployment


def token_request(idp: IdpProcess, data: dict[str, str], client_id: str = "portal") -> requests.Response:
    """POST /token as the confidential portal (HTTP Basic) or as a public client (client_id)."""
    if client_id == "portal":
        return requests.post(idp.url("/token"), data=data, headers=basic("portal", PORTAL_SECRET), timeout=20)
    return requests.post(idp.url("/token"), data={**data, "client_id": client_id}, timeout=20)


def exchange(idp: IdpProcess, code: str, verifier: str, client_id: str = "portal") -> requests.Response:
    redirect_uri = PORTAL_CALLBACK if client_id == "portal" else MOBILE_CALLBACK
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return token_request(idp, data, client_id)
