"""Relying parties declared in clients.yaml (RFC 7591 field names), validated at start-up.

A relying party is one entry of the top-level ``clients:`` list. Secrets appear only as
``client_secret_hash`` (from ``idp clients hash-secret``) or ``client_secret_env`` (the name of an
environment variable holding the secret). Redirect URIs are matched exactly; RFC 8252 loopback
redirects of public (native) clients match on any port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from idp.config import is_loopback_host
from idp.identity.assurance import ACR_VALUES

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SIGNING_ALGS = ("ES256", "RS256")
KNOWN_FIELDS = frozenset(
    {
        "client_id",
        "client_name",
        "redirect_uris",
        "post_logout_redirect_uris",
        "grant_types",
        "token_endpoint_auth_method",
        "client_secret_hash",
        "client_secret_env",
        "jwks",
        "jwks_uri",
        "scope",
        "id_token_signed_response_alg",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
        "default_acr_values",
        "require_acr",
        "first_party",
        "require_pkce",
        "resource_server",
        "application_type",
        "contacts",
        "logo_uri",
        "client_uri",
    }
)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,119}$")
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
_HASH_PREFIX = "hmac-sha256"
# idp's own account pages (/account) sign people in as a relying party of idp: see account_client.
ACCOUNT_CLIENT_ID = "idp-account"
ACCOUNT_CLIENT_NAME = "trang quản lý tài khoản"  # msgid, translated where shown (idp.web.pages.page)


class ClientConfigError(ValueError):
    """clients.yaml is wrong; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class ClientConfig:
    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    token_endpoint_auth_method: str
    scope: tuple[str, ...]
    id_token_signed_response_alg: str
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    default_acr_values: tuple[str, ...]
    require_acr: str | None
    first_party: bool
    require_pkce: bool
    resource_server: bool
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    secret_digest: str | None = field(default=None, repr=False)
    # The environment variable that holds the secret (client_secret_env), when the entry names one.
    secret_env: str | None = None

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105 - a method name, not a secret

    def check_secret(self, secret: str) -> bool:
        return self.secret_digest is not None and verify_secret(self.secret_digest, secret)

    def matches_redirect_uri(self, uri: str) -> bool:
        # RFC 8252 §7.3: any port for the loopback redirect of a native app (a public client),
        # which cannot know its port in advance; a confidential client's URI matches exactly.
        return any(
            _same_uri(registered, uri, any_loopback_port=self.is_public) for registered in self.redirect_uris
        )

    def matches_post_logout_redirect_uri(self, uri: str) -> bool:
        return any(
            _same_uri(registered, uri, any_loopback_port=self.is_public)
            for registered in self.post_logout_redirect_uris
        )


def hash_secret(secret: str) -> str:
    """Keyed SHA-256 digest for clients.yaml: HMAC-SHA256 under a random per-secret key."""
    salt = secrets.token_bytes(16)
    digest = hmac.new(salt, secret.encode(), hashlib.sha256).digest()
    return f"{_HASH_PREFIX}${_b64(salt)}${_b64(digest)}"


