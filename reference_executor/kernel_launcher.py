"""What each kernel process runs: ``ipykernel_launcher``, plus the executor's set-up, minus the debugger.

The kernel layer copies this file into each kernel's own folder (the kernel, which may run as
another user, never imports this package) and runs it with the output cap as the first
arguments: ``python kernel_launcher.py LIMIT PROCESSES LOG -f CONNECTION_FILE [kernel options]``. Standard
library only until ipykernel is imported; the server never imports this module.

Differences from a default kernel, none of which user code can see:

- Its standard output and error are the file LOG in its own folder, not the server's log; run as a
  throwaway user, it may have PROCESSES processes and threads at most (RLIMIT_NPROC; 0: no limit).

- No debugger: the executor offers no debug channel, and importing debugpy at start is a
  quarter of the kernel's start-up CPU (issue #5). ``import debugpy`` still works in user code.
- Past LIMIT characters per execution, stdout and stderr writes are dropped at the source, so
  that a 50 MB flood is neither buffered nor sent whole (OUTPUT-1; one character more than the
  cap still comes through, so the server sees, cuts and marks the overflow: OUTPUT-2).
- IPython 9 wraps ``stream.write`` around every cell (``InteractiveShell._tee``) to copy all
  that a cell writes into ``history_manager.outputs``, kept for the whole session, and puts the
  old ``write`` back when the cell ends: a flood of distinct writes would stay in the kernel's
  memory, and a cap installed during a cell would be undone. So the tee is turned off (private
  API, hence the ``hasattr``), and the cap is (re)installed on the kernel's own two streams
  before every execution, never on a stream user code set up.
- The kernel does not re-broadcast each execution's code on IOPub (``execute_input``, "for the
  benefit of listening clients": the executor's server is the only client, and it takes the
  execution count from the reply). One message fewer per execution, about 0.5 ms (issue #5).
- No shell channel thread: ipykernel 7 passes each request and each reply through a thread of
  its own, there for subshells, which the executor does not use. Without it a ``1+1`` costs
  the kernel 12% less CPU (4.4 against 3.9 ms, alternating batches; issue #5).
- A stream is flushed only when something was written to it: ipykernel flushes both streams
  six times per execution, each a round trip to its IOPub thread even when there is nothing
  to send, about a millisecond of every ``1+1`` (issue #5).

- A message part over LIMIT bytes (a display's metadata, an exception's message, its traceback,
  in the error message and again in the execute reply) is cut before it is sent: its strings to
  LIMIT characters, so that the server still sees, cuts and marks the overflow (OUTPUT-3). User
  code can bypass this; the server drops a message over its own cap unread.
- A message that cannot be sent because a string in it holds a lone surrogate (``print('\\ud800')``,
  an exception's message) is sent with U+FFFD in its place, instead of being lost to a packing
  error on the kernel's IOPub thread (EXEC-8).

All of this happens before the kernel answers its first request, so the server needs no
set-up round trip.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any


def cap_output(shell: Any, streams: Iterable[Any], limit: int) -> None:
    """Cap what the streams take per execution at ``limit`` characters; skip empty flushes."""
    import contextlib

    if hasattr(shell, "_tee"):
        shell._tee = lambda channel: contextlib.nullcontext()
    used = [0]
    written: set[int] = set()

    def capped(stream: Any, write: Callable[[str], int]) -> Callable[[str], int]:
        def write_within_the_cap(text: str) -> int:
            room = limit - used[0]
            if room <= 0:
                return len(text)
            used[0] += len(text)
            count = write(text[:room])
            written.add(id(stream))
            return count

        write_within_the_cap.uncapped = write  # type: ignore[attr-defined]
        return write_within_the_cap

    def flushed_when_written(stream: Any, flush: Callable[[], None]) -> Callable[[], None]:
        def flush_if_written() -> None:
            if id(stream) in written:
                written.discard(id(stream))
                flush()

        return flush_if_written

    def before_each_execution() -> None:
        used[0] = 0
        for stream in streams:
            if not hasattr(stream.write, "uncapped"):
                stream.write = capped(stream, stream.write)

    for stream in streams:
        stream.flush = flushed_when_written(stream, stream.flush)
    before_each_execution()
    shell.events.register("pre_execute", before_each_execution)


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def with_surrogates_replaced(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {with_surrogates_replaced(k): with_surrogates_replaced(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [with_surrogates_replaced(v) for v in value]
    return value


def packing_surrogates_too(pack: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``pack``, which on a lone surrogate packs the message again with U+FFFD in its place."""

    def pack_anything(message: Any) -> Any:
        try:
            return pack(message)
        except UnicodeEncodeError:
            return pack(with_surrogates_replaced(message))

    return pack_anything


