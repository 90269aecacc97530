"""The direction of imports (docs/architecture.md), read from the source: the protocol layer never
imports a journey, nothing below the web tier imports it, and the adapters import no Flask.

Imports inside functions count too: a late import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "idp"

# package -> prefixes it must not import (module names, dotted)
FORBIDDEN = {
    "idp.oidc": ("idp.flows", "idp.apps"),
    "idp.flows": ("idp.apps", "idp.oidc.views"),
    "idp.apps": ("idp.flows", "idp.oidc.views"),
    "idp.web": ("idp.flows", "idp.apps", "idp.oidc"),
    "idp.proofing": ("idp.flows", "idp.apps", "idp.oidc", "idp.web", "flask"),
    "idp.sessions": ("idp.flows", "idp.apps", "idp.oidc", "idp.web", "idp.proofing"),
    "idp.identity": ("idp.flows", "idp.apps", "idp.oidc", "idp.web", "idp.proofing", "idp.sessions"),
    "idp.verifiers": ("idp.flows", "idp.apps", "idp.oidc", "idp.web", "idp.sessions", "flask"),
    "idp.upstreams": ("idp.flows", "idp.apps", "idp.oidc", "idp.web", "idp.sessions", "authlib", "flask"),
    "idp.messaging": ("idp.flows", "idp.apps", "idp.oidc", "idp.web", "idp.sessions", "flask"),
    "idp.store": ("idp.flows", "idp.apps", "idp.oidc", "idp.web", "idp.sessions", "idp.identity"),
    "idp.runtime": ("idp.flows", "idp.apps", "idp.web"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def violations() -> list[str]:
    found = []
    for path in modules():
        name = module_name(path)
        for package, banned in FORBIDDEN.items():
            if name != package and not name.startswith(package + "."):
                continue
            for imported in sorted(imports_of(path)):
                if any(imported == b or imported.startswith(b + ".") for b in banned):
                    found.append(f"{name} imports {imported}")
    return found


def test_imports_run_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_every_rule_names_a_package_that_exists(package: str) -> None:
    path = PACKAGE.parent / package.replace(".", "/")
    assert path.is_dir() or path.with_suffix(".py").is_file(), package
