"""The reference executor: FastAPI and uvicorn in front of a real IPython kernel.

Layers, importing only downwards: ``app`` (HTTP) -> ``service`` (locking, readiness, restart
policy) -> ``kernel`` (one jupyter_client kernel) -> ``kernel_process`` (a kernel's folder and
launch, without jupyter_client) / ``outputs`` / ``workspace_loader``.
"""

from executor_serving import __version__

__all__ = ["__version__"]
