"""The interaction policy: what an authorization request still needs from the person, as data.

After oidc-provider's interaction policy. Each prompt is a step a person may be asked to take
(sign in, step up the sign-in, raise the identity level, consent); each holds checks that ask
for it. The first check that applies decides: a passive request (``prompt=none``) hears the
check's OAuth error, and so does any request when the check is ``final`` (no page could help);
otherwise the browser is handed to the prompt's page. No check applies: the code is issued.

Normalization and account linking each add a prompt here and its page in a journey's
``prompt_pages()``; the views hand every prompt to its page, except ``raise``, whose offer the
protocol layer renders itself (it falls back to unmet_authentication_requirements).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError

from idp.identity.assurance import LEVEL_ACR, satisfies
from idp.oidc.authorize import AuthorizationContext
from idp.oidc.errors import UnmetAuthenticationRequirementsError
from idp.sessions.sso import SsoSession


@dataclass(frozen=True)
class Situation:
    """The request, the browser's SSO session, and what the interaction has done so far."""

    ctx: AuthorizationContext
    session: SsoSession | None
    fresh_login: bool  # the person just signed in for this request
    consent_given: bool  # ... and consented on the consent page
    consent_ok: Callable[[], bool]  # a stored consent covers the request (read only when asked)
    now: int

    @property
    def passive(self) -> bool:
        return "none" in self.ctx.prompts


@dataclass(frozen=True)
class Check:
    """One rule that asks for its prompt: `applies` says when; `error` is what a passive request
    (or every request, when `final`) hears instead of a page."""

    reason: str
    applies: Callable[[Situation], bool]
    error: Callable[[], OAuth2Error]
    final: bool = False


@dataclass(frozen=True)
class Prompt:
    name: str  # "login", "raise", "step_up", "consent"
    checks: tuple[Check, ...]
    # The person signs in (again) on its page: an interaction that already has a sign-in's result
    # is replaced by a fresh one.
    signs_in: bool = False


@dataclass(frozen=True)
class Verdict:
    """``issue``; or ``error`` to send to the client; or ``prompt``, the page the person sees."""

    prompt: str | None = None
    check: str | None = None
    error: OAuth2Error | None = None
    signs_in: bool = False

    @property
    def issue(self) -> bool:
        return self.prompt is None and self.error is None


# -- the checks, each the rule it enforces ------------------------------------------------------
def no_session(s: Situation) -> bool:
    """Nobody is signed in in this browser."""
    return s.session is None


def another_person_signed_in(s: Situation) -> bool:
    """Someone other than the person the client named in id_token_hint just signed in."""
    return s.fresh_login and bool(s.ctx.hint_subject) and s.ctx.hint_subject != _session(s).subject


def hint_names_another_person(s: Situation) -> bool:
    """id_token_hint names someone other than the person signed in here."""
    return bool(s.ctx.hint_subject) and s.ctx.hint_subject != _session(s).subject


def sign_in_asked_for(s: Situation) -> bool:
    """prompt=login (or prompt=create, registration first) asks for a new sign-in."""
    return not s.fresh_login and bool({"login", "create"} & s.ctx.prompts)


def sign_in_too_old(s: Situation) -> bool:
    """max_age: the sign-in is older (max_age=0 is prompt=login, OpenID Connect Core §3.1.2.1)."""
    max_age = s.ctx.max_age
    if s.fresh_login or max_age is None:
        return False
    return max_age == 0 or s.now - _session(s).auth_time > max_age


def _acr_unmet(s: Situation) -> bool:
    return bool(s.ctx.required_acr) and not satisfies(_session(s).acr, s.ctx.required_acr or [])


def identity_below_request(s: Situation) -> bool:
    """The person's identity is proven below the level demanded: no sign-in could reach it (the
    identity level is the ceiling of a sign-in's acr, DESIGN §4); raising the level could."""
    if not _acr_unmet(s):
        return False
    ceiling = LEVEL_ACR.get(max(1, min(_session(s).loa, 3)), "LoA1")
    return not satisfies(ceiling, s.ctx.required_acr or [])


def fresh_sign_in_too_weak(s: Situation) -> bool:
    """The person just signed in for this request and the sign-in still did not reach its acr."""
    return s.fresh_login and _acr_unmet(s)


def sign_in_too_weak(s: Situation) -> bool:
    """The session's sign-in is weaker than demanded, though the same person could reach it."""
    return _acr_unmet(s)


def consent_missing(s: Situation) -> bool:
    """A portal that is not first party needs the person's consent for what it asks to receive."""
    if s.ctx.client.config.first_party or s.consent_given:
        return False
    return "consent" in s.ctx.prompts or not s.consent_ok()


def _session(s: Situation) -> SsoSession:
    assert s.session is not None  # the login prompt's first check runs before any other
    return s.session


def _error(kind: type[OAuth2Error], description: str) -> Callable[[], OAuth2Error]:
    return lambda: kind(description)


POLICY: tuple[Prompt, ...] = (
    Prompt(
        "login",
        (
            Check("no_session", no_session, _error(LoginRequiredError, "the end-user is not signed in")),
            Check(
                "another_person_signed_in",
                another_person_signed_in,
                _error(LoginRequiredError, "the signed-in end-user is not the one in id_token_hint"),
                final=True,
            ),
            Check(
                "hint_names_another_person",
                hint_names_another_person,
                _error(LoginRequiredError, "a different end-user is signed in"),
            ),
            Check(
                "sign_in_asked_for",
                sign_in_asked_for,
                _error(LoginRequiredError, "a new sign-in is required"),
            ),
            Check(
                "sign_in_too_old",
                sign_in_too_old,
                _error(LoginRequiredError, "the sign-in is older than max_age"),
            ),
        ),
        signs_in=True,
    ),
    Prompt(
        "raise",
        (
            Check(
                "identity_below_request",
                identity_below_request,
                _error(UnmetAuthenticationRequirementsError, "the identity is below the required acr"),
            ),
        ),
    ),
    Prompt(
        "step_up",
        (
            Check(
                "fresh_sign_in_too_weak",
                fresh_sign_in_too_weak,
                _error(UnmetAuthenticationRequirementsError, "the sign-in did not reach the required acr"),
                final=True,
            ),
            Check(
                "sign_in_too_weak",
                sign_in_too_weak,
                _error(LoginRequiredError, "a stronger sign-in is required"),
            ),
        ),
        signs_in=True,
    ),
    Prompt(
        "consent",
        (Check("consent_missing", consent_missing, _error(ConsentRequiredError, "consent is required")),),
    ),
)


def evaluate(situation: Situation, policy: tuple[Prompt, ...] = POLICY) -> Verdict:
    """The first check that applies decides; none applies: issue."""
    for prompt in policy:
        for check in prompt.checks:
            if check.applies(situation):
                if check.final or situation.passive:
                    return Verdict(check=check.reason, error=check.error())
                return Verdict(prompt=prompt.name, check=check.reason, signs_in=prompt.signs_in)
    return Verdict()


def situation(
    ctx: AuthorizationContext,
    session: SsoSession | None,
    *,
    fresh_login: bool,
    consent_ok: Callable[[], bool],
    consent_given: bool = False,
) -> Situation:
    return Situation(ctx, session, fresh_login, consent_given, consent_ok, int(time.time()))
