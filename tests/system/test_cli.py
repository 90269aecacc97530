"""The `idp` command line an operator uses: init, accounts add-citizen, clients, keys, serve.

Every command runs against a temporary SQLite database, key folder and copy of clients.yaml,
configured only through IDP_* environment variables, as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from idp.cli import main
from idp.clients import load_clients, verify_secret
from idp.oidc.keys import read_keys

REPO = Path(__file__).resolve().parents[2]
NEW_ID = "046095012345"  # Thừa Thiên Huế, male, born 1995
CITIZEN = [
    "--id-number",
    NEW_ID,
    "--name",
    "Hồ Văn Mới",
    "--birth-date",
    "01/02/1995",
    "--phone",
    "0987111222",
    "--gender",
    "male",
]
GOOD_PASSWORD = "Tram-Gio-Nam@2026"


def environment(folder: Path) -> dict[str, str]:
    """What an operator exports: everything in `folder`, clients.yaml a copy of the repository's."""
    clients = folder / "clients.yaml"
    if not clients.exists():
        shutil.copy(REPO / "clients.yaml", clients)
    return {
        "IDP_DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}",
        "IDP_KEYS_DIR": str(folder / "keys"),
        "IDP_CLIENTS_FILE": str(clients),
        "IDP_SMS_OUTBOX": str(folder / "sms.jsonl"),
        "IDP_ARGON2_MEMORY_KIB": "1024",
        "IDP_ARGON2_TIME_COST": "1",
        "DEMO_PORTAL_CLIENT_SECRET": "demo-portal-secret-0123456789-abcdefghij",
        "DEMO_PARTNER_CLIENT_SECRET": "demo-partner-secret-0123456789-abcdefghi",
    }


