"""What the project's HTTP servers share: the reference executor and the pool's manager.

- ``settings``: the bounds on a request (its head's size, the time it may take to arrive, how
  much of an oversized body is drained), read from the environment the same way by both, and
  which optional modules are installed. The standard library alone: the reference executor reads
  it before its first kernel starts.
- ``protocol``: uvicorn's HTTP protocol with those bounds, and HEAD answered wherever GET is.
- ``body``: a request body read no further than a limit.

Neither server's code lives here, and this package imports neither (nor the kit).
"""

from importlib.metadata import PackageNotFoundError, version

#: The distribution's version (pyproject.toml, its one home), as installed: the servers'.
try:
    __version__ = version("executor-conformance")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
