"""The reference executor over HTTP, as a real process on 127.0.0.1.

The kit (tests/kit) proves every contract requirement against it; these tests cover what is
particular to the reference: the original description's examples, its settings, and its
restart and recovery policy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.raw_http import send_raw
from tests.conftest import EXAMPLES, RunningExecutor, free_port, start_executor, stop_executor, wait_for


def stdout_of(body: dict[str, Any]) -> str:
    return "".join(item["text"] for item in body["outputs"] if item.get("name") == "stdout")


def test_mounted_utilities_of_the_original_description_work(tmp_path: Path) -> None:
    """examples/my_utilities as the workspace (the original example itself runs against the image:
    it nests double quotes inside an f-string, which needs Python 3.12)."""
    env = {"WORKSPACE_FOLDER": str(EXAMPLES / "my_utilities")}
    running = start_executor([sys.executable, "-m", "reference_executor"], env, tmp_path / "log")
    try:
        body = running.execute(
            "data = [1, -2, 3, 4, -1, 5]\nprocessed = process_list(data)\nstats = calculate_stats(processed)\n"
            "print(f'Processed: {processed}')\nprint(f'Stats: {stats}')\n"
            "print(f\"Total: {format_currency(stats['sum'])}\")\n"
        )
        assert (
            stdout_of(body) == "Processed: [2, 6, 8, 10]\nStats: {'sum': 26, 'avg': 6.5, 'count': 4}\nTotal: $26.00\n"
        )
        assert "Data processing utilities loaded" in running.logs()  # loading output goes to the log (CODE-3)
        assert "Data processing utilities loaded" not in stdout_of(body)
    finally:
        stop_executor(running)


def test_sample_workspace_functions_are_available(reference_executor: RunningExecutor) -> None:
    body = reference_executor.execute(
        "print(greet('World'), factorial(6), add_numbers(1, 2), calculate_circle_area(2) > 12)"
    )
    assert stdout_of(body) == "Hello, World! 720 3 True\n"


def test_line_breaks_inside_the_json_string_are_accepted(reference_executor: RunningExecutor) -> None:
    """The original README's curl examples type multi-line code between single quotes: raw
    line breaks inside a JSON string, which strict JSON parsers refuse."""
    raw = b'{"code": "\nx = 20\nprint(x + 1)\n"}'  # real line breaks: the bytes hold no backslash
    response = reference_executor.client.post("/execute", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and stdout_of(response.json()) == "21\n"


def test_restart_during_a_long_execution_ends_it_as_crashed(reference_executor: RunningExecutor) -> None:
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(reference_executor.execute, "import time\ntime.sleep(20)", timeout=30)
        time.sleep(0.5)  # let the execution start; the restart below must end it
        restart = reference_executor.client.post("/restart")
        body = running.result(timeout=15)
    assert restart.json() == {"status": "ok"}
    assert body["status"] == "crashed" and body["restarted"] is True
    assert reference_executor.execute("greet('again')")["outputs"][0]["text"] == "'Hello, again!'"


def test_the_first_kernel_is_prestarted_and_the_standby_waits_for_the_server(
    reference_executor: RunningExecutor,
) -> None:
    """The first kernel boots while the server imports jupyter_client and the HTTP stack; the
    standby kernel starts only once the server is up, so that under a CPU quota it does not
    delay readiness (issue #5)."""
    wait_for(
        lambda: "standby kernel ready" in reference_executor.logs(), 60, "the standby kernel", reference_executor.logs
    )
    logs = reference_executor.logs()
    starts = [match.start() for match in re.finditer(r"kernel kernel-\S+ started \(pid \d+\)", logs)]
    assert len(starts) >= 2, logs
    assert logs[starts[0] :].split("\n", 1)[0].endswith("(prestarted)"), logs
    assert starts[1] > logs.index("Application startup complete"), logs


def test_restart_swaps_in_the_loaded_standby_kernel(reference_executor: RunningExecutor) -> None:
    reference_executor.execute("marker = 1")
    wait_for(
        lambda: "standby kernel ready" in reference_executor.logs(), 60, "the standby kernel", reference_executor.logs
    )
    assert reference_executor.client.post("/restart").json() == {"status": "ok"}
    assert "swapped in the standby kernel" in reference_executor.logs()
    body = reference_executor.execute("'marker' in globals(), greet('x')")
    assert body["outputs"][0]["text"] == "(False, 'Hello, x!')"


@pytest.mark.parametrize("reference_executor", [{"STANDBY_KERNEL": "0"}], indirect=True)
def test_without_a_standby_restart_still_clears_state(reference_executor: RunningExecutor) -> None:
    reference_executor.execute("marker = 1")
    assert reference_executor.client.post("/restart").json() == {"status": "ok"}
    body = reference_executor.execute("'marker' in globals()")
    assert body["outputs"][0]["text"] == "False"


def test_info_lists_the_reference_features(reference_executor: RunningExecutor) -> None:
    info = reference_executor.client.get("/info").json()
    assert info["contract_version"] == "1.6" and info["implementation"] == "reference-executor"
    assert set(info["features"]) == {
        "mounted_code",
        "timeout_override",
        "rich_output",
        "restart_status",
        "info",
        "executor_token",
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EXECUTION_TIMEOUT", "soon"),
        ("PORT", "-1"),
        ("MAX_OUTPUT_BYTES", "0"),
        ("KERNEL_USER", "executor"),  # a named, shared user cannot isolate sessions (ISO-1)
        ("KERNEL_UIDS", "5"),
        ("MAX_EXECUTION_TIMEOUT", "1"),  # below EXECUTION_TIMEOUT (3 s)
    ],
)
def test_a_bad_setting_stops_start_up_with_a_clear_message(variable: str, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reference_executor"],
        env={"PATH": "/usr/bin:/bin", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"reference-executor: {variable}=")


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_kernel_that_never_starts_stops_the_server_once_it_gives_up(tmp_path: Path) -> None:
    """Kernels that keep failing to start are tried again, less and less often, until
    KERNEL_START_GIVE_UP; then the server stops with status 3, leaving no kernel behind, so that
    whatever runs it starts it afresh. Until then /health answers and /ready says why not."""
    port, runtime = free_port(), tmp_path / "runtime"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "KERNEL_USER": "none",
        "WORKSPACE_FOLDER": str(tmp_path / "none"),
        "EXECUTOR_RUNTIME_DIR": str(runtime),
        "KERNEL_START_TIMEOUT": "0.001",  # no kernel answers that fast: every start fails
        "KERNEL_START_GIVE_UP": "4",
    }
    log_path = tmp_path / "executor.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "reference_executor"], env=env, stdout=log, stderr=log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            def answers() -> httpx.Response | None:
                try:
                    return client.get("/ready")
                except httpx.HTTPError:
                    return None

            not_ready = wait_for(answers, 60, "/ready to answer", lambda: log_path.read_text())
            assert not_ready.status_code == 503 and not_ready.json()["ready"] is False
            assert client.get("/health").json() == {"status": "ok"}
        assert process.wait(timeout=60) == 3, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    logs = log_path.read_text()
    assert "no kernel started in 4 s" in logs and "the executor stops" in logs, logs
    assert "trying again in 1 s" in logs and "trying again in 2 s" in logs, logs  # less and less often
    assert processes_mentioning(str(runtime)) == [] and list(runtime.glob("kernel-*")) == []


