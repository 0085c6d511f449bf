"""The worker process of the subprocess executor: one Python namespace, code run with ``exec``.

Protocol, one JSON object a line: the server writes ``{"code": ..., "max_output": N}`` to the
worker's stdin; the worker answers on the pipe that was its stdout with
``{"status", "outputs", "execution_count", "truncated"}``. The first line it writes,
``{"ready": true}``, comes once the workspace has loaded. User code's ``print`` goes to a
capture, never to the protocol pipe; what the workspace prints goes to stderr (the server's log).

Standard library only. Subclass ``Worker`` to change a behaviour (the kit's tests do, to build
deliberately broken executors).
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, TextIO

MARKER = "\n[output truncated: more than {limit} bytes]\n"


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_only(text: str) -> str:
    """``text`` with each lone surrogate (not Unicode, not encodable as UTF-8) as U+FFFD (EXEC-8)."""
    return LONE_SURROGATE.sub("\ufffd", text)


class Capture(io.TextIOBase):
    """A stream that records what is written, as (name, text) chunks, up to a byte limit."""

    def __init__(self, name: str, sink: OutputSink) -> None:
        self.name = name
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._sink.add(self.name, text)
        return len(text)


class OutputSink:
    """The output items of one execution, adjacent chunks of a stream merged, under a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.truncated = False
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, text: str) -> None:
        if not text or self.truncated:
            return
        text = unicode_only(text)
        data = text.encode("utf-8", "surrogatepass")
        if self.used + len(data) > self.limit:
            text = data[: self.limit - self.used].decode("utf-8", "ignore") + MARKER.format(limit=self.limit)
            self.truncated = True
        self.used += len(data)
        last = self.items[-1] if self.items else None
        if last and last["type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.items.append({"type": "stream", "name": name, "text": text})

    def _cut(self, text: str) -> str:
        """``text`` cut to one character more than the cap: the server still sees, cuts and marks
        the overflow (OUTPUT-3), and a line to the server stays within its bound."""
        return unicode_only(text[: self.limit + 1])

    def result(self, value: Any) -> None:
        text = self._cut(repr(value))
        self.items.append({"type": "execute_result", "data": {"text/plain": text}, "metadata": {}, "text": text})

    def error(self, exc: BaseException) -> None:
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        lines = [self._cut(line) for line in lines[-100:]]
        self.items.append(
            {
                "type": "error",
                "ename": self._cut(type(exc).__name__),
                "evalue": self._cut(str(exc)),
                "traceback": lines,
                "text": self._cut("".join(lines)),
            }
        )


class Worker:
    """Runs code for the server, one request at a time, in one namespace."""

    def __init__(self, workspace: str, protocol: TextIO) -> None:
        self.workspace = Path(workspace)
        self.protocol = protocol
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.execution_count = 0

    def load_workspace(self) -> None:
        """Run every .py file of the workspace, in name order, with the folder on sys.path."""
        try:
            if not self.workspace.is_dir():
                return
        except OSError as exc:  # unreadable by the worker's user: logged, and the session starts empty
            print(f"workspace: cannot read {self.workspace}: {exc}", file=sys.stderr)
            return
        sys.path.insert(0, str(self.workspace))
        for path in sorted(p for p in self.workspace.iterdir() if p.suffix == ".py" and p.is_file()):
            try:
                exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), self.namespace)
            except BaseException:  # a broken file is logged and skipped
                print(f"workspace: {path.name} failed:", file=sys.stderr)
                traceback.print_exc()

    def output_sink(self, max_output: int) -> OutputSink:
        """Where one execution's output goes."""
        return OutputSink(max_output)

    def run(self, code: str, max_output: int) -> dict[str, Any]:
        """Execute ``code``; a trailing expression's value becomes an execute_result."""
        self.execution_count += 1
        sink = self.output_sink(max_output)
        status = "ok"
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Capture("stdout", sink), Capture("stderr", sink)
        main_thread = threading.current_thread() is threading.main_thread()  # only it can take signals
        if main_thread:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # an interrupt now stops the code
        try:
            tree = ast.parse(code, mode="exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, "<cell>", "exec"), self.namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), self.namespace)
                if value is not None:
                    sink.result(value)
        except KeyboardInterrupt:
            status = "timeout"
        except BaseException as exc:  # SystemExit included: user code must not end the worker
            status = "error"
            sink.error(exc)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a late interrupt must not end the worker
            sys.stdout, sys.stderr = saved
        return {
            "status": status,
            "outputs": [dict(item) for item in sink.items],
            "execution_count": self.execution_count,
            "truncated": sink.truncated,
        }

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.write(json.dumps(message) + "\n")
        self.protocol.flush()

    def serve(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts count only while code runs
        self.load_workspace()
        sys.stdout.flush()
        sys.stderr.flush()
        detach_from_the_server_log()
        self.send({"ready": True})
        for line in sys.stdin:
            request = json.loads(line)
            self.send(self.run(request["code"], request["max_output"]))


def detach_from_the_server_log() -> None:
    """Once the workspace has loaded (whose messages belong in the log), point descriptors 1 and
    2 at /dev/null: what user code, C code or a process it starts writes there never reaches the
    server's log (ISO-9). Python-level prints are captured for the response anyway."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def protocol_pipe() -> TextIO:
    """The pipe to the server (this process's stdout), with fd 1 pointed at stderr afterwards."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # written straight to fd 1 (C code, subprocesses): the log while loading, then nowhere
    sys.stdout = sys.stderr
    return protocol


def main(worker_class: type[Worker] = Worker) -> None:
    worker_class(sys.argv[1] if len(sys.argv) > 1 else "/code", protocol_pipe()).serve()


if __name__ == "__main__":
    main()
