"""Deliberately broken executors: the subprocess executor (examples/) with one fault each.

Each fault is a small subclass of the example's session, HTTP handler or worker, and names
the requirement IDs the kit must fail for it, beyond what the unbroken example already fails.
Run one with ``python tests/kit/broken.py FAULT`` (the same environment as any executor).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import queue
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.subprocess_executor import sandbox as sandbox_module  # noqa: E402
from examples.subprocess_executor import server, worker  # noqa: E402

# -- the base every broken executor shares -----------------------------------------------------


class BrokenSession(server.Session):
    """A session whose worker is this file's, so that worker faults apply too."""

    fault = ""

    def worker_command(self) -> list[str]:
        return [sys.executable, __file__, "--worker", self.fault, self.settings.workspace]


def _session(fault: str, base: type[BrokenSession] = BrokenSession, /, **methods: Any) -> type[BrokenSession]:
    return type(f"Session_{fault}", (base,), {"fault": fault, **methods})


def _handler(**methods: Any) -> type[server.Handler]:
    return type("BrokenHandler", (server.Handler,), methods)


# -- server-side faults --------------------------------------------------------------------------


def _health_wrong_body(self: server.Handler, raw: bytes) -> None:
    self.send_json(200, {"status": "healthy"})


def _health_waits_for_the_session(self: server.Handler, raw: bytes) -> None:
    with self.session.lock:  # blocks while code runs
        self.send_json(200, {"status": "ok"})


def _never_ready(self: server.Handler, raw: bytes) -> None:
    self.send_json(200, {"ready": False, "reason": "starting"})


def _ready_without_reason(self: server.Handler, raw: bytes) -> None:
    self.send_json(503 if not self.session.ready else 200, {"ready": self.session.ready, "reason": None})


def _handle_restart_async(self: server.Handler, raw: bytes) -> None:
    self.session.restart()
    self.send_json(200, {"status": "restarting"})


def _altered_execute(alter: Callable[[dict[str, Any]], int | None]) -> Callable[[server.Handler, bytes], None]:
    """A handle_execute that runs the code as usual, then lets ``alter`` spoil the answer.

    ``alter`` changes the body in place and returns the HTTP status to send, or None to send nothing.
    """

    def handle_execute(self: server.Handler, raw: bytes) -> None:
        code, timeout = server.parse_execute(raw)
        body = self.session.execute(code, timeout)
        status = alter(body)
        if status is None:
            self.close_connection = True
            return
        self.send_json(status, body)

    return handle_execute


def _without_duration(body: dict[str, Any]) -> int:
    del body["duration_ms"]
    return 200


def _results_without_text(body: dict[str, Any]) -> int:
    for item in body["outputs"]:
        if item["type"] == "execute_result":
            del item["text"]
    return 200


def _ascii_only(body: dict[str, Any]) -> int:
    for item in body["outputs"]:
        item["text"] = "".join(c for c in item["text"] if " " <= c <= "~" or c == "\n")
    return 200


def _errors_as_500(body: dict[str, Any]) -> int:
    return 500 if body["status"] == "error" else 200


def _large_answers_dropped(body: dict[str, Any]) -> int | None:
    return None if sum(len(item["text"]) for item in body["outputs"]) > 10_000_000 else 200


def _bad_input_as_500(self: server.Handler, raw: bytes) -> None:
    try:
        code, timeout = server.parse_execute(raw)
    except server.BadRequest as exc:
        self.send_json(500, {"detail": exc.detail})
        return
    self.send_json(200, self.session.execute(code, timeout))


def _deep_nesting_as_500(self: server.Handler, raw: bytes) -> None:
    with contextlib.suppress(ValueError):  # malformed: the usual 4xx below
        json.loads(raw)  # a RecursionError (nesting past Python's limit) reaches the catch-all: 500
    server.Handler.handle_execute(self, raw)


def _unknown_fields_refused(self: server.Handler, raw: bytes) -> None:
    code, timeout = server.parse_execute(raw)
    if set(json.loads(raw)) - {"code", "timeout"}:
        raise server.BadRequest(422, "unknown field")
    self.send_json(200, self.session.execute(code, timeout))


def _wrong_method_is_404(self: server.Handler, method: str) -> None:
    path = self.path.split("?", 1)[0]
    if path in self.routes and self.routes[path] != method:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_json(404, {"detail": "not found"})
        return
    server.Handler.dispatch(self, method)


