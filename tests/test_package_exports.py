"""Every name one of the project's modules imports from another is in that module's ``__all__``.

``__all__`` is each module's public surface: what the kit's, the executor's and the manager's
modules promise one another. A name imported across modules but missing from it is either
private (and should not be imported) or public (and should be listed).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("conformance", "reference_executor", "executor_pool", "executor_serving")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> list[tuple[str, str, str]]:
    """(importing module, imported module, name) for every ``from X import name`` between project modules."""
    found: list[tuple[str, str, str]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            here = _module_name(path)
            is_package = path.name == "__init__.py"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom):
                    continue
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - node.level + (1 if is_package else 0)]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                if source.split(".")[0] in PACKAGES and source != here:
                    found.extend((here, source, alias.name) for alias in node.names)
    return found


IMPORTS = _imports()


@pytest.mark.parametrize("source", sorted({source for _, source, _ in IMPORTS}))
def test_names_imported_from_a_module_are_in_its_all(source: str) -> None:
    module = importlib.import_module(source)
    exported = set(getattr(module, "__all__", ()))
    missing = sorted(
        f"{name} (imported by {importer})"
        for importer, imported, name in IMPORTS
        if imported == source
        and name not in exported
        and not (hasattr(module, "__path__") and importlib.util.find_spec(f"{source}.{name}") is not None)
    )
    assert not missing, f"{source}.__all__ lacks: {', '.join(missing)}"
