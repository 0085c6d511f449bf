"""The kernel layer against a real ipykernel, without HTTP."""

from __future__ import annotations

import os
import pwd
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reference_executor.config import Timeouts
from reference_executor.isolation import claim_kernel_users
from reference_executor.kernel import KernelSession, RunOutcome, RunResult
from reference_executor.kernel_process import prepare, prestart
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.anyio

TIMEOUTS = Timeouts(interrupt_grace=1.0)


@pytest.fixture(params=["launched", "prestarted"])
async def kernel_session(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KernelSession]:
    """A started kernel session: its kernel launched by jupyter_client, or prestarted and adopted.

    The server prestarts its first kernel before it imports jupyter_client (issue #5); every
    test of this module holds for that kernel too.
    """
    folder = prepare(tmp_path, user=None, max_output_bytes=4096)
    prestarted = prestart(folder) if request.param == "prestarted" else None
    session = KernelSession(prestarted or folder, timeouts=TIMEOUTS, max_output_bytes=4096)
    await session.start()
    if prestarted is not None:
        assert session.pid == prestarted.process.pid
    yield session
    await session.shutdown()
    if prestarted is not None:
        assert prestarted.process.poll() is not None and not prestarted.folder.path.exists()


async def test_a_prestarted_kernel_that_is_never_adopted_is_killed_at_shutdown(tmp_path: Path) -> None:
    prestarted = prestart(prepare(tmp_path, user=None, max_output_bytes=4096))
    session = KernelSession(prestarted, timeouts=TIMEOUTS, max_output_bytes=4096)
    await session.shutdown()
    assert prestarted.process.poll() is not None and not prestarted.folder.path.exists()


async def run(session: KernelSession, code: str, timeout: float = 10.0) -> RunResult:
    return await session.run(code, deadline=time.monotonic() + timeout)


async def test_streams_result_and_execution_count(kernel_session: KernelSession) -> None:
    result = await run(kernel_session, "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6*7")
    assert result.outcome is RunOutcome.OK
    assert [(i["type"], i.get("name"), i["text"]) for i in result.outputs] == [
        ("stream", "stdout", "out\n"),
        ("stream", "stderr", "err\n"),
        ("execute_result", None, "42"),
    ]
    assert result.execution_count == 1


async def test_the_kernel_starts_without_the_debugger_yet_user_code_can_import_it(
    kernel_session: KernelSession,
) -> None:
    """debugpy is a quarter of a default kernel's start-up; the executor skips it (issue #5)."""
    code = "import sys\nloaded = 'debugpy' in sys.modules\nimport debugpy\nprint(loaded, debugpy.__name__)"
    result = await run(kernel_session, code)
    assert result.outcome is RunOutcome.OK, result.outputs
    assert result.outputs == [{"type": "stream", "name": "stdout", "text": "False debugpy\n"}]


async def test_the_kernel_serves_its_shell_channel_on_the_main_thread(kernel_session: KernelSession) -> None:
    """No ipykernel shell channel thread (for subshells, unused here): 12% of a 1+1's CPU (issue #5)."""
    code = "import threading\nprint(sorted(t.name for t in threading.enumerate() if t.name == 'Shell channel'))"
    result = await run(kernel_session, code)
    assert result.outputs == [{"type": "stream", "name": "stdout", "text": "[]\n"}]
    threads = await run(kernel_session, "import threading\nprint(len(threading.enumerate()) > 1)")
    assert threads.outputs[0]["text"] == "True\n"  # ipykernel's other threads (IOPub, control) are there


async def test_exception_is_an_error_outcome_and_state_persists(kernel_session: KernelSession) -> None:
    assert (await run(kernel_session, "kept = 5")).outcome is RunOutcome.OK
    result = await run(kernel_session, "raise KeyError('missing')")
    assert result.outcome is RunOutcome.ERROR
    assert result.outputs[-1]["ename"] == "KeyError" and "\x1b[" not in result.outputs[-1]["text"]
    assert (await run(kernel_session, "kept")).outputs[0]["text"] == "5"


async def test_interruptible_code_times_out_and_keeps_the_kernel(kernel_session: KernelSession) -> None:
    await run(kernel_session, "survivor = 1")
    started = time.monotonic()
    result = await run(kernel_session, "print('before', flush=True)\nimport time\ntime.sleep(30)", timeout=0.5)
    assert result.outcome is RunOutcome.TIMEOUT
    assert time.monotonic() - started < 0.5 + TIMEOUTS.interrupt_grace
    assert result.outputs == [{"type": "stream", "name": "stdout", "text": "before\n"}]  # no KeyboardInterrupt item
    assert (await run(kernel_session, "survivor")).outputs[0]["text"] == "1"


