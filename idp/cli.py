"""The `idp` command line for operators and scripts.

    idp init [--sandbox]            migrate the database, create keys if none, load sandbox accounts
    idp serve --host H --port P     production WSGI server (gunicorn, several workers)
    idp keys generate|rotate|list   signing keys in IDP_KEYS_DIR
    idp clients list|check|add|hash-secret
    idp accounts add-citizen        an operator creates a citizen account (password from stdin/env)
    idp accounts add-staff          an operator creates a staff account of an organization
    idp orgs add|list|staff         organizations (tax code or province-issued code) and their staff
    idp config                      the settings and their defaults

Configuration comes from the environment (IDP_*), never from secrets on the command line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from idp.config import ConfigError, describe, environ, resolve


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _settings() -> dict[str, Any]:
    try:
        return resolve(environ())
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable


def _app(*, serves_tokens: bool = False):
    """The application for a command; only `idp serve` serves tokens (and needs client secrets)."""
    from idp import create_app

    try:
        return create_app(serves_tokens=serves_tokens)
    except ConfigError as exc:
        _fail(str(exc))


@contextlib.contextmanager
def _closing_database() -> Iterator[None]:
    """Close the command's database connections when it ends (also when run inside a process)."""
    from idp.store.models import db

    try:
        yield
    finally:
        db.session.remove()
        db.engine.dispose()


@click.group()
def main() -> None:
    """idp: OpenID Connect identity provider and single sign-on broker."""


@main.command("config")
def config_cmd() -> None:
    """Print every setting with its default."""
    click.echo(describe())


# -- init --------------------------------------------------------------------------------------
@main.command()
@click.option("--sandbox", is_flag=True, help="Also load the fictional sandbox accounts (demo, tests).")
def init(sandbox: bool) -> None:
    """Migrate the database, create signing keys if there are none, optionally load sandbox data."""
    from idp.oidc.keys import ensure_keys, ensure_secret
    from idp.store import upgrade
    from idp.store.models import db

    settings = _settings()
    keys_dir = Path(settings["KEYS_DIR"]).resolve()
    for key in ensure_keys(keys_dir):
        click.echo(f"created {key.alg} key {key.kid} ({key.status})")
    ensure_secret(keys_dir)
    app = _app()
    with app.app_context():
        upgrade(db.engine)
        click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
        if sandbox:
            from idp.sandbox import load_sandbox

            for line in load_sandbox(app.extensions["idp"].hashing):
                click.echo(line)


# -- serve -------------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, default=None, help="Worker processes (default IDP_WORKERS).")
@click.option("--threads", type=int, default=None, help="Threads per worker (default IDP_THREADS).")
def serve(host: str, port: int, workers: int | None, threads: int | None) -> None:
    """Run idp under gunicorn."""
    from gunicorn.app.base import BaseApplication

    settings = _settings()
    workers = workers or settings["WORKERS"]
    threads = threads or settings["THREADS"]
    if workers > 1 and not settings["REDIS_URL"]:
        _fail(
            "several workers share login state only through Redis: set IDP_REDIS_URL, or run --workers 1 "
            "(the embedded store serves one process)"
        )
    app = _app(serves_tokens=True)  # validate everything once in the master, with a clear message
    from idp.store.ephemeral import StoreUnavailable, persistence_warning

    try:
        warning = persistence_warning(app.extensions["idp"].store)
    except StoreUnavailable:
        warning = None  # Redis is down: /health/ready says so
    if warning:
        click.echo(f"warning: {warning}", err=True)

    class Server(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "timeout": 30,
                "graceful_timeout": 10,
                "keepalive": 5,
                "accesslog": "-",
                # Path only: query strings may carry login hints and codes.
                "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
                # Several servers (tests, the demo portal) run side by side: no shared control socket.
                "control_socket_disable": True,
                "forwarded_allow_ips": "*" if settings["TRUSTED_PROXIES"] else "127.0.0.1",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from idp import create_app

            # The numbers the command line chose: the outbound bulkhead is sized by them.
            return create_app({"WORKERS": workers, "THREADS": threads})

    Server().run()


# -- keys --------------------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """Signing keys (ES256, RS256) in IDP_KEYS_DIR."""


@keys.command("generate")
def keys_generate() -> None:
    """Create an active and a next key for every algorithm that lacks one."""
    from idp.oidc.keys import ensure_keys, ensure_secret

    directory = Path(_settings()["KEYS_DIR"]).resolve()
    created = ensure_keys(directory)
    ensure_secret(directory)
    for key in created:
        click.echo(f"created {key.alg} key {key.kid} ({key.status})")
    if not created:
        click.echo("every algorithm already has an active and a next key")


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), multiple=True, help="Only these algorithms.")
def keys_rotate(alg: tuple[str, ...]) -> None:
    """Retire the active key, activate the published next key, publish a new next key."""
    from idp.oidc.keys import ALGORITHMS, rotate

    for line in rotate(Path(_settings()["KEYS_DIR"]).resolve(), alg or ALGORITHMS):
        click.echo(line)
    click.echo("running servers pick up the change within a few seconds")


