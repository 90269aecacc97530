"""Upstream identity providers that idp brokers: the national public-service portal and VNeID.

Adapters, like idp.verifiers: no Flask. ``client.py`` is an OpenID Connect relying party of its
own (discovery, JWKS with key rotation, the code exchange, ID token and userinfo checks) written on
joserfc and requests, never on the provider's Authlib server; ``profiles.py`` maps each upstream's
claims into one :class:`~idp.upstreams.identity.UpstreamIdentity`. Policy (linking, levels) lives
elsewhere (idp.identity, idp.flows.signin).
"""
