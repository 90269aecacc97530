"""HTTP endpoints of the provider: discovery, JWKS, authorize (+resume), token, userinfo,
revocation, introspection and logout.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.identity import audit, consents
from idp.identity.accounts import CITIZEN
from idp.identity.assurance import ACR_VALUES, LEVEL_ACR, satisfies
from idp.identity.claims import SCOPES_SUPPORTED
from idp.oidc import policy
from idp.oidc.authorize import AuthorizationContext
from idp.oidc.claims import CLAIMS_SUPPORTED, load_person_claims, released_claims
from idp.oidc.errors import InvalidTokenError, UnmetAuthenticationRequirementsError, safe_description
from idp.oidc.logout import end_sso_session
from idp.oidc.server import IdpServer
from idp.oidc.tokens import CodeRecord, Principal, new_grant_id
from idp.runtime import runtime
from idp.sessions.browser import browser_id, drop_sso_cookie, set_sso_cookie, sso_cookie
from idp.sessions.devices import this_device
from idp.sessions.interaction import Interaction
from idp.store.models import Account, Person, db
from idp.web import oauth_json_error
from idp.web.errors import SignInExpired, new_error_id, problem_page
from idp.web.forms import ActionForm

log = logging.getLogger("idp.oidc")

bp = Blueprint("oidc", __name__)


def _server() -> IdpServer:
    server = runtime().oidc
    assert server is not None
    return server


# -- discovery ---------------------------------------------------------------------------------
def metadata() -> dict[str, Any]:
    issuer = _server().issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
        "userinfo_endpoint": issuer + "/userinfo",
        "jwks_uri": issuer + "/jwks.json",
        "end_session_endpoint": issuer + "/logout",
        "revocation_endpoint": issuer + "/revoke",
        "introspection_endpoint": issuer + "/introspect",
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "acr_values_supported": list(ACR_VALUES),
        "prompt_values_supported": ["none", "login", "consent", "select_account", "create"],
        "ui_locales_supported": ["vi", "en"],
        "claims_locales_supported": ["vi"],
        "display_values_supported": ["page"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


def _public_json(body: dict[str, Any], max_age: int) -> BaseResponse:
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery() -> BaseResponse:
    return _public_json(metadata(), 3600)


@bp.get("/jwks.json")
def jwks() -> BaseResponse:
    # Short cache: a key published as `next` must reach relying parties before it signs.
    return _public_json(_server().keys.jwks(), 600)


# -- authorization endpoint ---------------------------------------------------------------------
def _redirect_error(redirect_uri: str, error: OAuth2Error, state: str | None) -> BaseResponse:
    params = [("error", error.error)]
    if error.description:
        params.append(("error_description", error.description))
    if state:
        params.append(("state", state))
    params.append(("iss", _server().issuer))
    return redirect(add_params_to_uri(redirect_uri, params), 302)


def _error_page(error: OAuth2Error | None, detail: str) -> BaseResponse:
    error_id = new_error_id()
    code = error.error if error is not None else "invalid_request"
    description = error.description if error is not None else detail
    log.info("authorization request refused error_id=%s error=%s detail=%s", error_id, code, description)
    return problem_page(
        400,
        _("Không thể đăng nhập từ trang này"),
        _(
            "Trang dịch vụ vừa chuyển bạn tới đây với một yêu cầu đăng nhập không hợp lệ, nên hệ thống "
            "không thể đưa bạn quay lại trang đó. Vui lòng mở lại trang dịch vụ công và bấm Đăng nhập."
        ),
        error_id=error_id,
        hint=f"{code}: {description}",
    )


def _authorization_error(error: OAuth2Error) -> BaseResponse:
    if error.redirect_uri:
        return _redirect_error(error.redirect_uri, error, error.state)
    return _error_page(error, "")


def _validate(req: OAuth2Request | None) -> tuple[Any, AuthorizationContext] | BaseResponse:
    server = _server()
    try:
        grant = server.get_consent_grant(request=req, end_user=None)
    except OAuth2Error as error:
        return _authorization_error(error)
    except ValueError:
        # Authlib refused to build an error whose description quoted the bad input. Once the
        # client and its redirect URI check out, the error still goes back to the client.
        payload = server.create_oauth2_request(req).payload
        client_id, redirect_uri = payload.client_id, payload.redirect_uri
        client = server.query_client(client_id) if client_id else None
        if (
            client is not None
            and redirect_uri
            and len(payload.datalist.get("client_id", [])) == 1
            and len(payload.datalist.get("redirect_uri", [])) == 1
            and client.check_redirect_uri(redirect_uri)
        ):
            malformed = OAuth2Error(error="invalid_request", description="malformed request")
            return _redirect_error(redirect_uri, malformed, payload.state)
        return _error_page(None, "malformed authorization request")
    ctx: AuthorizationContext = grant.request.idp_ctx
    return grant, ctx


def _stored_request(params: dict[str, str]) -> OAuth2Request:
    req = OAuth2Request("GET", _server().issuer + "/authorize")
    req.payload = BasicOAuth2Payload(params)
    return req


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse:
    if request.method == "POST":
        # Answer a form post with the same request as a GET, so that the browser's SameSite=Lax
        # session cookie comes along (cross-site POSTs leave it behind).
        query = urlencode(list(request.form.items(multi=True)))
        return redirect(url_for("oidc.authorize") + "?" + query, 303)
    result = _validate(None)
    if isinstance(result, BaseResponse):
        return result
    grant, ctx = result
    params = {k: v for k, v in request.args.items()}
    return _proceed(grant, ctx, params, None)


@bp.get("/authorize/resume/<ix_id>")
def resume(ix_id: str) -> BaseResponse:
    rt = runtime()
    ix = rt.interactions.load(ix_id, browser_id(create=False))
    if ix is None:
        return SignInExpired().response()
    result = _validate(_stored_request(ix.params))
    if isinstance(result, BaseResponse):
        return result
    grant, ctx = result
    if ix.cancelled:
        rt.interactions.delete(ix)
        error = OAuth2Error(error="access_denied", description="the end-user cancelled the sign-in")
        return _redirect_error(ctx.redirect_uri, error, ix.params.get("state"))
    return _proceed(grant, ctx, ix.params, ix)


def _has_consent(account_id: int, ctx: AuthorizationContext) -> bool:
    return consents.covers(consents.find(account_id, ctx.client.client_id), ctx.scope, ctx.requested_claims)


def _proceed(
    grant: Any, ctx: AuthorizationContext, params: dict[str, str], ix: Interaction | None
) -> BaseResponse:
    rt = runtime()
    server = _server()
    g.ui_locales = ctx.ui_locales
    cookie = sso_cookie()
    sso = rt.sessions.load(cookie)
    new_cookie = None
    fresh = False
    if ix is not None and ix.result is not None:
        fresh = True
        if not ix.applied:
            r = ix.result
            if sso is not None and cookie and sso.account_id == r.account_id:
                rt.sessions.reauthenticate(
                    cookie, sso, auth_time=r.auth_time, acr=r.acr, amr=r.amr, loa=r.loa
                )
            else:
                if sso is not None:
                    end_sso_session(server, rt.sessions, sso, "replaced", rt.config["BACKCHANNEL_TIMEOUT"])
                new_cookie, sso = rt.sessions.create(
                    account_id=r.account_id,
                    subject=r.subject,
                    auth_time=r.auth_time,
                    acr=r.acr,
                    amr=r.amr,
                    loa=r.loa,
                    **this_device(),
                )
            ix.applied = True
            rt.interactions.save(ix)
        elif sso is None or sso.account_id != ix.result.account_id:
            # The session this sign-in created has ended meanwhile (logout in another tab).
            return SignInExpired().response()

    drop_cookie = False
    if sso is not None and not fresh and not _account_active(sso.account_id):
        # An operator locked the account: its sessions end, and the request is treated as if
        # nobody were signed in (a login page, or login_required for prompt=none).
        end_sso_session(server, rt.sessions, sso, "account_inactive", rt.config["BACKCHANNEL_TIMEOUT"])
        sso, drop_cookie = None, True

    verdict = policy.evaluate(
        policy.situation(
            ctx,
            sso,
            fresh_login=fresh,
            consent_ok=lambda: sso is not None and _has_consent(sso.account_id, ctx),
            consent_given=ix.consent_given if ix is not None else False,
        )
    )
    state = params.get("state")
    response: BaseResponse | None = None
    if verdict.prompt == "raise":
        assert sso is not None
        response = _offer_raise(ctx, sso, params, ix)
        if response is None:  # a raise could not help: the portal hears why
            verdict = policy.Verdict(
                check=verdict.check,
                error=UnmetAuthenticationRequirementsError("the identity is below the required acr"),
            )
    if response is not None:
        pass
    elif verdict.error is not None:
        if ix is not None:
            rt.interactions.delete(ix)
        response = _redirect_error(ctx.redirect_uri, verdict.error, state)
    elif verdict.prompt is not None:
        if ix is None or verdict.signs_in and ix.result is not None:
            ix = _new_interaction(ctx, params)
        response = rt.prompt_page(verdict.prompt, ix, sso)
    else:
        assert sso is not None
        response = _issue_code(grant, ctx, sso, params)
        if ix is not None:
            rt.interactions.delete(ix)
    if new_cookie:
        set_sso_cookie(response, new_cookie)
    elif drop_cookie:
        drop_sso_cookie(response)
    return response


def _new_interaction(ctx: AuthorizationContext, params: dict[str, str]) -> Interaction:
    return runtime().interactions.create(
        browser=browser_id(create=True),
        client_id=ctx.client.client_id,
        client_name=ctx.client.config.client_name,
        params=params,
        first_party=ctx.client.config.first_party,
        login_hint=ctx.login_hint,
        ui_locales=ctx.ui_locales,
        expected_subject=ctx.hint_subject,
        scope=ctx.scope,
        claims=sorted(ctx.requested_claims),
        required_acr=ctx.required_acr,
        acr_values=ctx.acr_values,
        door="register" if "create" in ctx.prompts else (params.get("door") or "")[:40] or None,
    )


# The only level a person can raise their identity to here: a certificate signature gives LoA3.
RAISABLE_TO = 3


def _offer_raise(
    ctx: AuthorizationContext, sso: Any, params: dict[str, str], ix: Interaction | None
) -> BaseResponse | None:
    """DESIGN §4: a citizen whose identity is proven below the portal's demand is offered to raise
    it (/account/assurance, a certificate naming their ID number) and then to continue, rather than
    being sent back at once with unmet_authentication_requirements. "Quay lại" still sends that
    error. None when a raise could not help (another kind of account, a demand above LoA3)."""
    if not satisfies(LEVEL_ACR[RAISABLE_TO], ctx.required_acr or []) or sso.loa >= RAISABLE_TO:
        return None
    row = db.session.execute(
        select(Account.kind, Person.loa)
        .join(Person, Account.person_id == Person.id)
        .where(Account.id == sso.account_id)
    ).one_or_none()
    db.session.rollback()
    if row is None or row.kind != CITIZEN:
        return None
    rt = runtime()
    if ix is not None and ix.result is not None:
        rt.interactions.delete(ix)  # its sign-in is applied to the session already
        ix = None
    if ix is None:
        ix = _new_interaction(ctx, params)
    if row.loa >= RAISABLE_TO:
        # Raised meanwhile (in another browser): this session still has the old level, and a new
        # sign-in takes the new one.
        return rt.prompt_page("login", ix, sso)
    ix.raise_to = RAISABLE_TO
    rt.interactions.save(ix)
    body = render_template(
        "level_required.html",
        ix=ix,
        client_name=ctx.client.config.client_name,
        level=sso.loa,
        needed=RAISABLE_TO,
        form=ActionForm(),
    )
    return Response(body, status=403, mimetype="text/html")


@bp.post("/authorize/unmet/<ix_id>")
def unmet(ix_id: str) -> BaseResponse:
    """The person chose not to raise their level: the portal hears unmet_authentication_requirements."""
    rt = runtime()
    ix = rt.interactions.load(ix_id, browser_id(create=False))
    if ix is None or not ix.raise_to:
        return SignInExpired().response()
    if not ActionForm().validate_on_submit():
        abort(400)
    result = _validate(_stored_request(ix.params))
    if isinstance(result, BaseResponse):
        return result
    _, ctx = result
    rt.interactions.delete(ix)
    error = UnmetAuthenticationRequirementsError("the identity is below the required acr")
    return _redirect_error(ctx.redirect_uri, error, ix.params.get("state"))


def _account_active(account_id: int) -> bool:
    status = db.session.execute(select(Account.status).where(Account.id == account_id)).scalar_one_or_none()
    db.session.rollback()
    return status == "active"


def _issue_code(grant: Any, ctx: AuthorizationContext, sso: Any, params: dict[str, str]) -> BaseResponse:
    rt = runtime()
    server = _server()
    acr = sso.acr
    if ctx.acr_values and not satisfies(acr, ctx.acr_values):
        log.info("voluntary acr_values %s not met; answering %s", ctx.acr_values, acr)
    record = CodeRecord(
        client_id=ctx.client.client_id,
        redirect_uri=ctx.redirect_uri,
        scope=ctx.scope,
        account_id=sso.account_id,
        subject=sso.subject,
        sid=sso.sid,
        auth_time=sso.auth_time,
        acr=acr,
        amr=list(sso.amr),
        grant_id=new_grant_id(),
        expires_at=time.time() + rt.config["CODE_LIFETIME"],
        nonce=ctx.nonce,
        code_challenge=ctx.code_challenge,
        code_challenge_method=ctx.code_challenge_method,
        claims=ctx.claims,
    )
    grant.request.idp_code_record = record
    _, _, headers = grant.create_authorization_response(
        ctx.redirect_uri, Principal(sso.account_id, sso.subject)
    )
    location = dict(headers)["Location"]
    rt.sessions.add_client(sso, ctx.client.client_id)
    return redirect(add_params_to_uri(location, [("iss", server.issuer)]), 302)


# -- token, revocation, introspection -----------------------------------------------------------
def _protocol_call(fn: Any) -> BaseResponse:
    try:
        return fn()
    except ValueError:
        return oauth_json_error(400, "invalid_request", "malformed request")


@bp.post("/token")
def token() -> BaseResponse:
    return _protocol_call(lambda: _server().create_token_response())


@bp.post("/revoke")
def revoke() -> BaseResponse:
    return _protocol_call(lambda: _server().create_endpoint_response("revocation"))


@bp.post("/introspect")
def introspect() -> BaseResponse:
    return _protocol_call(lambda: _server().create_endpoint_response("introspection"))


# -- userinfo ----------------------------------------------------------------------------------
def _bearer_error(status: int, error: str | None, description: str | None = None) -> BaseResponse:
    realm = 'Bearer realm="idp"'
    if error:
        realm += f', error="{error}"'
        if description:
            realm += f', error_description="{description}"'
    body = {"error": error, "error_description": description} if error else {}
    response = jsonify(body)
    response.status_code = status
    response.headers["WWW-Authenticate"] = realm
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> BaseResponse:
    header = request.headers.get("Authorization", "")
    form_token = None
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        form_token = request.form.get("access_token")
    token = form_token
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        if not value.strip():
            return _bearer_error(400, "invalid_request", "the Bearer credentials are empty")
        if form_token is not None:
            # RFC 6750 §2: a client must not send the token in more than one way.
            return _bearer_error(400, "invalid_request", "send the access token in one place only")
        token = value.strip()
    # Another scheme, or no token: a bare challenge without an error code (RFC 6750 §3.1).
    if not token:
        return _bearer_error(401, None)
    server = _server()
    record = server.tokens.load_access_token(token) if len(token) <= 128 else None
    if record is None or record.account_id is None or record.subject is None:
        return _bearer_error(401, InvalidTokenError.error, "the access token is invalid or expired")
    if "openid" not in record.scope.split():
        return _bearer_error(403, "insufficient_scope", "the openid scope is required")
    client = server.clients.get(record.client_id)
    allowed = client.scope if client else ()
    status = db.session.execute(
        select(Account.status).where(Account.id == record.account_id)
    ).scalar_one_or_none()
    if status != "active":
        db.session.rollback()
        return _bearer_error(401, InvalidTokenError.error, "the account is not active")
    names = released_claims(record.scope, allowed, record.claims)
    body = load_person_claims(record.account_id, names)
    db.session.rollback()
    body["sub"] = record.subject
    response = Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# -- logout ------------------------------------------------------------------------------------
@bp.route("/logout", methods=["GET", "POST"])
def logout() -> BaseResponse:
    rt = runtime()
    server = _server()
    try:
        req = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return _logout_error(error.description or error.error)
    except ValueError:
        return _logout_error("malformed logout request")
    g.ui_locales = req.ui_locales
    sso = rt.sessions.load(sso_cookie())
    hint = req.id_token_claims or {}
    hint_matches = (
        bool(hint)
        and sso is not None
        and (hint.get("sid") == sso.sid or (not hint.get("sid") and hint.get("sub") == sso.subject))
    )
    if sso is not None and not hint_matches:
        # No proof the request comes from a relying party of this session: ask the person.
        rt.store.set(
            "logout:" + browser_id(create=True),
            json.dumps(
                {"redirect_uri": req.redirect_uri, "client": req.client.client_id if req.client else None}
            ),
            600,
        )
        client_name = req.client.config.client_name if req.client else None
        return Response(render_template("logout_confirm.html", client_name=client_name), mimetype="text/html")
    if sso is not None:
        _end_by_logout(sso, req.client.client_id if req.client else None)
    return _after_logout(req.redirect_uri)


@bp.post("/logout/confirm")
def logout_confirm() -> BaseResponse:
    rt = runtime()
    pending = rt.store.take("logout:" + browser_id(create=True))
    redirect_uri = json.loads(pending)["redirect_uri"] if pending else None
    if request.form.get("decision") == "stay":
        if redirect_uri:
            return redirect(redirect_uri, 302)
        return redirect(url_for("oidc.logged_out", stayed=1), 303)
    sso = rt.sessions.load(sso_cookie())
    if sso is not None:
        _end_by_logout(sso, json.loads(pending).get("client") if pending else None)
    return _after_logout(redirect_uri)


def _end_by_logout(sso: Any, client_id: str | None) -> None:
    """End the SSO session for RP-initiated logout: audited, then grants revoked and back-channel sent."""
    rt = runtime()
    audit.record(
        "session.logout",
        actor=f"account:{sso.account_id}",
        account_id=sso.account_id,
        client_id=client_id,
        ip=request.remote_addr,
    )
    db.session.commit()
    end_sso_session(_server(), rt.sessions, sso, "logout", rt.config["BACKCHANNEL_TIMEOUT"])


def _after_logout(redirect_uri: str | None) -> BaseResponse:
    # A redirect to a GET page even without a post_logout_redirect_uri: reloading or switching the
    # language then shows the page again instead of repeating the logout request.
    response = redirect(redirect_uri or url_for("oidc.logged_out"), 302 if redirect_uri else 303)
    drop_sso_cookie(response)
    return response


@bp.get("/logout/done")
def logged_out() -> BaseResponse:
    stayed = bool(request.args.get("stayed"))
    return Response(render_template("logged_out.html", stayed=stayed), mimetype="text/html")


def _logout_error(description: str) -> BaseResponse:
    error_id = new_error_id()
    log.info("logout request refused error_id=%s: %s", error_id, description)
    return problem_page(
        400,
        _("Không thể đăng xuất từ yêu cầu này"),
        _(
            "Yêu cầu đăng xuất không hợp lệ. Bạn có thể đóng trình duyệt để kết thúc phiên làm việc, hoặc quay lại trang dịch vụ công."
        ),
        error_id=error_id,
        hint=safe_description(description),
    )
