"""Self-description: GET /info (INFO-1, feature `info`)."""

from __future__ import annotations

import pytest

from conformance.catalogue import CONTRACT_VERSION
from conformance.client import ExecutorClient
from conformance.schema import schema_errors


@pytest.mark.conformance_requirement("INFO-1")
def test_info_describes_the_executor(executor: ExecutorClient) -> None:
    """GET /info names the implementation, the contract version and the optional features."""
    exchange = executor.request("GET", "/info")
    executor.expect(exchange.status == 200, "HTTP 200", exchange.response_line, exchange)
    errors = schema_errors("Info", exchange.json)
    executor.expect(not errors, "a body matching the Info schema", "; ".join(errors), exchange)
    executor.expect(
        exchange.json["contract_version"] == CONTRACT_VERSION,
        f'"contract_version": "{CONTRACT_VERSION}"',
        repr(exchange.json["contract_version"]),
        exchange,
    )
