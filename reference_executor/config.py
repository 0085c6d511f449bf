"""Settings of the reference executor, read once from the environment.

Every bound of the executor lives here, documented, so that no module hides a number: the waits
in ``Timeouts``, the sizes below, the settings' defaults once, in ``Settings``.
This module must never import FastAPI or jupyter_client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor_serving.settings import MAX_REQUEST_BYTES, REQUEST_READ_TIMEOUT, HeadLimits, SettingError, positive

__all__ = [
    "REFERENCE_MODULES",
    "SWEEP_MAX_DEPTH",
    "SWEEP_READ_ONLY_DEPTH",
    "ConfigError",
    "Settings",
    "Timeouts",
]

#: How deep the sweep between sessions descends into world-writable folders, and how many levels
#: of others' read-only folders below one it still looks into (for a world-writable folder there).
SWEEP_MAX_DEPTH = 32
SWEEP_READ_ONLY_DEPTH = 3


#: What the reference executor imports, installed by its extra (``executor-conformance[reference]``).
REFERENCE_MODULES = ("fastapi", "uvicorn", "httptools", "jupyter_client", "ipykernel")


#: An environment variable has a value the executor cannot use.
ConfigError = SettingError


@dataclass(frozen=True)
class Timeouts:
    """Every wait of the executor, in seconds."""

    #: Default time one execute may run (EXECUTION_TIMEOUT; contract TIMEOUT-7).
    execution: float = 3.0
    #: After SIGINT, how long the interrupted code has to stop before the kernel is replaced.
    interrupt_grace: float = 1.0
    #: How long a new kernel has to answer its first kernel_info request.
    kernel_start: float = 60.0
    #: How long loading the mounted code may take at start-up.
    code_loading: float = 300.0
    #: How often the watchdog checks that the kernel process still lives while code runs.
    watchdog_interval: float = 0.2
    #: How long to wait for an execute_reply once the kernel went idle.
    reply_after_idle: float = 5.0
    #: Once the execute_reply came, how long IOPub may stay silent before the execution is taken
    #: as ended, its idle status lost with a message over the size cap (OUTPUT-3).
    idle_after_reply: float = 1.0
    #: The longest ``timeout`` a request may ask for (MAX_EXECUTION_TIMEOUT; contract INPUT-5).
    max_execution: float = 3600.0
    #: How long a client has to send a whole request, from its connection or its request's first
    #: byte (REQUEST_READ_TIMEOUT; contract INPUT-6); past it the connection is closed.
    request_read: float = REQUEST_READ_TIMEOUT
    #: After a kernel failed to start, how long before the next try; the wait doubles with each
    #: failure, up to ``start_retry_max``.
    start_retry: float = 1.0
    start_retry_max: float = 30.0
    #: How long kernels may keep failing to start before the server gives up and stops
    #: (KERNEL_START_GIVE_UP), so that whatever runs it starts it afresh.
    start_give_up: float = 600.0
    #: While a new kernel starts: how often kernel_info is asked again (a request sent before the
    #: kernel listened is lost), and how long its status on IOPub is waited for once it answered.
    kernel_info_retry: float = 1.0
    iopub_check: float = 0.05
    #: How long killing a retired user's processes may take before the sweep gives up and says so.
    sweep_kill: float = 5.0
    #: How long removing a retired user's files may take during a restart; past it the user id is
    #: held back (another serves) and swept again in the background, ``sweep_background`` at a time.
    #: ISO-2's deep tree and 5,000 files take about 2 s on a quiet 2-core machine; 5 s was passed
    #: once under a full test run with the gallery beside it, and the files outlived the restart.
    sweep_files: float = 10.0
    sweep_background: float = 120.0
    #: Between two looks at a retired user's processes while they are being stopped and killed,
    #: and between two background sweeps of a user id held back (doubling up to the maximum).
    sweep_poll: float = 0.002
    sweep_again: float = 5.0
    sweep_again_max: float = 300.0


def _kernel_user(env: Mapping[str, str]) -> str:
    raw = env.get("KERNEL_USER", "auto").strip().lower()
    if raw in ("auto", ""):
        return "auto"
    if raw in ("none", "-", "root"):
        return "none"
    raise ConfigError(
        f"KERNEL_USER={raw!r}: use auto (kernels alternate between two throwaway user ids of KERNEL_UIDS, "
        "so that one session cannot reach the next) or none (kernels run as the server's user)"
    )


def _uid_range(env: Mapping[str, str]) -> range:
    raw = env.get("KERNEL_UIDS", "61000-61999")
    low, _, high = raw.partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        raise ConfigError(f"KERNEL_UIDS={raw!r} is not a range of user ids such as 61000-61999") from None
    if not 0 < first < last:
        raise ConfigError(f"KERNEL_UIDS={raw!r} must hold at least two user ids above 0")
    return range(first, last + 1)


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _timeouts(**values: float) -> Timeouts:
    timeouts = Timeouts(**values)
    if timeouts.max_execution < timeouts.execution:
        raise ConfigError(
            f"MAX_EXECUTION_TIMEOUT={timeouts.max_execution:g} is below EXECUTION_TIMEOUT={timeouts.execution:g}"
        )
    return timeouts


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1 or 0)")


@dataclass(frozen=True)
class Settings:
    """What the executor is configured with (see docs/contract.md, Configuration)."""

    host: str = "0.0.0.0"
    port: int = 8432
    workspace: Path = Path("/code")
    max_output_bytes: int = 1024 * 1024
    max_request_bytes: int = MAX_REQUEST_BYTES
    #: "auto": a server running as root runs kernels as two throwaway user ids of KERNEL_UIDS,
    #: alternately (SEC-1, SEC-2, ISO-1); "none": as the server's own user (no isolation).
    kernel_user: str = "auto"
    #: The user ids kernels may run as; a server claims a free pair of them.
    kernel_uids: range = range(61000, 62000)
    #: How many processes and threads a session's user id may have at once (SESSION_MAX_PROCESSES,
    #: RLIMIT_NPROC): a fork bomb stops there instead of filling the host's or container's process table.
    session_max_processes: int = 512
    #: Names of the server's environment variables that user code sees (SESSION_ENV, ISO-6).
    session_env: tuple[str, ...] = ()
    #: Folders that keep user files across sessions on purpose (SUBMISSION_DIR, ISO-2).
    persistent_folders: tuple[Path, ...] = ()
    #: Keep a second kernel started, with the workspace loaded, to swap in on restart.
    standby_kernel: bool = True
    #: Folder for connection files and IPC sockets; a private temporary one when None.
    runtime_dir: Path | None = None
    #: The bearer token every API call must carry (EXECUTOR_TOKEN, SEC-4); None: none needed.
    #: The server's alone: like every variable SESSION_ENV does not name, user code never sees it.
    executor_token: str | None = field(default=None, repr=False)
    timeouts: Timeouts = field(default_factory=Timeouts)
    head_limits: HeadLimits = field(default_factory=HeadLimits)

    @classmethod
    def variables(cls) -> frozenset[str]:
        """Every environment variable the executor reads as a setting: what ``from_env`` asks an
        empty environment for, so that the list is never kept by hand (a deployment that passes
        the rest on to user code uses it: ``executor_pool.compose``, held equal by a test)."""
        asked: set[str] = set()

        class Asked(dict[str, str]):
            def get(self, key: str, default: Any = None) -> Any:
                asked.add(key)
                return super().get(key, default)

        cls.from_env(Asked())
        return frozenset(asked)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from environment variables, failing clearly on bad values."""
        env = os.environ if env is None else env
        runtime_dir = env.get("EXECUTOR_RUNTIME_DIR")
        default, waits = cls(), Timeouts()  # the defaults, written once above
        return cls(
            host=env.get("HOST", default.host),
            port=positive(env, "PORT", default.port, int),
            workspace=Path(env.get("WORKSPACE_FOLDER") or default.workspace),
            max_output_bytes=positive(env, "MAX_OUTPUT_BYTES", default.max_output_bytes, int),
            max_request_bytes=positive(env, "MAX_REQUEST_BYTES", default.max_request_bytes, int),
            kernel_user=_kernel_user(env),
            kernel_uids=_uid_range(env),
            session_max_processes=positive(env, "SESSION_MAX_PROCESSES", default.session_max_processes, int),
            session_env=_names(env, "SESSION_ENV"),
            persistent_folders=tuple(Path(f) for f in _names(env, "SUBMISSION_DIR")),
            standby_kernel=_flag(env, "STANDBY_KERNEL", default.standby_kernel),
            runtime_dir=Path(runtime_dir) if runtime_dir else None,
            executor_token=env.get("EXECUTOR_TOKEN") or None,
            timeouts=_timeouts(
                execution=positive(env, "EXECUTION_TIMEOUT", waits.execution),
                max_execution=positive(env, "MAX_EXECUTION_TIMEOUT", waits.max_execution),
                request_read=positive(env, "REQUEST_READ_TIMEOUT", waits.request_read),
                interrupt_grace=positive(env, "INTERRUPT_GRACE", waits.interrupt_grace),
                kernel_start=positive(env, "KERNEL_START_TIMEOUT", waits.kernel_start),
                start_give_up=positive(env, "KERNEL_START_GIVE_UP", waits.start_give_up),
            ),
            head_limits=HeadLimits.from_env(env),
        )