@keys.command("list")
def keys_list() -> None:
    """Show every key with its state and dates."""
    from idp.oidc.keys import read_keys

    for k in read_keys(Path(_settings()["KEYS_DIR"]).resolve()):
        click.echo(
            f"{k.kid}  {k.alg}  {k.status:<8} created {k.created_at}"
            + (f"  activated {k.activated_at}" if k.activated_at else "")
            + (f"  retired {k.retired_at}" if k.retired_at else "")
        )


# -- clients -----------------------------------------------------------------------------------
@main.group()
def clients() -> None:
    """Relying parties in IDP_CLIENTS_FILE."""


def _clients_path() -> Path:
    return Path(_settings()["CLIENTS_FILE"]).resolve()


@clients.command("check")
def clients_check() -> None:
    """Validate the clients file as `idp serve` reads it (client secrets included); exit 1 naming
    the first bad entry."""
    from idp.clients import ClientConfigError, load_clients

    path = _clients_path()
    try:
        found = load_clients(path, environ())  # as `idp serve` reads it: with the secrets
    except ClientConfigError as exc:
        _fail(str(exc))
    click.echo(f"{path}: {len(found)} relying parties, all valid")


@clients.command("list")
def clients_list() -> None:
    """List relying parties."""
    from idp.clients import ClientConfigError, load_clients

    try:
        found = load_clients(_clients_path(), environ(), need_secrets=False)
    except ClientConfigError as exc:
        _fail(str(exc))
    for c in found.values():
        kind = "public" if c.is_public else "confidential"
        click.echo(
            f"{c.client_id}\t{c.client_name}\t{kind} ({c.token_endpoint_auth_method})\t{' '.join(c.grant_types)}"
        )


@clients.command("hash-secret")
@click.option("--generate", is_flag=True, help="Generate a new secret, print it and its hash.")
def clients_hash_secret(generate: bool) -> None:
    """Hash a client secret read from stdin for client_secret_hash."""
    from idp.clients import generate_secret, hash_secret

    if generate:
        secret = generate_secret()
        click.echo(f"secret (give it to the relying party, it is not stored): {secret}")
    else:
        secret = (
            sys.stdin.readline().strip() if not sys.stdin.isatty() else getpass.getpass("client secret: ")
        )
        if len(secret) < 32:
            _fail("client secrets must be at least 32 characters (use --generate)")
    click.echo(hash_secret(secret))


