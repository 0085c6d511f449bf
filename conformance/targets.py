"""Targets: the ways to provide "an executor at a base URL with known capabilities and logs".

- ``ProcessTarget``: a local command (by default the bundled reference executor) on 127.0.0.1.
- ``ImageTarget``: a local container image, started with testcontainers under resource limits.
- ``UrlTarget``: an executor that is already running somewhere.

The suite sees only the ``Target`` interface. Each target knows how it was started, so it can
say what the executor is capable of being tested for (the kit's workspace mounted, destructive
scenarios allowed, a memory limit in force) and show its log when something goes wrong.
The kit never imports the reference executor; it starts it as a process.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from . import languages
from .catalogue import Need
from .settings import CONTRACT_DEFAULTS, KIT_SETTINGS, ExecutorSettings, SettingsSource
from .timeouts import KitTimeouts

__all__ = [
    "KILLED_GONE_WITHIN",
    "WORKSPACE_KINDS",
    "WORKSPACE_KINDS_WITH_CODE",
    "Capabilities",
    "NeverReadyError",
    "ProcessTarget",
    "ReadyObservation",
    "ResourceUsage",
    "StartupTimeout",
    "Target",
    "TargetError",
    "UrlTarget",
    "export_workspace",
    "kill_until_gone",
    "listening_ports",
    "ports_to_try",
    "prepare_workspace",
    "probe_executor",
    "reach_started",
    "say_on_stderr",
    "start_to_ready",
    "wait_until_ready",
]


class TargetError(RuntimeError):
    """The executor under test could not be started or reached; the message says why."""


class StartupTimeout(TargetError):
    """The executor neither exited nor became ready within its start-up wait: slow, or never
    going to be ready; the machine's load may be to blame as much as the executor."""


class NeverReadyError(StartupTimeout):
    """The executor answered HTTP, but /ready never said ready (a READY-1 violation)."""

    def __init__(self, message: str, last: ReadyObservation) -> None:
        super().__init__(message)
        self.last = last


@dataclass
class Capabilities:
    """What the kit may test on this executor, beyond the core, and the settings it runs with."""

    #: The kit's sample workspace is loaded (mounted-code requirements can run).
    workspace_mounted: bool = False
    #: Crash and memory scenarios may be run (they are opt-in for executors the kit did not start).
    destructive: bool = False
    #: A memory limit bounds the executor, so a memory-exhaustion scenario is safe to run.
    memory_limited: bool = False
    #: The kit reads the executor's own log (it started it: a command or an image).
    logs_readable: bool = False
    #: The values of the contract's settings in force, and whether the kit chose them.
    settings: ExecutorSettings = CONTRACT_DEFAULTS
    settings_source: SettingsSource = SettingsSource.TRUSTED
    #: The port the executor answered on, when the kit started it (CONFIG-1: ``settings.port``).
    answered_on: int | None = None
    #: The PID, as user code sees it, of the process whose tree is the whole executor (1 in a
    #: container, the executor's own PID for a local process): signal scenarios stay inside it.
    #: None when unknown (a URL).
    signal_scope: int | None = None

    @property
    def execution_timeout(self) -> float:
        return self.settings.execution_timeout

    def has(self, need: Need) -> bool:
        """Whether the kit may run a test that needs ``need`` on this target."""
        return {
            Need.WORKSPACE: self.workspace_mounted,
            Need.DESTRUCTIVE: self.destructive,
            Need.MEMORY_LIMIT: self.memory_limited,
            Need.SETTINGS: self.settings_source is SettingsSource.KIT,
            Need.LOGS: self.logs_readable,
        }[need]


@dataclass
class ReadyObservation:
    """One /ready answer seen while waiting for the executor to start."""

    status: int | None
    body: Any
    at: float


@dataclass(frozen=True)
class ResourceUsage:
    """Memory and CPU time of the whole executor: every process, or the whole container."""

    #: Resident memory in bytes: the sum over the process tree, or the container's usage less cache.
    memory_bytes: int
    #: CPU seconds used since the executor started.
    cpu_seconds: float
    #: How ``memory_bytes`` was measured.
    source: str


