"""A register gateway stub speaking docs/verifiers.md, for the HTTP adapters' tests.

Runs stdlib ``http.server`` in a thread on 127.0.0.1 (random port), optionally over TLS that requires
a client certificate. It answers from the sandbox dataset the way the contract says a gateway
compares (``full_name_key`` against the record's accent-free name), and a test can script the next
replies (a status, a delay, a raw body, an oversized answer) to provoke each failure. Every request
that reaches it is recorded, so a test can tell whether the adapter called, and how often.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idp.identity.identifiers import accent_free_name, normalize_phone, parse_date
from idp.verifiers.sandbox import DEFAULT_DATASET

TOKEN = "stub-token-0123456789"


@dataclass(frozen=True)
class Reply:
    """A scripted reply. ``body=None`` means the contract's normal answer for the request."""

    status: int = 200
    body: bytes | None = None
    delay: float = 0.0  # seconds to wait before answering (longer than the read timeout: a timeout)
    oversize: int = 0  # stream this many bytes of a JSON string instead of the answer
    content_length: bool = True  # declare Content-Length (False: the body ends when the stub closes)
    drip: float = 0.0  # send the body one byte every this many seconds


def json_reply(document: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=json.dumps(document, ensure_ascii=False).encode("utf-8"))


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Record:
    id_number: str
    full_name: str
    birth_date: str
    gender: str
    id_issue_date: str | None
    phones: list[str]
    bhxh_code: str | None
    legacy_id_number: str | None

    def person(self) -> dict[str, str]:
        values = {
            "id_number": self.id_number,
            "full_name": self.full_name,
            "birth_date": self.birth_date,
            "gender": self.gender,
            "phone": self.phones[0] if self.phones else None,
            "legacy_id_number": self.legacy_id_number,
        }
        return {k: v for k, v in values.items() if v is not None}


def _iso(value: str | None) -> str | None:
    return parse_date(value).isoformat() if value else None


def _records() -> tuple[list[_Record], dict[str, str]]:
    document = json.loads(DEFAULT_DATASET.read_text(encoding="utf-8"))
    records = [
        _Record(
            id_number=p["id_number"],
            full_name=p["full_name"],
            birth_date=_iso(p["birth_date"]) or "",
            gender=p["gender"],
            id_issue_date=_iso(p.get("id_issue_date")),
            phones=[normalize_phone(n) for n in p.get("phones", [])],
            bhxh_code=p.get("bhxh_code"),
            legacy_id_number=p.get("legacy_id_number"),
        )
        for p in document["people"]
    ]
    subscribers = {normalize_phone(s["phone"]): s["id_number"] for s in document["subscribers"]}
    return records, subscribers


class RegisterStub:
    """``with RegisterStub() as stub: ... stub.base_url ... stub.script(Reply(status=503))``."""

    def __init__(self, *, token: str | None = TOKEN, tls: ssl.SSLContext | None = None) -> None:
        self.token = token
        self.seen: list[Seen] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.records, self.subscribers = _records()
        self.server = _Server(("127.0.0.1", 0), _handler(self), tls)
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/gw"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> RegisterStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget the requests seen and the replies not used (one stub serves a whole test module)."""
        with self._lock:
            self.seen.clear()
            self._replies.clear()

    def script(self, *replies: Reply) -> None:
        """The next requests get these replies, in order; then the contract's answers again."""
        with self._lock:
            self._replies.extend(replies)

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self.seen if path is None or s.path.endswith(path))

    def _next_reply(self, seen: Seen) -> Reply | None:
        with self._lock:
            self.seen.append(seen)
            return self._replies.popleft() if self._replies else None

    # -- the contract's answers -----------------------------------------------------------------------
    @staticmethod
    def reference(path: str, body: Any) -> str:
        digest = hashlib.sha256(f"{path}{json.dumps(body, sort_keys=True)}".encode()).hexdigest()
        return f"GW-{digest[:20]}"

    def answer(self, path: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"error": "a JSON object is required"}
        ref = self.reference(path, body)
        if path == "/gw/v1/subscribers/check":
            if not isinstance(body.get("phone"), str) or not isinstance(body.get("id_number"), str):
                return 400, {"error": "phone and id_number are required"}
            owner = self.subscribers.get(body["phone"])
            if owner is None:
                return 404, {"reason": "no_record", "reference": ref}
            return 200, {"reference": ref, "match": owner == body["id_number"]}
        routes = {
            "/gw/v1/citizens/check": ("id_number", ("gender", "id_issue_date", "phone")),
            "/gw/v1/citizens/legacy-check": ("legacy_id_number", ()),
            "/gw/v1/insured/check": ("bhxh_code", ()),
        }
        if path not in routes:
            return 404, None  # a wrong path: no no-record answer
        key, optional = routes[path]
        if not all(isinstance(body.get(k), str) for k in (key, "full_name_key", "birth_date")):
            return 400, {"error": f"{key}, full_name_key and birth_date are required"}
        record = next((r for r in self.records if getattr(r, key) == body[key]), None)
        if record is None:
            return 404, {"reason": "no_record", "reference": ref}
        mismatched = []
        if body["full_name_key"] != accent_free_name(record.full_name):
            mismatched.append("full_name")
        if body["birth_date"] != record.birth_date:
            mismatched.append("birth_date")
        for name in optional:
            if name in body:
                value = record.phones if name == "phone" else [getattr(record, name)]
                if body[name] not in value:
                    mismatched.append(name)
        if mismatched:
            return 200, {"reference": ref, "match": False, "mismatched": mismatched}
        return 200, {"reference": ref, "match": True, "mismatched": [], "person": record.person()}


