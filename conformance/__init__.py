"""executor-conformance: certify any code-executor service against contract v1.

The public API is small: the requirement catalogue, the violation type a check raises, the
targets an executor can be provided by, and the report model. The pytest plugin
(``conformance.plugin``) and the console command (``executor-conformance``) are built on them.
"""

from __future__ import annotations

__version__ = "1.0.0"

__all__ = ["__version__"]
