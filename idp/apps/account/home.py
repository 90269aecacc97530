"""The account area's own pages: home, sessions and devices, consents; and its sign-in callback.

The account area is a relying party of idp itself (the built-in public client ``idp-account``):
idp.apps.gate signs people in to it and guards every page with ``signed_in``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from idp.apps import gate
from idp.apps.account import bp
from idp.apps.gate import SignedInPerson, current_person, is_recent, signed_in
from idp.clients import ACCOUNT_CLIENT_ID
from idp.identity import audit, consents
from idp.identity.identifiers import mask_id, mask_phone
from idp.identity.remembered_devices import forget_all
from idp.runtime import runtime
from idp.sessions.browser import client_address, drop_sso_cookie
from idp.sessions.sso import SsoSession
from idp.store.models import Account, db
from idp.web.consents import describe_consent
from idp.web.errors import AccountSignInExpired
from idp.web.forms import ActionForm
from idp.web.pages import vietnam_time

F = TypeVar("F", bound=Callable[..., Any])


# The built-in client's name (idp.clients.ACCOUNT_CLIENT_NAME), a msgid shown on the sign-in pages.
ACCOUNT_AREA_NAME = _l("trang quản lý tài khoản")
KIND_NAMES = {
    "citizen": _l("Tài khoản công dân"),
    "organization": _l("Tài khoản tổ chức"),
}
NOTICES = {
    "signed_out_one": _l("Đã đăng xuất thiết bị đó. Các cổng dịch vụ trên thiết bị đó đã được thông báo."),
    "signed_out_gone": _l("Phiên đăng nhập đó đã kết thúc trước đó."),
    "revoked": _l("Đã thu hồi quyền nhận thông tin. Lần sau ứng dụng đó sẽ phải hỏi lại bạn."),
    "reauth_all": _l(
        "Bạn vừa xác nhận lại việc đăng nhập. Bấm «Đăng xuất khỏi tất cả thiết bị» một lần nữa để hoàn tất."
    ),
}


@bp.get("/account/login")
def account_login() -> BaseResponse:
    return gate.begin_sign_in(request.args.get("next") or "/account")


@bp.get("/account/callback")
def account_callback() -> BaseResponse:
    done = gate.finish_sign_in()
    if done.cancelled:
        return redirect(url_for("account.account_signed_out", cancelled=1, next=done.next), 303)
    if done.next is None:
        return AccountSignInExpired().response()
    return redirect(done.next, 303)


# -- pages -----------------------------------------------------------------------------------
def _render(template: str, status: int = 200, **context: Any) -> BaseResponse:
    body = render_template(template, **context)
    return Response(body, status=status, mimetype="text/html")


def _notice() -> str | None:
    notice = NOTICES.get(request.args.get("done", ""))
    return str(notice) if notice else None


def device_label(s: SsoSession) -> str:
    if s.browser and s.platform:
        return _("%(browser)s trên %(platform)s", browser=s.browser, platform=s.platform)
    if s.browser:
        return s.browser
    if s.platform:
        return _("Trình duyệt trên %(platform)s", platform=s.platform)
    return _("Trình duyệt không xác định")


def _portal_names(sid: str) -> list[str]:
    rt = runtime()
    names = []
    for client_id in sorted(rt.sessions.clients(sid)):
        if client_id == ACCOUNT_CLIENT_ID:
            continue
        client = rt.clients.get(client_id)
        names.append(client.client_name if client else client_id)
    return sorted(names)


@dataclass(frozen=True)
class SessionRow:
    sid: str
    device: str
    address: str
    signed_in_at: str
    active_at: str
    portals: list[str]
    current: bool


def _session_rows(me: SignedInPerson) -> list[SessionRow]:
    found = runtime().sessions.sessions_of(me.account_id)
    found.sort(key=lambda s: (s.sid != me.session.sid, -s.touched_at))
    return [
        SessionRow(
            sid=s.sid,
            device=device_label(s),
            address=s.address,
            signed_in_at=vietnam_time(s.created_at),
            active_at=vietnam_time(s.touched_at),
            portals=_portal_names(s.sid),
            current=s.sid == me.session.sid,
        )
        for s in found
    ]


def _account(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        abort(404)
    return account


@bp.get("/account")
@signed_in
def account_home() -> BaseResponse:
    me = current_person()
    account = _account(me.account_id)
    person = account.person
    org = getattr(account, "organization", None)
    context: dict[str, Any] = {
        "name": person.full_name if person is not None else account.username,
        "kind": str(KIND_NAMES.get(account.kind, account.kind)),
        "organization": org.name if org is not None else None,
        "id_number": mask_id(person.id_number) if person is not None and person.id_number else None,
        "legacy_id": mask_id(person.legacy_id_number)
        if person is not None and person.legacy_id_number and not person.id_number
        else None,
        "loa": person.loa if person is not None else None,
        "phones": [mask_phone(p.number) for p in account.phones if p.verified_at is not None],
        "session_count": len(runtime().sessions.sessions_of(me.account_id)),
        "consent_count": len(_consents(me.account_id)),
    }
    db.session.rollback()
    return _render("account/home.html", section="home", form=ActionForm(), **context)


@bp.get("/account/sessions")
@signed_in
def account_sessions() -> BaseResponse:
    me = current_person()
    notice = _notice()
    if request.args.get("confirm") == "all" and is_recent(me.session):
        notice = str(NOTICES["reauth_all"])
    return _render(
        "account/sessions.html",
        section="sessions",
        form=ActionForm(),
        sessions=_session_rows(me),
        notice=notice,
    )


def _end(me: SignedInPerson, s: SsoSession, reason: str) -> None:
    """End one SSO session of this person (audited), with back-channel logout to its portals."""
    audit.record(
        "session.signed_out",
        actor=f"account:{me.account_id}",
        account_id=me.account_id,
        ip=client_address(),
        reason=reason,
        this_device=s.sid == me.session.sid,
        portals=sorted(c for c in runtime().sessions.clients(s.sid) if c != ACCOUNT_CLIENT_ID),
    )
    runtime().end_session(s, reason)  # commits when it revokes grants
    db.session.commit()


def _signed_out(all_devices: bool) -> BaseResponse:
    """Drop this browser's SSO cookie and show the signed-out page (a GET, so that the language
    switch and a reload work)."""
    gate.forget()
    response = redirect(url_for("account.account_signed_out", everywhere=1 if all_devices else None), 303)
    drop_sso_cookie(response)
    return response


@bp.get("/account/signed-out")
def account_signed_out() -> BaseResponse:
    return _render(
        "account/signed_out.html",
        cancelled=bool(request.args.get("cancelled")),
        all_devices=bool(request.args.get("everywhere")),
        next_path=gate.safe_next(request.args.get("next")),
    )


@bp.post("/account/sessions/end")
@signed_in
def account_end_session() -> BaseResponse:
    me = current_person()
    if not ActionForm().validate_on_submit():
        abort(400)
    sid = request.form.get("sid", "")
    target = next((s for s in runtime().sessions.sessions_of(me.account_id) if s.sid == sid), None)
    if target is None:
        return redirect(url_for("account.account_sessions", done="signed_out_gone"), 303)
    if target.sid == me.session.sid:
        _end(me, target, "account_signout_this")
        return _signed_out(all_devices=False)
    _end(me, target, "account_signout_other")
    return redirect(url_for("account.account_sessions", done="signed_out_one"), 303)


@bp.post("/account/sessions/end-all")
@signed_in
def account_end_all() -> BaseResponse:
    me = current_person()
    if not ActionForm().validate_on_submit():
        abort(400)
    if not is_recent(me.session):
        # A sensitive action: the person proves again who they are (max_age), then confirms.
        return gate.begin_sign_in(
            url_for("account.account_sessions", confirm="all"),
            max_age=runtime().config["ACCOUNT_RECENT_SIGNIN"],
        )
    # "Everywhere" includes browsers remembered to skip the OTP: they must sign in fully again.
    forget_all(
        me.account_id, actor=f"account:{me.account_id}", reason="account_signout_all", ip=client_address()
    )
    db.session.commit()
    # Others first: this browser's session (and cookie) goes last.
    for s in sorted(runtime().sessions.sessions_of(me.account_id), key=lambda s: s.sid == me.session.sid):
        _end(me, s, "account_signout_all")
    return _signed_out(all_devices=True)


@bp.post("/account/signout")
@signed_in
def account_signout() -> BaseResponse:
    me = current_person()
    if not ActionForm().validate_on_submit():
        abort(400)
    _end(me, me.session, "account_signout_this")
    return _signed_out(all_devices=False)


# -- consents (item 7) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ConsentRow:
    client_id: str
    name: str
    claims: list[str]
    granted_at: str


def _consents(account_id: int) -> list[ConsentRow]:
    rt = runtime()
    found = []
    for c in consents.of_account(account_id):
        client = rt.clients.get(c.client_id)
        found.append(
            ConsentRow(
                client_id=c.client_id,
                name=client.client_name if client else c.client_id,
                claims=describe_consent(c.scope, c.claims),
                granted_at=vietnam_time(c.granted_at),
            )
        )
    return found


@bp.get("/account/consents")
@signed_in
def account_consents() -> BaseResponse:
    me = current_person()
    rows = _consents(me.account_id)
    db.session.rollback()
    return _render(
        "account/consents.html", section="consents", form=ActionForm(), consents=rows, notice=_notice()
    )


@bp.post("/account/consents/revoke")
@signed_in
def account_revoke_consent() -> BaseResponse:
    """Withdraw the consent (idp.identity.consents.withdraw: one transaction, audited), then stop
    the client's access tokens and sign the person out of that client."""
    me = current_person()
    if not ActionForm().validate_on_submit():
        abort(400)
    client_id = request.form.get("client_id", "")
    withdrawn = consents.withdraw(me.account_id, client_id, ip=client_address())
    if withdrawn is None:
        return redirect(url_for("account.account_consents"), 303)
    runtime().withdraw_client(me.account_id, client_id, withdrawn.grant_ids, "consent_revoked")
    return redirect(url_for("account.account_consents", done="revoked"), 303)
