"""What every page that sets a new password shares: the policy in the person's language, the form
of a new password typed twice, and the change itself (SQL in one transaction with its audit event,
then the end of the person's other SSO sessions with back-channel logout).

Used by the forgotten-password flow (idp.flows.signin.password_reset) and the change of password by a
signed-in person (idp.apps.account.password); registration pages can use the same pieces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField
from wtforms.validators import Length

from idp.identity import audit
from idp.identity.accounts import verified_phones
from idp.identity.passwords import check_policy
from idp.identity.remembered_devices import forget_all
from idp.runtime import runtime
from idp.sessions.browser import client_address, sso_cookie
from idp.store.models import Account, db, utcnow

log = logging.getLogger("idp.password")

# The texts of idp.identity.passwords.check_policy, in the language of the page.
POLICY_TEXTS = {
    "too_short": _l("Mật khẩu phải có ít nhất 8 ký tự."),
    "too_long": _l("Mật khẩu không được dài quá 128 ký tự."),
    "no_lower": _l("Mật khẩu phải có chữ thường."),
    "no_upper": _l("Mật khẩu phải có chữ hoa."),
    "no_digit": _l("Mật khẩu phải có chữ số."),
    "no_special": _l("Mật khẩu phải có ký tự đặc biệt."),
    "personal": _l("Mật khẩu không được chứa số định danh, số điện thoại hay ngày sinh."),
    "common": _l("Mật khẩu này quá phổ biến, hãy chọn mật khẩu khác."),
}


class NewPasswordForm(FlaskForm):
    new_password = PasswordField(validators=[Length(max=128)])
    confirm_password = PasswordField(validators=[Length(max=128)])


@dataclass
class NewPasswordCheck:
    problems: list[str]  # next to the new password field
    confirm_error: str | None  # next to the second field

    @property
    def ok(self) -> bool:
        return not self.problems and not self.confirm_error


def policy_problems(account: Account, password: str) -> list[str]:
    """Each unmet rule of the policy, for this person (ID numbers, phones, birth date)."""
    person = account.person
    numbers = [person.id_number, person.legacy_id_number] if person else [account.username]
    ids: list[str | None] = [n for n in numbers if n]
    phones: list[str | None] = [*verified_phones(account)]
    found: dict[str, str] = {}
    for id_number in ids or [None]:
        for phone in phones or [None]:
            for violation in check_policy(
                password,
                id_number=id_number,
                phone=phone,
                birth_date=person.birth_date if person else None,
            ):
                found.setdefault(violation.code, str(POLICY_TEXTS.get(violation.code, violation.message)))
    return list(found.values())


def check_new_password(account: Account, form: NewPasswordForm) -> NewPasswordCheck:
    new = form.new_password.data or ""
    if not new:
        return NewPasswordCheck([_("Vui lòng nhập mật khẩu mới.")], None)
    problems = policy_problems(account, new)
    if not problems and runtime().hashing.verify(account.password_hash, new):
        problems = [_("Mật khẩu mới phải khác mật khẩu đang dùng.")]
    confirm_error = None
    if new != (form.confirm_password.data or ""):
        confirm_error = _("Hai lần nhập mật khẩu mới chưa giống nhau.")
    return NewPasswordCheck(problems, confirm_error)


def keep_sid(account_id: int) -> str | None:
    """The SSO session of this browser, when it belongs to the account (it stays signed in)."""
    session = runtime().sessions.load(sso_cookie())
    return session.sid if session is not None and session.account_id == account_id else None


def set_password(account_id: int, password_hash: str, *, action: str, actor: str) -> int:
    """Store the new password and its audit event in one transaction, then end every other SSO
    session of the account (online grants revoked, back-channel logout sent). Returns how many
    sessions ended. The new password is what the next sign-in checks."""
    rt = runtime()
    keep = keep_sid(account_id)
    others = [s for s in rt.sessions.sessions_of(account_id) if s.sid != keep]
    account = db.session.execute(
        select(Account).where(Account.id == account_id).with_for_update()
    ).scalar_one()
    account.password_hash = password_hash
    account.password_changed_at = utcnow()
    audit.record(
        action,
        actor=actor,
        account_id=account_id,
        ip=client_address(),
        sessions_ended=len(others),
    )
    # A remembered browser must not skip the OTP with a password that is no longer the same.
    forget_all(account_id, actor=actor, reason=action, ip=client_address())
    db.session.commit()
    for session in others:
        try:
            rt.end_session(session, action)
        except Exception:  # one session failing to end must not hide the change from the person
            log.exception("ending session after %s failed", action)
    return len(others)
