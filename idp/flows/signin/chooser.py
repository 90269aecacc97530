"""The chooser: the four doors of the sign-in page (DESIGN §2), and cancelling a sign-in.

A relying party may skip the chooser: `door=citizen|organization|national-portal|vneid` in the
authorization request opens that door at once, and without it a `login_hint` that is an ID number
(12 digits, or a 9-digit CMND) opens the citizen door with the number filled in. Only the first
visit is skipped: "Chọn loại tài khoản khác" brings the person back to the chooser. Unknown values
are ignored (the chooser is shown).
"""

from __future__ import annotations

from flask import abort, redirect, url_for
from werkzeug.wrappers import Response as BaseResponse

from idp.flows.signin import bp
from idp.identity.identifiers import is_id_number, is_legacy_id
from idp.runtime import runtime
from idp.sessions.interaction import Interaction
from idp.web.forms import ActionForm
from idp.web.pages import load_interaction, page

DOORS = ("national-portal", "vneid", "organization", "citizen")


@bp.get("/login/<ix_id>")
def login(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    if ix.pending_account_id and ix.otp_challenge:
        return redirect(url_for("signin.otp", ix_id=ix.id))
    if ix.door == "register" and not ix.door_taken:
        # prompt=create: the registration pages, which lead back to this sign-in when done.
        ix.door_taken = True
        runtime().interactions.save(ix)
        return redirect(url_for("register.register", ix=ix.id))
    named = door_named(ix)
    if named and not ix.door_taken:
        ix.door_taken = True
        runtime().interactions.save(ix)
        return redirect(url_for("signin.door", ix_id=ix.id, kind=named))
    return page("chooser.html", ix, doors=DOORS)


def door_named(ix: Interaction) -> str | None:
    """The door the relying party asked for: `door=`, else what `login_hint` implies."""
    if ix.door in DOORS:
        return ix.door
    hint = ix.login_hint or ""
    if is_id_number(hint) or is_legacy_id(hint):
        return "citizen"
    return None


@bp.get("/login/<ix_id>/door/<kind>")
def door(ix_id: str, kind: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    if kind == "citizen":
        return redirect(url_for("signin.citizen", ix_id=ix.id))
    if kind == "organization":
        return redirect(url_for("signin.organization", ix_id=ix.id))
    if kind not in DOORS:
        abort(404)
    return page("door_unavailable.html", ix, status=503, kind=kind)


@bp.post("/login/<ix_id>/cancel")
def cancel(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    ix.cancelled = True
    runtime().interactions.save(ix)
    return redirect(url_for("oidc.resume", ix_id=ix.id))
