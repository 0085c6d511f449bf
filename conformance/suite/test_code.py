"""Mounted code (CODE-1 to CODE-5, feature `mounted_code`).

The language pack's sample workspace (Python's: ``conformance/languages/python/workspace``) has
five files: a_first (slow, prints markers), b_second (imports the sibling conformance_helper),
c_broken (raises), d_after_broken (records when loading ended) and conformance_helper.
"""

from __future__ import annotations

import pytest

from conformance.catalogue import Need
from conformance.client import BUSY, ExecutorClient, output_text
from conformance.targets import Capabilities, Workspace

from .conftest import Siblings, started_sibling, watch_workspace_load

LOADING_MARKER = "conformance-loading-marker"


@pytest.mark.conformance_requirement("CODE-1")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_workspace_files_run_in_the_session_namespace(executor: ExecutorClient) -> None:
    """Every file of the workspace ran at start-up in the session's global namespace."""
    value = executor.evaluate(executor.code("workspace_names"))
    executor.expect(value == ["list", True], "names defined by the workspace files, in the session", value)


@pytest.mark.conformance_requirement("CODE-2")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_files_run_in_sorted_order_and_import_siblings(executor: ExecutorClient) -> None:
    """Files run in sorted name order, and the folder is on sys.path so that siblings import."""
    order = executor.evaluate(executor.code("load_order"))
    executor.expect(
        isinstance(order, list) and order[:2] == ["a_first", "b_second"],
        "a_first, then b_second (which imported conformance_helper)",
        order,
    )
    value = executor.evaluate(executor.code("helper_value"))
    executor.expect(value == 42, "the value b_second took from its sibling module", value)


@pytest.mark.conformance_requirement("CODE-3")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_loading_output_never_appears_in_a_response(executor: ExecutorClient) -> None:
    """What loading prints stays out of execute responses, also right after a restart."""
    exchange = executor.restart()
    executor.expect(exchange.status == 200, "POST /restart to answer 200", exchange.response_line, exchange)
    for code in (
        executor.code("value_of_text", text="first after restart"),
        executor.code("print_text", text="second"),
    ):
        exchange = executor.execute(code)
        if exchange.status in BUSY:  # a restart still under way: ask again, as a client would
            executor.run(code)
            exchange = executor.last or exchange
        body = executor.expect_execute_response(exchange)
        text = output_text(body)
        executor.expect(LOADING_MARKER not in text, "no output of the workspace loading", repr(text[:500]), exchange)


@pytest.mark.conformance_requirement("CODE-4")
@pytest.mark.conformance_needs(Need.WORKSPACE)
def test_failing_file_is_skipped_and_the_rest_load(executor: ExecutorClient) -> None:
    """A file that raises is skipped; the files after it load and the executor is ready."""
    order = executor.evaluate(executor.code("load_order"))
    executor.expect(
        isinstance(order, list) and "d_after_broken" in order,
        "d_after_broken loaded after the broken file",
        order,
    )


@pytest.mark.conformance_requirement("CODE-5")
@pytest.mark.conformance_needs(Need.WORKSPACE)
@pytest.mark.parametrize("workspace", [Workspace.MISSING, Workspace.EMPTY, Workspace.ELSEWHERE])
def test_workspace_folder_variable_chooses_the_folder(
    executor: ExecutorClient,
    capabilities: Capabilities,
    sibling_starts: Siblings | None,
    workspace: Workspace,
) -> None:
    """WORKSPACE_FOLDER chooses the folder; a missing or an empty folder is fine.

    The kit's workspace was loaded from the folder it named (CODE-1); here a second executor
    is started with a missing or an empty folder, or with the workspace in another folder than
    the first (a container: nothing at /code), whose files must load. An executor the kit did
    not start (a URL) cannot be started again, and is checked on its own folder only.
    """
    order = executor.evaluate(executor.code("load_order"))
    executor.expect(isinstance(order, list), "the kit's workspace loaded from WORKSPACE_FOLDER", order)
    sibling = started_sibling(executor, capabilities, sibling_starts, workspace)
    if sibling is None:
        return
    try:
        other = executor.of_sibling(sibling.base_url)
        try:
            if workspace is Workspace.ELSEWHERE:
                folder = sibling.capabilities.settings.workspace_folder
                loaded, loaded_at = watch_workspace_load(other)
                other.expect(  # loaded, but only after it said ready: the readiness came too early
                    loaded or loaded_at is None,
                    f"the kit's workspace loaded from {folder} before /ready said true",
                    "not loaded at the first look after the executor said ready, loaded later",
                    requirement="READY-4",
                )
                other.expect(loaded, f"the kit's workspace loaded from {folder}", loaded)
            else:
                loaded = other.evaluate(other.code("workspace_loaded"))
                other.expect(loaded is False, f"nothing loaded from a {workspace} folder", loaded)
        finally:
            other.close()
    finally:
        sibling.stop()
