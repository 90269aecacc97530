"""Browser journeys inside an interaction, a blueprint each: sign-in (idp.flows.signin) and
registration (idp.flows.register).

A journey starts from an interaction that /authorize created, and finishes by writing its result
(account, acr, amr, auth_time) into the interaction and sending the browser back to the
protocol layer, which resumes the original authorization request.
"""
