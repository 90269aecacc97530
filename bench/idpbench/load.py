"""The load: client processes that sign in, exchange codes and refresh like browsers and apps do (plain http.client, keep-alive, a cookie jar per browser), checking every answer."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import resource
import secrets
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from idpbench.common import (
    CSRF,
    FORM,
    MOBILE_CALLBACK,
    MOBILE_ID,
    OTP_CODE,
    PASSWORD,
    PORTAL_CALLBACK,
    PORTAL_ID,
    PORTAL_SECRET,
    BenchError,
)


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