def verify_secret(stored: str, secret: str) -> bool:
    try:
        prefix, salt, digest = stored.split("$")
        key, expected = _unb64(salt), _unb64(digest)
    except ValueError:
        return False
    if prefix != _HASH_PREFIX:
        return False
    actual = hmac.new(key, secret.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(actual, expected)


def generate_secret() -> str:
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same_uri(registered: str, presented: str, *, any_loopback_port: bool) -> bool:
    if registered == presented:
        return True
    if not any_loopback_port:
        return False
    reg, pre = urlsplit(registered), urlsplit(presented)
    # RFC 8252 §7.3: a loopback redirect matches whatever port the native app listens on.
    return (
        reg.scheme == "http"
        and pre.scheme == "http"
        and is_loopback_host(reg.hostname)
        and reg.hostname == pre.hostname
        and reg.path == pre.path
        and reg.query == pre.query
        and not pre.fragment
        and not pre.username
        and not pre.password
    )


def check_redirect_uri(uri: Any) -> str | None:
    """Why `uri` may not be registered as a redirect URI, or None when it may."""
    if not isinstance(uri, str) or not uri:
        return "must be a non-empty string"
    if "*" in uri:
        return "wildcards are not allowed"
    if any(ch.isspace() for ch in uri):
        return "must not contain spaces"
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme:
        return "must be an absolute URI"
    if scheme in _FORBIDDEN_SCHEMES:
        return f"the {scheme}: scheme is not allowed"
    if parts.fragment or uri.endswith("#"):
        return "must not contain a fragment"
    if scheme == "https":
        if not parts.hostname:
            return "must name a host"
        return None
    if scheme == "http":
        if is_loopback_host(parts.hostname):
            return None
        return "must use https (plain http only for loopback addresses)"
    if "." not in scheme:
        return "a private-use scheme must be a reverse domain name (for example vn.gov.app)"
    return None


def _fail(path: Path, index: int, client_id: Any, message: str) -> ClientConfigError:
    name = f"'{client_id}'" if client_id else "(no client_id)"
    return ClientConfigError(f"{path}: client {name} (entry {index + 1}): {message}")


def _uri_list(entry: dict[str, Any], key: str, fail) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list):
        raise fail(f"{key} must be a list")
    for i, uri in enumerate(value):
        problem = check_redirect_uri(uri)
        if problem:
            raise fail(f"{key}[{i}] {uri!r}: {problem}")
    if len(set(value)) != len(value):
        raise fail(f"{key} lists a URI twice")
    return tuple(value)


