"""executor-conformance: certify any code-executor service against contract v1.

The public API is small: the requirement catalogue, the violation type a check raises, the
targets an executor can be provided by, and the report model. The pytest plugin
(``conformance.plugin``) and the console command (``executor-conformance``) are built on them.
"""

from __future__ import annotations

from importlib.metadata import version

#: The distribution's version (pyproject.toml, its one home), as installed.
__version__ = version("executor-conformance")

__all__ = ["__version__"]
