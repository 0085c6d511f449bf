"""Validation of response bodies against the components of ``openapi.yaml``."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["contract_document", "schema_errors"]

_ROOT = "urn:executor-contract"


@functools.cache
def contract_document() -> dict[str, Any]:
    """openapi.yaml as shipped with the kit."""
    text = (resources.files("conformance") / "openapi.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


@functools.cache
def _validator(component: str) -> jsonschema.Draft202012Validator:
    document = contract_document()
    registry: Registry[Any] = Registry().with_resource(_ROOT, Resource.from_contents(document, DRAFT202012))
    schema = {"$ref": f"{_ROOT}#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def schema_errors(component: str, instance: Any) -> list[str]:
    """What is wrong with ``instance`` as a ``component`` (e.g. "ExecuteResponse"); empty if nothing."""
    errors = sorted(_validator(component).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]
