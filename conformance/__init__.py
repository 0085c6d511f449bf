"""executor-conformance: certify any code-executor service against contract v1.

The public API is small: the requirement catalogue, the violation type a check raises, the
targets an executor can be provided by, and the report model. The pytest plugin
(``conformance.plugin``) and the console command (``executor-conformance``) are built on them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

#: The distribution's version (pyproject.toml, its one home), as installed.
try:
    __version__ = version("executor-conformance")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