def parse_client(
    entry: Any, index: int, path: Path, environ: Mapping[str, str], *, need_secrets: bool = True
) -> ClientConfig:
    """One entry of clients.yaml. `need_secrets=False` (commands that serve no tokens): a
    client_secret_env whose variable is not set leaves the client without a secret, so that it
    cannot authenticate, instead of refusing the file."""
    client_id = entry.get("client_id") if isinstance(entry, dict) else None

    def fail(message: str) -> ClientConfigError:
        return _fail(path, index, client_id, message)

    if not isinstance(entry, dict):
        raise fail("each entry must be a mapping")
    unknown = sorted(set(entry) - KNOWN_FIELDS)
    if unknown:
        raise fail(f"unknown field {unknown[0]!r}")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise fail("client_id must be 3-120 characters of letters, digits, '.', '_', ':' or '-'")
    if client_id == ACCOUNT_CLIENT_ID:
        raise fail("this client_id is reserved for idp's own account pages")
    name = entry.get("client_name")
    if not isinstance(name, str) or not name.strip():
        raise fail("client_name is required")

    grant_types = entry.get("grant_types", ["authorization_code", "refresh_token"])
    if not isinstance(grant_types, list) or not grant_types:
        raise fail("grant_types must be a non-empty list")
    for g in grant_types:
        if g not in GRANT_TYPES:
            raise fail(f"grant_types: {g!r} is not one of {', '.join(GRANT_TYPES)}")

    method = entry.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise fail(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    if method == "none" and "client_credentials" in grant_types:
        raise fail("a public client (token_endpoint_auth_method: none) cannot use client_credentials")

    redirect_uris = _uri_list(entry, "redirect_uris", fail)
    if "authorization_code" in grant_types and not redirect_uris:
        raise fail("redirect_uris is required for the authorization_code grant")
    post_logout = _uri_list(entry, "post_logout_redirect_uris", fail)

    digest = secret_env = None
    has_hash, has_env = "client_secret_hash" in entry, "client_secret_env" in entry
    if method in ("client_secret_basic", "client_secret_post"):
        if has_hash == has_env:
            raise fail(f"{method} needs exactly one of client_secret_hash or client_secret_env")
        if has_hash:
            digest = entry["client_secret_hash"]
            if not isinstance(digest, str) or not digest.startswith(_HASH_PREFIX + "$"):
                raise fail("client_secret_hash must come from `idp clients hash-secret`")
        else:
            var = entry["client_secret_env"]
            if not isinstance(var, str) or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", var):
                raise fail("client_secret_env must be the name of an environment variable")
            secret_env = var
            secret = environ.get(var)
            if not secret and need_secrets:
                raise fail(f"client_secret_env: environment variable {var} is not set")
            if secret and len(secret) < 32:
                raise fail(f"client_secret_env: the secret in {var} is shorter than 32 characters")
            digest = hash_secret(secret) if secret else None
    elif has_hash or has_env:
        raise fail(f"a client using {method} must not have a client secret")

    jwks, jwks_uri = entry.get("jwks"), entry.get("jwks_uri")
    if method == "private_key_jwt":
        if (jwks is None) == (jwks_uri is None):
            raise fail("private_key_jwt needs exactly one of jwks or jwks_uri")
        if jwks is not None and (not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list)):
            raise fail("jwks must be a JWK Set ({keys: [...]})")
        if jwks_uri is not None and (not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://")):
            raise fail("jwks_uri must be an https URL")

    scope = entry.get("scope", "openid profile")
    if not isinstance(scope, str) or not scope.split():
        raise fail("scope must be a space-separated string")

    alg = entry.get("id_token_signed_response_alg", "ES256")
    if alg not in SIGNING_ALGS:
        raise fail(f"id_token_signed_response_alg must be one of {', '.join(SIGNING_ALGS)}")

    backchannel = entry.get("backchannel_logout_uri")
    if backchannel is not None:
        parts = urlsplit(str(backchannel))
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
            raise fail("backchannel_logout_uri must be an https URL")
        if parts.fragment:
            raise fail("backchannel_logout_uri must not contain a fragment")

    acrs = entry.get("default_acr_values", [])
    if not isinstance(acrs, list) or any(a not in ACR_VALUES for a in acrs):
        raise fail(f"default_acr_values must list values from {', '.join(ACR_VALUES)}")
    require_acr = entry.get("require_acr")
    if require_acr is not None and require_acr not in ACR_VALUES:
        raise fail(f"require_acr must be one of {', '.join(ACR_VALUES)}")

    def flag(key: str, default: bool) -> bool:
        value = entry.get(key, default)
        if not isinstance(value, bool):
            raise fail(f"{key} must be true or false")
        return value

    require_pkce = flag("require_pkce", True)
    if method == "none" and not require_pkce:
        raise fail("a public client must use PKCE (require_pkce cannot be false)")

    return ClientConfig(
        client_id=client_id,
        client_name=name.strip(),
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout,
        grant_types=tuple(grant_types),
        token_endpoint_auth_method=method,
        scope=tuple(dict.fromkeys(scope.split())),
        id_token_signed_response_alg=alg,
        backchannel_logout_uri=backchannel,
        backchannel_logout_session_required=flag("backchannel_logout_session_required", True),
        default_acr_values=tuple(acrs),
        require_acr=require_acr,
        first_party=flag("first_party", False),
        require_pkce=require_pkce,
        resource_server=flag("resource_server", False),
        jwks=jwks,
        jwks_uri=jwks_uri,
        secret_digest=digest,
        secret_env=secret_env,
    )


def account_client(issuer: str) -> ClientConfig:
    """The built-in relying party of the account area (/account): public, PKCE, first party, one
    redirect URI on the issuer. It signs people in through /authorize exactly like a portal, so
    the sign-in pages and acr rules are the same; its codes are redeemed by /account/callback."""
    return ClientConfig(
        client_id=ACCOUNT_CLIENT_ID,
        client_name=ACCOUNT_CLIENT_NAME,
        redirect_uris=(issuer + "/account/callback",),
        post_logout_redirect_uris=(),
        grant_types=("authorization_code",),
        token_endpoint_auth_method="none",  # noqa: S106 - a method name, not a secret
        scope=("openid",),
        id_token_signed_response_alg="ES256",  # noqa: S106 - an algorithm name
        backchannel_logout_uri=None,
        backchannel_logout_session_required=False,
        default_acr_values=(),
        require_acr=None,
        first_party=True,
        require_pkce=True,
        resource_server=False,
    )


def load_clients(
    path: Path, environ: Mapping[str, str], *, need_secrets: bool = True
) -> dict[str, ClientConfig]:
    """Parse and validate the whole file; the first problem raises ClientConfigError."""
    try:
        # libyaml's loader when PyYAML has it (its wheels do): the same safe subset, ten times faster.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise ClientConfigError(f"{path}: file not found (set IDP_CLIENTS_FILE)") from None
    except yaml.YAMLError as exc:
        raise ClientConfigError(f"{path}: not valid YAML: {exc}") from None
    if document is None:
        document = {"clients": []}
    if not isinstance(document, dict) or not isinstance(document.get("clients"), list):
        raise ClientConfigError(f"{path}: expected a top-level 'clients:' list")
    clients: dict[str, ClientConfig] = {}
    for index, entry in enumerate(document["clients"]):
        client = parse_client(entry, index, path, environ, need_secrets=need_secrets)
        if client.client_id in clients:
            raise _fail(path, index, client.client_id, "duplicate client_id")
        clients[client.client_id] = client
    return clients


class ClientRegistry:
    """The loaded relying parties; re-reads the file when it changes (checked every few seconds)."""

    CHECK_INTERVAL = 3.0

    def __init__(
        self,
        path: Path,
        environ: Mapping[str, str],
        builtin: tuple[ClientConfig, ...] = (),
        *,
        need_secrets: bool = True,
    ) -> None:
        self.path = path
        self._environ = environ
        self._need_secrets = need_secrets
        self._lock = threading.Lock()
        # Built-in relying parties (registered in code, not in the file; their ids are reserved).
        self._builtin = {c.client_id: c for c in builtin}
        self._clients = {**load_clients(path, environ, need_secrets=need_secrets), **self._builtin}
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()

    def _file_stamp(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.CHECK_INTERVAL:
            return
        with self._lock:
            self._checked = now
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return
            try:
                found = load_clients(self.path, self._environ, need_secrets=self._need_secrets)
                self._clients = {**found, **self._builtin}
            except ClientConfigError:
                # Keep serving the last good configuration; `idp clients check` shows the problem.
                import logging

                logging.getLogger("idp.clients").exception("clients file changed but is invalid")
            self._stamp = stamp

    def get(self, client_id: str | None) -> ClientConfig | None:
        if not client_id:
            return None
        self._maybe_reload()
        return self._clients.get(client_id)

    def all(self) -> list[ClientConfig]:
        self._maybe_reload()
        return list(self._clients.values())


def append_client(path: Path, entry: dict[str, Any], environ: Mapping[str, str]) -> ClientConfig:
    """Add an entry at the end of clients.yaml (comments and layout kept) after validating the result."""
    text = path.read_text(encoding="utf-8") if path.exists() else "clients:\n"
    if re.search(r"^clients:\s*\[\s*\]\s*$", text, re.MULTILINE):
        text = re.sub(r"^clients:\s*\[\s*\]\s*$", "clients:", text, flags=re.MULTILINE)
    block = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)
    block = "".join("  " + line if line.strip() else line for line in block.splitlines(keepends=True))
    candidate = path.with_name(path.name + ".new")
    candidate.write_text(text.rstrip("\n") + "\n" + block, encoding="utf-8")
    try:
        clients = load_clients(candidate, environ, need_secrets=False)
        if entry.get("client_id") not in clients:
            raise ClientConfigError(f"{path}: the 'clients:' list must be the last key to append to it")
    except ClientConfigError as exc:
        candidate.unlink()
        raise ClientConfigError(str(exc).replace(str(candidate), str(path))) from None
    os.replace(candidate, path)
    return clients[entry["client_id"]]
