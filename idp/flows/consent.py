"""Consent: what a relying party asks to receive, in plain words; remembered per person and party."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.flows.browser import sso_cookie
from idp.flows.interaction import Interaction
from idp.flows.pages import ActionForm, bp, expired, load_interaction, page
from idp.identity import audit
from idp.runtime import runtime
from idp.store.models import Consent, db, utcnow

SCOPE_TEXT = {
    "openid": _l("Biết bạn đã đăng nhập (mã định danh ẩn danh của bạn tại cổng này)"),
    "profile": _l("Họ và tên, ngày sinh, giới tính"),
    "email": _l("Địa chỉ thư điện tử"),
    "phone": _l("Số điện thoại di động đã xác thực"),
    "citizen": _l("Số định danh cá nhân (số CCCD) và số CMND cũ"),
    "organization": _l(
        "Tổ chức của bạn (tên, mã số thuế hoặc mã đơn vị) và tên đăng nhập, họ tên, vai trò của bạn trong tổ chức"
    ),
    "offline_access": _l("Giữ kết nối khi bạn không trực tuyến (làm mới phiên mà không hỏi lại)"),
}


def describe_scopes(scope: str) -> list[str]:
    return [str(SCOPE_TEXT[s]) for s in scope.split() if s in SCOPE_TEXT]


# -- consent -----------------------------------------------------------------------------------
@bp.route("/consent/<ix_id>", methods=["GET", "POST"])
def consent(ix_id: str) -> BaseResponse:
    ix = load_interaction(ix_id)
    rt = runtime()
    form = ActionForm()
    scopes = describe_scopes(ix.scope)
    if request.method == "GET":
        return page("consent.html", ix, form=form, scopes=scopes)
    if not form.validate_on_submit():
        abort(400)
    if request.form.get("decision") != "allow":
        ix.cancelled = True
        rt.interactions.save(ix)
        return redirect(url_for("oidc.resume", ix_id=ix.id))
    account_id = _signed_in_account(ix)
    if account_id is None:
        return expired()
    existing = db.session.execute(
        select(Consent).where(Consent.account_id == account_id, Consent.client_id == ix.client_id)
    ).scalar_one_or_none()
    if existing is None:
        db.session.add(Consent(account_id=account_id, client_id=ix.client_id, scope=ix.scope))
    else:
        existing.scope = " ".join(dict.fromkeys(existing.scope.split() + ix.scope.split()))
        existing.granted_at = utcnow()
    audit.record(
        "consent.granted",
        actor=f"account:{account_id}",
        account_id=account_id,
        client_id=ix.client_id,
        scope=ix.scope,
    )
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