@clients.command("add")
@click.option("--client-id", required=True)
@click.option("--name", "client_name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
    default="client_secret_basic",
    show_default=True,
)
@click.option("--jwks-uri", default=None, help="For private_key_jwt.")
@click.option("--grant-type", "grant_types", multiple=True, default=("authorization_code", "refresh_token"))
@click.option("--scope", default="openid profile", show_default=True)
@click.option("--first-party", is_flag=True)
@click.option("--backchannel-logout-uri", default=None)
@click.option(
    "--alg", "id_token_alg", type=click.Choice(["ES256", "RS256"]), default="ES256", show_default=True
)
def clients_add(**options: Any) -> None:
    """Append a relying party; prints its secret once for confidential clients."""
    from idp.clients import ClientConfigError, append_client, generate_secret, hash_secret

    entry: dict[str, Any] = {
        "client_id": options["client_id"],
        "client_name": options["client_name"],
        "redirect_uris": list(options["redirect_uris"]),
        "grant_types": list(options["grant_types"]),
        "token_endpoint_auth_method": options["auth_method"],
        "scope": options["scope"],
        "id_token_signed_response_alg": options["id_token_alg"],
    }
    if options["post_logout_redirect_uris"]:
        entry["post_logout_redirect_uris"] = list(options["post_logout_redirect_uris"])
    if options["first_party"]:
        entry["first_party"] = True
    if options["backchannel_logout_uri"]:
        entry["backchannel_logout_uri"] = options["backchannel_logout_uri"]
    secret = None
    if options["auth_method"] in ("client_secret_basic", "client_secret_post"):
        secret = generate_secret()
        entry["client_secret_hash"] = hash_secret(secret)
    if options["auth_method"] == "private_key_jwt":
        entry["jwks_uri"] = options["jwks_uri"]
    try:
        client = append_client(_clients_path(), entry, environ())
    except ClientConfigError as exc:
        _fail(str(exc))
    click.echo(f"added {client.client_id} ({client.client_name})")
    if secret:
        click.echo(f"client secret (shown once, give it to the relying party): {secret}")


# -- accounts ----------------------------------------------------------------------------------
@main.group()
def accounts() -> None:
    """Accounts of people, created by operators."""


