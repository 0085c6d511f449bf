"""A second, independent executor: the standard library's HTTP server and a worker process.

No Jupyter, no framework, no code shared with ``reference_executor``. It makes the other
choices contract v1 allows:

- ``/ready`` answers 200 (not 503) while not ready, with the reason;
- ``/restart`` finishes before it answers (``{"status": "ok"}``);
- a second execute while one runs gets 429 instead of waiting (CONC-2);
- no ``/info``; no rich ``display_data`` (EXEC-4, a SHOULD, is not met);
- run as root, one throwaway user id for every worker, swept between workers (``sandbox.py``),
  where the reference alternates two ids to keep a standby.

Run it with ``python examples/subprocess_executor/server.py``; it reads PORT, HOST,
WORKSPACE_FOLDER, EXECUTION_TIMEOUT, MAX_OUTPUT_BYTES, MAX_REQUEST_BYTES, SESSION_ENV and
SUBMISSION_DIR.
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    from .sandbox import Sandbox, worker_environment
except ImportError:  # run as a script: the folder is on sys.path
    from sandbox import Sandbox, worker_environment  # type: ignore[no-redef]

WORKER = Path(__file__).with_name("worker.py")
#: After SIGINT, how long interrupted code has to stop before the worker is replaced.
INTERRUPT_GRACE = 1.0
#: How long a new worker has to load the workspace and say it is ready.
START_TIMEOUT = 120.0
#: Where output was cut past MAX_OUTPUT_BYTES (OUTPUT-2), as the worker marks it.
OUTPUT_MARKER = "\n[output truncated: more than {limit} bytes]\n"
#: The request head may be this large in all (INPUT-7); http.server bounds each line (64 KiB)
#: and the header count (100) itself.
MAX_HEAD_BYTES = 64 * 1024
#: The stack of each of the server's threads (see serve).
HANDLER_STACK_BYTES = 2 * 1024 * 1024
#: How many times a worker that dies before it is ready is started again before giving up.
START_ATTEMPTS = 3
#: The default MAX_EXECUTION_TIMEOUT (a day): a request's timeout above the maximum gets 422.
LONGEST_TIMEOUT = 86400.0
#: What an orchestrator probes: open whatever EXECUTOR_TOKEN says (SEC-4).
OPEN_PATHS = frozenset({"/health", "/ready"})
#: A client has this long to send a whole request, from its connection or its request's first
#: line; past it the connection is closed (INPUT-6).
REQUEST_READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8432
    workspace: str = "/code"
    execution_timeout: float = 3.0
    max_output_bytes: int = 1024 * 1024
    max_request_bytes: int = 1024 * 1024
    session_env: tuple[str, ...] = ()
    submission_dir: str | None = None
    max_execution_timeout: float = LONGEST_TIMEOUT
    #: SEC-4: the bearer token every call but /health and /ready must carry (None: none needed).
    executor_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            host=env.get("HOST", "0.0.0.0"),
            port=int(env.get("PORT", "8432")),
            workspace=env.get("WORKSPACE_FOLDER", "/code"),
            execution_timeout=float(env.get("EXECUTION_TIMEOUT", "3")),
            max_output_bytes=int(env.get("MAX_OUTPUT_BYTES", str(1024 * 1024))),
            max_request_bytes=int(env.get("MAX_REQUEST_BYTES", str(1024 * 1024))),
            session_env=tuple(n.strip() for n in env.get("SESSION_ENV", "").split(",") if n.strip()),
            submission_dir=env.get("SUBMISSION_DIR") or None,
            max_execution_timeout=float(env.get("MAX_EXECUTION_TIMEOUT", str(LONGEST_TIMEOUT))),
            executor_token=env.get("EXECUTOR_TOKEN") or None,
        )


class Busy(Exception):
    """Another execution is running; the caller gets 429."""


class NotReady(Exception):
    """The session is not ready yet (the first worker still starts); the caller gets 503."""


# -- the worker's answers: untrusted (OUTPUT-3) ---------------------------------------------------

#: Error items may take this many bytes past MAX_OUTPUT_BYTES, all of them together, so that the
#: error that stopped the code is kept (cut if need be) even when other output used the cap.
ERROR_ALLOWANCE = 16 * 1024
#: What each item's framing costs against the cap, about.
ITEM_OVERHEAD = 64
#: A line from the worker may be this many times MAX_OUTPUT_BYTES (UTF-8's widest characters,
#: JSON escapes), plus a MiB; a longer one is skipped unread.
ANSWER_LINE_FACTOR = 6
ANSWER_STATUSES = ("ok", "error", "timeout")


def _text(value: Any, cut: int) -> str:
    """``value`` if it is a string (else ""), cut to ``cut`` UTF-8 bytes."""
    text = value if isinstance(value, str) else ""
    data = text.encode("utf-8", "surrogatepass")
    return text if len(data) <= cut else data[: max(cut, 0)].decode("utf-8", "ignore")


def _clean_item(item: dict[str, Any], cut: int) -> dict[str, Any]:
    """The item with only the fields of its type, each of its kind, every string cut to ``cut`` bytes."""
    kind = item["type"]
    clean: dict[str, Any] = {"type": kind, "text": _text(item.get("text"), cut)}
    if kind == "stream":
        clean["name"] = "stderr" if item.get("name") == "stderr" else "stdout"
    elif kind == "error":
        traceback = item.get("traceback")
        clean["ename"] = _text(item.get("ename"), cut)
        clean["evalue"] = _text(item.get("evalue"), cut)
        clean["traceback"] = [_text(line, cut) for line in traceback[-100:]] if isinstance(traceback, list) else []
    else:
        data = item.get("data")
        bundle = list(data.items())[:100] if isinstance(data, dict) else []
        clean["data"] = {_text(mime, cut): _text(value, cut) for mime, value in bundle}
        clean["metadata"] = {}
    return clean


def _size(item: dict[str, Any]) -> int:
    return len(json.dumps(item).encode()) + ITEM_OVERHEAD


def _has_result(answer: dict[str, Any]) -> bool:
    """Whether the code's value came back: it ran to its end (the value is its last act)."""
    return any(item["type"] == "execute_result" for item in answer["outputs"])


