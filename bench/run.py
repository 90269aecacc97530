#!/usr/bin/env python3
"""idp benchmark: server CPU per sign-in, refresh grants and code exchanges per core (DESIGN §9).

One command, on PostgreSQL and Redis (see BENCHMARKS.md):

    .venv/bin/python bench/run.py            # the run for the record (a few minutes)
    .venv/bin/python bench/run.py --quick    # a quarter of the counts, for development
    .venv/bin/python bench/run.py --profile  # cProfile (CPU clock) per phase; figures inflated

What it does:

1. measures argon2id verification in this process (thread CPU time) at the production
   parameters (m=19 MiB, t=2, p=1) and at the parameters the sign-in phase uses;
2. creates a throw-away PostgreSQL database, a Redis key prefix, keys, a clients.yaml (a
   confidential portal, a public mobile app) and test citizens with distinct phones;
3. starts ``idp serve --workers 1`` and reads the CPU time (utime+stime in /proc/<pid>/stat) of the
   gunicorn master and its worker before and after every phase, so server CPU per operation is
   that process tree's CPU divided by the operations the phase completed;
4. drives the load from separate client processes (plain http.client with keep-alive, a cookie
   jar per browser) and reports their CPU too, so one can see the generator is not the limit;
5. phases (after a warm-up of every kind): GET /health (the floor); complete sign-ins
   (authorize, chooser, citizen page, password, OTP page, OTP read from the SMS outbox, resume,
   token exchange, userinfo); authorization with an SSO session (code issue); code exchanges
   (confidential client, PKCE); refresh grants for the confidential client (no rotation) and
   for the public client (rotation).

Any answer other than the one expected (200 or 302 as the step requires) fails the run loudly,
exit status 1. The database, the Redis keys and the temporary folder are removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
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


# ================================================================================================
# Load generator (runs in client processes)
# ================================================================================================
class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return response.status, response, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Browser:
    """A browser: its own connection and cookie jar."""

    def __init__(self, host: str, port: int) -> None:
        self.http = Http(host, port)
        self.jar: dict[str, str] = {}

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": "idp-bench", "Accept-Language": "vi"}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if extra:
            headers.update(extra)
        return headers

    def _store(self, response: http.client.HTTPResponse) -> None:
        for line in response.msg.get_all("Set-Cookie") or []:
            pair, _, attributes = line.partition(";")
            name, _, value = pair.strip().partition("=")
            lowered = attributes.lower()
            if "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered or value == "":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value

    def get(self, path: str) -> tuple[int, http.client.HTTPResponse, bytes]:
        status, response, body = self.http.request("GET", path, headers=self._headers())
        self._store(response)
        return status, response, body

    def post(self, path: str, form: dict[str, str]) -> tuple[int, http.client.HTTPResponse, bytes]:
        headers = self._headers({"Content-Type": "application/x-www-form-urlencoded"})
        status, response, body = self.http.request("POST", path, urlencode(form).encode(), headers)
        self._store(response)
        return status, response, body

    def close(self) -> None:
        self.http.close()


class OutboxTail:
    """Reads the SMS outbox as it grows; keeps the latest code for each of this process's phones."""

    def __init__(self, path: Path, phones: set[str]) -> None:
        self.path = path
        self.phones = phones
        self.offset = 0
        self.partial = b""
        self.codes: dict[str, str] = {}

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            message = json.loads(line)
            if message["to"] in self.phones:
                match = OTP_CODE.search(message["text"])
                if match:
                    self.codes[message["to"]] = match.group(1)

    def take(self, phone: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            code = self.codes.pop(phone, None)
            if code is not None:
                return code
            if time.monotonic() > deadline:
                raise BenchError(f"no SMS to {phone} in the outbox after {timeout:.0f} s")
            time.sleep(0.001)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _path_of(location: str | None, step: str) -> str:
    if not location:
        raise BenchError(f"{step}: redirect without Location")
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def _expect(step: str, status: int, expected: int, body: bytes, response: Any = None) -> None:
    if status != expected:
        where = ""
        if response is not None and response.getheader("Location"):
            where = f" Location={response.getheader('Location')[:200]}"
        text = body[:400].decode("utf-8", "replace").replace("\n", " ")
        raise BenchError(f"{step}: expected HTTP {expected}, got {status}{where} body={text!r}")


def _csrf(step: str, body: bytes) -> str:
    match = CSRF.search(body.decode("utf-8", "replace"))
    if not match:
        raise BenchError(f"{step}: page has no CSRF token")
    return match.group(1) or match.group(2)


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class Account:
    username: str
    phone: str
    last_used: float = 0.0


@dataclass
class ClientState:
    host: str
    port: int
    issuer: str
    outbox: OutboxTail
    accounts: list[Account]
    cooldown: float
    lean: bool = False  # skip the chooser and OTP page loads (7 requests instead of 9)
    next_account: int = 0
    rp: Http | None = None  # the relying party's back-channel connection (token, userinfo)
    sso: Browser | None = None  # the last browser that signed in
    codes: list[tuple[str, str]] = field(default_factory=list)
    portal_refresh: list[str] = field(default_factory=list)
    mobile_refresh: list[str] = field(default_factory=list)
    turn: int = 0

    def rp_http(self) -> Http:
        if self.rp is None:
            self.rp = Http(self.host, self.port)
        return self.rp


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


FORM = "application/x-www-form-urlencoded"


def _authorize_query(client_id: str, redirect_uri: str, scope: str) -> tuple[str, str, str, str]:
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return "/authorize?" + query, verifier, state, nonce


def _callback_code(st: ClientState, step: str, location: str | None, redirect_uri: str, state: str) -> str:
    if not location or not location.startswith(redirect_uri + "?"):
        raise BenchError(f"{step}: expected a redirect to the client, got {location!r}")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if "code" not in query:
        raise BenchError(f"{step}: no code in the callback: {location[:300]}")
    if query.get("state") != state or query.get("iss") != st.issuer:
        raise BenchError(f"{step}: callback state/iss mismatch: {location[:300]}")
    return query["code"]


def _exchange(
    st: ClientState, step: str, client_id: str, code: str, verifier: str, redirect_uri: str
) -> dict:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    headers = {"Content-Type": FORM}
    if client_id == PORTAL_ID:
        headers["Authorization"] = _basic(PORTAL_ID, PORTAL_SECRET)
    else:
        form["client_id"] = client_id
    status, response, body = st.rp_http().request("POST", "/token", urlencode(form).encode(), headers)
    _expect(step, status, 200, body, response)
    tokens = json.loads(body)
    if "access_token" not in tokens or "id_token" not in tokens:
        raise BenchError(f"{step}: token response without access_token/id_token: {body[:300]!r}")
    return tokens


def _pick_account(st: ClientState) -> Account:
    account = st.accounts[st.next_account % len(st.accounts)]
    st.next_account += 1
    wait = account.last_used + st.cooldown - time.monotonic()
    if wait > 0:  # the OTP resend cooldown is per account; never trip it
        time.sleep(wait)
    account.last_used = time.monotonic()
    return account


def sign_in(st: ClientState) -> None:
    """One complete code + PKCE sign-in of a citizen, as a browser and its portal do it."""
    account = _pick_account(st)
    browser = Browser(st.host, st.port)
    path, verifier, state, nonce = _authorize_query(PORTAL_ID, PORTAL_CALLBACK, "openid profile")
    status, response, body = browser.get(path)
    _expect("authorize", status, 302, body, response)
    login = _path_of(response.getheader("Location"), "authorize")
    if not login.startswith("/login/"):
        raise BenchError(f"authorize: expected a redirect to /login/, got {login!r}")
    if not st.lean:
        status, response, body = browser.get(login)
        _expect("chooser page", status, 200, body, response)
    citizen = login + "/citizen"
    status, response, body = browser.get(citizen)
    _expect("citizen page", status, 200, body, response)
    form = {
        "csrf_token": _csrf("citizen page", body),
        "username": account.username,
        "password": PASSWORD,
    }
    status, response, body = browser.post(citizen, form)
    _expect("password", status, 302, body, response)
    otp_path = _path_of(response.getheader("Location"), "password")
    token = form["csrf_token"]  # Flask-WTF's token is per session: the lean flow reuses it
    if not st.lean:
        status, response, body = browser.get(otp_path)
        _expect("otp page", status, 200, body, response)
        token = _csrf("otp page", body)
    code = st.outbox.take(account.phone)
    status, response, body = browser.post(otp_path, {"csrf_token": token, "otp": code})
    _expect("otp", status, 302, body, response)
    resume = _path_of(response.getheader("Location"), "otp")
    if not resume.startswith("/authorize/resume/"):
        raise BenchError(f"otp: expected a redirect to /authorize/resume/, got {resume!r}")
    status, response, body = browser.get(resume)
    _expect("resume", status, 302, body, response)
    code = _callback_code(st, "resume", response.getheader("Location"), PORTAL_CALLBACK, state)
    browser.http.close()  # the browser leaves for the portal
    tokens = _exchange(st, "token (sign-in)", PORTAL_ID, code, verifier, PORTAL_CALLBACK)
    if _jwt_claims(tokens["id_token"]).get("nonce") != nonce:
        raise BenchError("token (sign-in): the ID token's nonce differs")
    status, response, body = st.rp_http().request(
        "GET", "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}
    )
    _expect("userinfo", status, 200, body, response)
    if "sub" not in json.loads(body):
        raise BenchError("userinfo: no sub")
    if st.sso is not None:
        st.sso.close()
    st.sso = browser


def sso_code(st: ClientState, client_id: str, redirect_uri: str, scope: str) -> tuple[str, str]:
    """An authorization answered at once from the SSO session: (code, verifier)."""
    assert st.sso is not None, "no browser has signed in yet"
    path, verifier, state, _ = _authorize_query(client_id, redirect_uri, scope)
    status, response, body = st.sso.get(path)
    _expect("authorize (SSO)", status, 302, body, response)
    return _callback_code(
        st, "authorize (SSO)", response.getheader("Location"), redirect_uri, state
    ), verifier


def refresh(st: ClientState, public: bool) -> None:
    pool = st.mobile_refresh if public else st.portal_refresh
    i = st.turn % len(pool)
    st.turn += 1
    form = {"grant_type": "refresh_token", "refresh_token": pool[i]}
    headers = {"Content-Type": FORM}
    if public:
        form["client_id"] = MOBILE_ID
    else:
        headers["Authorization"] = _basic(PORTAL_ID, PORTAL_SECRET)
    step = "refresh (public)" if public else "refresh (confidential)"
    status, response, body = st.rp_http().request("POST", "/token", urlencode(form).encode(), headers)
    _expect(step, status, 200, body, response)
    tokens = json.loads(body)
    if "access_token" not in tokens:
        raise BenchError(f"{step}: no access_token")
    if public:
        new = tokens.get("refresh_token")
        if not new or new == pool[i]:
            raise BenchError(f"{step}: the public client's refresh token was not rotated")
        pool[i] = new


def health(st: ClientState) -> None:
    status, response, body = st.rp_http().request("GET", "/health")
    _expect("health", status, 200, body, response)


def _timed(latencies: list[float], fn: Any, *args: Any) -> Any:
    t0 = time.perf_counter()
    result = fn(*args)
    latencies.append(time.perf_counter() - t0)
    return result


def run_client_phase(st: ClientState, kind: str, n: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    done = 0
    if kind == "signin":
        for _ in range(n):
            _timed(latencies, sign_in, st)
            done += 1
    elif kind == "codes":
        st.codes = []
        for _ in range(n):
            st.codes.append(_timed(latencies, sso_code, st, PORTAL_ID, PORTAL_CALLBACK, "openid profile"))
            done += 1
    elif kind == "exchange":
        for code, verifier in st.codes:
            _timed(
                latencies,
                _exchange,
                st,
                "token (exchange)",
                PORTAL_ID,
                code,
                verifier,
                PORTAL_CALLBACK,
            )
            done += 1
        st.codes = []
    elif kind == "setup_refresh":
        for client_id, redirect_uri, pool in (
            (PORTAL_ID, PORTAL_CALLBACK, st.portal_refresh),
            (MOBILE_ID, MOBILE_CALLBACK, st.mobile_refresh),
        ):
            for _ in range(n):
                code, verifier = sso_code(st, client_id, redirect_uri, "openid profile offline_access")
                tokens = _exchange(st, "token (offline_access)", client_id, code, verifier, redirect_uri)
                if "refresh_token" not in tokens:
                    raise BenchError(f"{client_id}: offline_access gave no refresh token")
                pool.append(tokens["refresh_token"])
                done += 1
    elif kind == "health":
        for _ in range(n):
            _timed(latencies, health, st)
            done += 1
    elif kind in ("refresh_conf", "refresh_pub"):
        for _ in range(n):
            _timed(latencies, refresh, st, kind == "refresh_pub")
            done += 1
    elif kind == "reconnect":
        if st.rp is not None:
            st.rp.close()
        if st.sso is not None:
            st.sso.http.close()
    else:
        raise BenchError(f"unknown phase {kind}")
    return done, latencies


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_main(conn: Any, cpus: set[int] | None) -> None:
    """A load-generating process: receives phases over its pipe, answers with counts and CPU."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator handles ^C
    st: ClientState | None = None
    while True:
        message = conn.recv()
        if message[0] == "stop":
            break
        if message[0] == "configure":
            cfg = message[1]
            accounts = [Account(u, p) for u, p in cfg["accounts"]]
            st = ClientState(
                host=cfg["host"],
                port=cfg["port"],
                issuer=cfg["issuer"],
                outbox=OutboxTail(Path(cfg["outbox"]), {a.phone for a in accounts}),
                accounts=accounts,
                cooldown=cfg["cooldown"],
                lean=cfg["lean"],
            )
            conn.send({"ok": True})
            continue
        kind, n = message
        assert st is not None
        cpu0, t0 = _cpu_self(), time.perf_counter()
        result: dict[str, Any] = {"done": 0, "latencies": []}
        try:
            result["done"], result["latencies"] = run_client_phase(st, kind, n)
        except BenchError as exc:
            result["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported and fails the run
            result["error"] = f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc(limit=4)}"
        result["cpu"] = _cpu_self() - cpu0
        result["wall"] = time.perf_counter() - t0
        conn.send(result)


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
            [sys.executable, str(Path(__file__).resolve()), "--_create-accounts", str(spec)], **run
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
                str(Path(__file__).resolve().parent / "profiled_serve.py"),
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


# ================================================================================================
# Orchestration
# ================================================================================================
@dataclass
class Phase:
    name: str
    ops: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    pg_cpu: float | None = None
    redis_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, other: Phase) -> None:
        self.ops += other.ops
        self.wall += other.wall
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        if other.pg_cpu is not None:
            self.pg_cpu = (self.pg_cpu or 0.0) + other.pg_cpu
        self.redis_cpu += other.redis_cpu
        self.latencies.extend(other.latencies)

    def per_op_ms(self, cpu: float | None) -> float | None:
        return None if cpu is None or not self.ops else 1000 * cpu / self.ops

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

        return {
            "ops": self.ops,
            "wall_s": self.wall,
            "ops_per_s_wall": self.ops / self.wall if self.wall else None,
            "server_cpu_s": self.server_cpu,
            "server_cpu_ms_per_op": self.per_op_ms(self.server_cpu),
            "ops_per_server_cpu_s": self.ops / self.server_cpu if self.server_cpu else None,
            "client_cpu_ms_per_op": self.per_op_ms(self.client_cpu),
            "pg_backend_cpu_ms_per_op": self.per_op_ms(self.pg_cpu),
            "redis_cpu_ms_per_op": self.per_op_ms(self.redis_cpu),
            "latency_ms_p50": pct(0.50),
            "latency_ms_p95": pct(0.95),
            "latency_ms_p99": pct(0.99),
        }


class Orchestra:
    def __init__(self, pipes: list[Any], meters: Meters) -> None:
        self.pipes = pipes
        self.meters = meters

    def broadcast(self, kind: str, counts: list[int]) -> list[dict[str, Any]]:
        for pipe, n in zip(self.pipes, counts, strict=True):
            pipe.send((kind, n))
        results = [pipe.recv() for pipe in self.pipes]
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise BenchError(f"phase {kind}: {len(errors)} client(s) failed; first: {errors[0]}")
        return results

    def measure(self, name: str, kind: str, counts: list[int]) -> Phase:
        before = self.meters.sample()
        results = self.broadcast(kind, counts)
        after = self.meters.sample()
        phase = Phase(
            name=name,
            ops=sum(r["done"] for r in results),
            wall=after["t"] - before["t"],
            server_cpu=after["server"] - before["server"],
            client_cpu=sum(r["cpu"] for r in results),
            pg_cpu=pg_delta(before["pg"], after["pg"]),
            redis_cpu=after["redis"] - before["redis"],
        )
        for r in results:
            phase.latencies.extend(r["latencies"])
        if phase.ops != sum(counts):
            raise BenchError(f"phase {name}: {phase.ops} of {sum(counts)} operations completed")
        return phase


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


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


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_phase_table(phases: list[Phase]) -> None:
    head = (
        f"{'phase':<24}{'ops':>7}{'wall s':>8}{'ops/s':>9}{'srv ms/op':>11}{'ops/core-s':>12}"
        f"{'cli ms/op':>11}{'pg ms/op':>10}{'redis ms/op':>12}{'p50 ms':>8}{'p95 ms':>8}"
    )
    print(head)
    print("-" * len(head))
    columns = (
        ("ops_per_s_wall", 9, ".0f"),
        ("server_cpu_ms_per_op", 11, ".3f"),
        ("ops_per_server_cpu_s", 12, ".0f"),
        ("client_cpu_ms_per_op", 11, ".3f"),
        ("pg_backend_cpu_ms_per_op", 10, ".3f"),
        ("redis_cpu_ms_per_op", 12, ".3f"),
        ("latency_ms_p50", 8, ".1f"),
        ("latency_ms_p95", 8, ".1f"),
    )
    for p in phases:
        s = p.summary()
        row = f"{p.name:<24}{s['ops']:>7}{s['wall_s']:>8.2f}"
        row += "".join(f"{fmt(s[key], spec):>{width}}" for key, width, spec in columns)
        print(row)


# ------------------------------------------------------------------------------------------------
# Profiles
# ------------------------------------------------------------------------------------------------
def _package_of(filename: str, funcname: str) -> str:
    if filename == "~":  # C functions: "<method 'x' of 'mod.Type' objects>", "<built-in method m.f>"
        if " of '" in funcname:
            return "C: " + funcname.split(" of '", 1)[1].split("'", 1)[0].split(".")[0]
        return "C: " + funcname.removeprefix("<built-in method ").split(".", 1)[0].rstrip(">")
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/idp/" in filename:
        return "idp"
    if "/bench/" in filename:
        return "bench (profiler glue)"
    return "stdlib:" + Path(filename).stem


# (label, path fragment, function name): inclusive CPU share of spots the lead may want to tune.
SPOTS = (
    ("whole request in gunicorn (handle_request)", "gunicorn/workers/gthread.py", "handle_request"),
    ("  Flask app (wsgi_app)", "flask/app.py", "wsgi_app"),
    ("  HTTP header parsing (gunicorn)", "gunicorn/http/message.py", "parse_headers"),
    ("  access log line (gunicorn)", "gunicorn/glogging.py", "access"),
    ("  Flask session cookie: open", "flask/sessions.py", "open_session"),
    ("  Flask session cookie: save", "flask/sessions.py", "save_session"),
    ("  CSRF token generate", "flask_wtf/csrf.py", "generate_csrf"),
    ("  CSRF token validate", "flask_wtf/csrf.py", "validate_csrf"),
    ("  Jinja2 templates (render_template)", "flask/templating.py", "render_template"),
    ("  flask_babel get_locale", "flask_babel/__init__.py", "get_locale"),
    ("  SQL pool checkout (incl. pre-ping)", "sqlalchemy/pool/base.py", "_checkout"),
    ("    pool_pre_ping (SELECT 1 round trip)", "sqlalchemy/engine/default.py", "_do_ping_w_event"),
    ("  SQL statements (execute + round trip)", "sqlalchemy/engine/base.py", "_execute_context"),
    ("  ORM Session.commit (flush + COMMIT)", "sqlalchemy/orm/scoping.py", "commit"),
    ("  ORM Session.rollback", "sqlalchemy/orm/scoping.py", "rollback"),
    ("  ORM reload of expired attributes", "sqlalchemy/orm/state.py", "_load_expired"),
    ("  ORM session close (teardown)", "sqlalchemy/orm/session.py", "close"),
    ("  Redis commands (idp store._call)", "idp/store/ephemeral.py", "_call"),
    (
        "  client authentication (Authlib)",
        "authlib/oauth2/rfc6749/authorization_server.py",
        "authenticate_client",
    ),
    ("  refresh token lookup (find_refresh_token)", "idp/oidc/tokens.py", "find_refresh_token"),
    ("  refresh token rotation", "idp/oidc/tokens.py", "rotate_refresh_token"),
    ("  code consume (Redis script)", "idp/oidc/tokens.py", "consume_code"),
    ("  grant + refresh token INSERT (create_grant)", "idp/oidc/tokens.py", "create_grant"),
    ("  access token issue (Redis SET)", "idp/oidc/tokens.py", "issue_access_token"),
    ("  access token load (userinfo)", "idp/oidc/tokens.py", "load_access_token"),
    ("  ID token (claims + signature)", "idp/oidc/server.py", "id_token"),
    ("    JWS signature (ES256)", "idp/oidc/keys.py", "sign"),
    (
        "  authorization request validation",
        "authlib/oauth2/rfc6749/authorization_server.py",
        "get_consent_grant",
    ),
    (
        "  code issue (create_authorization_response)",
        "authlib/oauth2/rfc6749/grants/authorization_code.py",
        "create_authorization_response",
    ),
    ("  citizen lookup (find_citizen)", "idp/identity/accounts.py", "find_citizen"),
    ("  password verify (argon2id)", "idp/identity/passwords.py", "verify"),
    ("  OTP send (Redis + SMS outbox)", "idp/flows/otp.py", "send"),
    ("  OTP verify", "idp/flows/otp.py", "verify"),
    ("  audit record", "idp/identity/audit.py", "record"),
    ("  JSON dumps (stdlib)", "json/__init__.py", "dumps"),
)

# Flask views, for the share of each endpoint in a multi-request operation (the sign-in).
VIEWS = (
    ("GET /authorize", "idp/oidc/views.py", "authorize"),
    ("GET /login/<ix> (chooser)", "idp/flows/chooser.py", "login"),
    ("GET+POST /login/<ix>/citizen", "idp/flows/citizen.py", "citizen"),
    ("GET+POST /login/<ix>/otp", "idp/flows/citizen.py", "otp"),
    ("GET /authorize/resume/<ix>", "idp/oidc/views.py", "resume"),
    ("POST /token", "idp/oidc/views.py", "token"),
    ("GET /userinfo", "idp/oidc/views.py", "userinfo"),
    ("GET /health", "idp/health.py", "live"),
)


def _inclusive(raw: dict[Any, Any], fragment: str, func: str) -> tuple[float, int]:
    """(cumulative seconds, calls) of the outermost matching function (nested matches not added)."""
    best = (0.0, 0)
    for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in raw.items():
        if name == func and filename.endswith(fragment) and ct > best[0]:
            best = (ct, nc)
    return best


def profile_report(path: Path, ops: int, top: int) -> str:
    import pstats

    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-9
    per = max(ops, 1)
    lines = [
        f"== profile {path.stem}: {ops} ops, {1000 * total / per:.3f} ms profiled CPU/op "
        "(cProfile on the thread CPU clock: absolute times inflated, shares meaningful)"
    ]
    lines.append("  where the time goes (inclusive share of the phase's CPU, calls per op):")
    for label, fragment, func in SPOTS:
        ct, nc = _inclusive(raw, fragment, func)
        if nc:
            lines.append(f"    {100 * ct / total:5.1f}%  {nc / per:6.1f}/op  {label}")
    views = [(label, *_inclusive(raw, fragment, func)) for label, fragment, func in VIEWS]
    if sum(1 for v in views if v[2]) > 1:
        lines.append("  by endpoint (inclusive share, calls per op):")
        for label, ct, nc in views:
            if nc:
                lines.append(f"    {100 * ct / total:5.1f}%  {nc / per:6.1f}/op  {label}")
    packages: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        key = _package_of(filename, func)
        packages[key] = packages.get(key, 0.0) + tt
    lines.append("  self time by package:")
    for name, tt in sorted(packages.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"    {100 * tt / total:5.1f}%  {name}")
    lines.append("  top functions by self time:")
    by_self = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, func), (_cc, nc, tt, _ct, _callers) in by_self:
        where = _short(filename, line)
        lines.append(f"    {100 * tt / total:5.1f}%  {nc / per:7.1f}/op  {func}  {where}")
    return "\n".join(lines)


def _short(filename: str, line: int) -> str:
    if filename == "~":
        return ""
    if "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    elif str(ROOT) in filename:
        filename = filename.replace(str(ROOT) + "/", "")
    else:
        filename = Path(filename).name
    return f"{filename}:{line}"


# ------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--signins", type=int, default=400, help="complete sign-ins measured (default 400)")
    add("--exchanges", type=int, default=3000, help="code exchanges measured (default 3000)")
    add("--refreshes", type=int, default=4000, help="refresh grants per client kind (default 4000)")
    add("--health", type=int, default=2000, help="GET /health requests, the floor (default 2000)")
    add("--quick", action="store_true", help="a quarter of every count (development)")
    add("--clients", type=int, default=4, help="load-generating processes (default 4)")
    add("--threads", type=int, default=4, help="threads of the one gunicorn worker (default 4)")
    add(
        "--signin-hash",
        choices=("minimal", "production"),
        default="minimal",
        help="argon2id cost of the citizens' stored hashes in the sign-in phase: minimal (m=8 KiB, "
        "t=1; default) or production (m=19 MiB, t=2); the verification cost measured "
        "in-process at the same parameters is subtracted either way",
    )
    add(
        "--signin-flow",
        choices=("browser", "lean"),
        default="browser",
        help="browser (default): 9 requests as a browser makes them; lean: 7, without loading "
        "the chooser and the OTP page",
    )
    add("--argon2-seconds", type=float, default=2.0, help="time measuring argon2id (default 2 s)")
    add("--pin", action="store_true", help="pin idp to --server-cpu, the load to the other CPUs")
    add("--server-cpu", type=int, default=0)
    add(
        "--profile",
        action="store_true",
        help="run idp under cProfile (CPU clock) and print where time goes per phase; the CPU "
        "figures of such a run are inflated and not for the record",
    )
    add("--top", type=int, default=20, help="functions listed per profile (default 20)")
    add("--json", type=Path, default=None, help="write the results as JSON here")
    add("--keep", action="store_true", help="keep the temporary folder (server log, outbox)")
    add(
        "--pg-admin-url",
        default=os.environ.get("IDP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL database to connect to for CREATE/DROP DATABASE",
    )
    add("--redis-url", default=os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    add("--_create-accounts", dest="create_accounts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.signins = max(20, args.signins // 4)
        args.exchanges = max(100, args.exchanges // 4)
        args.refreshes = max(100, args.refreshes // 4)
        args.health = max(100, args.health // 4)
    # Enough citizens that none is reused within the 1 s OTP cooldown at any plausible rate.
    args.accounts = max(50, 100 * args.clients)
    return args


def print_header(stamp: str, info: dict[str, Any]) -> None:
    load = info["loadavg_start"]
    print("idp benchmark", stamp)
    print(
        f"machine: {info['cpu_model']}, {info['cores_online']} cores online "
        f"({info['cores_usable']} usable), {info['memory']}, Linux {info['kernel']}"
    )
    print(f"software: Python {info['python']}, PostgreSQL {info['postgresql']}, Redis {info['redis']}")
    print(
        f"python speed: {info['python_speed_ms']:.1f} ms CPU for bench/run.py's fixed workload "
        "(lower is faster; compares machines)"
    )
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    busy = "   << the machine is busy: figures indicative only" if load[0] > 0.5 else ""
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load)}{busy}\n")


ROUND = 200  # codes per client process per round: codes live 60 s, issue and exchange in rounds


def run_phases(
    args: argparse.Namespace,
    pipes: list[Any],
    signin_argon2: dict[str, int],
    profile_dir: Path | None,
    info: dict[str, Any],
) -> dict[str, Phase]:
    """Set everything up, warm up, measure every phase; raises BenchError on any failure."""
    phases: dict[str, Phase] = {}
    print(
        f"setting up: database, Redis prefix, keys, clients, {args.accounts} citizens "
        f"(argon2id m={signin_argon2['memory_kib']} KiB t={signin_argon2['time_cost']}) ...",
        flush=True,
    )
    with environment(args, signin_argon2) as s:
        server = Server(s, args, profile_dir)
        meters: Meters | None = None
        try:
            meters = Meters(server.proc.pid, args.pg_admin_url, s.db_name, args.redis_url)
            pinned = f"; idp pinned to CPU {args.server_cpu}" if args.pin else ""
            print(
                f"idp serve: master {server.proc.pid}, worker {meters.workers[0]}, "
                f"1 worker x {args.threads} threads, port {s.port}; "
                f"load: {args.clients} client processes{pinned}",
                flush=True,
            )
            for i, pipe in enumerate(pipes):
                pipe.send(
                    (
                        "configure",
                        {
                            "host": s.host,
                            "port": s.port,
                            "issuer": f"http://127.0.0.1:{s.port}",
                            "outbox": str(s.outbox),
                            "accounts": s.accounts[i :: args.clients],
                            "cooldown": 1.1,
                            "lean": args.signin_flow == "lean",
                        },
                    )
                )
                pipe.recv()
            orch = Orchestra(pipes, meters)
            n = args.clients

            def measured(name: str, kind: str, total: int, profile_name: str | None = None) -> Phase:
                orch.broadcast("reconnect", [0] * n)
                if profile_dir is not None:
                    server.control("action=reset")
                phase = orch.measure(name, kind, split(total, n))
                if profile_dir is not None:
                    server.control(f"action=dump&phase={profile_name or name}")
                return phase

            print("warming up ...", flush=True)
            orch.broadcast("health", [50] * n)
            orch.broadcast("signin", [3] * n)
            orch.broadcast("codes", [30] * n)
            orch.broadcast("exchange", [0] * n)
            orch.broadcast("setup_refresh", [5] * n)
            orch.broadcast("refresh_conf", [50] * n)
            orch.broadcast("refresh_pub", [50] * n)

            before = meters.server_cpu()
            time.sleep(2.0)
            idle = (meters.server_cpu() - before) / 2.0
            info["server_idle_cpu_ms_per_s"] = 1000 * idle
            print(f"idle idp: {1000 * idle:.1f} ms CPU per second with no requests", flush=True)
            print(f"phase: {args.health} GET /health (the floor of one request) ...", flush=True)
            phases["health"] = measured("health", "health", args.health)
            print(f"phase: {args.signins} complete sign-ins ...", flush=True)
            phases["signin"] = measured("signin", "signin", args.signins)
            print(
                f"phase: {args.exchanges} SSO authorizations and code exchanges, "
                f"in rounds of {ROUND * n} ...",
                flush=True,
            )
            authorize, exchange = Phase("authorize_sso"), Phase("exchange")
            remaining, rounds = args.exchanges, 0
            while remaining > 0:
                size = min(ROUND * n, remaining)
                authorize.add(measured("authorize_sso", "codes", size, f"authorize_sso-{rounds}"))
                exchange.add(measured("exchange", "exchange", size, f"exchange-{rounds}"))
                remaining -= size
                rounds += 1
            phases["authorize_sso"], phases["exchange"] = authorize, exchange
            print(f"phase: {args.refreshes} refresh grants, confidential client ...", flush=True)
            phases["refresh_conf"] = measured("refresh_conf", "refresh_conf", args.refreshes)
            print(
                f"phase: {args.refreshes} refresh grants, public client with rotation ...",
                flush=True,
            )
            phases["refresh_pub"] = measured("refresh_pub", "refresh_pub", args.refreshes)
            info["loadavg_end"] = os.getloadavg()
            log = server.tail(10**9).splitlines()
            bad = [line for line in log if "Traceback" in line or "[ERROR]" in line]
            if bad:
                raise BenchError("the server logged errors:\n" + "\n".join(bad[:10]))
        except BenchError as exc:
            raise BenchError(f"{exc}\n--- server log (tail) ---\n{server.tail()}") from None
        finally:
            if meters is not None:
                meters.close()
            server.stop()
    return phases


def report(
    args: argparse.Namespace,
    phases: dict[str, Phase],
    argon_prod: dict[str, float],
    argon_signin: dict[str, float],
    signin_argon2: dict[str, int],
    info: dict[str, Any],
) -> dict[str, Any]:
    print()
    if args.profile:
        print("NOTE: --profile run: idp ran under cProfile; every CPU figure below is inflated.\n")
    print_phase_table(list(phases.values()))
    print("  srv = idp (gunicorn master + its one worker), /proc/<pid>/stat; ops/core-s = operations")
    print("  per second of idp CPU; cli = load generator; pg = PostgreSQL backends of the bench")
    print("  database; redis = the whole Redis server (shared with anyone else using it);")
    print("  p50/p95 = latency of one operation (a sign-in: all its requests and the OTP read).")
    signin = phases["signin"].summary()
    raw_ms = signin["server_cpu_ms_per_op"]
    excluded_ms = raw_ms - argon_signin["cpu_ms"]
    conf, pub = phases["refresh_conf"].summary(), phases["refresh_pub"].summary()
    exch = phases["exchange"].summary()
    worst_refresh = min(conf["ops_per_server_cpu_s"], pub["ops_per_server_cpu_s"])
    logins_per_core = 1000 / (excluded_ms + argon_prod["cpu_ms"])

    def verdict(ok: bool) -> str:
        return "meets the goal" if ok else "MISSES the goal"

    m, t = signin_argon2["memory_kib"], signin_argon2["time_cost"]
    print("\nHEADLINE FIGURES (goals: DESIGN §9)")
    steps = (
        "authorize, chooser, citizen page, password, OTP page, OTP, resume, token, userinfo"
        if args.signin_flow == "browser"
        else "lean: authorize, citizen page, password, OTP, resume, token, userinfo"
    )
    print(f"(1) server CPU per complete code+PKCE sign-in ({steps};")
    print(f"    stored hashes m={m} KiB t={t}):")
    print(
        f"      raw {raw_ms:.3f} ms - argon2id verify at m={m} KiB t={t} "
        f"{argon_signin['cpu_ms']:.3f} ms (in-process)"
    )
    print(
        f"      = {excluded_ms:.3f} ms with the password hash excluded   "
        f"goal <= {TARGET_SIGNIN_MS} ms: {verdict(excluded_ms <= TARGET_SIGNIN_MS)}"
    )
    print(
        f"(2) refresh grants per core: confidential {conf['ops_per_server_cpu_s']:.0f}/s "
        f"({conf['server_cpu_ms_per_op']:.3f} ms each),"
    )
    print(
        f"    public with rotation {pub['ops_per_server_cpu_s']:.0f}/s "
        f"({pub['server_cpu_ms_per_op']:.3f} ms each)   goal >= {TARGET_REFRESH_PER_CORE}: "
        f"{verdict(worst_refresh >= TARGET_REFRESH_PER_CORE)}"
    )
    print(
        f"    wall-clock, one worker: confidential {conf['ops_per_s_wall']:.0f}/s, "
        f"public {pub['ops_per_s_wall']:.0f}/s"
    )
    print(
        f"(3) code exchanges per core: {exch['ops_per_server_cpu_s']:.0f}/s "
        f"({exch['server_cpu_ms_per_op']:.3f} ms each); wall-clock {exch['ops_per_s_wall']:.0f}/s"
    )
    print(
        f"(4) argon2id verifications per core at m=19 MiB t=2 p=1: "
        f"{argon_prod['per_core']:.1f}/s ({argon_prod['cpu_ms']:.2f} ms CPU each)"
    )
    print(
        f"    => password sign-ins per core (1) + one verify: {logins_per_core:.1f}/s   "
        f"goal >= {TARGET_PASSWORD_LOGINS_PER_CORE}: "
        f"{verdict(logins_per_core >= TARGET_PASSWORD_LOGINS_PER_CORE)}"
    )
    floor = phases["health"].summary()["server_cpu_ms_per_op"]
    print(f"floor: GET /health costs {floor:.3f} ms of idp CPU (gunicorn + Flask, no storage)")
    loads = info.get("loadavg_end", info["loadavg_start"])
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in loads)}")
    return {
        "signin_server_cpu_ms_raw": raw_ms,
        "signin_server_cpu_ms_hash_excluded": excluded_ms,
        "refresh_confidential_per_core": conf["ops_per_server_cpu_s"],
        "refresh_public_per_core": pub["ops_per_server_cpu_s"],
        "code_exchanges_per_core": exch["ops_per_server_cpu_s"],
        "argon2_verifies_per_core": argon_prod["per_core"],
        "password_signins_per_core": logins_per_core,
        "health_server_cpu_ms": floor,
    }


def main() -> int:
    args = parse_args()
    if args.create_accounts:
        _create_accounts(args.create_accounts)
        return 0
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    profile_dir = RESULTS / f"profile-{stamp}" if args.profile else None
    info = machine()
    info.update(service_versions(args))
    print_header(stamp, info)

    print("measuring argon2id verification in-process ...", flush=True)
    argon_prod = measure_argon2(**PRODUCTION_ARGON2, seconds=args.argon2_seconds)
    if args.signin_hash == "production":
        signin_argon2, argon_signin = PRODUCTION_ARGON2, argon_prod
    else:
        signin_argon2 = MINIMAL_ARGON2
        argon_signin = measure_argon2(**MINIMAL_ARGON2, seconds=min(1.0, args.argon2_seconds))

    # The load generator first: fork before this process holds any connection.
    ctx = mp.get_context("fork")
    cpus = sorted(os.sched_getaffinity(0))
    client_cpus = {c for c in cpus if c != args.server_cpu} if args.pin and len(cpus) > 1 else None
    pipes, procs = [], []
    for _ in range(args.clients):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_main, args=(child, client_cpus), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    failure = None
    try:
        phases = run_phases(args, pipes, signin_argon2, profile_dir, info)
    except BenchError as exc:
        failure = str(exc)
    except KeyboardInterrupt:
        failure = "interrupted"
    finally:
        for pipe in pipes:
            with contextlib.suppress(Exception):
                pipe.send(("stop",))
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    if failure:
        print("\n" + "!" * 78, file=sys.stderr)
        print("BENCHMARK FAILED: " + failure, file=sys.stderr)
        print("!" * 78, file=sys.stderr)
        return 1

    headline = report(args, phases, argon_prod, argon_signin, signin_argon2, info)
    results = {
        "stamp": stamp,
        "machine": info,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "argon2_production": argon_prod,
        "argon2_signin": argon_signin,
        "phases": {k: v.summary() for k, v in phases.items()},
        "headline": headline,
        "profiled": args.profile,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.json or RESULTS / f"run-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"results written to {out}")

    if profile_dir is not None:
        round_ops = min(ROUND * args.clients, args.exchanges)
        for name, ops in (
            ("signin", phases["signin"].ops),
            ("refresh_conf", phases["refresh_conf"].ops),
            ("refresh_pub", phases["refresh_pub"].ops),
            ("exchange-0", round_ops),
            ("authorize_sso-0", round_ops),
            ("health", phases["health"].ops),
        ):
            path = profile_dir / f"{name}.pstats"
            if path.exists():
                print("\n" + profile_report(path, ops, args.top))
        print(f"\nprofiles (pstats) in {profile_dir}, e.g.")
        print(f"  python -m pstats {profile_dir}/refresh_conf.pstats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