class _WholeLines:
    """The connection's stream, whose ``readline`` ignores the size asked for: a line is read
    whole, however long, before anything checks it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.stream.readline()
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _head_read_whole(self: server.Handler) -> None:
    """Reads each line of a request head whole before checking it: a never-ending header line
    takes all the memory it is sent (the request's read deadline still applies)."""
    self._deadline = threading.Timer(server.REQUEST_READ_TIMEOUT, self._too_slow)
    self._deadline.start()
    stream = self.rfile
    self.rfile = _WholeLines(stream)
    try:
        server.BaseHTTPRequestHandler.handle_one_request(self)
    finally:
        self.rfile = stream
        self._deadline.cancel()


def _answers_unchecked(self: BrokenSession, worker_: server.Worker, until: float) -> Any:
    """Takes the worker's answer as it comes: no shape check, nothing counted against the cap
    but what the worker itself counts (stream text)."""
    return worker_.answer(until)


def _restart_answers_done(self: server.Handler, raw: bytes) -> None:
    self.session.restart()
    self.send_json(200, {"status": "done"})


def _restart_keeps_the_worker(self: BrokenSession) -> None:
    return None


def _no_lock_execute(self: BrokenSession, code: str, timeout: float | None) -> dict[str, Any]:
    self.check_timeout(timeout)
    return self._execute(code, self.settings.execution_timeout if timeout is None else timeout)


def _no_output_cap_execute(self: BrokenSession, code: str, timeout: float | None) -> dict[str, Any]:
    self.settings = server.Settings(**{**self.settings.__dict__, "max_output_bytes": 200_000_000})
    return server.Session.execute(self, code, timeout)


def _default_timeout_ignored(self: BrokenSession, code: str, timeout: float | None) -> dict[str, Any]:
    return server.Session.execute(self, code, 7.0 if timeout is None else timeout)


def _per_request_timeout_ignored(self: BrokenSession, code: str, timeout: float | None) -> dict[str, Any]:
    self.check_timeout(timeout)  # refused above the maximum, as it should; ignored below it (the fault)
    return server.Session.execute(self, code, None)


#: A stalled machine (issue #30, item 8): how late its one late answer of each kind comes.
STALL_S, HEALTH_STALL_S = 7.0, 1.5
#: A loaded machine: what every answer of it takes, longer than the kit's quiet path; and how
#: long it takes to start an executor whose workspace folder is missing (one of CODE-5's second
#: executors): longer than the short wait the kit gives those under ``LOADED_TIMEOUT_FACTOR``,
#: shorter than the whole start-up wait.
LOADED_DELAY_S, LOADED_SLOW_START_S, LOADED_TIMEOUT_FACTOR = 0.5, 40.0, 0.5
_stalled: set[str] = set()  # which kinds of answer the machine has stalled once already


def _stalls_once(kind: str, seconds: float) -> None:
    """The first time only, what a machine that stalls adds to an answer of ``kind``."""
    if kind not in _stalled:
        _stalled.add(kind)
        time.sleep(seconds)


def _execute_stalled_once(self: BrokenSession, code: str, timeout: float) -> dict[str, Any]:
    answer = server.Session._execute(self, code, timeout)
    if answer.get("status") == "timeout":
        _stalls_once("timeout", STALL_S)
    return answer


def _health_stalled_once_while_busy(self: server.Handler, raw: bytes) -> None:
    if self.session.lock.locked():
        _stalls_once("health", HEALTH_STALL_S)
    server.Handler.handle_health(self, raw)


def _execute_on_a_loaded_machine(self: BrokenSession, code: str, timeout: float) -> dict[str, Any]:
    answer = server.Session._execute(self, code, timeout)
    time.sleep(STALL_S if answer.get("status") == "timeout" else LOADED_DELAY_S)
    return answer


def _health_on_a_loaded_machine(self: server.Handler, raw: bytes) -> None:
    time.sleep(LOADED_DELAY_S)
    server.Handler.handle_health(self, raw)


def _errors_in_another_shape(self: BrokenSession, code: str, timeout: float | None) -> dict[str, Any]:
    """Error items as ``name``, ``value`` and ``traceback``: no ``ename``, ``evalue`` or ``text``."""
    answer = server.Session.execute(self, code, timeout)
    answer["outputs"] = [
        {"type": "error", "name": item["ename"], "value": item["evalue"], "traceback": item["traceback"]}
        if item.get("type") == "error"
        else item
        for item in answer["outputs"]
    ]
    return answer


def _never_times_out(self: BrokenSession, code: str, timeout: float) -> dict[str, Any]:
    """Waits for the code however long it runs: no timeout ever fires (a restart still ends it)."""
    return server.Session._execute(self, code, 24 * 3600.0)


class _ReadyBeforeLoadingSession(BrokenSession):
    """Says ready while a new worker is still loading the workspace (executes meanwhile get 429)."""

    fault = "ready_before_code_loaded"

    def start_worker(self, reason: str) -> None:
        if reason == "loading_code":  # at start-up: hold the lock, so that executes get 429 meanwhile
            with self.lock:
                self._load(reason)
        else:  # recovery, from an execute that holds the lock already
            self._load(reason)

    def _load(self, reason: str) -> None:
        self.ready, self.reason = True, None  # the fault: ready before the workspace has loaded
        worker_ = self.new_worker()
        answer = worker_.answer(time.monotonic() + server.START_TIMEOUT)
        if not (isinstance(answer, dict) and answer.get("ready")):
            worker_.kill()
            raise RuntimeError("the worker did not start")
        self.worker = worker_

    def restart(self) -> None:
        self.lock.acquire()  # released by the thread that loads the new worker

        def load() -> None:
            try:
                self._load("restarting")
            finally:
                self.lock.release()

        threading.Thread(target=load, daemon=True).start()


class _RestartsLateSession(BrokenSession):
    """Answers /restart at once, but replaces the worker only a second later."""

    fault = "restart_in_background"

    def restart(self) -> None:
        self.ready, self.reason = False, "restarting"

        def later() -> None:
            time.sleep(1.0)  # the fault: meanwhile, executes still reach the old session
            with self.lock:
                server.Session.start_worker(self, "restarting")

        threading.Thread(target=later, daemon=True).start()


class _ForgetsCodeOnRestartSession(BrokenSession):
    """A restart starts the worker without the workspace; crash recovery still loads it."""

    fault = "restart_forgets_code"
    _forget = False

    def worker_command(self) -> list[str]:
        command = super().worker_command()
        return [*command[:-1], "/nonexistent-after-restart"] if self._forget else command

    def restart(self) -> None:
        self._forget = True
        try:
            server.Session.restart(self)
        finally:
            self._forget = False


class _SharedStdoutWorker(worker.Worker):
    """Runs a request that arrives while another runs in a thread, both writing into one sink."""

    def serve(self) -> None:
        self.load_workspace()
        worker.detach_from_the_server_log()
        self._lock = threading.Lock()
        self._running = 0
        self._shared = worker.OutputSink(0)
        self._requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.send({"ready": True})
        threading.Thread(target=self._read, daemon=True).start()
        while (request := self._requests.get()) is not None:
            self._serve_one(request)  # alone: in the main thread, where interrupts work

    def _read(self) -> None:
        for line in sys.stdin:
            request = json.loads(line)
            with self._lock:
                busy = self._running > 0
                if not busy:
                    self._shared = worker.OutputSink(request["max_output"])
                self._running += 1
            if busy:  # the fault: run it alongside, sharing the output
                threading.Thread(target=self._serve_one, args=(request,), daemon=True).start()
            else:
                self._requests.put(request)
        self._requests.put(None)

    def output_sink(self, max_output: int) -> worker.OutputSink:
        return self._shared

    def _serve_one(self, request: dict[str, Any]) -> None:
        answer = self.run(request["code"], request["max_output"])
        with self._lock:
            self._running -= 1
            self.send(answer)


class _NoInterruptSession(BrokenSession):
    """At the deadline answers "timeout" but never interrupts: the code goes on running."""

    fault = "timeout_leaves_busy"

    def _execute(self, code: str, timeout: float) -> dict[str, Any]:
        worker_ = self.worker
        assert worker_ is not None
        started = time.monotonic()
        worker_.send({"code": code, "max_output": self.settings.max_output_bytes})
        answer = worker_.answer(started + timeout)
        if answer is None or answer is server._DIED:
            if answer is server._DIED:
                self.start_worker("recovering")
            status = "timeout" if answer is None else "crashed"
            answer = {"status": status, "outputs": [], "execution_count": None, "restarted": answer is not None}
        return {"truncated": False, "restarted": False, **answer, "duration_ms": (time.monotonic() - started) * 1000}


class _NoEscalationSession(BrokenSession):
    """Interrupts at the deadline, but code that ignores it is left running: no restart."""

    fault = "no_escalation"

    def escalate(self) -> bool:
        return False


class _SlowCrashDetectionSession(BrokenSession):
    """Notices a dead worker only 12 s into the call."""

    fault = "crash_noticed_late"

    def _execute(self, code: str, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        body = server.Session._execute(self, code, timeout)
        if body["status"] == "crashed":
            time.sleep(max(0.0, 12.0 - (time.monotonic() - started)))
            body["duration_ms"] = (time.monotonic() - started) * 1000
        return body


class _NoRecoverySession(BrokenSession):
    """Answers "crashed" but never starts a new worker."""

    fault = "no_crash_recovery"

    def recover(self) -> bool:
        return True


class _NoProcessSweepSession(BrokenSession):
    """Kills the worker between sessions, but not what the worker started."""

    fault = "detached_processes_survive"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        if self.sandbox is not None:
            self.sandbox.kill_all = lambda: None


class _NoFileSweepSession(BrokenSession):
    """Leaves the files of a session in the temporary folders."""

    fault = "temp_files_survive"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        if self.sandbox is not None:
            self.sandbox._remove_files = lambda folder, trees, depth=0: None


class _ReadyEarlyAtStartUpSession(BrokenSession):
    """At start-up only: says ready at once, and serves executes from a worker without the
    workspace for LATE_LOADING s, before the worker with the workspace replaces it. Restarts are sound."""

    fault = "ready_early_at_start_up"
    _without_workspace = False

    def worker_command(self) -> list[str]:
        command = super().worker_command()
        return [*command[:-1], "/nonexistent"] if self._without_workspace else command

    def start_worker(self, reason: str) -> None:
        if reason != "loading_code":
            super().start_worker(reason)
            return
        with self.lock:
            self._without_workspace = True
            server.Session.start_worker(self, reason)  # the fault: ready, with nothing loaded
            self._without_workspace = False
        time.sleep(LATE_LOADING)
        with self.lock:
            super().start_worker(reason)


#: Seconds the executor above serves without its workspace after saying ready at start-up.
LATE_LOADING = 3.0
#: Seconds the teardown below waits for processes to end on SIGTERM before it sends SIGKILL.
TERM_GRACE = 20.0


def _term_all(sandbox: Any) -> None:
    for pid in sandbox._living():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


class _TermOnlySweepSession(BrokenSession):
    """Ends a session's processes with SIGTERM only: one that ignores it, or is stopped, lives on."""

    fault = "teardown_sigterm_only"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        if self.sandbox is not None:
            sandbox = self.sandbox
            sandbox.kill_all = lambda: _term_all(sandbox)


class _WaitingSweepSession(BrokenSession):
    """Ends a session's processes with SIGTERM, waits up to TERM_GRACE s for them, then SIGKILL."""

    fault = "teardown_waits"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        if self.sandbox is not None:
            sandbox, kill_all = self.sandbox, self.sandbox.kill_all

            def term_then_kill() -> None:
                _term_all(sandbox)
                deadline = time.monotonic() + TERM_GRACE
                while sandbox._living() and time.monotonic() < deadline:
                    time.sleep(0.05)
                kill_all()

            sandbox.kill_all = term_then_kill


def _processes_of(uid: int, *, dead: bool) -> set[int]:
    """The processes of ``uid`` that are zombies (``dead``), or that are not."""
    found = set()
    for name in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{name}/status", encoding="utf-8") as file:
            fields = dict(line.split(":", 1) for line in file if ":" in line)
        with contextlib.suppress(KeyError, ValueError, UnboundLocalError):
            if uid in [int(x) for x in fields["Uid"].split()[:3]] and (fields["State"].split()[0] == "Z") == dead:
                found.add(int(name))
    return found


class _ReapsWhatItKillsSession(BrokenSession):
    """Reaps the processes its sweep kills, but not the orphans that had died before it: their
    zombies stay for good (the server is their reaper, and never waits for them)."""

    fault = "dead_orphans_not_reaped"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        if self.sandbox is not None:
            sandbox, kill_all = self.sandbox, self.sandbox.kill_all
            sandbox._living = lambda: sorted(_processes_of(sandbox.uid, dead=False))

            def kill_and_reap_the_killed() -> None:
                killed = _processes_of(sandbox.uid, dead=False)
                kill_all()
                deadline = time.monotonic() + sandbox_module.KILL_DEADLINE
                while killed and time.monotonic() < deadline:
                    for pid in list(killed):
                        with contextlib.suppress(ChildProcessError):  # not (yet) this server's child
                            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                                killed.discard(pid)
                        if not os.path.exists(f"/proc/{pid}"):
                            killed.discard(pid)
                    time.sleep(0.01)

            sandbox.kill_all = kill_and_reap_the_killed


class _NoProcessLimitSession(BrokenSession):
    """Sets no limit on the processes of the worker's user id: a fork bomb fills the container's
    pids limit, and the server can start no thread to answer."""

    fault = "no_process_limit"

    def worker_options(self) -> dict[str, Any]:
        options = super().worker_options()
        options.pop("preexec_fn", None)
        return options


def _client_gone(connection: socket.socket) -> bool:
    """Whether the client closed its side (readable, with nothing to read)."""
    readable, _, _ = select.select([connection], [], [], 0)
    try:
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _handle_execute_queued(self: server.Handler, raw: bytes) -> None:
    """Queues calls (no 429; one whose client left is dropped, CONC-3), and lets a restart go
    first: a call that waited for its turn runs in the new session."""
    code, timeout = server.parse_execute(raw)
    session = self.session
    session.check_timeout(timeout)
    while True:
        if session.lock.acquire(timeout=0.01):
            if not session.restarting:
                break
            session.lock.release()  # the fault: a restart is waited out, not refused
        if _client_gone(self.connection):
            self.close_connection = True
            return
    try:
        body = session._execute(code, session.settings.execution_timeout if timeout is None else timeout)
    finally:
        session.lock.release()
    self.send_json(200, body)


class _NoIpcSweepSession(BrokenSession):
    """Sweeps a session's processes and files, but not its IPC objects (SysV, POSIX queues)."""

    fault = "ipc_objects_survive"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        if self.sandbox is not None:
            self.sandbox._remove_ipc = lambda: None


class _WritesToTheServerLog(worker.Worker):
    """Leaves descriptors 1 and 2 on the server's log once the workspace has loaded."""

    def serve(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.load_workspace()
        sys.stdout.flush()
        self.send({"ready": True})  # the fault: no detach_from_the_server_log()
        for line in sys.stdin:
            request = json.loads(line)
            self.send(self.run(request["code"], request["max_output"]))


#: The persistent folder of the fault below (the kit is told of it with --persistent-folder).
SUBMISSION = "/tmp/conformance-broken-submission"


class _SubmissionOnPythonPathSession(BrokenSession):
    """Puts the persistent SUBMISSION_DIR on every worker's PYTHONPATH: what one user drops there
    (a sitecustomize.py) runs in every later worker."""

    fault = "submission_on_pythonpath"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        Path(SUBMISSION).mkdir(exist_ok=True)
        Path(SUBMISSION).chmod(0o1777)

    def worker_options(self) -> dict[str, Any]:
        options = super().worker_options()
        options["env"]["PYTHONPATH"] = SUBMISSION
        return options


class _PendingOutputWorker(worker.Worker):
    """What is printed between two calls (by a background thread) comes back with the next call."""

    pending: worker.OutputSink | None = None

    def run(self, code: str, max_output: int) -> dict[str, Any]:
        pending, self.pending = self.pending, None
        answer = super().run(code, max_output)
        if pending is not None:
            answer["outputs"][:0] = pending.items
        self.pending = worker.OutputSink(max_output)
        sys.stdout = worker.Capture("stdout", self.pending)
        return answer


class _CarriesOutputOverSession(BrokenSession):
    """Before a restart, asks the old worker for what it printed since its last call, and hands it
    to the next session's first response, "so that nothing is lost"."""

    fault = "background_output_carried_over"
    carried: list[dict[str, Any]] = []

    def restart(self) -> None:
        if self.worker is not None and self.lock.acquire(blocking=False):
            try:
                # A short run: what the background prints meanwhile, and before, is "pending".
                self.worker.send({"code": "import time\ntime.sleep(0.2)", "max_output": self.settings.max_output_bytes})
                answer = self.worker.answer(time.monotonic() + 1.0)
                self.carried = answer["outputs"] if isinstance(answer, dict) else []
            finally:
                self.lock.release()
        server.Session.restart(self)

    def _execute(self, code: str, timeout: float) -> dict[str, Any]:
        body = server.Session._execute(self, code, timeout)
        carried, self.carried = self.carried, []
        body["outputs"][:0] = carried
        return body


class _CodeAsTheServerSession(BrokenSession):
    """Claims no throwaway user id: user code runs as the server's user, root where it runs as root."""

    fault = "user_code_as_the_server"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        self.sandbox = None  # its claim is held until the process ends, unused


class _ServerAsTheWorkerUserSession(BrokenSession):
    """Runs the server itself as the worker's user id: user code can signal it."""

    fault = "server_shares_the_user"

    def __init__(self, settings: server.Settings) -> None:
        super().__init__(settings)
        sandbox = self.sandbox
        if sandbox is None:
            return
        os.setgroups([])
        os.setgid(sandbox.uid)
        os.setuid(sandbox.uid)

        def spawn_options() -> dict[str, Any]:
            sandbox.home = tempfile.mkdtemp(prefix="worker-home-")
            return {"cwd": sandbox.home}

        def kill_all() -> None:
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)  # every process of the id but the server

        sandbox.spawn_options = spawn_options
        sandbox.kill_all = kill_all


# -- worker-side faults --------------------------------------------------------------------------


class _StderrAsStdout(worker.Worker):
    def run(self, code: str, max_output: int) -> dict[str, Any]:
        answer = super().run(code, max_output)
        for item in answer["outputs"]:
            if item.get("name") == "stderr":
                item["name"] = "stdout"
        return answer


class _NoExpressionValue(worker.Worker):
    def run(self, code: str, max_output: int) -> dict[str, Any]:
        return super().run(code + "\npass", max_output)


class _EmptyCodeIsAnError(worker.Worker):
    def run(self, code: str, max_output: int) -> dict[str, Any]:
        if not [line for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]:
            return {"status": "error", "outputs": [], "execution_count": self.execution_count, "truncated": False}
        return super().run(code, max_output)


class _ForgetsState(worker.Worker):
    """Every execution starts from the namespace as the workspace left it."""

    def load_workspace(self) -> None:
        super().load_workspace()
        self._loaded: dict[str, Any] = dict(self.namespace)

    def run(self, code: str, max_output: int) -> dict[str, Any]:
        self.namespace = dict(self._loaded)
        return super().run(code, max_output)


class _LosesOutputOnTimeout(worker.Worker):
    def run(self, code: str, max_output: int) -> dict[str, Any]:
        answer = super().run(code, max_output)
        if answer["status"] == "timeout":
            answer["outputs"] = []
        return answer


class _SurrogatesPassedThrough(worker.Worker):
    """Output is sent as written, lone surrogates included: JSON escapes them, but no client can
    decode them as Unicode."""

    def __init__(self, workspace: str, protocol: Any) -> None:
        super().__init__(workspace, protocol)
        worker.unicode_only = lambda text: text  # the fault, in this worker process only


class _LeaksLoadingOutput(worker.Worker):
    """What loading printed comes back in the first execute response."""

    def load_workspace(self) -> None:
        saved, sys.stdout = sys.stdout, io.StringIO()
        try:
            super().load_workspace()
        finally:
            self._leak, sys.stdout = sys.stdout.getvalue(), saved

    def run(self, code: str, max_output: int) -> dict[str, Any]:
        answer = super().run(code, max_output)
        if self._leak:
            answer["outputs"].insert(0, {"type": "stream", "name": "stdout", "text": self._leak})
            self._leak = ""
        return answer


class _StopsAtTheFirstBrokenFile(worker.Worker):
    def load_workspace(self) -> None:
        if not self.workspace.is_dir():
            return
        sys.path.insert(0, str(self.workspace))
        for path in sorted(p for p in self.workspace.iterdir() if p.suffix == ".py"):
            try:
                exec(compile(path.read_text(), str(path), "exec"), self.namespace)
            except Exception:
                return


class _ReverseOrder(worker.Worker):
    def load_workspace(self) -> None:
        if not self.workspace.is_dir():
            return
        sys.path.insert(0, str(self.workspace))
        for path in sorted((p for p in self.workspace.iterdir() if p.suffix == ".py"), reverse=True):
            with contextlib.suppress(Exception):
                exec(compile(path.read_text(), str(path), "exec"), self.namespace)


class _FilesInTheirOwnNamespace(worker.Worker):
    def load_workspace(self) -> None:
        if not self.workspace.is_dir():
            return
        sys.path.insert(0, str(self.workspace))
        for path in sorted(p for p in self.workspace.iterdir() if p.suffix == ".py"):
            with contextlib.suppress(Exception):
                exec(compile(path.read_text(), str(path), "exec"), {"__name__": path.stem})


class _MissingFolderIsFatal(worker.Worker):
    def load_workspace(self) -> None:
        if not any(self.workspace.glob("*.py")):
            raise SystemExit(f"no workspace files in {self.workspace}")
        super().load_workspace()


# -- the catalogue of faults ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One deliberately broken executor and what the kit must say about it.

    ``expected``: the IDs the kit must fail by command. A fault with ``expected_by_image`` is
    also certified by image (``tests/image/test_broken_images.py``), under the production limits.
    """

    name: str
    breaks: str
    expected: frozenset[str]
    session: type[BrokenSession] = BrokenSession
    handler: type[server.Handler] = server.Handler
    worker: type[worker.Worker] = worker.Worker
    kit_args: tuple[str, ...] = field(default_factory=tuple)
    #: Settings (``server.Settings`` fields) the executor ignores: it uses the contract's default.
    ignores: tuple[str, ...] = ()
    #: Settings, by variable, that take another default than the contract's when unset.
    own_defaults: tuple[tuple[str, str, Any], ...] = ()
    expected_by_image: frozenset[str] | None = None
    #: Settings, by variable, read as whole numbers (``int()``), as the original executor reads them.
    as_integers: tuple[tuple[str, str], ...] = ()
    #: Certified whole by command, not on its IDs alone: it must be blamed on its own IDs and on no
    #: other requirement, and leave every other as the baseline has it (issue #30: a check that
    #: read one shape of error blamed RESTART-2 for EXEC-5's fault; a broken workspace file made
    #: CODE-4's fault READY-4's and CODE-1's too; SCHEMA-2 failing first left SCHEMA-1 not run).
    whole: bool = False

    def settings(self) -> server.Settings:
        """The settings this executor runs with: what the environment says, less what it ignores."""
        settings = server.Settings.from_env()
        defaults = server.Settings()
        changes = {name: getattr(defaults, name) for name in self.ignores}
        changes.update({name: value for variable, name, value in self.own_defaults if variable not in os.environ})
        changes.update(
            {name: int(os.environ[variable]) for variable, name in self.as_integers if variable in os.environ}
        )
        return dataclasses.replace(settings, **changes)

    @property
    def by_command(self) -> bool:
        """Whether the kit can catch it by command (CONFIG-2's defaults are checked in containers only)."""
        return bool(self.expected)


def _fault(
    name: str,
    breaks: str,
    expected: str,
    *,
    session: dict[str, Callable[..., Any]] | type[BrokenSession] | None = None,
    handler: dict[str, Callable[..., Any]] | None = None,
    worker_class: type[worker.Worker] = worker.Worker,
    kit_args: tuple[str, ...] = (),
    ignores: tuple[str, ...] = (),
    own_defaults: tuple[tuple[str, str, Any], ...] = (),
    by_image: str | None = None,
    as_integers: tuple[tuple[str, str], ...] = (),
    whole: bool = False,
) -> Fault:
    session_class = session if isinstance(session, type) else _session(name, **(session or {}))
    return Fault(
        name,
        breaks,
        frozenset(expected.split()),
        session_class,
        _handler(**(handler or {})),
        worker_class,
        kit_args,
        ignores,
        own_defaults,
        expected_by_image=None if by_image is None else frozenset(by_image.split()),
        as_integers=as_integers,
        whole=whole,
    )


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        _fault("health_wrong_body", '/health answers {"status": "healthy"}', "HEALTH-1 SCHEMA-1",
               handler={"handle_health": _health_wrong_body}),
        _fault("health_blocked_while_busy", "/health waits while code runs", "HEALTH-2",
               handler={"handle_health": _health_waits_for_the_session}),
        _fault("never_ready", "/ready never says ready", "READY-1",
               handler={"handle_ready": _never_ready}, kit_args=("--startup-timeout", "5")),
        _fault("not_ready_without_reason", "not-ready answers have no reason", "READY-2",
               handler={"handle_ready": _ready_without_reason}),
        _fault("ready_before_code_loaded", "/ready says ready while the workspace still loads", "READY-4",
               session=_ReadyBeforeLoadingSession, handler={"handle_restart": _handle_restart_async}),
        _fault("response_without_duration", "execute responses lack duration_ms", "EXEC-1 SCHEMA-1", whole=True,
               handler={"handle_execute": _altered_execute(_without_duration)}),
        _fault("stderr_as_stdout", "stderr comes back named stdout", "EXEC-2", worker_class=_StderrAsStdout),
        _fault("no_expression_value", "a trailing expression's value is not returned", "EXEC-3",
               worker_class=_NoExpressionValue),
        _fault("result_without_text", "execute_result items have no text", "EXEC-1 EXEC-5",
               handler={"handle_execute": _altered_execute(_results_without_text)}),
        _fault("ascii_only_output", "non-ASCII and control characters are dropped from output", "EXEC-6 EXEC-8",
               handler={"handle_execute": _altered_execute(_ascii_only)}),
        _fault("empty_code_is_an_error", "empty or comment-only code gives status error", "EXEC-7",
               worker_class=_EmptyCodeIsAnError),
        _fault("state_lost", "variables do not survive from one execute to the next", "STATE-1 ERROR-2 TIMEOUT-4",
               worker_class=_ForgetsState),
        _fault("errors_as_500", "an exception in user code gives HTTP 500",
               "ERROR-1 ERROR-2 EXEC-1 EXEC-8 SCHEMA-1",
               handler={"handle_execute": _altered_execute(_errors_as_500)}),
        _fault("default_timeout_ignored", "EXECUTION_TIMEOUT is ignored (7 s always)", "TIMEOUT-1 TIMEOUT-7",
               session={"execute": _default_timeout_ignored}),
        _fault("timeouts_never_fire", "code runs as long as it likes: no timeout ever fires",
               "TIMEOUT-1", session={"_execute": _never_times_out}),
        _fault("output_lost_on_timeout", "what was printed before a timeout is not returned", "TIMEOUT-2",
               worker_class=_LosesOutputOnTimeout),
        _fault("timeout_leaves_busy", "a timeout is answered but the code is never interrupted",
               "TIMEOUT-2 TIMEOUT-3 TIMEOUT-4 TIMEOUT-5 TIMEOUT-6 TIMEOUT-7", session=_NoInterruptSession),
        _fault("no_escalation", "code that ignores SIGINT is not ended by a restart", "TIMEOUT-5",
               session=_NoEscalationSession),
        _fault("errors_in_another_shape", "error items say name, value and traceback (no ename, evalue or text)",
               "EXEC-1 EXEC-5 ERROR-1 SCHEMA-1", session={"execute": _errors_in_another_shape}, whole=True),
        _fault("per_request_timeout_ignored", "the request's `timeout` is ignored", "TIMEOUT-6",
               session={"execute": _per_request_timeout_ignored}),
        _fault("restart_answers_done", '/restart answers {"status": "done"}', "RESTART-1 SCHEMA-1",
               handler={"handle_restart": _restart_answers_done}),
        _fault("restart_keeps_state", "/restart keeps the session as it was",
               "RESTART-2 RESTART-3 RESTART-4 ISO-1 ISO-2 ISO-3 ISO-4 ISO-8 ISO-10 ISO-11",
               session={"restart": _restart_keeps_the_worker}),
        _fault("restart_forgets_code", "/restart does not load the workspace again",
               "READY-4 RESTART-3 CODE-1 CODE-2 CODE-4 CODE-5", session=_ForgetsCodeOnRestartSession),
        _fault("ready_early_at_start_up", f"at start-up only, /ready says ready {LATE_LOADING:g} s before the "
               "workspace has loaded (executes meanwhile run without it)", "READY-4",
               session=_ReadyEarlyAtStartUpSession, by_image="READY-4"),
        _fault("restart_in_background", '/restart answers "restarting", then serves the old session for 1 s',
               "RESTART-4", session=_RestartsLateSession, handler={"handle_restart": _handle_restart_async}),
        _fault("code_in_separate_namespaces", "each workspace file runs in a namespace of its own",
               "CODE-1 CODE-2 CODE-4 CODE-5 READY-4 RESTART-3 TIMEOUT-5 CRASH-2",
               worker_class=_FilesInTheirOwnNamespace),
        _fault("reverse_load_order", "workspace files run in reverse name order", "CODE-2 CODE-4 READY-4",
               worker_class=_ReverseOrder),
        _fault("loading_output_leaks", "what loading printed appears in the next response", "CODE-3",
               worker_class=_LeaksLoadingOutput),
        _fault("broken_file_stops_loading", "loading stops at the first file that raises", "CODE-4",
               worker_class=_StopsAtTheFirstBrokenFile, whole=True),
        _fault("missing_folder_is_fatal", "an empty or missing WORKSPACE_FOLDER stops the executor", "CODE-5",
               worker_class=_MissingFolderIsFatal, kit_args=("--startup-timeout", "10")),
        _fault("interleaved_concurrency", "concurrent executes run at once and share one stdout", "CONC-1",
               session={"execute": _no_lock_execute}, worker_class=_SharedStdoutWorker),
        _fault("bad_input_as_500", "malformed requests get HTTP 500", "INPUT-1 SCHEMA-1",
               handler={"handle_execute": _bad_input_as_500}),
        _fault("deep_nesting_as_500", "a body nested 100,000 deep gets HTTP 500", "INPUT-1",
               handler={"handle_execute": _deep_nesting_as_500}),
        _fault("surrogates_passed_through", "output holding a lone surrogate is sent as written", "EXEC-8",
               worker_class=_SurrogatesPassedThrough),
        _fault("unknown_fields_refused", "unknown request fields get 422", "INPUT-4",
               handler={"handle_execute": _unknown_fields_refused}),
        _fault("wrong_method_is_404", "a wrong method gets 404 instead of 405", "INPUT-3 INPUT-8 SCHEMA-2",
               handler={"dispatch": _wrong_method_is_404}, whole=True),
        _fault("huge_output_drops_the_call", "no output cap, and answers over 10 MB are never sent",
               "OUTPUT-1 OUTPUT-2", session={"execute": _no_output_cap_execute,
                                             "answer_line_limit": lambda self: 1 << 40},
               handler={"handle_execute": _altered_execute(_large_answers_dropped)},
               # Room for its uncapped 50 MB answer: under 512 MB of address space the worker
               # sometimes died building it, and a small "crashed" answer passed OUTPUT-1.
               kit_args=("--process-memory-limit", "2g")),
        _fault("head_read_whole", "each line of a request head is read whole, however long, before it is "
               "checked", "INPUT-7", handler={"handle_one_request": _head_read_whole}),
        _fault("worker_answers_unchecked", "the worker's answers are taken as they come: an error's message, "
               "traceback and text, and a result's value, are not counted against the cap", "OUTPUT-3",
               session={"_answer": _answers_unchecked}),
        _fault("crash_noticed_late", "a dead worker is noticed only 12 s into the call", "CRASH-1",
               session=_SlowCrashDetectionSession),
        _fault("no_crash_recovery", "after a crash no new worker is started", "CRASH-2",
               session=_NoRecoverySession),
        _fault("detached_processes_survive", "a restart kills the worker but not the processes it started",
               "ISO-1 ISO-10 ISO-11", session=_NoProcessSweepSession),
        _fault("teardown_sigterm_only", "a restart ends the session's processes with SIGTERM alone", "ISO-1 ISO-10",
               session=_TermOnlySweepSession, by_image="ISO-1 ISO-10"),
        _fault("teardown_waits", f"a restart sends SIGTERM and waits up to {TERM_GRACE:g} s before SIGKILL",
               "ISO-5 ISO-10", session=_WaitingSweepSession, by_image="ISO-5 ISO-10"),
        _fault("dead_orphans_not_reaped", "a restart reaps what it kills, not the orphans that had died before",
               "ISO-11", session=_ReapsWhatItKillsSession, by_image="ISO-11"),
        _fault("no_process_limit", "no limit on the worker's processes: a fork bomb fills the container's",
               "", session=_NoProcessLimitSession, by_image="ISO-10"),
        _fault("queued_call_runs_after_restart", "a call queued when /restart comes runs in the next session",
               "ISO-7", handler={"handle_execute": _handle_execute_queued}),
        _fault("ipc_objects_survive", "a restart leaves the session's shared memory, queues and semaphores",
               "ISO-8", session=_NoIpcSweepSession),
        _fault("user_output_in_the_log", "what user code writes to descriptors 1 and 2 reaches the server's log",
               "ISO-9", worker_class=_WritesToTheServerLog),
        _fault("temp_files_survive", "a restart leaves the session's files in /tmp, /var/tmp and /dev/shm",
               "ISO-2", session=_NoFileSweepSession),
        _fault("submission_on_pythonpath", "the persistent SUBMISSION_DIR is on every worker's PYTHONPATH",
               "ISO-3", session=_SubmissionOnPythonPathSession,
               kit_args=("--executor-env", f"SUBMISSION_DIR={SUBMISSION}", "--persistent-folder", SUBMISSION)),
        _fault("background_output_carried_over", "what a background thread printed before a restart comes "
               "back after it", "ISO-4", session=_CarriesOutputOverSession, worker_class=_PendingOutputWorker),
        _fault("user_code_as_the_server", "user code runs as the server's user: root, where the server is",
               "SEC-1", session=_CodeAsTheServerSession),
        _fault("server_shares_the_user", "the server runs as the user id of user code (not root, it cannot "
               "mount the mqueue file system to find a session's POSIX queues on a host)", "ISO-5 ISO-8 ISO-11 SEC-2",
               session=_ServerAsTheWorkerUserSession, kit_args=("--timeout-factor", "0.25")),
        # Settings ignored: the contract's default is used whatever the variable says.
        _fault("port_ignored", "PORT is ignored: it always listens on 8432", "CONFIG-1",
               ignores=("port",), by_image="CONFIG-1"),
        _fault("workspace_folder_ignored", "WORKSPACE_FOLDER is ignored: it always loads /code",
               "CODE-1 CODE-2 CODE-4 CODE-5 READY-4 RESTART-3 TIMEOUT-5 CRASH-2",
               ignores=("workspace",), by_image="CODE-5"),
        _fault("execution_timeout_ignored", "EXECUTION_TIMEOUT is ignored: always the default 3 s", "TIMEOUT-7",
               ignores=("execution_timeout",), by_image="TIMEOUT-7"),
        _fault("max_output_bytes_ignored", "MAX_OUTPUT_BYTES is ignored: always the default 1 MiB",
               "OUTPUT-2 OUTPUT-3", ignores=("max_output_bytes",), by_image="OUTPUT-2 OUTPUT-3"),
        _fault("max_request_bytes_ignored", "MAX_REQUEST_BYTES is ignored: always the default 1 MiB", "INPUT-2",
               ignores=("max_request_bytes",), by_image="INPUT-2"),
        _fault("max_execution_timeout_ignored", "MAX_EXECUTION_TIMEOUT is ignored: always the default 3600 s",
               "INPUT-5", ignores=("max_execution_timeout",)),
        _fault("own_defaults", "unset, WORKSPACE_FOLDER loads nothing and EXECUTION_TIMEOUT is 10 s", "",
               own_defaults=(("WORKSPACE_FOLDER", "workspace", "/nowhere"), ("EXECUTION_TIMEOUT", "execution_timeout",
                                                                          10.0)),
               by_image="CONFIG-2"),
        _fault("session_env_ignored", "SESSION_ENV is ignored: no server variable reaches user code", "ISO-6",
               ignores=("session_env",)),
        _fault("executor_token_ignored", "EXECUTOR_TOKEN is ignored: every call is served, whoever sends it",
               "SEC-4", ignores=("executor_token",)),
    )
}  # fmt: skip


@dataclass(frozen=True)
class NodeFault:
    """A broken Node.js executor (tests/kit/broken_node.js), certified with --language javascript."""

    name: str
    breaks: str
    expected: frozenset[str]

    def command(self) -> str:
        return f"node {NODE_BROKEN} {self.name}"


NODE_BROKEN = Path(__file__).with_name("broken_node.js")
NODE_FAULTS = {
    fault.name: fault
    for fault in (
        NodeFault("stderr_as_stdout", "stderr comes back named stdout", frozenset({"EXEC-2"})),
        NodeFault("empty_code_is_an_error", "empty code gives status error", frozenset({"EXEC-7"})),
        NodeFault("no_escalation", "code an interrupt does not stop is left running", frozenset({"TIMEOUT-5"})),
        NodeFault("detached_processes_survive", "a restart kills the worker, not what it started",
                  frozenset({"ISO-1", "ISO-10"})),
    )
}  # fmt: skip


def detection_table() -> str:
    """The README's "what the kit catches" table: each broken executor and the IDs it must fail."""
    lines = ["| Broken executor | What is wrong | The kit fails (by command) | By image |", "| --- | --- | --- | --- |"]
    for fault in FAULTS.values():
        ids = ", ".join(sorted(fault.expected)) or "- (checked in containers only)"
        by_image = ", ".join(sorted(fault.expected_by_image)) if fault.expected_by_image is not None else "-"
        lines.append(f"| `{fault.name}` | {fault.breaks} | {ids} | {by_image} |")
    for node in NODE_FAULTS.values():
        lines.append(f"| `node:{node.name}` (JavaScript) | {node.breaks} | {', '.join(sorted(node.expected))} | - |")
    return "\n".join(lines) + "\n"


def _worker_class(name: str) -> type[worker.Worker]:
    return FAULTS[name].worker if name in FAULTS else worker.Worker


def _handle_execute_without_timeouts(self: server.Handler, raw: bytes) -> None:
    """Has no per-request timeout: `timeout` is an unknown field, ignored like any other (INPUT-4)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None
    if isinstance(body, dict) and "timeout" in body:
        del body["timeout"]
        raw = json.dumps(body).encode()
    code, _ = server.parse_execute(raw)
    self.send_json(200, self.session.execute(code, None))


#: Valid executors built another way than the example, as others build theirs: each is certified
#: whole by command (in the gallery) and must fail nothing the unbroken example does not (issue #30).
VARIANTS: dict[str, Fault] = {
    f.name: f
    for f in (
        _fault("integer_settings", "reads EXECUTION_TIMEOUT and MAX_EXECUTION_TIMEOUT with int(), as the "
               "original executor does", "", as_integers=(("EXECUTION_TIMEOUT", "execution_timeout"),
                                                         ("MAX_EXECUTION_TIMEOUT", "max_execution_timeout"))),
        _fault("no_timeout_override", "has no per-request timeout: `timeout` is ignored as an unknown field "
               "(certified with --skip-feature timeout_override)", "",
               handler={"handle_execute": _handle_execute_without_timeouts},
               # No longer timeout for the fork bomb's starter or ISO-2's tree: its default is all they
               # get. 3 s was once too short for both in the gallery's parallel runs (the variant then
               # left ISO-2 partial and ISO-10 not run: incomplete); alone they take 10 s in all.
               kit_args=("--skip-feature", "timeout_override", "--execution-timeout", "6")),
        _fault("stalls_once", f"a correct executor on a machine that stalls once: its first timed-out answer "
               f"comes {STALL_S:g} s late, and its first /health while code runs {HEALTH_STALL_S:g} s late", "",
               session={"_execute": _execute_stalled_once},
               handler={"handle_health": _health_stalled_once_while_busy}),
    )
}  # fmt: skip

#: An executor on a machine too loaded to judge a time bound: every answer takes
#: ``LOADED_DELAY_S`` (past the kit's quiet path), a timed-out one ``STALL_S`` (past TIMEOUT-1's
#: bound): TIMEOUT-1 is inconclusive, neither failed nor passed.
LOADED = _fault("loaded_machine", f"every answer {LOADED_DELAY_S:g} s late, a timed-out one {STALL_S:g} s",
                "", session={"_execute": _execute_on_a_loaded_machine},
                handler={"handle_health": _health_on_a_loaded_machine})  # fmt: skip


def main(argv: list[str]) -> None:
    if argv[:1] == ["--worker"]:
        _worker_class(argv[1])(argv[2], worker.protocol_pipe()).serve()
        return
    name = argv[0] if argv else os.environ["BROKEN_FAULT"]  # in an image: the variable
    fault = {**FAULTS, **VARIANTS, LOADED.name: LOADED}[name]
    if fault is LOADED and not Path(os.environ.get("WORKSPACE_FOLDER", "/code")).exists():
        time.sleep(LOADED_SLOW_START_S)  # the loaded machine starts a second executor slowly
    server.serve(fault.session(fault.settings()), fault.handler)


if __name__ == "__main__":
    main(sys.argv[1:])