def checked_answer(message: Any, limit: int) -> dict[str, Any] | None:
    """The worker's answer with its shape checked and every byte of its items counted against
    ``limit`` (OUTPUT-3); None when it is not an answer at all."""
    if not isinstance(message, dict) or message.get("status") not in ANSWER_STATUSES:
        return None
    items = message.get("outputs")
    if not isinstance(items, list):
        return None
    outputs: list[dict[str, Any]] = []
    used, allowance = 0, ERROR_ALLOWANCE
    truncated = False  # by this function: the worker's own marker may be cut away with the text
    for item in items:
        if not isinstance(item, dict) or item.get("type") not in ("stream", "execute_result", "error"):
            continue
        clean = _clean_item(item, limit + 1)
        size = _size(clean)
        room = limit - used + (allowance if clean["type"] == "error" else 0)
        framing = _size({**clean, "text": ""})
        if size > room and clean["type"] == "stream" and room > framing:  # cut where the cap is
            clean["text"] = _text(clean["text"], room - framing)
            size, truncated = _size(clean), True
        if size > room and clean["type"] == "error" and room > 1024:
            clean = _clean_item(item, room // 5)
            size, truncated = _size(clean), True
        if size > room:
            truncated = True
            continue
        from_cap = min(size, max(limit - used, 0))
        used += from_cap
        allowance -= size - from_cap
        outputs.append(clean)
    if truncated:
        outputs.append({"type": "stream", "name": "stdout", "text": OUTPUT_MARKER.format(limit=limit)})
    count = message.get("execution_count")
    return {
        "status": message["status"],
        "outputs": outputs,
        "execution_count": count if isinstance(count, int) and not isinstance(count, bool) else None,
        "truncated": truncated or message.get("truncated") is True,
    }


_DIED = object()


class Worker:
    """One worker process and a thread that reads its answers into a queue.

    User code runs in the worker and can write anything to the pipe, so a line is read up to
    ``line_limit`` bytes (a longer one is skipped unread, in chunks), and what it holds is
    checked by ``checked_answer`` before it is answered."""

    def __init__(self, command: list[str], line_limit: int = 1 << 20, **options: Any) -> None:
        self.line_limit = line_limit
        self.process = subprocess.Popen(command, **{"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, **options})
        self.answers: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        pipe = self.process.stdout
        while line := pipe.readline(self.line_limit):
            if not line.endswith(b"\n"):  # over the limit: skip to the line's end
                while (rest := pipe.readline(1 << 16)) and not rest.endswith(b"\n"):
                    pass
                print("skipped a line over the size limit from the worker", file=sys.stderr, flush=True)
                continue
            try:
                self.answers.put(json.loads(line))
            except (ValueError, RecursionError):
                print("skipped a line that is not JSON from the worker", file=sys.stderr, flush=True)
        self.answers.put(_DIED)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            pass  # it died; the reader reports that

    def answer(self, until: float) -> Any:
        """The next answer, ``_DIED``, or None when ``until`` (monotonic) passes first.

        A death is told to every call that asks from then on, not to the first alone: a call
        that took the lock after another had learnt of it (while a restart waited for the lock)
        waited for an answer until its own deadline, holding the lock, and the restart with it."""
        try:
            answer = self.answers.get(timeout=max(0.0, until - time.monotonic()))
        except queue.Empty:
            return None
        if answer is _DIED:
            self.answers.put(_DIED)
        return answer

    def kill(self) -> None:
        """End the worker. It is dead from then on, even while a process its code started holds
        its pipe open (the pipe's end would never come)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.answers.put(_DIED)


class Session:
    """The persistent session: one worker at a time, one execution at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.worker: Worker | None = None
        self.ready = False
        self.reason: str | None = "starting"
        self.restarting = False
        self.sandbox = Sandbox.claim(keep=[settings.workspace, *filter(None, [settings.submission_dir])])

    def worker_command(self) -> list[str]:
        return [sys.executable, str(WORKER), self.settings.workspace]

    def new_worker(self) -> Worker:
        """Replace the worker: the old one, and everything of its session, go first (ISO-1 to ISO-4)."""
        if self.worker is not None:
            self.worker.kill()
        if self.sandbox is not None:
            self.sandbox.clean()
        return Worker(self.worker_command(), self.answer_line_limit(), **self.worker_options())

    def answer_line_limit(self) -> int:
        """The longest line a worker may write to the server; a longer one is skipped unread."""
        return ANSWER_LINE_FACTOR * self.settings.max_output_bytes + (1 << 20)

    def worker_options(self) -> dict[str, Any]:
        """How a new worker is started (Popen's options): its user, HOME and environment."""
        options: dict[str, Any] = {"env": worker_environment(os.environ, self.settings.session_env)}
        if self.sandbox is not None:
            options.update(self.sandbox.spawn_options())
            options["env"]["HOME"] = self.sandbox.home
        return options

    def close(self) -> None:
        """The server stops: nothing of the last session outlives it."""
        if self.worker is not None:
            self.worker.kill()
        if self.sandbox is not None:
            self.sandbox.clean()

    def start_worker(self, reason: str) -> None:
        """Replace the worker and wait until it has loaded the workspace (START_ATTEMPTS tries)."""
        self.ready, self.reason = False, reason
        for attempt in range(1, START_ATTEMPTS + 1):
            worker = self.new_worker()
            answer = worker.answer(time.monotonic() + START_TIMEOUT)
            if isinstance(answer, dict) and answer.get("ready"):
                self.worker = worker
                self.ready, self.reason = True, None
                return
            worker.kill()
            problem = "no answer" if answer is None else f"exit code {worker.process.returncode}"
            print(f"worker start {attempt}/{START_ATTEMPTS} failed ({problem})", file=sys.stderr, flush=True)
        raise RuntimeError("the worker did not start")

    def restart(self) -> None:
        self.restarting = True
        if self.worker is not None:
            self.worker.kill()  # ends a running execution, which answers "crashed"
        with self.lock:
            self.start_worker("restarting")
            self.restarting = False

    def check_timeout(self, timeout: float | None) -> None:
        """BadRequest (422) for a timeout above MAX_EXECUTION_TIMEOUT (INPUT-5)."""
        if timeout is not None and timeout > self.settings.max_execution_timeout:
            limit = self.settings.max_execution_timeout
            raise BadRequest(422, f"`timeout` {timeout:g} s is above MAX_EXECUTION_TIMEOUT ({limit:g} s)")

    def execute(self, code: str, timeout: float | None) -> dict[str, Any]:
        """Run ``code``; BadRequest for a timeout above the maximum, Busy while another call runs."""
        self.check_timeout(timeout)
        if not self.lock.acquire(blocking=False):
            raise Busy
        try:
            return self._execute(code, self.settings.execution_timeout if timeout is None else timeout)
        finally:
            self.lock.release()

    def escalate(self) -> bool:
        """The code ignored the interrupt: replace the worker. True: the session was restarted."""
        self.start_worker("recovering")
        return True

    def recover(self) -> bool:
        """The worker died during a call: start a new one (unless a restart is doing so)."""
        if not self.restarting:
            self.start_worker("recovering")
        return True

    def _answer(self, worker: Worker, until: float) -> Any:
        """The worker's next answer, checked (a message that is no answer is skipped), ``_DIED``,
        or None when ``until`` passes first."""
        while True:
            answer = worker.answer(until)
            if answer is None or answer is _DIED:
                return answer
            checked = checked_answer(answer, self.settings.max_output_bytes)
            if checked is not None:
                return checked
            print("skipped a message that is no answer from the worker", file=sys.stderr, flush=True)

    def _execute(self, code: str, timeout: float) -> dict[str, Any]:
        worker = self.worker
        if worker is None:  # the first worker still starts: none to run the code yet
            raise NotReady
        started = time.monotonic()
        worker.send({"code": code, "max_output": self.settings.max_output_bytes})
        answer = self._answer(worker, started + timeout)
        restarted = False
        if answer is None:  # past the deadline: interrupt, then replace the worker
            with contextlib.suppress(ProcessLookupError):  # it may have died at the deadline
                os.kill(worker.process.pid, signal.SIGINT)
            answer = self._answer(worker, time.monotonic() + INTERRUPT_GRACE)
            if answer is None or answer is _DIED:
                restarted = self.escalate()
                answer = {"status": "timeout", "outputs": [], "execution_count": None}
            elif _has_result(answer):  # its value came back: it ran to its end before the interrupt hit
                answer["status"] = "ok"
            elif answer["status"] != "ok":  # "ok": it finished before the interrupt came, and says so
                answer["status"] = "timeout"
        elif answer is _DIED:
            restarted = self.recover()
            answer = {"status": "crashed", "outputs": [], "execution_count": None}
        return {
            "status": answer["status"],
            "outputs": answer["outputs"],
            "execution_count": answer.get("execution_count"),
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
            "truncated": bool(answer.get("truncated", False)),
            "restarted": restarted,
        }


#: Oversized bodies up to this many bytes are read and dropped before the 413 (see dispatch).
DRAIN_LIMIT = 64 * 1024 * 1024


class BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_execute(raw: bytes) -> tuple[str, float | None]:
    """(code, timeout) from an execute body, or BadRequest saying what is wrong."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:  # a number past Python's digit limit too
        raise BadRequest(400, f"body is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(400, "body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest(422, "body must be a JSON object")
    code = body.get("code")
    if not isinstance(code, str):
        raise BadRequest(422, "`code` must be a string")
    timeout = body.get("timeout")
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if timeout is not None and not (number and math.isfinite(timeout) and timeout > 0):
        raise BadRequest(422, "`timeout` must be a number of seconds greater than 0")
    try:
        code.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(422, "`code` holds a lone surrogate, which UTF-8 cannot carry") from None
    return code, None if timeout is None else float(timeout)


class _HeadReader:
    """The connection's stream while a request head is read: past ``limit`` bytes in all, a
    line is too long (http.server answers 431)."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream = stream
        self.left = limit

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.stream.readline(self.left + 1 if size < 0 else min(size, self.left + 1))
        self.left -= len(line)
        if self.left < 0:
            raise http.client.LineTooLong(f"the request head is over {MAX_HEAD_BYTES} bytes")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    session: Session  # set on the subclass made by serve()
    routes = {"/health": "GET", "/ready": "GET", "/execute": "POST", "/restart": "POST"}

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def handle_one_request(self) -> None:
        """One request, which must arrive whole within REQUEST_READ_TIMEOUT (INPUT-6), with a head
        of MAX_HEAD_BYTES at most (INPUT-7)."""
        self._deadline = threading.Timer(REQUEST_READ_TIMEOUT, self._too_slow)
        self._deadline.start()
        stream = self.rfile
        self.rfile = _HeadReader(stream, MAX_HEAD_BYTES)  # type: ignore[assignment]
        try:
            super().handle_one_request()
        except http.client.LineTooLong as exc:  # past MAX_HEAD_BYTES in the request line
            self.requestline, self.request_version, self.command = "", "HTTP/1.1", ""
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, str(exc))
        finally:
            self.rfile = stream
            self._deadline.cancel()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.rfile = getattr(self.rfile, "stream", self.rfile)  # the head is read: the body is not bounded so
        return parsed

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server refuses itself (a bad request line, a head too large, HTTP/2), as a JSON
        4xx: never a 5xx nor HTML (INPUT-1), and the connection closed."""
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # http.server would answer as HTTP/0.9: no status line
        status = code if 400 <= code < 500 else HTTPStatus.BAD_REQUEST
        self.send_json(status, {"detail": message or HTTPStatus(code).phrase})

    def _too_slow(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:  # say so, or a client reuses the connection and finds it closed
            self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if method == "HEAD" and self.routes.get(path) == "GET":
            method = "GET"  # HEAD wherever GET, without the body (RFC 9110, 9.3.2; INPUT-8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.session.settings.max_request_bytes:
            # Read the body before answering: closing with unread data sends a TCP reset, which
            # can destroy the 413 before the client reads it (RFC 9112, 9.6). Past a bound, close.
            self.close_connection = True
            if length <= DRAIN_LIMIT:
                while length > 0 and (chunk := self.rfile.read(min(length, 1 << 16))):
                    length -= len(chunk)
            self.send_json(413, {"detail": f"body larger than {self.session.settings.max_request_bytes} bytes"})
            return
        raw = self.rfile.read(length) if length else b""
        self._deadline.cancel()  # the request has arrived: the answer may take as long as the code
        token = self.session.settings.executor_token
        if (
            token
            and path not in OPEN_PATHS
            and not hmac.compare_digest(self.headers.get("Authorization", "").encode(), f"Bearer {token}".encode())
        ):
            refusal = {"detail": "this executor serves only calls with its token"}
            self.send_json(401, refusal, {"WWW-Authenticate": "Bearer"})
        elif path not in self.routes:
            self.send_json(404, {"detail": "not found"})
        elif self.routes[path] != method:
            self.send_json(405, {"detail": "method not allowed"}, {"Allow": self.routes[path]})
        else:
            try:
                getattr(self, "handle_" + path.strip("/"))(raw)
            except BadRequest as exc:
                self.send_json(exc.status, {"detail": exc.detail})
            except Busy:
                self.send_json(429, {"detail": "another execution is running; try again"})
            except NotReady:
                self.send_json(503, {"detail": "the session is still starting; try again"})
            except Exception as exc:  # a bug: say so in JSON rather than drop the connection
                traceback.print_exc()
                self.send_json(500, {"detail": f"internal error: {type(exc).__name__}"})

    def handle_health(self, raw: bytes) -> None:
        self.send_json(200, {"status": "ok"})

    def handle_ready(self, raw: bytes) -> None:
        self.send_json(200, {"ready": self.session.ready, "reason": self.session.reason})

    def handle_execute(self, raw: bytes) -> None:
        code, timeout = parse_execute(raw)
        self.send_json(200, self.session.execute(code, timeout))

    def handle_restart(self, raw: bytes) -> None:
        self.session.restart()
        self.send_json(200, {"status": "ok"})

    def __getattr__(self, name: str) -> Any:
        """``do_<METHOD>`` for every method, so that each one gets a JSON 404 or 405 (INPUT-3)."""
        if name.startswith("do_"):
            return lambda: self.dispatch(name[3:])
        raise AttributeError(name)


def serve(session: Session, handler: type[Handler] = Handler) -> None:
    """Start the worker in the background and serve HTTP until interrupted."""
    # A thread per connection, and one more per request for its read deadline (INPUT-6): with
    # Linux's default 8 MB stack each, an address-space limit (RLIMIT_AS) ran out of room for new
    # threads under a burst ("can't start new thread", the connection dropped). 2 MB is ample for
    # a handler (the JSON parser's recursion is bounded by Python's recursion limit).
    threading.stack_size(HANDLER_STACK_BYTES)
    bound = type("BoundHandler", (handler,), {"session": session})
    # A listen backlog of 128, not socketserver's 5: a burst of connections (slow clients, say)
    # must not make the kernel drop the next ones, /health's included (INPUT-6).
    server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})
    server = server_class((session.settings.host, session.settings.port), bound)
    server.daemon_threads = True
    threading.Thread(target=session.start_worker, args=("loading_code",), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"subprocess executor on {session.settings.host}:{session.settings.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        session.close()


if __name__ == "__main__":
    serve(Session(Settings.from_env()))
