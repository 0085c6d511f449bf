"""The reference executor: FastAPI and uvicorn in front of a real IPython kernel.

Layers, importing only downwards: ``app`` (HTTP) -> ``service`` (locking, readiness, restart
policy) -> ``kernel`` (one jupyter_client kernel) -> ``outputs`` / ``workspace_loader``.
"""

__version__ = "1.0.0"
