"""The execution service's kernel policy, with real kernels and without HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_executor.config import Settings
from reference_executor.service import ExecutionService
from tests.conftest import until

pytestmark = pytest.mark.anyio

#: Long enough for a standby kernel to be launched had it been asked for (it takes milliseconds).
NO_STANDBY_WINDOW = 1.0


def kernel_folders(runtime_dir: Path) -> int:
    return len(list(runtime_dir.glob("kernel-*")))


async def test_the_standby_kernel_waits_until_the_server_is_serving(tmp_path: Path) -> None:
    """Under a CPU quota a standby starting with the server would delay readiness (issue #5)."""
    runtime_dir = tmp_path / "runtime"
    settings = Settings.from_env(
        {"WORKSPACE_FOLDER": str(tmp_path / "none"), "KERNEL_USER": "none", "EXECUTOR_RUNTIME_DIR": str(runtime_dir)}
    )
    service = ExecutionService(settings)
    await service.start()
    try:
        assert await until(lambda: service.readiness.ready, 60)
        assert not await until(lambda: kernel_folders(runtime_dir) > 1, NO_STANDBY_WINDOW)
        service.serving()
        assert await until(lambda: kernel_folders(runtime_dir) == 2, 60)
    finally:
        await service.close()
