"""Configuration (CONFIG-1, CONFIG-2): the settings the executor is started with, and their defaults.

Each setting's effect is checked where the contract uses it (TIMEOUT-7, CODE-5, OUTPUT-2,
INPUT-2, INPUT-5, ISO-6), with values the kit chose apart from the defaults
(``conformance/settings.py``). Here: the port, which every other check goes through, and what an
executor started with no settings at all does.
"""

from __future__ import annotations

import pytest

from conformance.catalogue import Need
from conformance.client import ExecutorClient
from conformance.outcomes import not_run
from conformance.settings import CONTRACT_DEFAULTS
from conformance.targets import Capabilities, Workspace

from .conftest import Siblings, judge_default_timeout, started_sibling


@pytest.mark.conformance_requirement("CONFIG-1")
@pytest.mark.conformance_needs(Need.SETTINGS)
def test_the_executor_listens_on_the_port_named_by_port(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """The executor answers on the port PORT names (the kit chose one that is not the default).

    An executor found on the contract's default port instead fails here, and the rest of the
    certification goes on there.
    """
    port = capabilities.settings.port
    executor.expect(
        capabilities.answered_on == port,
        f"/health answered on PORT = {port}",
        f"nothing answered on {port}; the executor answered on {capabilities.answered_on} (the default) instead",
        None,
    )


@pytest.mark.conformance_requirement("CONFIG-2")
@pytest.mark.conformance_needs(Need.SETTINGS)
@pytest.mark.conformance_needs(Need.WORKSPACE)
@pytest.mark.parametrize("workspace", [Workspace.DEFAULTS])
def test_unset_settings_take_the_contracts_defaults(
    executor: ExecutorClient,
    capabilities: Capabilities,
    sibling_starts: Siblings | None,
    workspace: Workspace,
) -> None:
    """Started with no settings and the workspace at /code: it answers on 8432, loads /code, cuts code at 3 s."""
    defaults = CONTRACT_DEFAULTS
    sibling = started_sibling(executor, capabilities, sibling_starts, workspace)
    if sibling is None:
        not_run("a local command is always given PORT: the contract's default may be taken on a shared host")
    try:
        other = executor.of_sibling(sibling.base_url, default_execution_timeout=defaults.execution_timeout)
        try:
            other.expect(
                sibling.capabilities.answered_on == defaults.port,
                f"/health answered on the default port {defaults.port}",
                f"answered on {sibling.capabilities.answered_on}",
                None,
            )
            loaded = other.evaluate(other.code("workspace_loaded"))
            other.expect(loaded is True, f"the workspace at {defaults.workspace_folder} loaded", loaded)
            judge_default_timeout(other, defaults.execution_timeout)
        finally:
            other.close()
    finally:
        sibling.stop()