def test_help_describes_the_settings_and_starts_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reference_executor", "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: reference-executor"), done.stderr[-2000:]
    assert "EXECUTION_TIMEOUT         default seconds per execute (default 3)" in done.stdout
    assert "KERNEL_START_GIVE_UP" in done.stdout and "Uvicorn" not in done.stdout + done.stderr
    wrong = subprocess.run(
        [sys.executable, "-m", "reference_executor", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert wrong.returncode == 2 and "no arguments are taken" in wrong.stderr


#: Run a module as if ``fastapi`` were not installed (an import finder that says it is not there).
WITHOUT_FASTAPI = (
    "import runpy, sys\n"
    "class Absent:\n"
    "    @staticmethod\n"
    "    def find_spec(name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'fastapi':\n"
    "            raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, Absent)\n"
    "sys.argv = [sys.argv[1], *sys.argv[2:]]\n"
    "runpy.run_module(sys.argv[0], run_name='__main__')\n"
)


@pytest.mark.parametrize(
    ("module", "args", "extra"),
    [("reference_executor", [], "reference"), ("executor_pool.manager", ["--config", "none.json"], "pool")],
)
def test_a_missing_extra_is_named_with_its_install_line(module: str, args: list[str], extra: str) -> None:
    """Not a traceback, nor a kernel started first: the one line that says what to install."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_FASTAPI, module, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "fastapi not installed" in done.stderr and f"pip install 'executor-conformance[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr


# -- request heads (INPUT-7) and HEAD (INPUT-8) ---------------------------------------------------


def raw_request(base_url: str, head: bytes) -> tuple[int | None, bytes]:
    """Send ``head`` (a whole request head) on a connection of its own: the status and body."""
    url = httpx.URL(base_url)
    answer = send_raw(url.host, url.port or 80, head, within=10)
    return answer.status, answer.body


HEADS = {
    "a request line over 8 KiB": b"GET /health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header field over 8 KiB": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
    "101 header fields": b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-F: 1\r\n" * 100 + b"\r\n",
    "a head over 64 KiB": b"GET /health HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-F%d: " % i + b"a" * 7000 + b"\r\n" for i in range(10))
    + b"\r\n",
}


@pytest.mark.parametrize("case", list(HEADS))
def test_a_head_past_its_bounds_gets_431_with_a_json_error(reference_executor: RunningExecutor, case: str) -> None:
    status, body = raw_request(reference_executor.base_url, HEADS[case])
    assert status == 431 and "over" in json.loads(body)["detail"], body
    assert reference_executor.execute("40 + 2")["outputs"][0]["text"] == "42"


def test_a_head_within_its_bounds_is_served_and_a_large_body_is_not_counted_as_head(
    reference_executor: RunningExecutor,
) -> None:
    fields = b"".join(b"X-F%d: " % i + b"a" * 7000 + b"\r\n" for i in range(8))  # 56 KiB, 8 fields
    assert raw_request(reference_executor.base_url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")[0] == 200
    code = "x = '" + "y" * 500_000 + "'\nlen(x)"
    assert reference_executor.execute(code)["outputs"][0]["text"] == "500000"


def test_head_answers_as_get_does_without_a_body(reference_executor: RunningExecutor) -> None:
    for path in ("/health", "/ready", "/info"):
        head, get = reference_executor.client.head(path), reference_executor.client.get(path)
        assert (head.status_code, head.content) == (get.status_code, b"")
    assert reference_executor.client.head("/execute").status_code == 405


def test_with_executor_token_only_its_bearer_is_served_and_user_code_never_sees_it(tmp_path: Path) -> None:
    """Issue #29 (SEC-4): executors served anyone who could reach them. With EXECUTOR_TOKEN set,
    /execute, /restart and /info need the bearer token (401 with a JSON error otherwise, and nothing
    runs), /health and /ready stay open to probes, and the token is nowhere user code can read: not
    in its environment, nor in any process's environment or command line it can open."""
    token = "t0ken-" + "x" * 30
    running = start_executor([sys.executable, "-m", "reference_executor"], {"EXECUTOR_TOKEN": token}, tmp_path / "log")
    try:
        bearer = {"Authorization": f"Bearer {token}"}
        anyone = running.client
        assert anyone.get("/health").status_code == 200 and anyone.get("/ready").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            for method, path in (("POST", "/execute"), ("POST", "/restart"), ("GET", "/info")):
                answer = anyone.request(method, path, json={"code": "ran = 1"}, headers=headers)
                assert answer.status_code == 401 and "token" in answer.json()["detail"], (method, path, answer.text)
        leak = (
            "import glob, os\n"
            "found = [k for k, v in os.environ.items() if TOKEN in v]\n"
            "for path in glob.glob('/proc/[0-9]*/environ') + glob.glob('/proc/[0-9]*/cmdline'):\n"
            "    try:\n"
            "        found += [path] if TOKEN.encode() in open(path, 'rb').read() else []\n"
            "    except OSError:\n"
            "        pass\n"
            "print(found, 'ran' in globals())\n"
        )
        answer = anyone.post("/execute", json={"code": f"TOKEN = {token!r}[:36]\n{leak}"}, headers=bearer)
        assert answer.status_code == 200 and stdout_of(answer.json()) == "[] False\n", answer.text
    finally:
        stop_executor(running)
