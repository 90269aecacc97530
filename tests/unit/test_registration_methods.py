"""The registry of the ways to register (idp.flows.register.methods): each entry is complete, so
that the start page, the form and the check step find everything they read in one place."""

from __future__ import annotations

import inspect

import pytest

from idp.flows.register import methods
from idp.identity.registration import METHOD_LEVELS
from idp.proofing import register_checks


@pytest.mark.parametrize("method", methods.METHODS, ids=lambda m: m.key)
def test_every_method_is_complete(method: methods.RegistrationMethod) -> None:
    assert method.level == METHOD_LEVELS[method.key]
    assert method.kinds and set(method.kinds) <= {methods.CITIZEN, methods.ENTERPRISE}
    assert set(method.titles) == set(method.kinds) == set(method.doors)
    if method.by_register:
        # The register-based form registers citizens (steps.register_form); an enterprise proves
        # its tax code with its certificate.
        assert method.kinds == (methods.CITIZEN,)
        assert method.help is not None
        assert {"full_name", "birth_date", "phone"} <= set(method.fields)
        # Every refusal the check can give has its words.
        source = inspect.getsource(method.check)  # type: ignore[arg-type]
        reasons = {
            value
            for name, value in vars(register_checks).items()
            if name.isupper() and isinstance(value, str) and f"Refused({name})" in source
        }
        assert reasons and reasons <= set(method.refusals), (method.key, reasons)
    else:
        assert not method.fields and not method.refusals


def test_register_methods_are_for_citizens_and_certificates_for_both() -> None:
    assert [m.key for m in methods.by_register()] == ["subscriber", "social_insurance", "population"]
    assert [m.key for m in methods.by_certificate()] == ["sim", "usb"]
    assert [m.key for m in methods.for_kind(methods.ENTERPRISE)] == ["sim", "usb"]