def invoke(
    env: dict[str, str],
    *args: str,
    input: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Result:
    return CliRunner().invoke(
        main, list(args), input=input, env={**env, **(extra_env or {})}, catch_exceptions=False
    )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # instance/ lands here, never in the repository
    return environment(tmp_path)


@pytest.fixture
def idp(env: dict[str, str]) -> Any:
    def run(*args: str, input: str | None = None, extra_env: dict[str, str] | None = None) -> Result:
        return invoke(env, *args, input=input, extra_env=extra_env)

    return run


@pytest.fixture(scope="module")
def initialized_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`idp init` run once (keys, migrated database); each test gets a copy of the result."""
    folder = tmp_path_factory.mktemp("cli-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        result = invoke(environment(folder), "init")
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def initialized(idp: Any, env: dict[str, str], initialized_template: Path) -> Any:
    shutil.copy(initialized_template / "idp.sqlite3", env["IDP_DATABASE_URL"].removeprefix("sqlite:///"))
    shutil.copytree(initialized_template / "keys", env["IDP_KEYS_DIR"])
    return idp


def query(env: dict[str, str], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    path = env["IDP_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


# -- init ------------------------------------------------------------------------------------------
def test_init_sandbox_creates_keys_schema_and_accounts_and_is_idempotent(
    idp: Any, env: dict[str, str]
) -> None:
    first = idp("init", "--sandbox")
    assert first.exit_code == 0, first.output
    keys = read_keys(Path(env["IDP_KEYS_DIR"]))
    assert sorted((k.alg, k.status) for k in keys) == [
        ("ES256", "active"),
        ("ES256", "next"),
        ("RS256", "active"),
        ("RS256", "next"),
    ]
    assert (Path(env["IDP_KEYS_DIR"]) / "secret.key").exists()
    accounts = query(env, "SELECT count(*) FROM accounts")[0][0]
    assert accounts >= 4
    assert "046090001234" not in first.output  # ID numbers are masked in what it prints

    second = idp("init", "--sandbox")
    assert second.exit_code == 0, second.output
    assert "created ES256" not in second.output
    assert {k.kid for k in read_keys(Path(env["IDP_KEYS_DIR"]))} == {k.kid for k in keys}
    assert query(env, "SELECT count(*) FROM accounts")[0][0] == accounts


def test_init_without_sandbox_creates_no_accounts(idp: Any, env: dict[str, str]) -> None:
    assert idp("init").exit_code == 0
    assert query(env, "SELECT count(*) FROM accounts")[0][0] == 0


def test_init_refuses_a_bad_setting_naming_it(idp: Any) -> None:
    result = idp("init", extra_env={"IDP_CODE_LIFETIME": "600"})
    assert result.exit_code == 1
    assert "IDP_CODE_LIFETIME" in result.output


# -- accounts add-citizen --------------------------------------------------------------------------
def test_add_citizen_reads_the_password_from_stdin_and_records_the_operator(
    initialized: Any, env: dict[str, str]
) -> None:
    result = initialized(
        "accounts", "add-citizen", *CITIZEN, "--operator", "tran.thi.b", input=GOOD_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert GOOD_PASSWORD not in result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["loa"] == "LoA2"  # the default level
    assert printed["created_by"] == "operator:tran.thi.b"
    assert NEW_ID not in result.output

    account_id, created_by, password_hash = query(
        env, "SELECT id, created_by, password_hash FROM accounts WHERE username = ?", NEW_ID
    )[0]
    assert created_by == "operator:tran.thi.b"
    assert password_hash.startswith("$argon2id$") and GOOD_PASSWORD not in password_hash
    events = query(env, "SELECT actor, action, detail FROM audit_events WHERE account_id = ?", account_id)
    assert [(actor, action) for actor, action, _ in events] == [("operator:tran.thi.b", "account.created")]
    assert NEW_ID not in events[0][2]  # masked in the audit trail too
    assert query(env, "SELECT number FROM phones WHERE account_id = ?", account_id) == [("+84987111222",)]


def test_add_citizen_with_level_3_and_password_from_the_environment(
    initialized: Any, env: dict[str, str]
) -> None:
    result = initialized(
        "accounts",
        "add-citizen",
        *CITIZEN,
        "--loa",
        "3",
        "--operator",
        "op",
        extra_env={"IDP_NEW_PASSWORD": GOOD_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert query(
        env,
        "SELECT p.loa FROM persons p JOIN accounts a ON a.person_id = p.id WHERE a.username = ?",
        NEW_ID,
    ) == [(3,)]


@pytest.mark.parametrize(
    "password",
    [
        "Sh@1rt",
        "alllowercase@2026",
        "NoSpecialChar2026",
        "No-Digits-Here",
        "Mat-khau@046095012345",
        "",
    ],
)
def test_add_citizen_refuses_a_weak_password(initialized: Any, env: dict[str, str], password: str) -> None:
    result = initialized("accounts", "add-citizen", *CITIZEN, "--operator", "op", input=password + "\n")
    assert result.exit_code == 1
    assert "password" in result.output.lower()
    assert query(env, "SELECT count(*) FROM accounts WHERE username = ?", NEW_ID) == [(0,)]


def test_add_citizen_refuses_a_duplicate_id_number_with_the_number_masked(
    initialized: Any, env: dict[str, str]
) -> None:
    assert (
        initialized(
            "accounts", "add-citizen", *CITIZEN, "--operator", "op", input=GOOD_PASSWORD + "\n"
        ).exit_code
        == 0
    )
    again = initialized("accounts", "add-citizen", *CITIZEN, "--operator", "op", input=GOOD_PASSWORD + "\n")
    assert again.exit_code == 1
    assert "already registered" in again.output
    assert "*********345" in again.output
    assert NEW_ID not in again.output
    assert query(env, "SELECT count(*) FROM accounts WHERE username = ?", NEW_ID) == [(1,)]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--id-number", "12345"),
        ("--id-number", "999095012345"),  # no such province code
        ("--id-number", "046195012345"),  # century/gender digit says female
        ("--id-number", "04609501234a"),
        ("--birth-date", "1995-13-01"),
        ("--phone", "12345"),
    ],
)
def test_add_citizen_refuses_bad_identifiers(
    initialized: Any, env: dict[str, str], option: str, value: str
) -> None:
    args = list(CITIZEN)
    args[args.index(option) + 1] = value
    result = initialized("accounts", "add-citizen", *args, "--operator", "op", input=GOOD_PASSWORD + "\n")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert query(env, "SELECT count(*) FROM accounts") == [(0,)]


def test_add_citizen_has_no_password_option(initialized: Any) -> None:
    from idp.cli import add_citizen

    assert not [
        p for p in add_citizen.params if "password" in (p.name or "") or any("pass" in o for o in p.opts)
    ]
    result = initialized("accounts", "add-citizen", *CITIZEN, "--password", GOOD_PASSWORD)
    assert result.exit_code == 2
    assert "No such option" in result.output


# -- clients ---------------------------------------------------------------------------------------
def test_hash_secret_output_verifies(idp: Any) -> None:
    secret = "an-operator-chosen-secret-0123456789-abc"
    result = idp("clients", "hash-secret", input=secret + "\n")
    assert result.exit_code == 0, result.output
    digest = result.output.strip().splitlines()[-1]
    assert verify_secret(digest, secret)
    assert not verify_secret(digest, secret + "x")


def test_hash_secret_generate(idp: Any) -> None:
    result = idp("clients", "hash-secret", "--generate")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    secret = lines[0].rsplit(" ", 1)[1]
    assert len(secret) >= 32
    assert verify_secret(lines[-1], secret)


def test_hash_secret_refuses_a_short_secret(idp: Any) -> None:
    result = idp("clients", "hash-secret", input="short\n")
    assert result.exit_code == 1
    assert "32" in result.output


def test_clients_add_appends_a_valid_entry_keeping_comments(idp: Any, env: dict[str, str]) -> None:
    path = Path(env["IDP_CLIENTS_FILE"])
    before = path.read_text(encoding="utf-8")
    result = idp(
        "clients",
        "add",
        "--client-id",
        "land-records",
        "--name",
        "Hệ thống đất đai",
        "--redirect-uri",
        "https://land.example.vn/cb",
        "--first-party",
        "--alg",
        "RS256",
    )
    assert result.exit_code == 0, result.output
    after = path.read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # every existing line, comments included, is untouched
    assert "# Relying parties of this deployment" in after
    clients = load_clients(path, env)
    added = clients["land-records"]
    assert added.client_name == "Hệ thống đất đai" and added.id_token_signed_response_alg == "RS256"
    secret = result.output.strip().splitlines()[-1].rsplit(" ", 1)[1]
    assert added.check_secret(secret)
    assert secret not in after
    assert idp("clients", "check").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["--client-id", "bad-rp", "--name", "X", "--redirect-uri", "http://bad.example.vn/cb"],
            id="http",
        ),
        pytest.param(
            ["--client-id", "bad-rp", "--name", "X", "--redirect-uri", "https://*.example.vn/cb"],
            id="wildcard",
        ),
        pytest.param(
            [
                "--client-id",
                "demo-portal",
                "--name",
                "X",
                "--redirect-uri",
                "https://x.example.vn/cb",
            ],
            id="duplicate id",
        ),
        pytest.param(["--client-id", "bad-rp", "--name", "X"], id="no redirect uri"),
        pytest.param(
            ["--client-id", "bad-rp", "--name", "X", "--redirect-uri", "javascript:alert(1)"],
            id="javascript",
        ),
        pytest.param(
            [
                "--client-id",
                "bad-rp",
                "--name",
                "X",
                "--redirect-uri",
                "https://x.example.vn/cb",
                "--auth-method",
                "private_key_jwt",
            ],
            id="private_key_jwt without keys",
        ),
    ],
)
def test_clients_add_refuses_invalid_entries_and_leaves_the_file(
    idp: Any, env: dict[str, str], args: list[str]
) -> None:
    path = Path(env["IDP_CLIENTS_FILE"])
    before = path.read_bytes()
    result = idp("clients", "add", *args)
    assert result.exit_code == 1, result.output
    assert "entry" in result.output
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.glob("clients.yaml*")) == ["clients.yaml"]


def test_clients_check_names_the_bad_entry(idp: Any, env: dict[str, str]) -> None:
    path = Path(env["IDP_CLIENTS_FILE"])
    assert idp("clients", "check").exit_code == 0
    path.write_text(
        path.read_text(encoding="utf-8")
        + "  - client_id: broken-rp\n    client_name: Hỏng\n    redirect_uris: [http://broken.example.vn/cb]\n"
        + "    client_secret_env: DEMO_PORTAL_CLIENT_SECRET\n",
        encoding="utf-8",
    )
    result = idp("clients", "check")
    assert result.exit_code == 1
    entries = len(load_clients(REPO / "clients.yaml", env)) + 1
    assert f"'broken-rp' (entry {entries})" in result.output


def test_clients_check_reports_an_unset_secret_variable(idp: Any, env: dict[str, str]) -> None:
    result = idp("clients", "check", extra_env={"DEMO_PORTAL_CLIENT_SECRET": ""})
    assert result.exit_code == 1
    assert "DEMO_PORTAL_CLIENT_SECRET" in result.output and "'demo-portal'" in result.output


def test_clients_list(idp: Any) -> None:
    result = idp("clients", "list")
    assert result.exit_code == 0
    assert "demo-portal" in result.output and "public" in result.output


# -- keys ------------------------------------------------------------------------------------------
def test_keys_generate_rotate_list(idp: Any, env: dict[str, str]) -> None:
    keys_dir = Path(env["IDP_KEYS_DIR"])
    generated = idp("keys", "generate")
    assert generated.exit_code == 0
    assert generated.output.count("created") == 4
    assert "already" in idp("keys", "generate").output
    before = {(k.alg, k.status): k.kid for k in read_keys(keys_dir)}

    rotated = idp("keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    after = read_keys(keys_dir)
    assert {(k.alg, k.status): k.kid for k in after if k.status == "active"} == {
        ("ES256", "active"): before[("ES256", "next")],
        ("RS256", "active"): before[("RS256", "next")],
    }
    listing = idp("keys", "list")
    assert listing.exit_code == 0
    for key in after:
        assert key.kid in listing.output
    assert listing.output.count("retired") >= 2 and listing.output.count("next") >= 2
    assert '"d"' not in listing.output


def test_keys_rotate_one_algorithm(idp: Any, env: dict[str, str]) -> None:
    idp("keys", "generate")
    before = {(k.alg, k.status): k.kid for k in read_keys(Path(env["IDP_KEYS_DIR"]))}
    assert idp("keys", "rotate", "--alg", "RS256").exit_code == 0
    after = {(k.alg, k.status): k.kid for k in read_keys(Path(env["IDP_KEYS_DIR"]))}
    assert after[("ES256", "active")] == before[("ES256", "active")]
    assert after[("RS256", "active")] == before[("RS256", "next")]


# -- serve and config ------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_serve_with_several_workers_needs_redis(initialized: Any) -> None:
    result = initialized("serve", "--workers", "2", "--port", "1")
    assert result.exit_code == 1
    assert "IDP_REDIS_URL" in result.output


@pytest.mark.timeout(30)
def test_serve_refuses_a_bad_configuration_before_starting(initialized: Any) -> None:
    result = initialized(
        "serve", "--workers", "1", "--port", "1", extra_env={"IDP_ISSUER": "http://sso.example.vn"}
    )
    assert result.exit_code == 1
    assert "IDP_ISSUER" in result.output


def test_config_lists_the_settings(idp: Any) -> None:
    result = idp("config")
    assert result.exit_code == 0
    assert "IDP_ISSUER" in result.output and "IDP_REDIS_URL" in result.output


# -- the README's commands, as written, in a checkout -----------------------------------------------
# Each command the README shows, made concrete where it shows a placeholder or a choice. A command
# the README gains and this table does not know fails the test below until it is added here.
README_COMMANDS: dict[str, list[list[str]] | None] = {
    "idp init [--sandbox]": [["init", "--sandbox"]],
    # A server: it serves tokens and needs the client secrets (tests/test_multiprocess.py runs it).
    "idp serve --host 0.0.0.0 --port 8000 [--workers N] [--threads T]": None,
    "idp keys generate | rotate [--alg ES256] | list": [["keys", "list"], ["keys", "rotate"]],
    # `clients check` reads the file as `idp serve` does, secrets included: it runs where idp
    # serves (test_clients_check_reports_an_unset_secret_variable), not in a bare checkout.
    "idp clients list | check | hash-secret [--generate] | add --client-id … --name … --redirect-uri …": [
        ["clients", "list"],
        ["clients", "hash-secret", "--generate"],
        [
            "clients",
            "add",
            "--client-id",
            "so-thu-nghiem",
            "--name",
            "Cổng thử nghiệm",
            "--redirect-uri",
            "https://thu-nghiem.example.vn/callback",
        ],
    ],
    'idp accounts add-citizen --id-number 046090001234 --name "…" --birth-date 15/03/1990 '
    "--phone 0912345678 [--loa 3] [--operator NAME]": [["accounts", "add-citizen", *CITIZEN, "--loa", "3"]],
    'idp orgs add --code 0100233488 --name "…" --kind department|public-unit|enterprise [--operator NAME]': [
        ["orgs", "add", "--code", "0108887771", "--name", "Sở Thử Nghiệm", "--kind", "department"]
    ],
    "idp orgs list | idp orgs staff CODE": [["orgs", "list"], ["orgs", "staff", "0108887771"]],
    'idp accounts add-staff --org CODE --username nv.an --name "…" --phone 09… [--role admin --role staff] '
    "[--id-number …] [--loa 3] [--operator NAME]": [
        [
            "accounts",
            "add-staff",
            "--org",
            "0108887771",
            "--username",
            "nv.an",
            "--name",
            "Nguyễn An",
            "--phone",
            "0912000111",
            "--role",
            "admin",
        ]
    ],
    'idp accounts register-in-person --id-number … --name "…" --birth-date dd/mm/yyyy --phone 09… '
    '--at counter|post-office --place "…" [--gender …] [--operator NAME]': [],  # the example below, verbatim
    "idp pki sandbox [--dir PATH]": [["pki", "sandbox", "--dir", "pki"]],
    "idp config": [["config"]],
}


def readme_commands() -> list[str]:
    """Every `idp` command in the README's shell blocks, continuation lines joined, comments cut."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", command).strip()
            command = re.sub(r"\s+", " ", command)
            if command.startswith(("idp ", ".venv/bin/idp ")):
                found.append(command)
    return found


def test_every_readme_command_is_known_to_this_test() -> None:
    shown = readme_commands()
    exact = [c for c in shown if c.startswith(".venv/bin/idp ")]
    assert exact, "the README's worked example of a command went missing"
    assert sorted(c for c in shown if c.startswith("idp ")) == sorted(README_COMMANDS)


def test_the_readme_commands_work_in_a_checkout(tmp_path: Path) -> None:
    """Run from the project's folder with nothing exported, as a newcomer does after `make demo`:
    no command that serves no tokens asks for the demo's client secrets."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "clients.yaml", checkout / "clients.yaml")
    (checkout / ".venv" / "bin").mkdir(parents=True)
    idp_script = Path(sys.executable).parent / "idp"
    (checkout / ".venv" / "bin" / "idp").symlink_to(idp_script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "DEMO_"))}
    env["IDP_ARGON2_MEMORY_KIB"] = "1024"  # only to keep the test quick
    env["IDP_ARGON2_TIME_COST"] = "1"
    env["IDP_NEW_PASSWORD"] = GOOD_PASSWORD

    def run(argv: list[str]) -> None:
        done = subprocess.run(
            argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
        assert "DEMO_PORTAL_CLIENT_SECRET" not in done.stderr

    for concrete in README_COMMANDS.values():
        for args in concrete or []:
            run([str(idp_script), *args])
    for command in readme_commands():
        if command.startswith(".venv/bin/idp "):
            run(shlex.split(command))  # verbatim, from the checkout's folder


def test_key_commands_need_no_deployment_settings(initialized: Any) -> None:
    """A cron job rotating keys on a production machine sets the issuer and the key folder: it
    sends no SMS and registers nobody, so neither the SMS gateway nor the real registers are
    asked for (create_app checks those, not the settings every command reads)."""
    production = {"IDP_ISSUER": "https://idp.example.vn"}
    result = initialized("keys", "list", extra_env=production)
    assert result.exit_code == 0, result.output
    assert "ES256" in result.output
