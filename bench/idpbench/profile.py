"""Profiles: where a phase's CPU goes, by package and by view, from cProfile's output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from idpbench.common import ROOT


def _package_of(filename: str, funcname: str) -> str:
    if filename == "~":  # C functions: "<method 'x' of 'mod.Type' objects>", "<built-in method m.f>"
        if " of '" in funcname:
            return "C: " + funcname.split(" of '", 1)[1].split("'", 1)[0].split(".")[0]
        return "C: " + funcname.removeprefix("<built-in method ").split(".", 1)[0].rstrip(">")
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/idp/" in filename:
        return "idp"
    if "/bench/" in filename:
        return "bench (profiler glue)"
    return "stdlib:" + Path(filename).stem


# (label, path fragment, function name): inclusive CPU share of spots the lead may want to tune.
SPOTS = (
    ("whole request in gunicorn (handle_request)", "gunicorn/workers/gthread.py", "handle_request"),
    ("  Flask app (wsgi_app)", "flask/app.py", "wsgi_app"),
    ("  HTTP header parsing (gunicorn)", "gunicorn/http/message.py", "parse_headers"),
    ("  access log line (gunicorn)", "gunicorn/glogging.py", "access"),
    ("  Flask session cookie: open", "flask/sessions.py", "open_session"),
    ("  Flask session cookie: save", "flask/sessions.py", "save_session"),
    ("  CSRF token generate", "flask_wtf/csrf.py", "generate_csrf"),
    ("  CSRF token validate", "flask_wtf/csrf.py", "validate_csrf"),
    ("  Jinja2 templates (render_template)", "flask/templating.py", "render_template"),
    ("  flask_babel get_locale", "flask_babel/__init__.py", "get_locale"),
    ("  SQL pool checkout (incl. pre-ping)", "sqlalchemy/pool/base.py", "_checkout"),
    ("    pool_pre_ping (SELECT 1 round trip)", "sqlalchemy/engine/default.py", "_do_ping_w_event"),
    ("  SQL statements (execute + round trip)", "sqlalchemy/engine/base.py", "_execute_context"),
    ("  ORM Session.commit (flush + COMMIT)", "sqlalchemy/orm/scoping.py", "commit"),
    ("  ORM Session.rollback", "sqlalchemy/orm/scoping.py", "rollback"),
    ("  ORM reload of expired attributes", "sqlalchemy/orm/state.py", "_load_expired"),
    ("  ORM session close (teardown)", "sqlalchemy/orm/session.py", "close"),
    ("  Redis commands (idp store._call)", "idp/store/ephemeral.py", "_call"),
    (
        "  client authentication (Authlib)",
        "authlib/oauth2/rfc6749/authorization_server.py",
        "authenticate_client",
    ),
    ("  refresh token lookup (find_refresh_token)", "idp/oidc/tokens.py", "find_refresh_token"),
    ("  refresh token rotation", "idp/oidc/tokens.py", "rotate_refresh_token"),
    ("  code consume (Redis script)", "idp/oidc/tokens.py", "consume_code"),
    ("  grant + refresh token INSERT (create_grant)", "idp/oidc/tokens.py", "create_grant"),
    ("  access token issue (Redis SET)", "idp/oidc/tokens.py", "issue_access_token"),
    ("  access token load (userinfo)", "idp/oidc/tokens.py", "load_access_token"),
    ("  ID token (claims + signature)", "idp/oidc/server.py", "id_token"),
    ("    JWS signature (ES256)", "idp/oidc/keys.py", "sign"),
    (
        "  authorization request validation",
        "authlib/oauth2/rfc6749/authorization_server.py",
        "get_consent_grant",
    ),
    (
        "  code issue (create_authorization_response)",
        "authlib/oauth2/rfc6749/grants/authorization_code.py",
        "create_authorization_response",
    ),
    ("  citizen lookup (find_citizen)", "idp/identity/accounts.py", "find_citizen"),
    ("  password verify (argon2id)", "idp/identity/passwords.py", "verify"),
    ("  OTP send (Redis + SMS outbox)", "idp/sessions/otp.py", "send"),
    ("  OTP verify", "idp/sessions/otp.py", "verify"),
    ("  audit record", "idp/identity/audit.py", "record"),
    ("  JSON dumps (stdlib)", "json/__init__.py", "dumps"),
)


# Flask views, for the share of each endpoint in a multi-request operation (the sign-in).
VIEWS = (
    ("GET /authorize", "idp/oidc/views.py", "authorize"),
    ("GET /login/<ix> (chooser)", "idp/flows/signin/chooser.py", "login"),
    ("GET+POST /login/<ix>/citizen", "idp/flows/signin/citizen.py", "citizen"),
    ("GET+POST /login/<ix>/otp", "idp/flows/signin/citizen.py", "otp"),
    ("GET /authorize/resume/<ix>", "idp/oidc/views.py", "resume"),
    ("POST /token", "idp/oidc/views.py", "token"),
    ("GET /userinfo", "idp/oidc/views.py", "userinfo"),
    ("GET /health", "idp/health.py", "live"),
)


def _inclusive(raw: dict[Any, Any], fragment: str, func: str) -> tuple[float, int]:
    """(cumulative seconds, calls) of the outermost matching function (nested matches not added)."""
    best = (0.0, 0)
    for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in raw.items():
        if name == func and filename.endswith(fragment) and ct > best[0]:
            best = (ct, nc)
    return best


def profile_report(path: Path, ops: int, top: int) -> str:
    import pstats

    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-9
    per = max(ops, 1)
    lines = [
        f"== profile {path.stem}: {ops} ops, {1000 * total / per:.3f} ms profiled CPU/op "
        "(cProfile on the thread CPU clock: absolute times inflated, shares meaningful)"
    ]
    lines.append("  where the time goes (inclusive share of the phase's CPU, calls per op):")
    for label, fragment, func in SPOTS:
        ct, nc = _inclusive(raw, fragment, func)
        if nc:
            lines.append(f"    {100 * ct / total:5.1f}%  {nc / per:6.1f}/op  {label}")
    views = [(label, *_inclusive(raw, fragment, func)) for label, fragment, func in VIEWS]
    if sum(1 for v in views if v[2]) > 1:
        lines.append("  by endpoint (inclusive share, calls per op):")
        for label, ct, nc in views:
            if nc:
                lines.append(f"    {100 * ct / total:5.1f}%  {nc / per:6.1f}/op  {label}")
    packages: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        key = _package_of(filename, func)
        packages[key] = packages.get(key, 0.0) + tt
    lines.append("  self time by package:")
    for name, tt in sorted(packages.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"    {100 * tt / total:5.1f}%  {name}")
    lines.append("  top functions by self time:")
    by_self = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, func), (_cc, nc, tt, _ct, _callers) in by_self:
        where = _short(filename, line)
        lines.append(f"    {100 * tt / total:5.1f}%  {nc / per:7.1f}/op  {func}  {where}")
    return "\n".join(lines)


def _short(filename: str, line: int) -> str:
    if filename == "~":
        return ""
    if "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    elif str(ROOT) in filename:
        filename = filename.replace(str(ROOT) + "/", "")
    else:
        filename = Path(filename).name
    return f"{filename}:{line}"
