"""Schema conformance by fuzzing with schemathesis (SCHEMA-1, SCHEMA-2).

Requests are generated from openapi.yaml, valid and invalid, with a fixed seed
(``conformance/schemathesis.toml``). SCHEMA-1 holds the checks every executor must pass;
SCHEMA-2 the stricter ones that can flag choices the contract does not forbid.
"""

from __future__ import annotations

from importlib import resources

import pytest
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import checks as openapi_checks

from conformance.schema import contract_document
from conformance.targets import Target

_CONFIG = SchemathesisConfig.from_path(str(resources.files("conformance") / "schemathesis.toml"))
schema = schemathesis.openapi.from_dict(contract_document(), config=_CONFIG)

MUST_CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
SHOULD_CHECKS = [
    openapi_checks.negative_data_rejection,
    openapi_checks.unsupported_method,
]


@pytest.mark.requirement("SCHEMA-1")
@schema.parametrize()
def test_responses_conform_to_the_contract(case: schemathesis.Case, executor_target: Target) -> None:
    """Every response conforms to openapi.yaml, and no generated request gets a 5xx."""
    case.call_and_validate(base_url=executor_target.base_url, checks=MUST_CHECKS, timeout=30)


@pytest.mark.requirement("SCHEMA-2")
@schema.parametrize()
def test_responses_pass_the_stricter_checks(case: schemathesis.Case, executor_target: Target) -> None:
    """Invalid requests are rejected with a 4xx; undocumented methods get 405."""
    case.call_and_validate(base_url=executor_target.base_url, checks=SHOULD_CHECKS, timeout=30)
