"""Configuration: one documented table of settings, layered and validated at start-up.

Layers, later wins: the defaults below, an optional instance file (``instance/idp.cfg``), the
environment (``IDP_<NAME>``), then the overrides a test passes to ``create_app``. Every value is
coerced to its declared type and validated here; ``create_app`` refuses to start and names the
offending ``IDP_`` key. Modules read ``app.config`` and never ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the ``IDP_`` key."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    nullable: bool = False


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than zero"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


def _at_most(limit: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value <= 0:
            return "must be greater than zero"
        return None if value <= limit else f"must be at most {limit}"

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_issuer(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    if value.endswith("/"):
        return "must not end with a slash"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "must use https (plain http is accepted only for a loopback issuer)"
    return None


def _check_database_url(value: str) -> str | None:
    scheme = value.split(":", 1)[0]
    if scheme.startswith("sqlite") or scheme.startswith("postgresql"):
        return None
    return "must be a sqlite:/// or postgresql:// URL"


def _check_redis_url(value: str) -> str | None:
    scheme = value.split(":", 1)[0]
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        from idp.store.ephemeral import SentinelUrl

        try:
            SentinelUrl.parse(value)
        except ValueError as exc:
            return f"a Sentinel URL (redis+sentinel://host:26379,host:26380/mymaster/0): {exc}"
        return None
    if scheme in ("redis", "rediss", "unix"):
        return None
    return "must be a redis://, rediss://, unix:// or redis+sentinel:// URL"


# The registers idp.verifiers talks to; each is "sandbox" or "http" (IDP_REGISTERS unless overridden).
REGISTERS = (
    ("POPULATION_REGISTER", "population register"),
    ("SUBSCRIBER_REGISTER", "carriers' subscriber register"),
    ("SOCIAL_INSURANCE_REGISTER", "social-insurance register"),
)
REGISTER_NAMES = tuple(name for name, _ in REGISTERS)
_REGISTER_FILES = ("REGISTERS_CLIENT_CERT", "REGISTERS_CLIENT_KEY", "REGISTERS_CA_BUNDLE")


def _check_register_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "must use https (plain http is accepted only on a loopback address)"
    return None


def register_settings(name: str, label: str) -> tuple[Setting, ...]:
    """One register's group: its mode, gateway URL and bearer token (or the variable holding it).
    A new register is one line in REGISTERS."""
    return (
        Setting(
            name,
            str,
            None,
            f"sandbox or http for the {label} alone (default: REGISTERS).",
            _one_of("sandbox", "http"),
            nullable=True,
        ),
        Setting(
            f"{name}_URL",
            str,
            None,
            f"Base URL of the {label} gateway; required when it is http.",
            _check_register_url,
            nullable=True,
        ),
        Setting(f"{name}_TOKEN", str, None, f"Bearer token for the {label} gateway.", nullable=True),
        Setting(
            f"{name}_TOKEN_ENV",
            str,
            None,
            f"Environment variable that holds the {label} token (instead of {name}_TOKEN).",
            nullable=True,
        ),
    )


def tls_settings(prefix: str, label: str) -> tuple[Setting, ...]:
    """Mutual TLS to a gateway: client certificate, its key, the CAs of the gateway's certificate.
    Each gateway idp calls (the registers, the SIM signing service, the upstreams to come) has one
    such group, one line in SETTINGS."""
    return (
        Setting(
            f"{prefix}CLIENT_CERT",
            str,
            None,
            f"PEM client certificate (may include the key) for mutual TLS with the {label}.",
            nullable=True,
        ),
        Setting(f"{prefix}CLIENT_KEY", str, None, f"PEM private key of {prefix}CLIENT_CERT.", nullable=True),
        Setting(
            f"{prefix}CA_BUNDLE",
            str,
            None,
            f"PEM CA certificates that the server certificate of the {label} chains to (default: the system CAs).",
            nullable=True,
        ),
    )


# The upstream identity providers idp brokers (idp.upstreams), each a settings group.
UPSTREAMS = (("NATIONAL_PORTAL", "national public-service portal"), ("VNEID", "VNeID"))
UPSTREAM_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def _check_upstream_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.fragment:
        return "must not have a fragment"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "must use https (plain http is accepted only on a loopback address)"
    return None


def upstream_settings(name: str, label: str) -> tuple[Setting, ...]:
    """One upstream's group: its issuer (discovery at {ISSUER}/.well-known/openid-configuration) or
    explicit endpoints, idp's client there, and what idp asks. A new upstream is one line in UPSTREAMS."""
    endpoints = (
        ("AUTHORIZATION_ENDPOINT", "authorization endpoint"),
        ("TOKEN_ENDPOINT", "token endpoint"),
        ("USERINFO_ENDPOINT", "userinfo endpoint"),
        ("JWKS_URI", "JWKS"),
        ("END_SESSION_ENDPOINT", "end-session (logout) endpoint"),
    )
    return (
        Setting(
            f"{name}_ISSUER",
            str,
            None,
            f"Issuer of the {label}; unset: its door says it is not available.",
            _check_upstream_url,
            nullable=True,
        ),
        *(
            Setting(
                f"{name}_{key}",
                str,
                None,
                f"The {label}'s {what}, for an upstream without discovery (overrides discovery's).",
                _check_upstream_url,
                nullable=True,
            )
            for key, what in endpoints
        ),
        Setting(f"{name}_CLIENT_ID", str, None, f"idp's client id at the {label}.", nullable=True),
        Setting(f"{name}_CLIENT_SECRET", str, None, f"idp's client secret at the {label}.", nullable=True),
        Setting(
            f"{name}_CLIENT_SECRET_ENV",
            str,
            None,
            f"Environment variable that holds that secret (instead of {name}_CLIENT_SECRET).",
            nullable=True,
        ),
        Setting(
            f"{name}_TOKEN_ENDPOINT_AUTH_METHOD",
            str,
            "client_secret_basic",
            f"How idp authenticates at the {label}'s token endpoint.",
            _one_of(*UPSTREAM_AUTH_METHODS),
        ),
        Setting(f"{name}_SCOPE", str, "openid", f"Scopes idp asks of the {label}."),
        Setting(
            f"{name}_ACR_VALUES", str, None, f"acr_values sent to the {label} as they are.", nullable=True
        ),
    )


