"""idp: OpenID Connect identity provider and single sign-on broker for a province's public services.

``create_app`` builds one application instance: layered configuration validated up front
(it refuses to start and names the bad ``IDP_`` key), storage, keys, relying parties, the
protocol endpoints and the sign-in flows. Nothing happens at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.config import (
    ConfigError,
    check_deployment,
    environ,
    is_loopback_host,
    load_instance_file,
    resolve,
)

__all__ = ["ConfigError", "create_app"]

csrf = CSRFProtect()


def _absolute_sqlite(url: str) -> str:
    """sqlite:///relative/path -> an absolute path, created if missing."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/") or url == "sqlite:///:memory:":
        return url
    path = Path(url[len(prefix) :]).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path)


def create_app(test_config: dict[str, Any] | None = None, *, serves_tokens: bool = True) -> Flask:
    """The application. `serves_tokens=False` for commands that answer no relying party (every
    `idp` command but `serve`): they need no client secrets, which only the serving side holds.
    """
    from urllib.parse import urlsplit

    from idp import oidc, web
    from idp.clients import ClientConfigError, ClientRegistry, account_client
    from idp.identity.passwords import PasswordHashing
    from idp.messaging.sms import HttpSmsGateway, OutboxSms, SmsSender
    from idp.oidc.keys import KeyStoreError, ensure_secret
    from idp.outbound import Guards
    from idp.runtime import Runtime
    from idp.sessions.browser import HOST_PREFIX, SESSION_COOKIE
    from idp.sessions.interaction import InteractionStore
    from idp.sessions.otp import OtpPolicy, OtpService
    from idp.sessions.sso import SessionStore
    from idp.sessions.throttle import LockoutPolicy, Throttle
    from idp.store import liveness
    from idp.store.ephemeral import create_store
    from idp.store.models import db
    from idp.verifiers import build_registers
    from idp.verifiers.base import VerifierMisconfigured
    from idp.verifiers.signing import build_signing
    from idp.web import inputs as web_inputs

    app = Flask(__name__, instance_path=str(Path("instance").resolve()))
    settings = resolve(environ(), load_instance_file(Path(app.instance_path) / "idp.cfg"), test_config)
    app.config.update(settings)

    issuer_host = urlsplit(settings["ISSUER"]).hostname
    secure_cookies = not is_loopback_host(issuer_host)
    cookie_prefix = HOST_PREFIX if secure_cookies else ""
    keys_dir = Path(settings["KEYS_DIR"]).resolve()
    app.config.update(
        KEYS_DIR=str(keys_dir),
        SECRET_KEY=settings["SECRET_KEY"] or ensure_secret(keys_dir),
        SQLALCHEMY_DATABASE_URI=_absolute_sqlite(settings["DATABASE_URL"]),
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings),
        # __Host- names where browsers keep them (https): see idp.sessions.browser.
        COOKIE_PREFIX=cookie_prefix,
        SESSION_COOKIE_NAME=cookie_prefix + SESSION_COOKIE,
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=settings["INTERACTION_LIFETIME"],
        WTF_CSRF_TIME_LIMIT=settings["INTERACTION_LIFETIME"],
        WTF_CSRF_SSL_STRICT=False,
        BABEL_DEFAULT_LOCALE=settings["DEFAULT_LOCALE"],
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    logging.getLogger("idp").setLevel(settings["LOG_LEVEL"])
    if settings["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings["TRUSTED_PROXIES"],
            x_proto=settings["TRUSTED_PROXIES"],
            x_host=settings["TRUSTED_PROXIES"],
        )

    store = create_store(
        settings["REDIS_URL"],
        settings["REDIS_PREFIX"],
        wait_replicas=settings["REDIS_WAIT_REPLICAS"],
        wait_timeout=settings["REDIS_WAIT_TIMEOUT"],
    )
    # Bulkheads and shared circuit breakers for every call to another system (idp.outbound).
    guards = Guards(store, total=settings["OUTBOUND_MAX_CONCURRENT"] or max(1, settings["THREADS"] - 1))
    # What a deployment that signs people in needs (idp.config.DEPLOYMENT_CHECKS: an SMS gateway
    # outside loopback, no sandbox registers or signing on a real deployment).
    check_deployment(settings, environ())
    sms: SmsSender
    if settings["SMS_GATEWAY_URL"]:
        sms = HttpSmsGateway(
            settings["SMS_GATEWAY_URL"],
            settings["SMS_GATEWAY_TOKEN"],
            settings["SMS_SENDER"],
            settings["SMS_GATEWAY_TIMEOUT"],
            guard=guards.guard(
                "sms-gateway",
                concurrency=settings["SMS_GATEWAY_MAX_CONCURRENT"],
                threshold=settings["SMS_GATEWAY_BREAKER_THRESHOLD"],
                cooldown=settings["SMS_GATEWAY_BREAKER_COOLDOWN"],
                budget=settings["SMS_GATEWAY_TIMEOUT"],
            ),
        )
    elif settings["SMS_OUTBOX"]:
        sms = OutboxSms(Path(settings["SMS_OUTBOX"]), echo=settings["SMS_ECHO"])
    else:  # a loopback issuer (check_deployment refused anything else)
        sms = OutboxSms(Path(app.instance_path) / "sms-outbox.jsonl", echo=True)

    try:
        clients = ClientRegistry(
            Path(settings["CLIENTS_FILE"]).resolve(),
            environ(),
            builtin=(account_client(settings["ISSUER"]),),
            need_secrets=serves_tokens,
        )
    except ClientConfigError as exc:
        raise ConfigError(f"IDP_CLIENTS_FILE: {exc}") from None

    otp_key = app.config["SECRET_KEY"].encode() + b":otp"
    lockout = LockoutPolicy(
        settings["PASSWORD_MAX_FAILURES"], settings["LOCKOUT_BASE_SECONDS"], settings["LOCKOUT_MAX_SECONDS"]
    )
    rt = Runtime(
        config=app.config,
        store=store,
        clients=clients,
        hashing=PasswordHashing(settings["ARGON2_MEMORY_KIB"], settings["ARGON2_TIME_COST"]),
        sms=sms,
        interactions=InteractionStore(store, settings["INTERACTION_LIFETIME"]),
        sessions=SessionStore(store, settings["SESSION_LIFETIME"], settings["SESSION_IDLE_TIMEOUT"]),
        otp=OtpService(
            store,
            sms,
            otp_key,
            OtpPolicy(
                settings["OTP_LIFETIME"],
                settings["OTP_MAX_ATTEMPTS"],
                settings["OTP_RESEND_COOLDOWN"],
                settings["OTP_DAILY_LIMIT"],
                phone_hourly=settings["OTP_PHONE_HOURLY_LIMIT"],
                phone_daily=settings["OTP_PHONE_DAILY_LIMIT"],
                address_hourly=settings["OTP_ADDRESS_HOURLY_LIMIT"],
                global_per_minute=settings["OTP_GLOBAL_PER_MINUTE"],
            ),
        ),
        password_throttle=Throttle(store, "pwd", lockout),
        otp_throttle=Throttle(
            store,
            "otp",
            LockoutPolicy(
                settings["OTP_MAX_VOIDED"], settings["LOCKOUT_BASE_SECONDS"], settings["LOCKOUT_MAX_SECONDS"]
            ),
        ),
    )
    rt.registers = build_registers(app.config, guards=guards)
    try:
        rt.signing = build_signing(app.config, store, guards)
    except VerifierMisconfigured as exc:
        raise ConfigError(str(exc).split(": ", 1)[-1]) from None
    app.extensions["idp"] = rt

    db.init_app(app)
    with app.app_context():
        liveness.install(db.engine)
    # Input is checked before anything reads it, the CSRF check included (idp.web.inputs).
    web_inputs.install(app)
    csrf.init_app(app)
    web.install(app)
    try:
        oidc.init_app(app, rt)
    except KeyStoreError as exc:
        raise ConfigError(f"IDP_KEYS_DIR: {exc}") from None
    from idp.apps import account
    from idp.flows import register, signin
    from idp.web import captcha

    for blueprint in (signin.blueprint(), register.blueprint(), account.blueprint(), captcha.bp):
        app.register_blueprint(blueprint)
    rt.prompt_pages.update(signin.prompt_pages())
    if rt.signing.sandbox is not None:  # the sandbox SIM "phone" and USB "plugin" pages
        from idp.sandbox.signers import bp as sandbox_signers_bp

        app.register_blueprint(sandbox_signers_bp)
    from idp.health import bp as health_bp
    from idp.oidc import views as oidc_views

    app.register_blueprint(health_bp)
    for endpoint in ("token", "revoke", "introspect", "userinfo", "authorize", "logout"):
        csrf.exempt(f"{oidc_views.__name__}.{endpoint}")
    return app


def _engine_options(settings: dict[str, Any]) -> dict[str, Any]:
    if settings["DATABASE_URL"].startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    # Every statement of a request waits at most DATABASE_LOCK_TIMEOUT for a lock and runs at most
    # DATABASE_STATEMENT_TIMEOUT: a long lock (a migration, a transaction left open) then answers
    # 503 at once instead of holding every thread of a worker. Set on the connection, so that no
    # request pays a round trip for it; migrations lift both (idp.store.upgrade).
    limits = (
        f"-c lock_timeout={int(settings['DATABASE_LOCK_TIMEOUT'] * 1000)} "
        f"-c statement_timeout={int(settings['DATABASE_STATEMENT_TIMEOUT'] * 1000)}"
    )
    return {
        # Dead connections are found at checkout by their socket (idp.store.liveness), which
        # costs no round trip; pool_pre_ping's SELECT 1 cost one on every request.
        "pool_pre_ping": False,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 5,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 3, "options": limits},
    }
