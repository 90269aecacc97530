"""Consent: what a relying party asks to receive, in plain words; remembered per person and party."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from idp.flows.signin import bp
from idp.identity import consents
from idp.runtime import runtime
from idp.sessions.browser import client_address, sso_cookie
from idp.sessions.interaction import Interaction
from idp.store.models import db
from idp.web.consents import describe_consent
from idp.web.errors import SignInExpired
from idp.web.forms import ActionForm
from idp.web.pages import load_interaction, page


# -- consent -----------------------------------------------------------------------------------
@bp.route("/consent/<ix_id>", methods=["GET", "POST"])
def consent(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    rt = runtime()
    form = ActionForm()
    if request.method == "GET":
        return page("consent.html", ix, form=form, scopes=describe_consent(ix.scope, ix.claims))
    if not form.validate_on_submit():
        abort(400)
    if request.form.get("decision") != "allow":
        ix.cancelled = True
        rt.interactions.save(ix)
        return redirect(url_for("oidc.resume", ix_id=ix.id))
    account_id = _signed_in_account(ix)
    if account_id is None:
        return SignInExpired().response()
    consents.grant(account_id, ix.client_id, ix.scope, ix.claims, ip=client_address())
    db.session.commit()
    ix.consent_given = True
    rt.interactions.save(ix)
    return redirect(url_for("oidc.resume", ix_id=ix.id))


def _signed_in_account(ix: Interaction) -> int | None:
    """The person consenting: who signed in during this interaction, else the SSO session's person."""
    if ix.result is not None:
        return ix.result.account_id
    session = runtime().sessions.load(sso_cookie())
    return session.account_id if session is not None else None