@accounts.command("add-citizen")
@click.option("--id-number", required=True, help="12-digit personal identification number.")
@click.option("--name", "full_name", required=True, help="Full name as on the ID card.")
@click.option("--birth-date", required=True, help="dd/mm/yyyy")
@click.option("--phone", required=True, help="Mobile number that receives OTPs.")
@click.option("--gender", type=click.Choice(["male", "female"]), default=None)
@click.option("--email", default=None)
@click.option("--loa", type=click.IntRange(2, 3), default=2, show_default=True, help="Assurance level.")
@click.option("--operator", default=None, help="Who performs this (default: the login user).")
@click.option("--evidence", default=None, help="Reference of the document the operator saw.")
def add_citizen(**options: Any) -> None:
    """Create a citizen account. The password is read from stdin or IDP_NEW_PASSWORD."""
    from idp.identity.accounts import AlreadyRegistered, NewCitizen, WeakPassword, create_citizen
    from idp.identity.identifiers import InvalidIdentifier, check_birth_date, mask_id, parse_date

    password = environ().get("IDP_NEW_PASSWORD")
    if not password:
        if sys.stdin.isatty():
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                _fail("the passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\n")
    if not password:
        _fail("no password given (stdin or IDP_NEW_PASSWORD)")
    operator = options["operator"] or os.environ.get("SUDO_USER") or getpass.getuser()
    app = _app()
    with app.app_context():
        try:
            data = NewCitizen(
                id_number=options["id_number"],
                full_name=options["full_name"],
                birth_date=check_birth_date(parse_date(options["birth_date"])),
                phone=options["phone"],
                gender=options["gender"],
                email=options["email"],
                loa=options["loa"],
            )
            account = create_citizen(
                data,
                password,
                app.extensions["idp"].hashing,
                actor=f"operator:{operator}",
                method="operator",
                verifier="operator",
                evidence_id=options["evidence"],
            )
        except InvalidIdentifier as exc:
            _fail(str(exc))
        except WeakPassword as exc:
            _fail("password refused: " + "; ".join(exc.problems))
        except AlreadyRegistered as exc:
            _fail(str(exc))
        click.echo(
            json.dumps(
                {
                    "account_id": account.id,
                    "id_number": mask_id(data.id_number),
                    "loa": f"LoA{data.loa}",
                    "created_by": f"operator:{operator}",
                    "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                },
                ensure_ascii=False,
            )
        )


@accounts.command("register-in-person")
@click.option(
    "--id-number", required=True, help="12-digit personal identification number on the ID card seen."
)
@click.option("--name", "full_name", required=True, help="Full name as on the ID card.")
@click.option("--birth-date", required=True, help="dd/mm/yyyy")
@click.option("--gender", type=click.Choice(["male", "female"]), default=None)
@click.option("--phone", required=True, help="Mobile number that receives OTPs (the citizen's own).")
@click.option("--email", default=None)
@click.option(
    "--at",
    "method",
    type=click.Choice(["counter", "post-office"]),
    required=True,
    help="A one-stop counter (Bộ phận một cửa) or a Vietnam Post office.",
)
@click.option(
    "--place", required=True, help="Which counter or post office, e.g. 'Bưu điện Huế, 8 Hoàng Hoa Thám'."
)
@click.option("--operator", default=None, help="Who saw the ID card (default: the login user).")
@click.option("--no-sms", is_flag=True, help="Do not text the citizen how to set the password.")
def accounts_register_in_person(**options: Any) -> None:
    """Register a citizen who showed their ID card to an operator: LoA3 (DESIGN §5).

    The data are checked against the population register first (a typo is caught before the
    account exists). Operators never see or set passwords: the account has none until the
    citizen sets one through "Quên mật khẩu" with an OTP to this phone; an SMS tells them how.
    """
    from idp.identity.identifiers import mask_id
    from idp.proofing.in_person import InPerson, InPersonRefused, register_in_person

    operator = _operator(options["operator"])
    method = options["method"].replace("-", "_")
    app = _app()
    with app.app_context(), _closing_database():
        data = InPerson(
            id_number=options["id_number"],
            full_name=options["full_name"],
            birth_date=options["birth_date"],
            phone=options["phone"],
            method=method,
            place=options["place"],
            operator=operator,
            gender=options["gender"],
            email=options["email"],
        )
        try:
            done = register_in_person(app.extensions["idp"], data, send_sms=not options["no_sms"])
        except InPersonRefused as exc:
            _fail(str(exc))
        id_number, stamp = done.id_number, done.created_at
        click.echo(
            json.dumps(
                {
                    "account_id": done.account_id,
                    "id_number": mask_id(id_number),
                    "loa": "LoA3",
                    "method": method,
                    "place": options["place"],
                    "created_by": f"operator:{operator}",
                    "created_at": stamp.isoformat(timespec="seconds"),
                    "password": "not set: the citizen sets it with 'Quên mật khẩu'",
                },
                ensure_ascii=False,
            )
        )


def _read_new_password() -> str:
    """The new account's password: IDP_NEW_PASSWORD, else stdin (asked twice on a terminal)."""
    password = environ().get("IDP_NEW_PASSWORD")
    if not password:
        if sys.stdin.isatty():
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                _fail("the passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\n")
    if not password:
        _fail("no password given (stdin or IDP_NEW_PASSWORD)")
    return password or ""


def _operator(name: str | None) -> str:
    return name or os.environ.get("SUDO_USER") or getpass.getuser()


@accounts.command("add-staff")
@click.option(
    "--org", "organization", required=True, help="Tax code or province-issued code of the organization."
)
@click.option(
    "--username", required=True, help="Login name: a letter, then letters, digits, '.', '_' or '-'."
)
@click.option("--name", "full_name", required=True, help="Full name of the staff member.")
@click.option("--phone", required=True, help="Mobile number that receives OTPs.")
@click.option(
    "--role", "roles", multiple=True, default=("staff",), show_default=True, help="Repeat for several roles."
)
@click.option("--id-number", default=None, help="12-digit ID number (optional for staff).")
@click.option("--email", default=None)
@click.option("--loa", type=click.IntRange(2, 3), default=2, show_default=True, help="Assurance level.")
@click.option("--operator", default=None, help="Who performs this (default: the login user).")
def add_staff(**options: Any) -> None:
    """Create a staff account of an organization. The password is read from stdin or IDP_NEW_PASSWORD."""
    from idp.identity.accounts import WeakPassword
    from idp.identity.identifiers import InvalidIdentifier
    from idp.identity.organizations import (
        NewStaff,
        PersonExists,
        UnknownOrganization,
        UsernameTaken,
        create_staff,
        role_names,
    )

    password = _read_new_password()
    operator = _operator(options["operator"])
    app = _app()
    with app.app_context():
        try:
            account = create_staff(
                NewStaff(
                    organization_code=options["organization"],
                    username=options["username"],
                    full_name=options["full_name"],
                    phone=options["phone"],
                    roles=tuple(options["roles"]),
                    id_number=options["id_number"],
                    email=options["email"],
                    loa=options["loa"],
                ),
                password,
                app.extensions["idp"].hashing,
                actor=f"operator:{operator}",
            )
        except (InvalidIdentifier, UnknownOrganization, UsernameTaken, PersonExists) as exc:
            _fail(str(exc))
        except WeakPassword as exc:
            _fail("password refused: " + "; ".join(exc.problems))
        org = account.organization
        click.echo(
            json.dumps(
                {
                    "account_id": account.id,
                    "username": account.username,
                    "organization": org.code if org else None,
                    "roles": role_names(account),
                    "loa": f"LoA{options['loa']}",
                    "created_by": f"operator:{operator}",
                },
                ensure_ascii=False,
            )
        )


# -- organizations -----------------------------------------------------------------------------
@main.group()
def orgs() -> None:
    """Organizations (departments, public units, enterprises) and their staff accounts."""


@orgs.command("add")
@click.option(
    "--code", required=True, help="Tax code (10 or 10-3 digits) or province-issued code (000.00.15.H57)."
)
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["department", "public-unit", "enterprise"]), required=True)
@click.option("--operator", default=None, help="Who performs this (default: the login user).")
def orgs_add(code: str, name: str, kind: str, operator: str | None) -> None:
    """Create an organization keyed on its validated code."""
    from idp.identity.identifiers import InvalidIdentifier
    from idp.identity.organizations import OrganizationExists, create_organization

    who = _operator(operator)
    app = _app()
    with app.app_context():
        try:
            org = create_organization(code, name, kind, actor=f"operator:{who}")
        except (InvalidIdentifier, OrganizationExists) as exc:
            _fail(str(exc))
        click.echo(
            json.dumps(
                {"code": org.code, "code_type": org.code_type, "name": org.name, "kind": org.kind},
                ensure_ascii=False,
            )
        )


