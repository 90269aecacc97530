"""Configuration (idp.config): every bad setting stops create_app with a ConfigError that names the
IDP_ key, whether it comes from the environment or from the caller; good values are accepted."""

from __future__ import annotations

from typing import Any

import pytest

from idp import ConfigError, create_app
from idp.config import describe, resolve

BAD_SETTINGS: list[tuple[str, Any, str]] = [
    ("ISSUER", "http://idp.example.vn", "https"),
    ("ISSUER", "https://idp.example.vn/", "slash"),
    ("ISSUER", "https://idp.example.vn?tenant=hue", "query"),
    ("ISSUER", "https://idp.example.vn#x", "fragment"),
    ("ISSUER", "idp.example.vn", "https"),
    ("ISSUER", "ftp://idp.example.vn", "https"),
    ("CODE_LIFETIME", 61, "at most 60"),
    ("CODE_LIFETIME", 0, "greater than zero"),
    ("CODE_LIFETIME", "sixty", "number"),
    ("ACCESS_TOKEN_LIFETIME", 86400, "at most"),
    ("DATABASE_URL", "mysql://idp@db/idp", "sqlite"),
    ("DATABASE_URL", "postgres.example.vn/idp", "sqlite"),
    ("REDIS_URL", "http://127.0.0.1:6379", "redis://"),
    ("CAPTCHA_ENABLED", "maybe", "true or false"),
    ("CAPTCHA_ENABLED", 2, "true or false"),
    ("OTP_LIFETIME", "2m", "number"),
    ("OTP_MAX_ATTEMPTS", 11, "at most 10"),
    ("DEFAULT_LOCALE", "fr", "vi, en"),
    ("LOG_LEVEL", "TRACE", "one of"),
    ("KEY_RETENTION", -1, "greater than zero"),
    ("SESSION_IDLE_TIMEOUT", 10 * 86400, "SESSION_LIFETIME"),
]


@pytest.mark.parametrize(
    ("name", "value", "says"), [pytest.param(n, v, s, id=f"{n}={v}") for n, v, s in BAD_SETTINGS]
)
def test_bad_setting_is_refused_naming_the_key(make_app: Any, name: str, value: Any, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app(**{name: value})
    message = str(caught.value)
    assert message.startswith(f"IDP_{name}:"), message
    assert says in message, message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IDP_ISSUER", "http://idp.example.vn"),
        ("IDP_CODE_LIFETIME", "61"),
        ("IDP_CAPTCHA_ENABLED", "maybe"),
        ("IDP_ACCESS_TOKEN_LIFETIME", "5 minutes"),
        ("IDP_DATABASE_URL", "oracle://idp@db/idp"),
        ("IDP_REDIS_URL", "memcached://127.0.0.1"),
        ("IDP_OTP_LIFETIME", "0"),
    ],
)
def test_bad_environment_variable_is_refused_naming_it(
    app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    name = variable.removeprefix("IDP_")
    config = {k: v for k, v in app_config.items() if k != name}  # let the environment decide this key
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}:"):
        create_app(config)


@pytest.mark.parametrize("variable", ["IDP_FOO", "IDP_ISUER", "IDP_CLIENT_FILE"])
def test_unknown_idp_variable_is_refused(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "1")
    with pytest.raises(ConfigError, match=f"^{variable}: unknown setting"):
        make_app()


def test_variables_for_other_tools_are_not_settings(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_NEW_PASSWORD", "Whatever@2026")
    assert make_app() is not None


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:8000",
        "http://localhost:5000",
        "http://[::1]:8000",
        "https://sso.hue.gov.vn",
    ],
)
def test_loopback_http_and_https_issuers_are_accepted(make_app: Any, issuer: str) -> None:
    app = make_app(ISSUER=issuer)
    assert app.config["ISSUER"] == issuer
    assert app.config["SESSION_COOKIE_SECURE"] is issuer.startswith("https://")
    assert app.test_client().get("/.well-known/openid-configuration").json["issuer"] == issuer


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("false", False),
        ("0", False),
        ("off", False),
    ],
)
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert resolve({"IDP_CAPTCHA_ENABLED": raw})["CAPTCHA_ENABLED"] is expected


def test_layers_later_wins() -> None:
    settings = resolve(
        {"IDP_CODE_LIFETIME": "45"},
        {"CODE_LIFETIME": 30, "OTP_LIFETIME": 180},
        {"CODE_LIFETIME": 20},
    )
    assert settings["CODE_LIFETIME"] == 20  # overrides beat the environment
    assert settings["OTP_LIFETIME"] == 180  # the instance file beats the default
    assert resolve({"IDP_CODE_LIFETIME": "45"}, {"CODE_LIFETIME": 30})["CODE_LIFETIME"] == 45


def test_defaults_are_strict() -> None:
    settings = resolve({})
    assert settings["CODE_LIFETIME"] <= 60
    assert settings["ACCESS_TOKEN_LIFETIME"] <= 600
    assert settings["CAPTCHA_ENABLED"] is True
    assert settings["OTP_LIFETIME"] == 120


def test_describe_lists_every_setting_with_its_prefix() -> None:
    text = describe()
    for name in (
        "IDP_ISSUER",
        "IDP_DATABASE_URL",
        "IDP_REDIS_URL",
        "IDP_CLIENTS_FILE",
        "IDP_KEYS_DIR",
        "IDP_SMS_OUTBOX",
    ):
        assert name in text


def test_sms_gateway_required_outside_loopback_without_outbox(make_app: Any) -> None:
    with pytest.raises(ConfigError, match="^IDP_SMS_GATEWAY_URL"):
        make_app(SMS_OUTBOX=None)
