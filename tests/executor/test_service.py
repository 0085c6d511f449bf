"""The execution service's kernel policy, with real kernels and without HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reference_executor.config import Settings
from reference_executor.service import ExecutionService, SessionEndedError
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


async def test_a_call_waiting_when_restart_comes_is_refused_not_run_in_the_next_session(tmp_path: Path) -> None:
    """ISO-7: the waiting call ends with SessionEndedError, and the next session never saw it."""
    settings = Settings.from_env({"WORKSPACE_FOLDER": str(tmp_path / "none"), "KERNEL_USER": "none"})
    service = ExecutionService(settings)
    await service.start()
    try:
        assert await until(lambda: service.readiness.ready, 60)
        holder = asyncio.create_task(service.execute("import time\ntime.sleep(5)", 10))
        assert await until(lambda: service._running is not None, 10)  # the holder runs
        waiting = asyncio.create_task(service.execute("planted = 'stale'"))
        assert await until(lambda: service._run_lock.locked() and not waiting.done(), 10)
        await service.restart()
        with pytest.raises(SessionEndedError):
            await waiting
        assert (await holder).status == "crashed"
        result = await service.execute("'planted' in globals()")
        assert result.outputs[0]["text"] == "False"
    finally:
        await service.close()
