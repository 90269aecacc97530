"""The services one application instance wires together, reachable from any request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

from idp.clients import ClientRegistry
from idp.identity.passwords import PasswordHashing
from idp.messaging.sms import SmsSender
from idp.sessions.interaction import InteractionStore
from idp.sessions.otp import OtpService
from idp.sessions.sso import SessionStore, SsoSession
from idp.sessions.throttle import Throttle
from idp.store.ephemeral import EphemeralStore

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

    from idp.oidc.server import IdpServer
    from idp.sessions.interaction import Interaction

# The page a prompt of the interaction policy (idp.oidc.policy) opens: the journeys install one per
# prompt they answer (idp.flows.signin.prompt_pages), so that the protocol layer hands the browser
# over without importing them.
PromptPage = Callable[["Interaction", "SsoSession | None"], "BaseResponse"]


@dataclass(frozen=True)
class RedeemedCode:
    """What an authorization code of idp's own account area proves (see Runtime.redeem_code)."""

    account_id: int
    subject: str
    sid: str | None
    auth_time: int
    acr: str
    nonce: str | None


def _not_installed(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the protocol layer is not installed (idp.oidc.init_app)")


@dataclass
class Runtime:
    config: dict[str, Any]
    store: EphemeralStore
    clients: ClientRegistry
    hashing: PasswordHashing
    sms: SmsSender
    interactions: InteractionStore
    sessions: SessionStore
    otp: OtpService
    password_throttle: Throttle
    otp_throttle: Throttle
    oidc: IdpServer | None = None
    # The registers' verifiers (idp.verifiers.build_registers) and digital signatures
    # (idp.verifiers.signing.build_signing); set by create_app.
    registers: Any = None
    signing: Any = None
    # Hooks the protocol layer installs (idp.oidc.hooks), so that flows act on sessions, grants
    # and codes without importing idp.oidc:
    # end_session(session, reason) -> {client_id: delivered}: end an SSO session, revoke its online
    # grants and send back-channel logout to its relying parties (sign-out pages, password change).
    end_session: Callable[[SsoSession, str], dict[str, bool]] = _not_installed
    # withdraw_client(account_id, client_id, grant_ids, reason): after the grants were revoked in
    # SQL, their access tokens stop at once and the client leaves the person's SSO sessions with a
    # back-channel logout for each (consent revoked).
    withdraw_client: Callable[[int, str, list[str], str], None] = _not_installed
    # redeem_code(code, client_id, redirect_uri, code_verifier) -> RedeemedCode | None: consume a
    # code issued to a built-in relying party (the account area's callback).
    redeem_code: Callable[[str, str, str, str], RedeemedCode | None] = _not_installed
    prompt_pages: dict[str, PromptPage] = field(default_factory=dict)

    def prompt_page(self, prompt: str, ix: Interaction, session: SsoSession | None) -> BaseResponse:
        """The page that answers `prompt` for this interaction (KeyError: no journey installed it)."""
        return self.prompt_pages[prompt](ix, session)


def runtime() -> Runtime:
    return current_app.extensions["idp"]
