"""Short-lived state on the ephemeral store (Redis, or the embedded store): the interaction that
carries an authorization request through the sign-in pages, SSO sessions, the browser binding and
its cookies, records of multi-page flows, throttles and lockouts, the OTP service, and the
remembered-device cookie.

Below the web tier: the protocol layer (idp.oidc), the journeys (idp.flows) and idp's own relying
parties (idp.apps) read it; it imports none of them.
"""