def within_the_cap(value: Any, characters: int, items: int) -> Any:
    """``value`` with every string (keys too) cut to ``characters`` and every list to its last ``items``."""
    if isinstance(value, str):
        return value[:characters]
    if isinstance(value, dict):
        return {within_the_cap(k, characters, items): within_the_cap(v, characters, items) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [within_the_cap(v, characters, items) for v in value[-items:]]
    return value


def packing_within(pack: Callable[[Any], Any], limit: int) -> Callable[[Any], Any]:
    """``pack``, which cuts a part of a message over ``limit`` bytes: its strings to ``limit``
    characters (one more than the cap: the server still sees, cuts and marks the overflow), then,
    if it is still over three times that, much shorter."""

    def pack_within(message: Any) -> Any:
        packed = pack(message)
        if len(packed) <= limit:
            return packed
        packed = pack(within_the_cap(message, limit, 10_000))
        if len(packed) <= 3 * limit:
            return packed
        return pack(within_the_cap(message, limit // 64 + 1, 100))

    return pack_within


def without_the_shell_channel_thread(app: Any, init_sockets: Callable[[], None]) -> Callable[[], None]:
    """``init_sockets``, after which the shell channel is served on the main thread.

    ipykernel 7 receives every shell message on a thread of its own, for subshells, and hands
    it to the main thread, and each reply back, through an in-process socket. The executor uses
    no subshells; ipykernel serves the shell channel on the main thread when there is no such
    thread (its own path for kernels without subshells).
    """

    def init_sockets_on_the_main_thread() -> None:
        init_sockets()
        if getattr(app, "shell_channel_thread", None) is not None:
            app.shell_channel_thread.io_loop.close()  # never started
            app.shell_channel_thread = None

    return init_sockets_on_the_main_thread


def detach_from_the_server_output(path: str) -> None:
    """Point descriptors 1 and 2, inherited from the server, at the kernel's own log file ``path``,
    so that nothing user code or its processes write there reaches the server's log (where it
    could forge lines or fill the disk); the server reads its tail if the kernel fails to start."""
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def launch() -> None:
    # As ipykernel_launcher: the script's folder leaves sys.path while ipykernel loads
    # (InteractiveShellApp.init_path puts the working directory there for user code). Under
    # PYTHONSAFEPATH, Python did not put it there.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    limit, processes, log = int(sys.argv.pop(1)), int(sys.argv.pop(1)), sys.argv.pop(1)
    detach_from_the_server_output(log)
    if processes:  # lowered for good: user code cannot raise it again
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    sys.modules["debugpy"] = None  # type: ignore[assignment]  # ipykernel finds no debugpy and starts no debugger
    try:
        import ipykernel.debugger  # noqa: F401  (it decides once, at import)
    finally:
        del sys.modules["debugpy"]
    from ipykernel.kernelapp import IPKernelApp

    app: Any = IPKernelApp.instance()  # patched below, as ipykernel allows
    app.init_sockets = without_the_shell_channel_thread(app, app.init_sockets)
    app.initialize()
    app.session.pack = packing_within(packing_surrogates_too(app.session.pack), limit)
    cap_output(app.shell, (sys.stdout, sys.stderr), limit)
    if hasattr(app.kernel, "_publish_execute_input"):  # private API, hence the hasattr
        app.kernel._publish_execute_input = lambda code, parent, execution_count: None
    app.start()


if __name__ == "__main__":
    launch()
