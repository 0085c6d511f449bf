"""What every kind of target is: the ``Target`` protocol, its ``Capabilities``, its errors, and what
it reports while it starts and runs. The kinds (``process``, ``image``, ``url``) implement it; the
suite, the plugin and the bench see nothing else."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..catalogue import Need
from ..settings import CONTRACT_DEFAULTS, ExecutorSettings, SettingsSource

__all__ = [
    "Beside",
    "Capabilities",
    "NeverReadyError",
    "ReadyObservation",
    "ResourceUsage",
    "StartupTimeout",
    "Target",
    "TargetError",
    "TargetState",
    "start_to_ready",
]


class TargetError(RuntimeError):
    """The executor under test could not be started or reached; the message says why."""


class StartupTimeout(TargetError):
    """The executor neither exited nor became ready within its start-up wait: slow, or never
    going to be ready; the machine's load may be to blame as much as the executor."""


@dataclass
class ReadyObservation:
    """One /ready answer seen while waiting for the executor to start."""

    status: int | None
    body: Any
    at: float


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

    def started_by_kit(
        self, *, workspace_mounted: bool, memory_limited: bool, settings: ExecutorSettings, signal_scope: int
    ) -> None:
        """What a target the kit started can be tested for: crash scenarios and its log always, the
        rest as it was started."""
        self.workspace_mounted, self.memory_limited = workspace_mounted, memory_limited
        self.destructive = self.logs_readable = True
        self.settings, self.signal_scope = settings, signal_scope

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


@dataclass(frozen=True)
class ResourceUsage:
    """Memory and CPU time of the whole executor: every process, or the whole container."""

    #: Resident memory in bytes: the sum over the process tree, or the container's usage less cache.
    memory_bytes: int
    #: CPU seconds used since the executor started.
    cpu_seconds: float
    #: How ``memory_bytes`` was measured.
    source: str


@dataclass(frozen=True)
class Beside:
    """A script run beside the executor, where it runs and under its limits (``Target.run_beside``)."""

    #: Where it ran, as the reports say it ("container").
    where: str
    #: What it printed, when it ended well; None when it could not run there.
    output: str | None
    #: Why it could not, when it could not.
    why: str = ""


class Target(Protocol):
    """An executor under test. Start it, use ``base_url``, read ``logs``, stop it."""

    #: The kind's name, as the reports give it (``spec.TargetKind``).
    kind: ClassVar[str]
    #: Whether the executor's processes share the kit's own host: its PID and IPC namespaces, its
    #: files (a local command). What a scenario plants there, the kit removes itself; its orphans'
    #: reapers may be the host's; its user code may run as the host's root.
    on_kit_host: ClassVar[bool]
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

    def run_beside(
        self, script: Path, args: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
    ) -> Beside | None:
        """Run the Python ``script`` where the executor runs, with its Python and under its limits
        (the bench's floor); None when this kind has no such place of its own (then the kit's host is
        where it runs: a local command's, or the nearest to a URL's)."""
        ...


@dataclass(kw_only=True)
class TargetState:
    """What every kind of target holds as it starts and runs (the ``Target`` protocol's fields)."""

    base_url: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)
    startup_observations: list[ReadyObservation] = field(default_factory=list)
    launched_at: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    say: Callable[[str], None] | None = None


def start_to_ready(target: Target) -> float | None:
    """Seconds from the executor's launch to the first /ready true the kit saw, if it saw both."""
    seen = target.startup_observations
    if target.launched_at is None or not seen:
        return None
    return seen[-1].at - target.launched_at
