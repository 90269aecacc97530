"""Signing keys (idp.oidc.keys): creation, file permissions, rotation through next → active →
retired, retention, what the JWKS publishes, and what an application does with missing keys."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import ConfigError
from idp.oidc.keys import KeyRing, ensure_keys, read_keys, rotate
from tests.support.driver import Browser
from tests.support.outbox import Outbox
from tests.support.tokens import sign_in_and_exchange, verify_jwt

ALGS = ("ES256", "RS256")


def by_state(directory: Path) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for key in read_keys(directory):
        found.setdefault((key.alg, key.status), []).append(key.kid)
    return found


def published(ring: KeyRing) -> set[str]:
    return {k["kid"] for k in ring.jwks()["keys"]}


def test_ensure_keys_creates_an_active_and_a_next_key_per_algorithm(tmp_path: Path) -> None:
    created = ensure_keys(tmp_path / "keys")
    assert sorted((k.alg, k.status) for k in created) == sorted(
        [(a, s) for a in ALGS for s in ("active", "next")]
    )
    states = by_state(tmp_path / "keys")
    for alg in ALGS:
        assert len(states[(alg, "active")]) == 1 and len(states[(alg, "next")]) == 1
    assert ensure_keys(tmp_path / "keys") == []  # idempotent


def test_key_files_are_private_to_the_owner(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    files = list(tmp_path.glob("*.jwk.json"))
    assert len(files) == 4
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_ensure_keys_completes_a_partial_folder(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    nxt = next(k for k in read_keys(tmp_path) if k.alg == "RS256" and k.status == "next")
    nxt.path.unlink()
    created = ensure_keys(tmp_path)
    assert [(k.alg, k.status) for k in created] == [("RS256", "next")]


def test_rotation_moves_next_to_active_and_active_to_retired(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    before = by_state(tmp_path)
    ring = KeyRing(tmp_path, retention_seconds=86400)
    published_before = published(ring)

    rotate(tmp_path)

    after = by_state(tmp_path)
    ring = KeyRing(tmp_path, retention_seconds=86400)
    for alg in ALGS:
        assert after[(alg, "active")] == before[(alg, "next")]  # the key relying parties already have
        assert after[(alg, "retired")] == before[(alg, "active")]
        (new_next,) = after[(alg, "next")]
        assert new_next not in published_before
        assert new_next in published(ring)  # published before it ever signs
        assert before[(alg, "active")][0] in published(ring)  # retired but still verifiable


def test_rotation_of_one_algorithm_leaves_the_other(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    before = by_state(tmp_path)
    rotate(tmp_path, ("RS256",))
    after = by_state(tmp_path)
    assert after[("ES256", "active")] == before[("ES256", "active")]
    assert after[("RS256", "active")] == before[("RS256", "next")]


def test_retired_key_disappears_after_retention(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    rotate(tmp_path)
    retired = [k for k in read_keys(tmp_path) if k.status == "retired"]
    assert len(retired) == 2
    old = retired[0]
    data = json.loads(old.path.read_text())
    data["retired_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(days=8)).replace(microsecond=0).isoformat()
    old.path.write_text(json.dumps(data))
    ring = KeyRing(tmp_path, retention_seconds=7 * 86400)
    assert old.kid not in published(ring)
    assert retired[1].kid in published(ring)


def test_every_signature_names_its_key(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    ring = KeyRing(tmp_path, retention_seconds=86400)
    active = {k.alg: k.kid for k in read_keys(tmp_path) if k.status == "active"}
    for alg in ALGS:
        token = ring.sign({"sub": "x"}, alg)
        header = jwt.decode(token, KeySet.import_key_set(ring.jwks()), algorithms=[alg]).header
        assert header["kid"] == active[alg] and header["alg"] == alg


def test_published_keys_carry_no_private_members(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    rotate(tmp_path)
    for key in KeyRing(tmp_path, retention_seconds=86400).jwks()["keys"]:
        assert not ({"d", "p", "q", "dp", "dq", "qi"} & set(key))
        assert key["use"] == "sig" and key["alg"] in ALGS and key["kid"]


# -- with a running application --------------------------------------------------------------------
def test_id_tokens_after_rotation_use_the_new_key_and_old_ones_still_verify(
    make_app: Any, outbox: Outbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(KeyRing, "CHECK_INTERVAL", 0.0)
    keys = tmp_path / "keys"
    ensure_keys(keys)
    app = make_app(KEYS_DIR=str(keys))
    browser = Browser(app.test_client(), outbox)
    next_kids = {k.alg: k.kid for k in read_keys(keys) if k.status == "next"}

    before, _ = sign_in_and_exchange(browser, client_id="portal")
    before_rs, _ = sign_in_and_exchange(browser, client_id="portal-post")
    rotate(keys)
    after, _ = sign_in_and_exchange(browser, client_id="portal")  # SSO: no new OTP needed
    after_rs, _ = sign_in_and_exchange(browser, client_id="portal-post")

    assert verify_jwt(browser.client, after["id_token"])[0]["kid"] == next_kids["ES256"]
    assert verify_jwt(browser.client, after_rs["id_token"])[0]["kid"] == next_kids["RS256"]
    # Tokens signed before the rotation still verify against the published JWKS.
    for token in (before["id_token"], before_rs["id_token"]):
        header, claims = verify_jwt(browser.client, token)
        assert header["kid"] not in next_kids.values()
        assert claims["iss"] == "https://idp.example.vn"


def test_missing_keys_refuse_to_start_naming_keys_dir(make_app: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="IDP_KEYS_DIR"):
        make_app(KEYS_DIR=str(tmp_path / "empty"))


def test_half_a_key_set_refuses_to_start(make_app: Any, tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    for key in read_keys(tmp_path):
        if key.alg == "RS256" and key.status == "active":
            key.path.unlink()
    with pytest.raises(ConfigError, match="IDP_KEYS_DIR.*RS256"):
        make_app(KEYS_DIR=str(tmp_path))


def test_unreadable_key_file_refuses_to_start(make_app: Any, tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    (tmp_path / "broken.jwk.json").write_text("{not json")
    with pytest.raises(ConfigError, match="IDP_KEYS_DIR"):
        make_app(KEYS_DIR=str(tmp_path))