class _Server(ThreadingHTTPServer):
    """Threads per request; TLS handshakes run in the request's thread, not the accepting one."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(address, handler)
        self.tls = tls

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeouts, oversized answers) are expected here

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        connection = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            connection.settimeout(5)
            connection.do_handshake()
        except (ssl.SSLError, OSError):
            # In TLS 1.3 the client learns that its certificate was refused only after it sent its
            # request: closing at once would reset the connection before it reads our alert.
            time.sleep(0.3)
            connection.close()
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            self.shutdown_request(connection)


def _handler(stub: RegisterStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            self._serve(body)

        def _serve(self, body: Any) -> None:
            seen = Seen(self.command, self.path, dict(self.headers.items()), body)
            reply = stub._next_reply(seen)
            try:
                if reply is not None and reply.delay:
                    time.sleep(reply.delay)
                if stub.token and self.headers.get("Authorization") != f"Bearer {stub.token}":
                    self._send(401, b'{"error": "unauthorized"}')
                elif reply is not None and reply.oversize:
                    self._stream_oversized(reply)
                elif reply is not None and reply.body is not None:
                    self._send(reply.status, reply.body, reply.content_length, reply.drip)
                else:
                    status, document = stub.answer(self.path, body)
                    if reply is not None and reply.status != 200:
                        status, document = reply.status, {"error": "scripted"}
                    payload = b"not found" if document is None else json.dumps(document).encode()
                    self._send(status, payload)
            except OSError:
                pass  # the client gave up (timeout, oversized answer): nothing to do

        def _send(self, status: int, payload: bytes, content_length: bool = True, drip: float = 0.0) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if content_length:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not drip:
                self.wfile.write(payload)
                return
            for index in range(len(payload)):
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
                time.sleep(drip)

        def _stream_oversized(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if reply.content_length:
                self.send_header("Content-Length", str(reply.oversize + 10))
            self.end_headers()
            self.wfile.write(b'{"pad": "')
            chunk = b"x" * 16384
            for _ in range(reply.oversize // len(chunk) + 1):
                self.wfile.write(chunk)
            self.wfile.write(b'"}')

    return Handler


# -- a throwaway PKI for mutual TLS -------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path = field(default=Path())  # a CA that signed nothing here

    def server_context(self) -> ssl.SSLContext:
        """TLS for the stub: its certificate, and a client certificate from ``ca`` required."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        context.load_verify_locations(self.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str, *, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in ``directory``."""
    ca, ca_key = _ca("Register stub test CA")
    server, server_key = _leaf(ca, ca_key, "127.0.0.1", server=True)
    client, client_key = _leaf(ca, ca_key, "idp register client", server=False)
    other, _ = _ca("Unrelated test CA")
    return Pki(
        ca=_write_cert(ca, directory / "ca.pem"),
        server_cert=_write_cert(server, directory / "server.pem"),
        server_key=_write_key(server_key, directory / "server.key"),
        client_cert=_write_cert(client, directory / "client.pem"),
        client_key=_write_key(client_key, directory / "client.key"),
        other_ca=_write_cert(other, directory / "other-ca.pem"),
    )
