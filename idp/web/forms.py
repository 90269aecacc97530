"""The forms many pages share: a bare action button, an OTP entry, an authenticator enrolment (CSRF
protected, through Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional


class ActionForm(FlaskForm):
    """A button with nothing but the CSRF token (resend, cancel, consent)."""


class OtpForm(FlaskForm):
    otp = StringField(validators=[DataRequired(), Length(max=10)])
    remember = BooleanField()


class EnrolForm(FlaskForm):
    otp = StringField(validators=[DataRequired(), Length(max=10)])
    password = PasswordField(validators=[Optional(), Length(max=128)])