def _process_tree(root_pid: int) -> dict[int, list[str]]:
    """``root_pid`` and all its descendants: pid -> the fields of /proc/PID/stat after the command name."""
    stats: dict[int, list[str]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stats[int(stat_file.parent.name)] = stat_file.read_text().rsplit(")", 1)[1].split()
    tree: dict[int, list[str]] = {}
    frontier = [root_pid]
    while frontier:
        pid = frontier.pop()
        if pid in tree or pid not in stats:
            continue
        tree[pid] = stats[pid]
        frontier.extend(child for child, fields in stats.items() if fields[1] == str(pid))
    return tree


#: Seconds the processes the kit kills (a stopped executor's, what a scenario planted) have to go.
KILLED_GONE_WITHIN = 5.0


def _alive_as(pid: object, start: object) -> bool:
    """Whether PID ``pid`` is still the process that started at ``start`` (clock ticks after boot,
    /proc/PID/stat's field 22) and not a zombie (dead, waiting for its parent to reap it)."""
    with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/stat", encoding="utf-8") as file:
        fields = file.read().rsplit(")", 1)[1].split()
        return fields[19] == str(start) and fields[0] != "Z"
    return False


def kill_until_gone(processes: Mapping[int, str], within: float = KILLED_GONE_WITHIN) -> list[int]:
    """SIGKILL every process of ``processes`` (PID -> start time) still alive as itself
    (``_alive_as``), until they are gone or ``within`` s pass: the PIDs left."""
    deadline = time.monotonic() + within
    while (survivors := [pid for pid, start in processes.items() if _alive_as(pid, start)]) and (
        time.monotonic() < deadline
    ):
        for pid in survivors:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return survivors


def process_tree_usage(root_pid: int) -> ResourceUsage | None:
    """RSS and CPU time of ``root_pid`` and all its descendants, from Linux's /proc."""
    tree = _process_tree(root_pid)
    memory = cpu_ticks = 0
    for fields in tree.values():
        with contextlib.suppress(ValueError, IndexError):
            cpu_ticks += int(fields[11]) + int(fields[12])  # utime, stime
            memory += int(fields[21]) * resource.getpagesize()  # rss, in pages
    if not tree or memory == 0:
        return None
    return ResourceUsage(memory, cpu_ticks / os.sysconf("SC_CLK_TCK"), f"RSS of {len(tree)} processes")


def listening_ports(root_pid: int) -> set[int]:
    """The TCP ports that ``root_pid`` or a descendant listens on, from Linux's /proc."""
    inodes = set()
    for pid in _process_tree(root_pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def say_on_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ports_to_try(port: int, *, the_default_too: bool) -> list[int]:
    """PORT first, then the contract's default: where an executor that ignores PORT is found."""
    default = CONTRACT_DEFAULTS.port
    return [port] if not the_default_too or default in (None, port) else [port, default]


def _find_answering_port(
    ports: Callable[[], list[int]],
    url_of: Callable[[int], str],
    timeouts: KitTimeouts,
    alive: Any,
    logs: Any,
    say: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """The first of ``ports`` (``ports_to_try``) whose /health answers HTTP at ``url_of(port)``, and
    that URL, polled until startup. An executor found on the default port instead of PORT fails
    CONFIG-1, and the rest of the certification goes on there.
    """
    deadline = time.monotonic() + timeouts.startup
    progress = WaitProgress("the executor to answer HTTP", timeouts.startup, timeouts, say)
    with httpx.Client(timeout=timeouts.health) as http:
        while time.monotonic() < deadline:
            progress.tick()
            problem = alive()
            if problem:
                raise TargetError(f"the executor {problem} before it answered.\nLast log lines:\n{logs()}")
            for port in ports():
                url = url_of(port)
                with contextlib.suppress(httpx.HTTPError):
                    http.get(f"{url}/health")
                    return port, url
            time.sleep(timeouts.poll_interval)
    tried = ", ".join(str(port) for port in ports())
    raise StartupTimeout(
        f"nothing answered HTTP on port {tried} within {timeouts.startup:.0f} s "
        f"(the executor must listen on the port PORT names).\nLast log lines:\n{logs()}"
    )


class Target(Protocol):
    """An executor under test. Start it, use ``base_url``, read ``logs``, stop it."""

    kind: str
    base_url: str
    capabilities: Capabilities
    #: /ready answers seen while the target started (empty when the kit did not start it).
    startup_observations: list[ReadyObservation]
    #: When the executor's process or container began to run (``time.time()``); None for a URL.
    launched_at: float | None
    #: Headers every request carries (a manager's session token, for a URL); empty otherwise.
    headers: dict[str, str]
    #: Where progress lines go during long waits (None: stderr; a certification: its terminal).
    say: Callable[[str], None] | None

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def problems(self) -> list[str]:
        """What would make this run's verdict meaningless, known before it starts (said at the start)."""
        ...

    def logs(self, lines: int = 60) -> str: ...
    def describe(self) -> dict[str, Any]: ...
    def resource_usage(self) -> ResourceUsage | None:
        """What the running executor uses now; None when the kit cannot see it (a URL)."""
        ...


#: The workspaces a target can be started with: the kit's sample workspace where the settings say
#: ("kit"), none ("missing"), an empty folder ("empty"), the sample workspace in a folder other
#: than the main target's ("elsewhere", CODE-5), and every setting left unset with the sample
#: workspace at the contract's default folder ("defaults", CONFIG-2).
WORKSPACE_KINDS = ("kit", "missing", "empty", "elsewhere", "defaults")
WORKSPACE_KINDS_WITH_CODE = ("kit", "elsewhere", "defaults")


def export_workspace(folder: Path, source: Path | None = None) -> Path:
    """Copy a sample workspace (``source``; default: the default pack's) into ``folder`` (created),
    readable by any user."""
    folder.mkdir(parents=True, exist_ok=True)
    source = source or _default_workspace()
    for entry in sorted(source.iterdir()):
        if entry.is_file():
            target = folder / entry.name
            target.write_bytes(entry.read_bytes())
            target.chmod(0o644)
    folder.chmod(0o755)
    return folder


def _default_workspace() -> Path:
    return languages.load(languages.DEFAULT).workspace


def prepare_workspace(kind: str, folder: Path, source: Path | None = None) -> Path:
    """The folder to give as WORKSPACE_FOLDER: the sample workspace (``source``), an empty folder,
    or none.

    Every kind that mounts the sample workspace ("kit", "elsewhere", "defaults") exports it; they
    differ in where the target puts the folder and what WORKSPACE_FOLDER says.
    """
    if kind in WORKSPACE_KINDS_WITH_CODE:
        return export_workspace(folder, source)
    if kind == "empty":
        folder.mkdir(parents=True)
        folder.chmod(0o755)
        return folder
    if kind == "missing":
        return folder.with_name("no-such-workspace")
    raise ValueError(f"workspace must be one of {', '.join(WORKSPACE_KINDS)}, not {kind!r}")


def unreachable_by_other_users(paths: Iterable[Path]) -> list[str]:
    """Those of ``paths`` (as given, and as their links resolve) that a user other than the owner
    cannot reach: a folder above them is not searchable by others, or they are not readable."""
    unreachable = []
    for path in paths:
        for candidate in dict.fromkeys((path.absolute(), path.resolve())):
            try:
                readable = candidate.stat().st_mode & stat.S_IROTH
                folders_open = all(folder.stat().st_mode & stat.S_IXOTH for folder in candidate.parents)
            except OSError:
                continue
            if not (readable and folders_open):
                unreachable.append(str(candidate))
    return list(dict.fromkeys(unreachable))


def _local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_to_ready(target: Target) -> float | None:
    """Seconds from the executor's launch to the first /ready true the kit saw, if it saw both."""
    seen = target.startup_observations
    if target.launched_at is None or not seen:
        return None
    return seen[-1].at - target.launched_at


class WaitProgress:
    """During a long wait, one line every ``timeouts.progress_every`` seconds: how long so far, of how long."""

    def __init__(self, what: str, bound: float, timeouts: KitTimeouts, say: Callable[[str], None] | None) -> None:
        self.what, self.bound, self.every = what, bound, timeouts.progress_every
        self.say = say or say_on_stderr
        self.started = time.monotonic()
        self.next = self.started + self.every

    def tick(self, last: str = "") -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next += self.every
        seen = f" (last: {last})" if last else ""
        self.say(f"waiting for {self.what}: {now - self.started:.0f} s of {self.bound:.0f} s{seen}")


def probe_executor(base_url: str, timeouts: KitTimeouts, headers: dict[str, str] | None = None) -> None:
    """TargetError at once unless something at ``base_url`` answers as an executor does: a JSON
    object from GET /health or GET /ready, whatever it says (judging that is the suite's work).

    So that a wrong URL (a web page, another service, a typo'd path prefix) is reported as what it
    is, not certified as a broken executor after the whole start-up wait.
    """
    seen = []
    with httpx.Client(timeout=timeouts.request, headers=headers) as http:
        for path in ("/health", "/ready"):
            try:
                response = http.get(f"{base_url}{path}")
            except httpx.HTTPError as exc:
                raise TargetError(f"no executor answers at {base_url}: {type(exc).__name__}: {exc}") from None
            try:
                answered_json = isinstance(response.json(), dict)
            except ValueError:
                answered_json = False
            if answered_json:
                return
            kind = response.headers.get("content-type", "no Content-Type")
            seen.append(f"GET {path} answered HTTP {response.status_code} ({kind})")
    raise TargetError(f"no executor answers at {base_url}: {'; '.join(seen)}, where an executor answers JSON")


def reach_started(
    ports: Callable[[], list[int]],
    url_of: Callable[[int], str],
    timeouts: KitTimeouts,
    observations: list[ReadyObservation],
    alive: Any,
    logs: Any,
    say: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """An executor the kit started: the port it answers on and its base URL, once /ready says ready."""
    port, base_url = _find_answering_port(ports, url_of, timeouts, alive, logs, say)
    wait_until_ready(base_url, timeouts, observations, alive, logs, say=say)
    return port, base_url


def wait_until_ready(
    base_url: str,
    timeouts: KitTimeouts,
    observations: list[ReadyObservation],
    alive: Any,
    logs: Any,
    headers: dict[str, str] | None = None,
    say: Callable[[str], None] | None = None,
) -> None:
    """Poll /ready until it says ready, recording every answer; fail clearly if it never does."""
    deadline = time.monotonic() + timeouts.startup
    progress = WaitProgress("/ready", timeouts.startup, timeouts, say)
    last = "no answer yet"
    seen: ReadyObservation | None = None
    with httpx.Client(timeout=timeouts.request, headers=headers) as http:
        while time.monotonic() < deadline:
            progress.tick(last)
            problem = alive()
            if problem:
                raise TargetError(f"the executor {problem} before it became ready.\nLast log lines:\n{logs()}")
            try:
                response = http.get(f"{base_url}/ready")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            else:
                try:
                    body = response.json()
                except ValueError:
                    body = response.text[:200]
                seen = ReadyObservation(response.status_code, body, time.time())
                observations.append(seen)
                last = f"HTTP {response.status_code} {body!r}"
                if response.status_code == 200 and isinstance(body, dict) and body.get("ready") is True:
                    return
            time.sleep(timeouts.poll_interval)
    message = (
        f"the executor did not become ready within {timeouts.startup:.0f} s (last /ready: {last}).\n"
        f"Last log lines:\n{logs()}"
    )
    if seen is not None:
        raise NeverReadyError(message, seen)
    raise StartupTimeout(message)


#: Under an address-space cap (RLIMIT_AS), glibc's malloc would reserve 64 MB of address space
#: per thread's arena, up to 8 per core: a threaded server exhausts a 512 MB cap with a few dozen
#: idle connections while using 25 MB of memory. Two arenas make the cap stop memory bombs, as
#: meant, rather than threads.
CAPPED_ALLOCATOR = {"MALLOC_ARENA_MAX": "2"}


def _memory_limit(bytes_: int) -> None:
    """In the child: cap every process of the executor's tree at ``bytes_`` of address space."""
    resource.setrlimit(resource.RLIMIT_AS, (bytes_, bytes_))


@dataclass
class ProcessTarget:
    """A local executor process on 127.0.0.1 and a free port.

    With no ``command`` it is the bundled reference executor (``python -m reference_executor``).
    The command gets the kit's settings (``settings``, PORT a free port) and HOST in its
    environment; ``{port}`` in the command is replaced too.
    """

    timeouts: KitTimeouts
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: "kit" (the sample workspace), "empty" (an empty folder), "missing" (no such folder) or
    #: "elsewhere" (the sample workspace in another folder).
    workspace: str = "kit"
    #: The sample workspace's files (the language pack's; None: the default pack's).
    workspace_source: Path | None = None
    #: Address-space cap per process (RLIMIT_AS), so a memory bomb cannot eat the host.
    memory_limit_bytes: int | None = 2 * 1024**3
    #: The values the executor is started with (PORT and WORKSPACE_FOLDER are chosen at start).
    settings: ExecutorSettings = KIT_SETTINGS
    kind: str = "process"
    base_url: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)
    startup_observations: list[ReadyObservation] = field(default_factory=list)
    launched_at: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    say: Callable[[str], None] | None = None
    _process: subprocess.Popen[bytes] | None = None
    _dir: Path | None = None

    def start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="conformance-"))
        self._dir.chmod(0o755)
        port = _free_port()
        folder = "elsewhere" if self.workspace == "elsewhere" else "workspace"
        workspace = prepare_workspace(self.workspace, self._dir / folder, self.workspace_source)
        settings = replace(self.settings, port=port, workspace_folder=str(workspace))
        command = self.command or [sys.executable, "-m", "reference_executor"]
        command = [part.replace("{port}", str(port)) for part in command]
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            **settings.environment(),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **(CAPPED_ALLOCATOR if self.memory_limit_bytes else {}),
            **self.env,
        }
        self._log_path = self._dir / "executor.log"
        log_file = self._log_path.open("wb")
        limit = self.memory_limit_bytes
        self.launched_at = time.time()
        self._process = subprocess.Popen(
            command,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # so that stop() can end the whole process group
            preexec_fn=(lambda: _memory_limit(limit)) if limit else None,
        )
        log_file.close()
        self.capabilities.workspace_mounted = self.workspace in WORKSPACE_KINDS_WITH_CODE
        self.capabilities.destructive = True
        self.capabilities.memory_limited = limit is not None
        self.capabilities.logs_readable = True
        self.capabilities.settings = settings
        self.capabilities.signal_scope = self._process.pid
        self._launched = command
        try:
            self.capabilities.answered_on, self.base_url = reach_started(
                lambda: self._ports(port),
                _local_url,
                self.timeouts,
                self.startup_observations,
                self._exited,
                self.logs,
                self.say,
            )
        except BaseException:
            self.stop()
            raise

    def problems(self) -> list[str]:
        """Run as root, an executor may run user code as another user (the reference does), who must
        reach its interpreter and program: one in a private folder (under /root, say) fails its
        tests for this machine's reason, not its own."""
        if os.geteuid() != 0:
            return []
        command = self.command or [sys.executable, "-m", "reference_executor"]
        program = shutil.which(command[0])
        paths = [Path(program)] if program else []
        paths += [Path(part).absolute() for part in command[1:] if "/" in part and Path(part).exists()]
        private = unreachable_by_other_users(paths)
        if not private:
            return []
        return [
            f"the kit runs as root, and an executor that runs user code as another user (as the reference does) "
            f"needs other users to reach {', '.join(private)}: a folder above is private to its owner. "
            "Its tests would fail for this machine's reason. Let other users through (chmod o+x on each folder "
            "above, o+rX below), or work from a folder they can reach (not under /root)."
        ]

    def _ports(self, port: int) -> list[int]:
        """PORT, then the contract's default if this executor (and nothing else) listens there."""
        mine = listening_ports(self._process.pid) if self._process is not None else set()
        return ports_to_try(port, the_default_too=CONTRACT_DEFAULTS.port in mine)

    def _exited(self) -> str | None:
        code = self._process.poll() if self._process else None
        return None if code is None else f"exited with code {code}"

    def stop(self) -> None:
        """Stop the executor and every process it started, wherever it put them: its process group,
        then any descendant that outlived it (a kernel in a session of its own, stopped, say)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            tree = _process_tree(process.pid)
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            left = kill_until_gone({pid: fields[19] for pid, fields in tree.items()})
            if left:  # checked, and said: the kit leaves nothing behind unsaid
                print(f"executor-conformance: processes of the executor outlived it: {left}", file=sys.stderr)
        if self._dir is not None:
            self._kept_log = self.logs(200)
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def resource_usage(self) -> ResourceUsage | None:
        return process_tree_usage(self._process.pid) if self._process is not None else None

    def logs(self, lines: int = 60) -> str:
        if self._dir is None:
            return getattr(self, "_kept_log", "")
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "command": getattr(self, "_launched", self.command),
            "base_url": self.base_url,
            **asdict(self.capabilities),
        }


@dataclass
class UrlTarget:
    """An executor that is already running. The user says how it was started."""

    base_url: str
    timeouts: KitTimeouts
    capabilities: Capabilities = field(default_factory=Capabilities)
    kind: str = "url"
    startup_observations: list[ReadyObservation] = field(default_factory=list)
    launched_at: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    say: Callable[[str], None] | None = None

    def start(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        probe_executor(self.base_url, self.timeouts, self.headers)
        no_logs = "(no logs: a URL target)"
        wait_until_ready(self.base_url, self.timeouts, [], lambda: None, lambda: no_logs, self.headers, self.say)

    def stop(self) -> None:
        return None

    def problems(self) -> list[str]:
        return []

    def resource_usage(self) -> None:
        return None

    def logs(self, lines: int = 60) -> str:
        return "(the kit has no logs of an executor it did not start)"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_url": self.base_url, **asdict(self.capabilities)}
