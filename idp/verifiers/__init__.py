"""The registers' verifiers (DESIGN §5): contract in :mod:`idp.verifiers.base`, wire contract in docs/verifiers.md.

:func:`build_registers` picks, per register, the sandbox (bundled fictional people) or the HTTP
adapter, from the ``IDP_REGISTERS*`` / ``IDP_*_REGISTER*`` settings (idp.config).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp.config import BY_NAME, REGISTER_NAMES, check_registers, register_mode
from idp.config import environ as process_environ
from idp.outbound import Guard, Guards
from idp.verifiers.base import PopulationRegister, SocialInsuranceRegister, SubscriberRegister
from idp.verifiers.carrier import HttpSubscriberRegister
from idp.verifiers.http import HttpSettings
from idp.verifiers.population import HttpPopulationRegister
from idp.verifiers.sandbox import (
    SandboxPopulationRegister,
    SandboxSocialInsuranceRegister,
    SandboxSubscriberRegister,
    load_dataset,
)
from idp.verifiers.social_insurance import HttpSocialInsuranceRegister

__all__ = ["Registers", "build_registers", "http_settings"]


@dataclass(frozen=True)
class Registers:
    """The three registers the registration flows ask (``runtime().registers``)."""

    population: PopulationRegister
    subscribers: SubscriberRegister
    social_insurance: SocialInsuranceRegister


def _setting(config: Mapping[str, Any], name: str) -> Any:
    value = config.get(name)
    return BY_NAME[name].default if value is None else value


def http_settings(
    config: Mapping[str, Any], register: str, environ: Mapping[str, str] | None = None
) -> HttpSettings:
    """The HTTP adapter settings of one register (``POPULATION_REGISTER`` etc.) from the configuration."""
    token = config.get(f"{register}_TOKEN")
    token_env = config.get(f"{register}_TOKEN_ENV")
    if token_env:
        token = (process_environ() if environ is None else environ).get(token_env)
    return HttpSettings(
        base_url=config[f"{register}_URL"],
        token=token or None,
        connect_timeout=float(_setting(config, "REGISTERS_CONNECT_TIMEOUT")),
        read_timeout=float(_setting(config, "REGISTERS_READ_TIMEOUT")),
        retries=int(_setting(config, "REGISTERS_RETRIES")),
        backoff=float(_setting(config, "REGISTERS_BACKOFF")),
        breaker_threshold=int(_setting(config, "REGISTERS_BREAKER_THRESHOLD")),
        breaker_cooldown=float(_setting(config, "REGISTERS_BREAKER_COOLDOWN")),
        max_answer_bytes=int(_setting(config, "REGISTERS_MAX_ANSWER_BYTES")),
        budget=float(_setting(config, "REGISTERS_CALL_BUDGET")),
        max_concurrent=int(_setting(config, "REGISTERS_MAX_CONCURRENT")),
        client_cert=config.get("REGISTERS_CLIENT_CERT") or None,
        client_key=config.get("REGISTERS_CLIENT_KEY") or None,
        ca_bundle=config.get("REGISTERS_CA_BUNDLE") or None,
    )


def build_registers(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None, guards: Guards | None = None
) -> Registers:
    """Build the registers from validated settings (``app.config``); raises ConfigError naming the key.

    ``environ`` is where ``*_TOKEN_ENV`` variables are read (default: the process environment).
    Each HTTP adapter gets its own client, bulkhead and circuit breaker; with ``guards`` (the
    application's, idp.outbound) the breaker is shared by every worker through the store.
    """
    env = process_environ() if environ is None else environ
    check_registers(config, env)  # again: the mapping may not have come through idp.config.resolve
    data = None
    if any(register_mode(config, r) == "sandbox" for r in REGISTER_NAMES):
        data = load_dataset(config.get("REGISTERS_SANDBOX_FILE") or None)

    def http(register: str) -> HttpSettings | None:
        return http_settings(config, register, env) if register_mode(config, register) == "http" else None

    population, subscribers, insurance = (
        http("POPULATION_REGISTER"),
        http("SUBSCRIBER_REGISTER"),
        http("SOCIAL_INSURANCE_REGISTER"),
    )

    def guard(name: str, settings: HttpSettings) -> Guard | None:
        return guard_for(guards, name, settings)

    return Registers(
        population=(
            HttpPopulationRegister(population, guard(HttpPopulationRegister.name, population))
            if population
            else SandboxPopulationRegister(data)
        ),
        subscribers=(
            HttpSubscriberRegister(subscribers, guard(HttpSubscriberRegister.name, subscribers))
            if subscribers
            else SandboxSubscriberRegister(data)
        ),
        social_insurance=(
            HttpSocialInsuranceRegister(insurance, guard(HttpSocialInsuranceRegister.name, insurance))
            if insurance
            else SandboxSocialInsuranceRegister(data)
        ),
    )


def guard_for(guards: Guards | None, name: str, settings: HttpSettings) -> Guard | None:
    """The application's guard for one HTTP adapter, from its settings (None without guards)."""
    if guards is None:
        return None
    return guards.guard(
        name,
        concurrency=settings.max_concurrent,
        threshold=settings.breaker_threshold,
        cooldown=settings.breaker_cooldown,
        budget=settings.budget,
        group=Guards.REGISTRATIONS,
    )
