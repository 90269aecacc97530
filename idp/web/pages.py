"""What every sign-in page shares: the blueprint, loading the interaction bound to this browser,
rendering, messages, and finishing a sign-in so that the authorization request resumes.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import Response, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.clients import ACCOUNT_CLIENT_ID
from idp.identity import audit
from idp.identity.assurance import session_acr
from idp.identity.identifiers import VIETNAM
from idp.runtime import runtime
from idp.sessions.browser import browser_id, client_address, renew_binding
from idp.sessions.interaction import Interaction, LoginResult
from idp.sessions.otp import OtpCheck, OtpOutcome
from idp.sessions.throttle import Throttle
from idp.store.models import Account, db
from idp.web.errors import SignInExpired


def load_interaction(ix_id: str) -> Interaction:
    ix = runtime().interactions.load(ix_id, browser_id(create=False))
    if ix is None:
        raise SignInExpired()
    g.ui_locales = ix.ui_locales
    return ix


def client_name_of(ix: Interaction) -> str:
    """Portals' names as clients.yaml writes them; idp's own account area in the page's language."""
    return _(ix.client_name) if ix.client_id == ACCOUNT_CLIENT_ID else ix.client_name


def page(template: str, ix: Interaction, status: int = 200, **context: Any) -> BaseResponse:
    body = render_template(template, ix=ix, client_name=client_name_of(ix), **context)
    return Response(body, status=status, mimetype="text/html")


def minutes(seconds: int) -> int:
    return max(1, (seconds + 59) // 60)


# The SMS that carries an OTP, one wording for every purpose. Unaccented on purpose: Vietnamese
# carriers bill accented SMS as Unicode, three times the parts. {code} is filled by the OTP service.
_DO_NOT_SHARE = "Khong cung cap ma nay cho bat ky ai."
OTP_SMS = {
    "signin": ("dang nhap cua ban", _DO_NOT_SHARE),
    "organization": ("dang nhap tai khoan to chuc", _DO_NOT_SHARE),
    "registration": ("dang ky tai khoan cua ban", _DO_NOT_SHARE),
    "password_reset": (
        "lay lai mat khau cua ban",
        "Neu ban khong yeu cau, hay bo qua tin nay va khong cung cap ma cho bat ky ai.",
    ),
    "password_change": (
        "doi mat khau cua ban",
        "Neu ban khong yeu cau, hay goi tong dai ho tro va khong cung cap ma cho bat ky ai.",
    ),
}


def otp_sms(purpose: str) -> str:
    """The text of an OTP message for `purpose` (a key of OTP_SMS), its lifetime in minutes."""
    what, closing = OTP_SMS[purpose]
    lifetime = minutes(runtime().config["OTP_LIFETIME"])
    return f"Ma OTP {what} la {{code}}, hieu luc {lifetime} phut. {closing}"


def lockout_message(seconds: int) -> str:
    count = minutes(seconds)
    return ngettext(
        "Bạn đã nhập sai quá nhiều lần. Vui lòng thử lại sau %(num)d phút.",
        "Bạn đã nhập sai quá nhiều lần. Vui lòng thử lại sau %(num)d phút.",
        count,
    )


def otp_refusal(check: OtpCheck, throttle: Throttle, *, name: str, address: str) -> str | None:
    """What a person reads when the code they typed was not accepted; None when it was.

    A code voided by OTP_MAX_ATTEMPTS wrong tries counts towards the OTP lockout (OTP_MAX_VOIDED
    voided codes per name or address), which then has its own message.
    """
    if check.outcome is OtpOutcome.OK:
        return None
    if check.outcome is OtpOutcome.WRONG:
        return ngettext(
            "Mã OTP không đúng. Bạn còn %(num)d lần thử.",
            "Mã OTP không đúng. Bạn còn %(num)d lần thử.",
            check.attempts_left,
        )
    if check.outcome is OtpOutcome.EXHAUSTED:
        locked = throttle.failure(name=name, address=address)
        if locked:
            return lockout_message(locked)
        return _(
            "Bạn đã nhập sai quá %(num)d lần nên mã OTP này không còn hiệu lực. Bấm Gửi lại OTP để nhận mã mới.",
            num=runtime().config["OTP_MAX_ATTEMPTS"],
        )
    return _("Mã OTP đã hết hiệu lực. Bấm Gửi lại OTP để nhận mã mới.")


def finish_login(ix: Interaction, account_id: int, amr: list[str], door: str = "citizen") -> BaseResponse:
    """Record the sign-in in the interaction (and the audit trail) and resume the authorization."""
    rt = runtime()
    account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one_or_none()
    if account is None or account.person is None or account.status != "active":
        db.session.rollback()
        return SignInExpired().response()
    person = account.person
    acr = session_acr(person.loa, amr)
    audit.record(
        "signin",
        actor=f"account:{account_id}",
        account_id=account_id,
        client_id=ix.client_id,
        ip=client_address(),
        door=door,
        acr=acr,
        amr=amr,
        **({"step_up": True} if ix.step_up else {}),
    )
    db.session.commit()
    ix.result = LoginResult(
        account_id=account_id,
        subject=person.subject,
        auth_time=int(time.time()),
        acr=acr,
        amr=amr,
        loa=person.loa,
    )
    ix.pending_account_id = ix.otp_challenge = None
    rt.interactions.save(ix)
    # Session fixation: whoever holds a copy of this browser's page session from before the
    # sign-in cannot resume the authorization (and receive the code and the SSO cookie).
    renew_binding()
    return redirect(url_for("oidc.resume", ix_id=ix.id))


def vietnam_time(epoch: int | float | dt.datetime) -> str:
    """dd/mm/yyyy HH:MM in Vietnam time (DESIGN §7: dates dd/mm/yyyy)."""
    if isinstance(epoch, dt.datetime):
        moment = epoch.replace(tzinfo=dt.UTC).astimezone(VIETNAM)
    else:
        moment = dt.datetime.fromtimestamp(epoch, VIETNAM)
    return moment.strftime("%H:%M, %d/%m/%Y")
