"""The OpenID Connect provider: the only package that imports Authlib.

Endpoints (idp.oidc.views), the Authlib server and grants (idp.oidc.server), the authorization
request pipeline (idp.oidc.authorize), tokens (idp.oidc.tokens), keys (idp.oidc.keys), claims
(idp.oidc.claims) and logout (idp.oidc.logout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask


def init_app(app: Flask, runtime: Any) -> None:
    from idp.oidc import hooks, views
    from idp.oidc.keys import KeyRing
    from idp.oidc.server import create_server
    from idp.oidc.tokens import TokenService

    config = app.config
    runtime.oidc = create_server(
        issuer=config["ISSUER"],
        clients=runtime.clients,
        keys=KeyRing(Path(config["KEYS_DIR"]), config["KEY_RETENTION"]),
        tokens=TokenService(runtime.store, config["ACCESS_TOKEN_LIFETIME"]),
        store=runtime.store,
        config=config,
    )
    hooks.install(runtime, runtime.oidc)
    app.register_blueprint(views.bp)
