"""Use cases that ask a register and then write the identity, shared by the pages, the command
line and (next) the operator console: the register checks of online registration, in-person
registration at a counter or post office, and later the letter's normalization.

No Flask: a refusal is an answer with a stable ``reason`` that each caller words for its reader
(a Vietnamese page, an operator's English line).
"""
