"""Targets: the ways to provide "an executor at a base URL with known capabilities and logs".

- ``base``: the ``Target`` protocol every kind implements, its ``Capabilities`` and errors;
- ``readiness``: waiting for a started executor to answer and be ready; ``procfs``: Linux's /proc;
  ``workspace``: the workspaces a target is started with;
- the kinds: ``process`` (a local command, by default the bundled reference executor), ``image``
  (a local container image, started with testcontainers under resource limits) and ``url`` (an
  executor already running);
- ``spec``: ``TargetSpec``, parsed once from the options, and the registry of kinds: the one
  module that knows which kinds there are.

The suite sees only the ``Target`` interface. Each target knows how it was started, so it can say
what the executor can be tested for and show its log when something goes wrong.
"""

from .base import (
    Beside,
    Capabilities,
    NeverReadyError,
    ReadyObservation,
    ResourceUsage,
    StartupTimeout,
    Target,
    TargetError,
    start_to_ready,
)
from .procfs import kill_until_gone
from .spec import TargetKind, TargetSpec
from .workspace import Workspace, export_workspace

__all__ = [
    "Beside",
    "Capabilities",
    "NeverReadyError",
    "ReadyObservation",
    "ResourceUsage",
    "StartupTimeout",
    "Target",
    "TargetError",
    "TargetKind",
    "TargetSpec",
    "Workspace",
    "export_workspace",
    "kill_until_gone",
    "start_to_ready",
]
