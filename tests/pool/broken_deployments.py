"""Generated compose pools with one fault each, for the kit's gallery of broken pools.

Each fault is an edit of the document ``executor-pool compose`` writes, as a pool deployed another
way might have, and names the requirement the kit must fail it on
(``tests/image/test_pool_certification.py`` brings each up and certifies it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _one_network_for_all(document: dict[str, Any]) -> None:
    """Every executor on the first executor's network: the pool is one flat network again."""
    for name, service in document["services"].items():
        if name.startswith("executor-"):
            service["networks"] = ["executor-000"]


def _manager_listens_everywhere(document: dict[str, Any]) -> None:
    """The manager listens on every address, those on the executors' networks too."""
    manager = document["services"]["manager"]
    manager["command"] = manager["command"].replace("--host default-route", "--host 0.0.0.0")


def _networks_not_internal(document: dict[str, Any]) -> None:
    """The executors' networks lead out of the pool (Docker routes and masquerades them)."""
    for name, network in document["networks"].items():
        if name.startswith("executor-"):
            network["internal"] = False


def _executors_without_token(document: dict[str, Any]) -> None:
    """The executors serve whoever calls them: their own user code too."""
    for name, service in document["services"].items():
        if name.startswith("executor-"):
            service["command"] = ["sh", "-c", "exec python main.py"]


#: Deployments with one fault each, and the requirement the kit must fail each on.
BROKEN_DEPLOYMENTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "one_network_for_all": (_one_network_for_all, "POOL-9"),
    "manager_listens_everywhere": (_manager_listens_everywhere, "POOL-10"),
    "networks_not_internal": (_networks_not_internal, "POOL-11"),
    "executors_without_token": (_executors_without_token, "POOL-12"),
}