@orgs.command("list")
def orgs_list() -> None:
    """Every organization: code, kind, staff accounts, status, name."""
    from idp.identity.organizations import list_organizations

    app = _app()
    with app.app_context():
        for org, staff in list_organizations():
            click.echo(f"{org.code}\t{org.kind}\t{staff} staff\t{org.status}\t{org.name}")


@orgs.command("staff")
@click.argument("code")
def orgs_staff(code: str) -> None:
    """The staff accounts of one organization: username, roles, authenticator, status, name."""
    from idp.identity.organizations import find_organization, list_staff, role_names
    from idp.identity.totp import has_totp

    app = _app()
    with app.app_context():
        org = find_organization(code)
        if org is None:
            _fail(f"no organization with code {code}")
            return
        for account in list_staff(org):
            name = account.person.full_name if account.person else ""
            second = "totp+sms" if has_totp(account.id) else "sms"
            click.echo(
                f"{account.username}\t{','.join(role_names(account))}\t{second}\t{account.status}\t{name}"
            )


# -- pki ---------------------------------------------------------------------------------------
@main.group()
def pki() -> None:
    """The sandbox test PKI for digital signatures (Sim ký số, USB ký số)."""


@pki.command("sandbox")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write it (default: IDP_SANDBOX_PKI_DIR, else IDP_KEYS_DIR/sandbox-pki).",
)
def pki_sandbox(directory: Path | None) -> None:
    """Create the sandbox root CA, licensed CA, CRLs and the fictional holders' certificates and
    keys; keep whatever exists. Private keys stay in that folder (mode 0600, never committed)."""
    from idp.verifiers.sandbox_pki import create_sandbox_pki
    from idp.verifiers.signing import sandbox_pki_dir

    target = (directory or sandbox_pki_dir(_settings())).resolve()
    made = create_sandbox_pki(target)
    for line in made.changes:
        click.echo(line)
    if not made.changes:
        click.echo(f"{target}: the sandbox PKI is complete and current; nothing to do")
    click.echo(f"trust anchor: {made.root_certificate_path}")
    for holder in made.holders.values():
        where = f"SIM {holder.phone}" if holder.device == "sim" else "USB token"
        state = "  REVOKED" if holder.revoked else ""
        click.echo(f"  {holder.key}\t{holder.kind}\t{where}\tPIN {holder.pin}\t{holder.name}{state}")


if __name__ == "__main__":
    main()