async def test_code_ignoring_sigint_is_reported_unresponsive_after_the_grace(kernel_session: KernelSession) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)"
    started = time.monotonic()
    result = await run(kernel_session, code, timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.outcome is RunOutcome.TIMEOUT_UNRESPONSIVE
    assert 0.5 + TIMEOUTS.interrupt_grace <= elapsed < 0.5 + TIMEOUTS.interrupt_grace + 1.0


@pytest.mark.parametrize("code", ["import os\nos._exit(1)", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
async def test_a_dying_kernel_is_noticed_within_a_second(kernel_session: KernelSession, code: str) -> None:
    started = time.monotonic()
    result = await run(kernel_session, code, timeout=30)
    assert result.outcome is RunOutcome.DIED
    assert time.monotonic() - started < 1.0
    assert not await kernel_session.is_alive()


async def test_output_is_capped_and_the_flood_drained(kernel_session: KernelSession) -> None:
    result = await run(kernel_session, "for _ in range(100):\n    print('x' * 10_000)")
    assert result.truncated and result.outcome is RunOutcome.OK
    assert len(result.outputs[0]["text"]) < 4096 + 100
    assert (await run(kernel_session, "'next'")).outputs[0]["text"] == "'next'"


async def test_a_flood_of_distinct_writes_is_neither_sent_nor_kept_by_the_kernel(kernel_session: KernelSession) -> None:
    """Past the cap the kernel drops writes at the source, cell after cell (OUTPUT-1 under 256 MB).

    IPython 9 would otherwise keep every write of the session in memory, and ipykernel would
    buffer and send all of it: about 100 MB of peak memory for this flood.
    """
    await run(kernel_session, "import resource\n_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss")
    for _ in range(2):
        flood = await run(kernel_session, "for i in range(1_000_000):\n    print(i)", timeout=60)
        assert flood.truncated and flood.outcome is RunOutcome.OK
    grown = await run(kernel_session, "(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - _peak_before) // 1024")
    assert int(grown.outputs[0]["text"]) < 10, "MB of peak memory the floods added to the kernel"


async def test_shutdown_during_a_run_ends_it_as_died(kernel_session: KernelSession) -> None:
    import anyio

    async with anyio.create_task_group() as group:
        outcome: list[RunOutcome] = []

        async def long_run() -> None:
            outcome.append((await run(kernel_session, "import time\ntime.sleep(30)", timeout=60)).outcome)

        group.start_soon(long_run)
        await anyio.sleep(0.3)
        await kernel_session.shutdown()
    assert outcome == [RunOutcome.DIED]


async def test_workspace_loads_in_sorted_order_with_siblings_and_a_failing_file_skipped(
    kernel_session: KernelSession, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a_first.py").write_text("print('loading a')\nORDER = ['a']\n")
    (workspace / "b_uses_sibling.py").write_text("import helper_mod\nORDER.append('b')\nVALUE = helper_mod.V\n")
    (workspace / "c_fails.py").write_text("raise RuntimeError('broken on purpose')\n")
    (workspace / "d_after.py").write_text("ORDER.append('d')\n")
    (workspace / "helper_mod.py").write_text("V = 7\n")
    (workspace / "notes.txt").write_text("not python")
    await kernel_session.load_workspace(workspace)
    result = await run(kernel_session, "ORDER, VALUE")  # the first execution: no loading output in it
    assert result.outputs == [
        {"type": "execute_result", "data": {"text/plain": "(['a', 'b', 'd'], 7)"}, "metadata": {},
         "text": "(['a', 'b', 'd'], 7)", "execution_count": 1}
    ]  # fmt: skip


async def test_missing_workspace_folder_is_fine(kernel_session: KernelSession, tmp_path: Path) -> None:
    await kernel_session.load_workspace(tmp_path / "does-not-exist")
    assert (await run(kernel_session, "1")).outcome is RunOutcome.OK


async def test_the_original_sample_workspace_loads(kernel_session: KernelSession) -> None:
    await kernel_session.load_workspace(EXAMPLES / "test_code")
    result = await run(
        kernel_session, "greet('Ada'), factorial(5), add_numbers(2, 3), round(calculate_circle_area(1), 5)"
    )
    assert result.outputs[0]["text"] == "('Hello, Ada!', 120, 5, 3.14159)"


@pytest.mark.skipif(os.geteuid() != 0, reason="only a server running as root switches users")
def test_kernels_get_throwaway_users_only_where_they_can_run_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = claim_kernel_users("auto", range(61500, 61600))
    assert users is not None
    try:
        assert [u.uid for u in users.users] == [users.first.uid, users.first.uid + 1]
        for user in users.users:
            with pytest.raises(KeyError):
                pwd.getpwuid(user.uid)  # a throwaway id: no account of the system is used
    finally:
        users.release()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)  # a pyenv under /root, say
    (private / "python").symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(private / "python"))
    assert claim_kernel_users("auto", range(61500, 61600)) is None  # the server's user, with a warning


async def test_a_kernel_folder_is_closed_to_every_other_user(tmp_path: Path) -> None:
    folder = prepare(tmp_path, user=None, max_output_bytes=4096)
    assert folder.path.stat().st_mode & 0o077 == 0


async def test_a_lone_surrogate_in_output_comes_back_as_a_replacement_character(kernel_session: KernelSession) -> None:
    """EXEC-8: the message is packed again with U+FFFD, not lost to a packing error in the kernel."""
    result = await run(kernel_session, "print('a\\ud800b')\nraise ValueError('c\\udfffd')")
    assert result.outcome is RunOutcome.ERROR
    assert result.outputs[0]["text"] == "a\ufffdb\n"
    assert result.outputs[1]["evalue"] == "c\ufffdd"