def check_upstreams(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """A configured upstream (ISSUER, or its endpoints) has a client id and one way to its secret."""
    for name, _ in UPSTREAMS:
        explicit = all(
            values.get(f"{name}_{k}") for k in ("AUTHORIZATION_ENDPOINT", "TOKEN_ENDPOINT", "JWKS_URI")
        )
        if not values.get(f"{name}_ISSUER"):
            if explicit:
                raise ConfigError(f"{PREFIX}{name}_ISSUER: is required (it is the iss its ID tokens carry)")
            continue
        if not values.get(f"{name}_CLIENT_ID"):
            raise ConfigError(f"{PREFIX}{name}_CLIENT_ID: is required when {PREFIX}{name}_ISSUER is set")
        secret, secret_env = values.get(f"{name}_CLIENT_SECRET"), values.get(f"{name}_CLIENT_SECRET_ENV")
        if bool(secret) == bool(secret_env):
            raise ConfigError(
                f"{PREFIX}{name}_CLIENT_SECRET: set it or {PREFIX}{name}_CLIENT_SECRET_ENV (exactly one)"
            )
        if secret_env and not re.fullmatch(r"[A-Z_][A-Z0-9_]*", str(secret_env)):
            raise ConfigError(
                f"{PREFIX}{name}_CLIENT_SECRET_ENV: must be the name of an environment variable"
            )


def register_mode(values: Mapping[str, Any], register: str) -> str:
    """The mode ("sandbox" or "http") of one of REGISTER_NAMES: its own setting, else IDP_REGISTERS."""
    return str(values.get(register) or values.get("REGISTERS") or "sandbox")


def check_registers(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """A register in http mode needs its URL; its token comes from one place; TLS files exist."""
    in_http = [r for r in REGISTER_NAMES if register_mode(values, r) == "http"]
    for register in in_http:
        if not values.get(f"{register}_URL"):
            raise ConfigError(
                f"{PREFIX}{register}_URL: is required when {PREFIX}{register} (or {PREFIX}REGISTERS) is http"
            )
        token, token_env = values.get(f"{register}_TOKEN"), values.get(f"{register}_TOKEN_ENV")
        if token and token_env:
            raise ConfigError(
                f"{PREFIX}{register}_TOKEN_ENV: set either it or {PREFIX}{register}_TOKEN, not both"
            )
        if token_env and not environ.get(token_env):
            raise ConfigError(f"{PREFIX}{register}_TOKEN_ENV: environment variable {token_env} is not set")
    if not in_http:
        return
    if values.get("REGISTERS_CLIENT_KEY") and not values.get("REGISTERS_CLIENT_CERT"):
        raise ConfigError(f"{PREFIX}REGISTERS_CLIENT_KEY: needs {PREFIX}REGISTERS_CLIENT_CERT")
    for name in _REGISTER_FILES:
        path = values.get(name)
        if path and not Path(path).is_file():
            raise ConfigError(f"{PREFIX}{name}: no such file {path}")


SETTINGS: tuple[Setting, ...] = (
    Setting("ISSUER", str, "http://127.0.0.1:8000", "Issuer URL; https except on loopback.", _check_issuer),
    Setting(
        "DATABASE_URL",
        str,
        "sqlite:///instance/idp.sqlite3",
        "SQLAlchemy URL of the durable store (SQLite embedded default, PostgreSQL in production).",
        _check_database_url,
    ),
    Setting(
        "REDIS_URL",
        str,
        None,
        "Redis for short-lived data; without it one process uses an embedded store.",
        _check_redis_url,
        nullable=True,
    ),
    Setting(
        "DATABASE_LOCK_TIMEOUT",
        float,
        3.0,
        "PostgreSQL: seconds a statement waits for a lock before the request answers 503 (0: no limit).",
        _not_negative,
    ),
    Setting(
        "DATABASE_STATEMENT_TIMEOUT",
        float,
        5.0,
        "PostgreSQL: seconds a statement may run before it is cancelled and the request answers 503 (0: no limit).",
        _not_negative,
    ),
    Setting("REDIS_PREFIX", str, "idp:", "Prefix of every Redis key this deployment writes."),
    Setting(
        "REDIS_WAIT_REPLICAS",
        int,
        None,
        "Replicas that must have a request's Redis writes before it is answered (Redis WAIT); "
        "default 1 with a Sentinel URL, else 0.",
        _not_negative,
        nullable=True,
    ),
    Setting(
        "REDIS_WAIT_TIMEOUT",
        float,
        0.2,
        "Seconds to wait for the replicas of IDP_REDIS_WAIT_REPLICAS; then the answer goes out anyway (logged).",
        _positive,
    ),
    Setting("CLIENTS_FILE", str, "clients.yaml", "Relying parties (RFC 7591 field names)."),
    Setting("KEYS_DIR", str, "keys", "Folder of signing keys and the session secret (never committed)."),
    Setting(
        "SECRET_KEY",
        str,
        None,
        "Session/CSRF secret; read from KEYS_DIR/secret.key when unset.",
        nullable=True,
    ),
    Setting(
        "SMS_OUTBOX",
        str,
        None,
        "Append every SMS as a JSON line to this file (development, tests).",
        nullable=True,
    ),
    Setting("SMS_ECHO", bool, False, "Also print every SMS on the console (development)."),
    Setting("SMS_GATEWAY_URL", str, None, "HTTP SMS gateway endpoint (production).", nullable=True),
    Setting("SMS_GATEWAY_TOKEN", str, None, "Bearer token for the SMS gateway.", nullable=True),
    Setting("SMS_GATEWAY_TIMEOUT", float, 5.0, "Seconds before an SMS gateway call is abandoned.", _positive),
    Setting(
        "SMS_GATEWAY_MAX_CONCURRENT",
        int,
        3,
        "SMS gateway calls under way at a time in one worker; more are refused at once.",
        _positive,
    ),
    Setting(
        "SMS_GATEWAY_BREAKER_THRESHOLD",
        int,
        5,
        "Consecutive failed SMS sends after which the gateway is not called during the cool-down.",
        _positive,
    ),
    Setting(
        "SMS_GATEWAY_BREAKER_COOLDOWN",
        float,
        10.0,
        "Seconds the SMS gateway's open circuit waits before one trial send (shared by every worker).",
        _positive,
    ),
    Setting(
        "OUTBOUND_MAX_CONCURRENT",
        int,
        0,
        "Calls to other systems (registers, signing, SMS) under way at a time in one worker, all "
        "together; 0: one fewer than IDP_THREADS, so that a thread is always free for the rest.",
        _not_negative,
    ),
    Setting("SMS_SENDER", str, "IDP", "Brand name the SMS gateway shows as sender."),
    Setting("ACCESS_TOKEN_LIFETIME", int, 300, "Seconds an access token is valid.", _at_most(3600)),
    Setting("ID_TOKEN_LIFETIME", int, 600, "Seconds an ID token is valid.", _at_most(86400)),
    Setting("CODE_LIFETIME", int, 60, "Seconds an authorization code is valid.", _at_most(60)),
    Setting(
        "REFRESH_TOKEN_LIFETIME",
        int,
        30 * 86400,
        "Seconds an offline_access refresh token family lives.",
        _positive,
    ),
    Setting("SESSION_LIFETIME", int, 12 * 3600, "Absolute lifetime of an SSO session, seconds.", _positive),
    Setting("SESSION_IDLE_TIMEOUT", int, 2 * 3600, "An SSO session unused this long ends.", _positive),
    Setting("INTERACTION_LIFETIME", int, 1800, "Seconds a person has to finish signing in.", _positive),
    Setting(
        "ACCOUNT_RECENT_SIGNIN",
        int,
        600,
        "Account pages: sensitive actions (sign out everywhere) need a sign-in this recent, seconds.",
        _positive,
    ),
    Setting("OTP_LIFETIME", int, 120, "Seconds an SMS OTP is valid (guides: 2 minutes).", _at_most(900)),
    Setting("OTP_MAX_ATTEMPTS", int, 5, "Wrong OTP entries before the code is void.", _at_most(10)),
    Setting(
        "OTP_MAX_VOIDED", int, 3, "OTP codes voided by wrong entries before a temporary lockout.", _positive
    ),
    Setting("OTP_RESEND_COOLDOWN", int, 60, "Seconds before another OTP may be sent.", _positive),
    Setting("OTP_DAILY_LIMIT", int, 10, "OTP messages one account may receive per day.", _positive),
    # SMS-pumping caps (idp.sessions.otp): nothing is sent once one is reached. Days are Vietnam days.
    Setting(
        "OTP_PHONE_HOURLY_LIMIT",
        int,
        8,
        "OTP messages one phone number may receive per hour (one phone may serve several accounts).",
        _positive,
    ),
    Setting(
        "OTP_PHONE_DAILY_LIMIT", int, 20, "OTP messages one phone number may receive per day.", _positive
    ),
    Setting(
        "OTP_ADDRESS_HOURLY_LIMIT",
        int,
        60,
        "OTP messages requested from one client address per hour (raise it for a reception desk or NAT).",
        _positive,
    ),
    Setting(
        "OTP_GLOBAL_PER_MINUTE", int, 300, "OTP messages the whole deployment sends per minute.", _positive
    ),
    Setting(
        "REMEMBER_DEVICE_DAYS",
        int,
        30,
        "Days a browser stays remembered after 'Ghi nhớ thiết bị này' (0 turns the choice off). "
        "A remembered browser skips the SMS OTP; such a sign-in is LoA1.",
        lambda v: None if 0 <= v <= 365 else "must be between 0 and 365",
    ),
    Setting("PASSWORD_MAX_FAILURES", int, 5, "Wrong passwords before a temporary lockout.", _positive),
    Setting("LOCKOUT_BASE_SECONDS", int, 60, "First lockout; doubles with each further one.", _positive),
    Setting("LOCKOUT_MAX_SECONDS", int, 3600, "Longest temporary lockout.", _positive),
    Setting("CAPTCHA_ENABLED", bool, True, "Captcha on risky pages; off only for automated tests."),
    Setting(
        "CAPTCHA_AFTER_FAILURES",
        int,
        2,
        "Failed sign-ins (per login name or per client address) after which the sign-in asks a captcha.",
        _positive,
    ),
    Setting("CAPTCHA_LIFETIME", int, 300, "Seconds a captcha challenge can be answered.", _at_most(1800)),
    Setting(
        "PASSWORD_RESET_LIFETIME",
        int,
        900,
        "Seconds to finish a password reset or change once started.",
        _at_most(3600),
    ),
    Setting(
        "REGISTRATION_LIFETIME",
        int,
        1800,
        "Seconds to finish a registration once its check succeeded (nothing is stored before the end).",
        _at_most(7200),
    ),
    Setting(
        "SANDBOX_VERIFIERS_ALLOWED",
        bool,
        False,
        "Allow the sandbox registers and sandbox signing (fictional people, published PINs) with an "
        "issuer that is not on loopback: for a shared test system only, never in production.",
    ),
    Setting(
        "REGISTRATION_CHECKS_PER_HOUR",
        int,
        20,
        "Register checks (population, carrier, social insurance) one client address may ask per hour.",
        _positive,
    ),
    # Registers (idp.verifiers); the HTTP contract and these keys: docs/verifiers.md
    Setting(
        "REGISTERS",
        str,
        "sandbox",
        "Registers' verifiers: the bundled sandbox of fictional people, or the HTTP gateway.",
        _one_of("sandbox", "http"),
    ),
    *(setting for name, label in REGISTERS for setting in register_settings(name, label)),
    Setting(
        "REGISTERS_SANDBOX_FILE",
        str,
        None,
        "Dataset of the sandbox registers (default: idp/verifiers/sandbox_data/registers.json).",
        nullable=True,
    ),
    Setting("REGISTERS_CONNECT_TIMEOUT", float, 2.0, "Seconds to connect to a register gateway.", _positive),
    Setting(
        "REGISTERS_READ_TIMEOUT",
        float,
        5.0,
        "Seconds a register gateway may take to answer (the whole answer, per attempt).",
        _positive,
    ),
    Setting(
        "REGISTERS_RETRIES",
        int,
        2,
        "Extra attempts of an idempotent register call after a timeout, connection error or 502/503/504.",
        lambda v: None if 0 <= v <= 5 else "must be between 0 and 5",
    ),
    Setting(
        "REGISTERS_BACKOFF",
        float,
        0.25,
        "Seconds before the first retry; doubles each retry (at most 2 s), with jitter.",
        _positive,
    ),
    Setting(
        "REGISTERS_BREAKER_THRESHOLD",
        int,
        5,
        "Consecutive failed calls after which a register is not called during the cool-down.",
        _positive,
    ),
    Setting(
        "REGISTERS_BREAKER_COOLDOWN",
        float,
        10.0,
        "Seconds a register's open circuit waits before one trial call (shared by every worker).",
        _positive,
    ),
    Setting(
        "REGISTERS_CALL_BUDGET",
        float,
        8.0,
        "Seconds one register check may take in all, retries and backoff included.",
        _positive,
    ),
    Setting(
        "REGISTERS_MAX_CONCURRENT",
        int,
        2,
        "Checks of one register under way at a time in one worker; more are refused at once.",
        _positive,
    ),
    Setting(
        "REGISTERS_MAX_ANSWER_BYTES",
        int,
        65536,
        "Largest register answer read; a larger one is abandoned mid-stream.",
        _positive,
    ),
    *tls_settings("REGISTERS_", "register gateways"),
    Setting("KEY_RETENTION", int, 7 * 86400, "Seconds a retired public key stays in the JWKS.", _positive),
    Setting(
        "BACKCHANNEL_TIMEOUT", float, 3.0, "Seconds to wait for a relying party's logout endpoint.", _positive
    ),
    Setting("SUPPORT_HOTLINE", str, "1022", "Support phone number shown on error pages."),
    Setting("PROVINCE_NAME", str, "Tỉnh Thừa Thiên Huế", "Shown in the page header."),
    Setting(
        "DEFAULT_LOCALE",
        str,
        "vi",
        "Language of the pages unless the person or ui_locales asks.",
        _one_of("vi", "en"),
    ),
    Setting("TRUSTED_PROXIES", int, 0, "Number of reverse proxies whose X-Forwarded-* headers to trust."),
    Setting("WORKERS", int, 2, "Worker processes of `idp serve`.", _positive),
    Setting("THREADS", int, 4, "Threads per worker of `idp serve`.", _positive),
    Setting("LOG_LEVEL", str, "INFO", "Python log level.", _one_of("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("ARGON2_MEMORY_KIB", int, 19 * 1024, "argon2id memory cost (OWASP: 19 MiB).", _positive),
    Setting("ARGON2_TIME_COST", int, 2, "argon2id iterations.", _positive),
    # Digital signatures (idp.verifiers.signature); the SIM signing contract: docs/signatures.md
    Setting(
        "SIGNATURE_TRUST_ANCHORS",
        str,
        None,
        "PEM file(s) of the root CAs whose subscribers may sign (the national root CA), comma separated. "
        "Required with SIM_SIGNING_MODE=http; in sandbox mode the sandbox root is trusted in addition.",
        nullable=True,
    ),
    Setting(
        "SIGNATURE_INTERMEDIATES",
        str,
        None,
        "PEM file(s) of the licensed CAs (VNPT-CA, Viettel-CA, …), for tokens that send only their own certificate.",
        nullable=True,
    ),
    Setting(
        "SIGNATURE_CRL_FILES",
        str,
        None,
        "CRL files or folders (PEM or DER), comma separated; read again whenever a file changes.",
        nullable=True,
    ),
    Setting(
        "SIGNATURE_CRL_FETCH",
        bool,
        True,
        "Also download CRLs from the certificates' distribution points, cached until their nextUpdate.",
    ),
    Setting("SIGNATURE_CRL_TIMEOUT", float, 10.0, "Seconds before a CRL download is abandoned.", _positive),
    Setting(
        "SIGNATURE_CRL_MAX_BYTES", int, 32 * 1024 * 1024, "Largest CRL download accepted, bytes.", _positive
    ),
    Setting(
        "SIGNATURE_OCSP_URL",
        str,
        None,
        "OCSP responder asked about a signer's certificate before its CRL ('aia': the one the certificate "
        "names); unset: CRLs only. Unreachable: the CRL decides.",
        lambda v: (
            None
            if v == "aia" or (urlsplit(v).scheme in ("http", "https") and urlsplit(v).hostname)
            else "must be an http(s) URL or aia"
        ),
        nullable=True,
    ),
    Setting("SIGNATURE_OCSP_TIMEOUT", float, 5.0, "Seconds before an OCSP request is abandoned.", _positive),
    Setting(
        "SIGNATURE_CHALLENGE_LIFETIME", int, 300, "Seconds a challenge to sign stays usable.", _at_most(900)
    ),
    Setting(
        "SIM_SIGNING_MODE",
        str,
        "sandbox",
        "Digital signatures: 'sandbox' (the sandbox PKI is trusted and a sandbox SIM service signs for the "
        "fictional people: development only, never production) or 'http' (the carrier's or CA's SIM gateway).",
        _one_of("sandbox", "http"),
    ),
    Setting(
        "SIM_SIGNING_URL",
        str,
        None,
        "Base URL of the SIM signing gateway (http mode); https except on loopback.",
        lambda v: (
            None
            if urlsplit(v).scheme == "https"
            or (urlsplit(v).scheme == "http" and is_loopback_host(urlsplit(v).hostname))
            else "must be an https URL (plain http only on a loopback address)"
        ),
        nullable=True,
    ),
    Setting("SIM_SIGNING_TOKEN", str, None, "Bearer token for the SIM signing gateway.", nullable=True),
    *tls_settings("SIM_SIGNING_", "SIM signing gateway"),
    Setting("SIM_SIGNING_CONNECT_TIMEOUT", float, 2.0, "Seconds to connect to the SIM gateway.", _positive),
    Setting("SIM_SIGNING_TIMEOUT", float, 5.0, "Seconds to wait for the SIM gateway's answer.", _positive),
    Setting(
        "SIM_SIGNING_REQUEST_LIFETIME",
        int,
        180,
        "Seconds the person has to confirm a signing request on the phone.",
        _at_most(600),
    ),
    *(setting for name, label in UPSTREAMS for setting in upstream_settings(name, label)),
    Setting(
        "UPSTREAM_TIMEOUT",
        float,
        5.0,
        "Seconds each call to an upstream identity provider may take.",
        _positive,
    ),
    Setting(
        "SANDBOX_PKI_DIR",
        str,
        None,
        "Folder of the sandbox test PKI (sandbox mode); default KEYS_DIR/sandbox-pki.",
        nullable=True,
    ),
)

BY_NAME = {s.name: s for s in SETTINGS}
PREFIX = "IDP_"


def _coerce(setting: Setting, raw: Any) -> Any:
    if raw is None:
        if setting.nullable:
            return None
        raise ConfigError(f"{PREFIX}{setting.name}: is required")
    if setting.type is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{PREFIX}{setting.name}: expected true or false, got {raw!r}")
    if setting.type in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{PREFIX}{setting.name}: expected a number, got {raw!r}")
        try:
            return setting.type(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{PREFIX}{setting.name}: expected a number, got {raw!r}") from None
    if isinstance(raw, str):
        if raw == "" and setting.nullable:
            return None
        return raw
    raise ConfigError(f"{PREFIX}{setting.name}: expected text, got {raw!r}")


# -- checks that involve several settings, all here ---------------------------------------------
def _check_lifetimes(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    if values["SESSION_IDLE_TIMEOUT"] > values["SESSION_LIFETIME"]:
        raise ConfigError(f"{PREFIX}SESSION_IDLE_TIMEOUT: must not exceed {PREFIX}SESSION_LIFETIME")
    if values["LOCKOUT_BASE_SECONDS"] > values["LOCKOUT_MAX_SECONDS"]:
        raise ConfigError(f"{PREFIX}LOCKOUT_BASE_SECONDS: must not exceed {PREFIX}LOCKOUT_MAX_SECONDS")


def _issuer_is_loopback(values: Mapping[str, Any]) -> bool:
    return is_loopback_host(urlsplit(str(values["ISSUER"])).hostname)


def _check_sms(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Outside loopback, texts go to a real gateway (or, on a test system, to an outbox file)."""
    if not values["SMS_GATEWAY_URL"] and not values["SMS_OUTBOX"] and not _issuer_is_loopback(values):
        raise ConfigError(
            f"{PREFIX}SMS_GATEWAY_URL: required outside loopback (or set {PREFIX}SMS_OUTBOX for a test system)"
        )


def _check_no_sandbox_in_production(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Fictional people and published PINs must never register anyone on a real deployment."""
    sandboxed = [name for name in REGISTER_NAMES if register_mode(values, name) == "sandbox"]
    if (values.get("SIM_SIGNING_MODE") or "sandbox") == "sandbox":
        sandboxed.append("SIM_SIGNING_MODE")
    if sandboxed and not _issuer_is_loopback(values) and not values["SANDBOX_VERIFIERS_ALLOWED"]:
        raise ConfigError(
            f"{PREFIX}{'REGISTERS' if sandboxed[0] != 'SIM_SIGNING_MODE' else 'SIM_SIGNING_MODE'}: the sandbox "
            f"({', '.join(sandboxed)}) is refused with a non-loopback issuer; configure the real registers "
            f"and signing (http), or set {PREFIX}SANDBOX_VERIFIERS_ALLOWED=true on a test system"
        )


CrossCheck = Callable[[Mapping[str, Any], Mapping[str, str]], None]
# Run by resolve(): every command reads consistent settings.
CROSS_CHECKS: tuple[CrossCheck, ...] = (_check_lifetimes, check_registers, check_upstreams)
# Run by create_app only: what a deployment that signs people in needs (a command that only
# rotates keys or lists clients does not send texts or register anyone).
DEPLOYMENT_CHECKS: tuple[CrossCheck, ...] = (_check_sms, _check_no_sandbox_in_production)


def check_deployment(values: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    for check in DEPLOYMENT_CHECKS:
        check(values, environ)


def resolve(
    environ: Mapping[str, str],
    instance_values: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the validated settings (names without the prefix)."""
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    for layer in (instance_values or {}, _from_environ(environ), overrides or {}):
        for key, raw in layer.items():
            name = key[len(PREFIX) :] if key.startswith(PREFIX) else key
            if name in BY_NAME:
                values[name] = raw
    result: dict[str, Any] = {}
    for setting in SETTINGS:
        value = _coerce(setting, values[setting.name])
        if value is not None and setting.check is not None:
            problem = setting.check(value)
            if problem:
                raise ConfigError(f"{PREFIX}{setting.name}: {problem} (got {value!r})")
        result[setting.name] = value
    for check in CROSS_CHECKS:
        check(result, environ)
    # Anything else in the overrides (Flask's own keys such as TESTING) passes through untouched.
    for key, raw in (overrides or {}).items():
        if key not in BY_NAME and not key.startswith(PREFIX):
            result[key] = raw
    return result


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    unknown = sorted(
        k for k in environ if k.startswith(PREFIX) and k[len(PREFIX) :] not in BY_NAME and k not in _IGNORED
    )
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (see `idp config` for the list)")
    return {k: v for k, v in environ.items() if k.startswith(PREFIX)}


# Environment variables with the prefix that are not settings of the server itself.
_IGNORED = frozenset({"IDP_NEW_PASSWORD", "IDP_TEST_DATABASE_URL", "IDP_TEST_REDIS_URL"})


def load_instance_file(path: Path) -> dict[str, Any]:
    """Read ``KEY = value`` lines (JSON or bare text values) from the instance file if present."""
    if not path.is_file():
        return {}
    values: dict[str, Any] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY = value")
        raw = raw.strip()
        try:
            values[key.strip()] = json.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    return values


def describe() -> str:
    """The settings table, for `idp config` and the README."""
    lines = []
    for s in SETTINGS:
        default = "(unset)" if s.default is None else json.dumps(s.default, ensure_ascii=False)
        lines.append(f"{PREFIX}{s.name} = {default}\n    {s.doc}")
    return "\n".join(lines)


def environ() -> Mapping[str, str]:
    """The process environment; the only place the package reads it."""
    return os.environ
