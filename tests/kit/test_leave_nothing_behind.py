"""The kit leaves nothing behind, in any outcome (issue #30, item 9).

- A local executor's processes go with it, wherever it put them: a kernel it started in a session
  of its own and stopped outlived the executor's process group (a run from a private folder left
  one behind).
- What a scenario plants is removed by a finalizer, and the removal is checked (``Plantings``).
- Planting that would touch the host is not done unless asked: a local command whose user code
  runs as root would get ISO-3's start-up files in this host's own Python folders, which every
  Python here then runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from conformance.targets import Workspace
from conformance.targets.process import ProcessTarget
from conformance.timeouts import KitTimeouts
from tests.conftest import run_kit
from tests.kit.conftest import BROKEN, QUICK

#: Code that starts a process in a session of its own (out of the executor's process group),
#: stopped with SIGSTOP, and prints its PID: what a kernel left behind looks like.
STOPPED_IN_ITS_OWN_SESSION = (
    "import os, signal, subprocess\n"
    "child = subprocess.Popen(['sleep', '120'], start_new_session=True)\n"
    "os.kill(child.pid, signal.SIGSTOP)\n"
    "print(child.pid)"
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_stopped_process_in_a_session_of_its_own_goes_with_the_executor() -> None:
    # The executor whose restart leaves such processes: its process group is all that went before.
    target = ProcessTarget(KitTimeouts(), command=[sys.executable, str(BROKEN), "detached_processes_survive"],
                           workspace=Workspace.MISSING)  # fmt: skip
    target.start()
    pid = 0
    try:
        answer = httpx.post(f"{target.base_url}/execute", json={"code": STOPPED_IN_ITS_OWN_SESSION}, timeout=30)
        pid = int(answer.json()["outputs"][0]["text"])
        assert _alive(pid) and os.getpgid(pid) != os.getpgid(target._process.pid)  # type: ignore[union-attr]
    finally:
        target.stop()
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not _alive(pid), f"PID {pid} outlived the executor the kit stopped"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _start_up_files(folders: list[str]) -> set[str]:
    names = ("sitecustomize.py", "usercustomize.py")
    return {
        str(path) for folder in folders if os.path.isdir(folder) for path in Path(folder).iterdir()
        if path.name in names or (path.name.startswith("conformance_") and path.suffix == ".pth")
    }  # fmt: skip


def test_user_code_running_as_root_on_this_host_gets_no_start_up_files_in_its_python(tmp_path: Path) -> None:
    """``user_code_as_the_server`` runs user code as the server's user: root, here."""
    if os.geteuid() != 0:
        pytest.skip("not root: user code runs as a user that cannot write the host's Python folders")
    folders = [p for p in sys.path if p]
    before = _start_up_files(folders)
    broken = f"{sys.executable} {BROKEN} user_code_as_the_server"
    run = run_kit(["--command", broken, *QUICK, "--requirement", "ISO-3"], tmp_path / "results")
    iso_3 = next(r for r in run.results["requirements"] if r["id"] == "ISO-3")
    assert iso_3["outcome"] == "not_run" and "--allow-host-planting" in iso_3["reason"], json.dumps(iso_3)
    assert _start_up_files(folders) == before
