"""The interaction policy (idp.oidc.policy): for each situation, the page a person is shown or
the error the portal hears — OpenID Connect Core §3.1.2.1 (prompt, max_age, id_token_hint),
DESIGN §4 (acr within the identity's level), and consent for parties that are not first party."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from idp.oidc import policy
from idp.oidc.authorize import AuthorizationContext
from idp.sessions.sso import SsoSession

NOW = 1_800_000_000


def session(
    *, acr: str = "LoA2", loa: int = 2, auth_time: int = NOW - 60, subject: str = "sub-an"
) -> SsoSession:
    return SsoSession(
        sid="s1",
        account_id=1,
        subject=subject,
        auth_time=auth_time,
        acr=acr,
        amr=["pwd", "otp"],
        loa=loa,
        created_at=auth_time,
        expires_at=NOW + 3600,
        touched_at=NOW,
    )


def context(*, first_party: bool = False, **fields: Any) -> AuthorizationContext:
    client = SimpleNamespace(config=SimpleNamespace(first_party=first_party))
    ctx = AuthorizationContext(client=client, redirect_uri="https://portal.example.vn/cb", scope="openid")
    for name, value in fields.items():
        setattr(ctx, name, value)
    return ctx


def verdict(
    ctx: AuthorizationContext,
    sso: SsoSession | None,
    *,
    fresh: bool = False,
    consented: bool = True,
    consent_given: bool = False,
) -> tuple[str | None, str | None, str | None]:
    found = policy.evaluate(policy.Situation(ctx, sso, fresh, consent_given, lambda: consented, NOW))
    return found.prompt, found.check, found.error.error if found.error is not None else None


@pytest.mark.parametrize(
    ("ctx", "sso", "options", "expected"),
    [
        pytest.param(context(), None, {}, ("login", "no_session", None), id="nobody-signed-in"),
        pytest.param(
            context(prompts={"none"}), None, {}, (None, "no_session", "login_required"), id="nobody-passive"
        ),
        pytest.param(context(), session(), {}, (None, None, None), id="signed-in-and-consented: issue"),
        pytest.param(
            context(hint_subject="sub-binh"),
            session(),
            {},
            ("login", "hint_names_another_person", None),
            id="hint-names-another",
        ),
        pytest.param(
            context(hint_subject="sub-binh"),
            session(),
            {"fresh": True},
            (None, "another_person_signed_in", "login_required"),
            id="the-wrong-person-just-signed-in",
        ),
        pytest.param(
            context(prompts={"login"}), session(), {}, ("login", "sign_in_asked_for", None), id="prompt-login"
        ),
        pytest.param(
            context(prompts={"login"}),
            session(),
            {"fresh": True},
            (None, None, None),
            id="prompt-login-after-the-sign-in",
        ),
        pytest.param(
            context(prompts={"create"}),
            session(),
            {},
            ("login", "sign_in_asked_for", None),
            id="prompt-create",
        ),
        pytest.param(context(max_age=0), session(), {}, ("login", "sign_in_too_old", None), id="max-age-0"),
        pytest.param(
            context(max_age=30),
            session(auth_time=NOW - 31),
            {},
            ("login", "sign_in_too_old", None),
            id="max-age-passed",
        ),
        pytest.param(
            context(max_age=60), session(auth_time=NOW - 60), {}, (None, None, None), id="max-age-kept"
        ),
        pytest.param(
            context(max_age=30, prompts={"none"}),
            session(auth_time=NOW - 31),
            {},
            (None, "sign_in_too_old", "login_required"),
            id="max-age-passed-passive",
        ),
        pytest.param(
            context(required_acr=["LoA3"]),
            session(acr="LoA2", loa=2),
            {},
            ("raise", "identity_below_request", None),
            id="identity-below-the-demand: raise",
        ),
        pytest.param(
            context(required_acr=["LoA3"], prompts={"none"}),
            session(acr="LoA2", loa=2),
            {},
            (None, "identity_below_request", "unmet_authentication_requirements"),
            id="identity-below-passive",
        ),
        pytest.param(
            context(required_acr=["LoA3"]),
            session(acr="LoA1", loa=3),
            {},
            ("step_up", "sign_in_too_weak", None),
            id="sign-in-below-the-identity: step-up",
        ),
        pytest.param(
            context(required_acr=["LoA3"], prompts={"none"}),
            session(acr="LoA1", loa=3),
            {},
            (None, "sign_in_too_weak", "login_required"),
            id="step-up-passive",
        ),
        pytest.param(
            context(required_acr=["LoA3"]),
            session(acr="LoA1", loa=3),
            {"fresh": True},
            (None, "fresh_sign_in_too_weak", "unmet_authentication_requirements"),
            id="fresh-sign-in-too-weak",
        ),
        pytest.param(
            context(), session(), {"consented": False}, ("consent", "consent_missing", None), id="no-consent"
        ),
        pytest.param(
            context(prompts={"none"}),
            session(),
            {"consented": False},
            (None, "consent_missing", "consent_required"),
            id="no-consent-passive",
        ),
        pytest.param(
            context(prompts={"consent"}),
            session(),
            {},
            ("consent", "consent_missing", None),
            id="prompt-consent",
        ),
        pytest.param(
            context(prompts={"consent"}),
            session(),
            {"consent_given": True},
            (None, None, None),
            id="consented-on-the-page",
        ),
        pytest.param(
            context(first_party=True),
            session(),
            {"consented": False},
            (None, None, None),
            id="first-party-needs-no-consent",
        ),
    ],
)
def test_the_first_check_that_applies_decides(
    ctx: AuthorizationContext, sso: SsoSession | None, options: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    assert verdict(ctx, sso, **options) == expected


def test_prompts_come_in_the_order_of_the_policy() -> None:
    """A sign-in first, then the identity's level, then the sign-in's strength, then consent: a
    page later in the list is never shown before an earlier one is satisfied."""
    assert [p.name for p in policy.POLICY] == ["login", "raise", "step_up", "consent"]
    assert [p.name for p in policy.POLICY if p.signs_in] == ["login", "step_up"]
    ctx = context(required_acr=["LoA3"], max_age=0)
    assert verdict(ctx, session(acr="LoA1", loa=2), consented=False)[0] == "login"
