"""Relying parties in clients.yaml (idp.clients): validation with the entry named, redirect-URI
matching (exact; RFC 8252 loopback on any port), client secret digests, and live reloading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from idp import ConfigError
from idp import clients as clients_module
from idp.clients import (
    ClientConfigError,
    ClientRegistry,
    hash_secret,
    load_clients,
    parse_client,
    verify_secret,
)

SECRET = "a-client-secret-0123456789-abcdefghijklmnop"


def valid(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "client_id": "rp-one",
        "client_name": "Cổng thử nghiệm",
        "redirect_uris": ["https://rp.example.vn/cb"],
        "client_secret_hash": hash_secret(SECRET),
        "scope": "openid profile",
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def public(**changes: Any) -> dict[str, Any]:
    return valid(
        **{
            "client_id": "rp-app",
            "token_endpoint_auth_method": "none",
            "client_secret_hash": None,
            **changes,
        }
    )


def write(tmp_path: Path, entries: list[Any]) -> Path:
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump({"clients": entries}, allow_unicode=True), encoding="utf-8")
    return path


FIRST = valid(client_id="first-rp")

# (id, entry, client_id the message names, what the message says)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("wildcard redirect", valid(redirect_uris=["https://*.example.vn/cb"]), "rp-one", "wildcard"),
    ("wildcard path", valid(redirect_uris=["https://rp.example.vn/*"]), "rp-one", "wildcard"),
    ("http outside loopback", valid(redirect_uris=["http://rp.example.vn/cb"]), "rp-one", "https"),
    (
        "private-use scheme without a dot",
        public(redirect_uris=["myapp:/cb"]),
        "rp-app",
        "private-use",
    ),
    ("javascript: redirect", valid(redirect_uris=["javascript:alert(1)"]), "rp-one", "javascript"),
    (
        "data: redirect",
        valid(redirect_uris=["data:text/html,<script>x</script>"]),
        "rp-one",
        "data",
    ),
    ("fragment", valid(redirect_uris=["https://rp.example.vn/cb#top"]), "rp-one", "fragment"),
    ("empty fragment", valid(redirect_uris=["https://rp.example.vn/cb#"]), "rp-one", "fragment"),
    ("relative redirect", valid(redirect_uris=["/cb"]), "rp-one", "absolute"),
    ("no redirect for the code grant", valid(redirect_uris=[]), "rp-one", "redirect_uris"),
    (
        "post-logout javascript:",
        valid(post_logout_redirect_uris=["javascript:void(0)"]),
        "rp-one",
        "javascript",
    ),
    (
        "post-logout http",
        valid(post_logout_redirect_uris=["http://rp.example.vn/bye"]),
        "rp-one",
        "https",
    ),
    ("confidential without secret", valid(client_secret_hash=None), "rp-one", "client_secret"),
    ("both hash and env", valid(client_secret_env="RP_SECRET"), "rp-one", "exactly one"),
    ("plain text hash", valid(client_secret_hash=SECRET), "rp-one", "hash-secret"),
    (
        "public client with a secret",
        public(client_secret_hash=hash_secret(SECRET)),
        "rp-app",
        "must not have",
    ),
    (
        "client_secret_env unset",
        valid(client_secret_hash=None, client_secret_env="IDP_TEST_UNSET_SECRET"),
        "rp-one",
        "IDP_TEST_UNSET_SECRET",
    ),
    (
        "client_secret_env not a name",
        valid(client_secret_hash=None, client_secret_env="lower-case"),
        "rp-one",
        "environment variable",
    ),
    ("public client without PKCE", public(require_pkce=False), "rp-app", "PKCE"),
    (
        "public client with client_credentials",
        public(grant_types=["client_credentials"]),
        "rp-app",
        "client_credentials",
    ),
    ("unknown field", valid(client_secret="plain"), "rp-one", "client_secret"),
    ("misspelt field", valid(redirect_uri="https://rp.example.vn/cb"), "rp-one", "redirect_uri"),
    (
        "unknown auth method",
        valid(token_endpoint_auth_method="client_secret_jwt"),
        "rp-one",
        "token_endpoint_auth_method",
    ),
    ("unknown grant type", valid(grant_types=["implicit"]), "rp-one", "implicit"),
    (
        "unsigned ID tokens",
        valid(id_token_signed_response_alg="none"),
        "rp-one",
        "id_token_signed_response_alg",
    ),
    (
        "HS256 ID tokens",
        valid(id_token_signed_response_alg="HS256"),
        "rp-one",
        "id_token_signed_response_alg",
    ),
    (
        "private_key_jwt without keys",
        valid(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None),
        "rp-one",
        "jwks",
    ),
    (
        "jwks_uri over http",
        valid(
            token_endpoint_auth_method="private_key_jwt",
            client_secret_hash=None,
            jwks_uri="http://rp.example.vn/jwks",
        ),
        "rp-one",
        "https",
    ),
    (
        "backchannel over http",
        valid(backchannel_logout_uri="http://rp.example.vn/bc"),
        "rp-one",
        "backchannel",
    ),
    ("unknown acr", valid(require_acr="LoA9"), "rp-one", "require_acr"),
    ("scope not a string", valid(scope=["openid"]), "rp-one", "scope"),
    ("flag not a boolean", valid(first_party="yes"), "rp-one", "first_party"),
    ("client_id with a space", valid(client_id="rp one"), "rp one", "client_id"),
    ("no client_name", valid(client_name=None), "rp-one", "client_name"),
    (
        "same redirect twice",
        valid(redirect_uris=["https://rp.example.vn/cb"] * 2),
        "rp-one",
        "twice",
    ),
]


@pytest.mark.parametrize(
    ("entry", "client_id", "says"), [pytest.param(e, c, s, id=i) for i, e, c, s in REFUSED]
)
def test_bad_entries_are_refused_naming_the_entry(
    tmp_path: Path, entry: dict[str, Any], client_id: str, says: str
) -> None:
    path = write(tmp_path, [FIRST, entry])
    with pytest.raises(ClientConfigError) as caught:
        load_clients(path, {})
    message = str(caught.value)
    assert f"'{client_id}'" in message, message
    assert "(entry 2)" in message, message
    assert str(path) in message
    assert says.lower() in message.lower(), message


def test_duplicate_client_id_names_the_second_entry(tmp_path: Path) -> None:
    path = write(tmp_path, [valid(), valid(redirect_uris=["https://other.example.vn/cb"])])
    with pytest.raises(ClientConfigError, match=r"'rp-one' \(entry 2\): duplicate client_id"):
        load_clients(path, {})


def test_entry_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, [FIRST, "just-a-string"])
    with pytest.raises(ClientConfigError, match=r"\(entry 2\)"):
        load_clients(path, {})


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("clients: {}\n", id="clients not a list"),
        pytest.param("relying_parties: []\n", id="no clients key"),
        pytest.param("clients: [\n", id="not YAML"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(text)
    with pytest.raises(ClientConfigError, match=str(path)):
        load_clients(path, {})


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ClientConfigError, match="IDP_CLIENTS_FILE"):
        load_clients(tmp_path / "absent.yaml", {})


def test_app_refuses_to_start_with_a_bad_clients_file(make_app: Any, tmp_path: Path) -> None:
    path = write(tmp_path, [FIRST, valid(redirect_uris=["https://*.example.vn/cb"])])
    with pytest.raises(ConfigError, match=r"IDP_CLIENTS_FILE.*'rp-one' \(entry 2\)"):
        make_app(CLIENTS_FILE=str(path))


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/cb",
        "http://127.0.0.1:8080/cb",
        "http://[::1]:8080/cb",
        "http://localhost/cb",
        "https://rp.example.vn/cb?tenant=hue",
        "https://rp.example.vn:8443/cb",
    ],
)
def test_acceptable_redirect_uris(tmp_path: Path, uri: str) -> None:
    clients = load_clients(write(tmp_path, [valid(redirect_uris=[uri])]), {})
    assert clients["rp-one"].redirect_uris == (uri,)


def test_private_use_scheme_with_a_dot_for_a_public_client(tmp_path: Path) -> None:
    clients = load_clients(write(tmp_path, [public(redirect_uris=["vn.gov.hue.app:/oauth/cb"])]), {})
    assert clients["rp-app"].is_public and clients["rp-app"].require_pkce


def test_client_secret_env(tmp_path: Path) -> None:
    entry = valid(client_secret_hash=None, client_secret_env="RP_ONE_SECRET")
    clients = load_clients(write(tmp_path, [entry]), {"RP_ONE_SECRET": SECRET})
    assert clients["rp-one"].check_secret(SECRET)
    assert not clients["rp-one"].check_secret(SECRET + "x")
    with pytest.raises(ClientConfigError, match="shorter than 32"):
        load_clients(write(tmp_path, [entry]), {"RP_ONE_SECRET": "short"})


def test_defaults(tmp_path: Path) -> None:
    rp = load_clients(write(tmp_path, [valid()]), {})["rp-one"]
    assert rp.token_endpoint_auth_method == "client_secret_basic"
    assert rp.grant_types == ("authorization_code", "refresh_token")
    assert rp.require_pkce is True and rp.first_party is False and rp.resource_server is False
    assert rp.id_token_signed_response_alg == "ES256"


def test_the_test_suites_clients_file_is_valid(clients_file: Path) -> None:
    clients = load_clients(clients_file, {})
    assert {
        "portal",
        "portal-post",
        "partner",
        "mobile",
        "agency-backend",
        "resource-api",
        "jwt-client",
    } <= set(clients)


# -- redirect URI matching -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("registered", "presented", "matches"),
    [
        ("https://rp.example.vn/cb", "https://rp.example.vn/cb", True),
        ("https://rp.example.vn/cb", "https://rp.example.vn/cb/", False),
        ("https://rp.example.vn/cb", "https://RP.example.vn/cb", False),
        ("https://rp.example.vn/cb", "https://rp.example.vn/CB", False),
        ("https://rp.example.vn/cb", "https://rp.example.vn/cb?x=1", False),
        ("https://rp.example.vn/cb", "https://rp.example.vn/cb#x", False),
        ("https://rp.example.vn/cb", "https://rp.example.vn:443/cb", False),
        ("https://rp.example.vn/cb", "https://rp.example.vn:8443/cb", False),
        ("https://rp.example.vn/cb", "http://rp.example.vn/cb", False),
        ("https://rp.example.vn/cb", "https://rp.example.vn.evil.vn/cb", False),
        ("https://rp.example.vn/cb", "https://rp.example.vn/cb/../cb", False),
        ("https://rp.example.vn/cb?tenant=hue", "https://rp.example.vn/cb?tenant=hue", True),
        ("https://rp.example.vn/cb?tenant=hue", "https://rp.example.vn/cb?tenant=hcm", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", True),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:51234/cb", True),
        ("http://[::1]/cb", "http://[::1]:51234/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/other", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb?x=1", False),
        ("http://127.0.0.1/cb", "http://localhost:51234/cb", False),
        ("http://127.0.0.1/cb", "https://127.0.0.1:51234/cb", False),
        ("http://127.0.0.1/cb", "http://user:pw@127.0.0.1:51234/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb#frag", False),
        ("vn.gov.hue.app:/oauth/cb", "vn.gov.hue.app:/oauth/cb", True),
        ("vn.gov.hue.app:/oauth/cb", "vn.gov.hue.app:/oauth/cb2", False),
    ],
)
def test_redirect_uri_matching(tmp_path: Path, registered: str, presented: str, matches: bool) -> None:
    rp = parse_client(public(redirect_uris=[registered]), 0, tmp_path / "clients.yaml", {})
    assert rp.matches_redirect_uri(presented) is matches


@pytest.mark.parametrize(
    ("registered", "presented", "matches"),
    [
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb", True),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:51234/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", False),
        ("http://[::1]/cb", "http://[::1]:51234/cb", False),
    ],
)
def test_a_confidential_clients_loopback_uri_matches_exactly(
    tmp_path: Path, registered: str, presented: str, matches: bool
) -> None:
    rp = parse_client(valid(redirect_uris=[registered]), 0, tmp_path / "clients.yaml", {})
    assert not rp.is_public
    assert rp.matches_redirect_uri(presented) is matches


def test_post_logout_redirect_uri_matching(tmp_path: Path) -> None:
    rp = parse_client(valid(post_logout_redirect_uris=["https://rp.example.vn/bye"]), 0, tmp_path, {})
    assert rp.matches_post_logout_redirect_uri("https://rp.example.vn/bye")
    assert not rp.matches_post_logout_redirect_uri("https://rp.example.vn/bye/")
    assert not rp.matches_post_logout_redirect_uri("https://evil.example.vn/bye")


# -- secrets ---------------------------------------------------------------------------------------
def test_hash_secret_round_trip() -> None:
    stored = hash_secret(SECRET)
    assert SECRET not in stored
    assert stored.startswith("hmac-sha256$")
    assert verify_secret(stored, SECRET)
    assert not verify_secret(stored, SECRET[:-1])
    assert not verify_secret(stored, SECRET + "x")
    assert not verify_secret(stored, "")


def test_each_hash_has_its_own_salt() -> None:
    first, second = hash_secret(SECRET), hash_secret(SECRET)
    assert first != second
    assert verify_secret(first, SECRET) and verify_secret(second, SECRET)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain-text-secret",
        "hmac-sha256$onlyonepart",
        "sha1$AAAA$BBBB",
        "hmac-sha256$!!!$???",
        "hmac-sha256$a$b$c",
    ],
)
def test_malformed_digests_never_verify_and_never_raise(stored: str) -> None:
    assert verify_secret(stored, SECRET) is False
    assert verify_secret(stored, "plain-text-secret") is False


def test_verify_secret_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = clients_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(clients_module.hmac, "compare_digest", spy)
    stored = hash_secret(SECRET)
    assert verify_secret(stored, SECRET)
    assert not verify_secret(stored, "wrong")
    assert len(calls) == 2  # every comparison goes through compare_digest, right or wrong


def test_non_ascii_secret() -> None:
    stored = hash_secret("bí-mật-của-cổng-0123456789-abcdefghij")
    assert verify_secret(stored, "bí-mật-của-cổng-0123456789-abcdefghij")
    assert not verify_secret(stored, "bi-mat-cua-cong-0123456789-abcdefghij")


# -- reloading -------------------------------------------------------------------------------------
def test_registry_picks_up_a_valid_change_and_keeps_serving_after_an_invalid_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ClientRegistry, "CHECK_INTERVAL", 0.0)
    path = write(tmp_path, [valid()])
    registry = ClientRegistry(path, {})
    assert registry.get("rp-one") is not None and registry.get("rp-two") is None

    write(tmp_path, [valid(), valid(client_id="rp-two")])
    os.utime(path, ns=(1, 1_000_000_000_000))
    assert registry.get("rp-two") is not None

    path.write_text("clients: [\n")  # broken while someone edits it
    assert registry.get("rp-one") is not None and registry.get("rp-two") is not None
