"""Browser flows: the sign-in doors, OTP, consent; later registration, normalization and step-up.

A flow starts from an interaction that /authorize created, and finishes by writing its result
(account, acr, amr, auth_time) into the interaction and sending the browser back to the
protocol layer, which resumes the original authorization request.
"""
