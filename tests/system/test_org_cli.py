"""The operator's commands for organizations: `idp orgs add|list|staff` and `idp accounts add-staff`
(password from stdin or IDP_NEW_PASSWORD, never the command line; the operator in the audit trail).
Run against a temporary SQLite database configured only through IDP_* variables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.org import LAN, MINH
from tests.system.test_cli import environment, invoke, query

GOOD_PASSWORD = "Tram-Lau#8417q"
STAFF = ["--org", "0100233488", "--username", "senvang.hue", "--name", "Ngô Thị Huệ", "--phone", "0912000111"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("org-cli-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        result = invoke(environment(folder), "init", "--sandbox")
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Path) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    env = environment(tmp_path)
    shutil.copy(template / "idp.sqlite3", env["IDP_DATABASE_URL"].removeprefix("sqlite:///"))
    shutil.copytree(template / "keys", env["IDP_KEYS_DIR"])
    return env


@pytest.fixture
def idp(env: dict[str, str]) -> Any:
    def run(*args: str, input: str | None = None, extra_env: dict[str, str] | None = None) -> Any:
        return invoke(env, *args, input=input, extra_env=extra_env)

    return run


def test_sandbox_loads_organizations_and_staff_once(idp: Any, env: dict[str, str]) -> None:
    assert query(env, "SELECT code, code_type, kind FROM organizations ORDER BY code") == [
        (LAN.org_code, "province", "department"),
        (MINH.org_code, "tax", "enterprise"),
    ]
    again = idp("init", "--sandbox")
    assert again.exit_code == 0, again.output
    assert "sandbox staff senvang.minh already present" in again.output
    assert query(env, "SELECT count(*) FROM organizations")[0][0] == 2
    assert query(env, "SELECT count(*) FROM accounts WHERE kind = 'organization'")[0][0] == 2
    assert query(env, "SELECT count(*) FROM totp_credentials")[0][0] == 1
    assert query(env, "SELECT count(*) FROM recovery_codes")[0][0] == len(MINH.recovery_codes)
    (stored,) = query(env, "SELECT secret_encrypted FROM totp_credentials")[0]
    assert MINH.totp_secret not in stored


@pytest.mark.parametrize(
    ("code", "kind", "code_type", "normal"),
    [
        ("0314409058", "enterprise", "tax", "0314409058"),
        ("0314409058002", "enterprise", "tax", "0314409058-002"),
        ("000.00.15.h57", "department", "province", "000.00.15.H57"),
        ("000.12.34.H57", "public-unit", "province", "000.12.34.H57"),
    ],
)
def test_orgs_add(idp: Any, env: dict[str, str], code: str, kind: str, code_type: str, normal: str) -> None:
    result = idp("orgs", "add", "--code", code, "--name", "Đơn vị  mới", "--kind", kind, "--operator", "thu")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "code": normal,
        "code_type": code_type,
        "name": "Đơn vị mới",
        "kind": kind,
    }
    events = query(
        env, "SELECT actor, detail FROM audit_events WHERE action = 'organization.created' ORDER BY id"
    )
    assert events[-1][0] == "operator:thu" and normal in events[-1][1]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("0314409050", "check digit"),
        ("031440905", "10 digits"),
        ("0314409058-000", "branch"),
        ("H57", "province-issued code"),
        (MINH.org_code, "already exists"),
    ],
)
def test_orgs_add_refuses_a_bad_or_taken_code(idp: Any, env: dict[str, str], code: str, message: str) -> None:
    before = query(env, "SELECT count(*) FROM organizations")[0][0]
    result = idp("orgs", "add", "--code", code, "--name", "X", "--kind", "enterprise")
    assert result.exit_code == 1
    assert message in result.output
    assert query(env, "SELECT count(*) FROM organizations")[0][0] == before


def test_add_staff_with_the_password_on_stdin(idp: Any, env: dict[str, str]) -> None:
    result = idp(
        "accounts", "add-staff", *STAFF, "--role", "admin", "--role", "staff", "--operator", "thu",
        input=GOOD_PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert GOOD_PASSWORD not in result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["username"] == "senvang.hue" and printed["organization"] == "0100233488"
    assert printed["roles"] == ["admin", "staff"] and printed["created_by"] == "operator:thu"
    account_id, kind, created_by, password_hash = query(
        env, "SELECT id, kind, created_by, password_hash FROM accounts WHERE username = 'senvang.hue'"
    )[0]
    assert kind == "organization" and created_by == "operator:thu"
    assert password_hash.startswith("$argon2id$")
    assert query(env, "SELECT role FROM account_roles WHERE account_id = ? ORDER BY role", account_id) == [
        ("admin",),
        ("staff",),
    ]
    assert query(env, "SELECT actor, action FROM audit_events WHERE account_id = ?", account_id) == [
        ("operator:thu", "account.created")
    ]
    assert query(env, "SELECT number FROM phones WHERE account_id = ?", account_id) == [("+84912000111",)]
    listing = idp("orgs", "staff", "0100233488")
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert lines[0].startswith("senvang.hue\tadmin,staff\tsms\tactive\tNgô Thị Huệ")
    assert lines[1].startswith("senvang.minh\tstaff\ttotp+sms\tactive")


def test_add_staff_with_the_password_in_the_environment(idp: Any, env: dict[str, str]) -> None:
    result = idp("accounts", "add-staff", *STAFF, extra_env={"IDP_NEW_PASSWORD": GOOD_PASSWORD})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["roles"] == ["staff"]  # the default role


@pytest.mark.parametrize(
    ("extra", "password", "message"),
    [
        (["--role", "owner"], GOOD_PASSWORD, "unknown role owner"),
        (["--username", "1bad"], GOOD_PASSWORD, "username must be"),
        (["--username", LAN.username], GOOD_PASSWORD, "already taken"),
        (["--org", "0314409058"], GOOD_PASSWORD, "no organization"),
        (["--phone", "12345"], GOOD_PASSWORD, "phone"),
        (["--id-number", "046090001234"], GOOD_PASSWORD, "*********234 already belongs to a person"),
        ([], "weak", "password refused"),
        ([], "", "no password given"),
    ],
)
def test_add_staff_refusals(
    idp: Any, env: dict[str, str], extra: list[str], password: str, message: str
) -> None:
    before = query(env, "SELECT count(*) FROM accounts")[0][0]
    args = STAFF + extra
    result = idp("accounts", "add-staff", *args, input=password + "\n")
    assert result.exit_code == 1
    assert message in result.output
    assert "046090001234" not in result.output
    assert query(env, "SELECT count(*) FROM accounts")[0][0] == before


def test_no_password_option_on_the_command_line(idp: Any) -> None:
    result = idp("accounts", "add-staff", *STAFF, "--password", GOOD_PASSWORD)
    assert result.exit_code == 2 and "No such option" in result.output


def test_orgs_list(idp: Any) -> None:
    result = idp("orgs", "list")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"{LAN.org_code}\tdepartment\t1 staff\tactive\t{LAN.org_name}",
        f"{MINH.org_code}\tenterprise\t1 staff\tactive\t{MINH.org_name}",
    ]


def test_orgs_staff_of_an_unknown_organization(idp: Any) -> None:
    result = idp("orgs", "staff", "0314409058")
    assert result.exit_code == 1 and "no organization" in result.output
