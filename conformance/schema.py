"""Validation of response bodies against the components of the contract's OpenAPI documents:
``openapi.yaml`` (an executor's) and ``pool-openapi.yaml`` (a pool manager's)."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["EXECUTOR_API", "POOL_API", "contract_document", "schema_errors"]

#: The OpenAPI documents shipped with the kit: an executor's API, a pool manager's.
EXECUTOR_API, POOL_API = "openapi.yaml", "pool-openapi.yaml"

_ROOT = "urn:executor-contract"


@functools.cache
def contract_document(name: str = EXECUTOR_API) -> dict[str, Any]:
    """The OpenAPI document ``name`` as shipped with the kit."""
    text = (resources.files("conformance") / name).read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


@functools.cache
def _validator(component: str, name: str) -> jsonschema.Draft202012Validator:
    document = contract_document(name)
    registry: Registry[Any] = Registry().with_resource(_ROOT, Resource.from_contents(document, DRAFT202012))
    schema = {"$ref": f"{_ROOT}#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def schema_errors(component: str, instance: Any, document: str = EXECUTOR_API) -> list[str]:
    """What is wrong with ``instance`` as a ``component`` of ``document`` (e.g. "ExecuteResponse");
    empty if nothing."""
    errors = sorted(_validator(component, document).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]
