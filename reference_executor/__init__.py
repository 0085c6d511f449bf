"""The reference executor: FastAPI and uvicorn in front of a real IPython kernel.

Layers, importing only downwards: ``app`` (HTTP) -> ``service`` (locking, readiness, restart
policy) -> ``kernel`` (one jupyter_client kernel) -> ``kernel_process`` (a kernel's folder and
launch, without jupyter_client) / ``outputs`` / ``workspace_loader``.
"""

__version__ = "1.0.0"

__all__ = ["__version__"]
