"""The requirement catalogue of executor contract 1.x: the one place requirements live.

Every test of the suite names the IDs it proves; the level (MUST, SHOULD, MAY) and the
feature a requirement belongs to come from here, never from the test. The requirement
table of ``docs/contract.md`` is generated from this module (``executor-conformance
catalogue``) and a test keeps the two identical.

This module must never import pytest or anything of the reference executor.
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CONTRACT_VERSION",
    "FEATURES",
    "POOL_CONTRACT_VERSION",
    "REQUIREMENTS",
    "Area",
    "Label",
    "Level",
    "Need",
    "Profile",
    "Requirement",
    "Selection",
    "UnknownRequirementError",
    "contract_version",
    "get",
    "markdown_table",
    "matching",
    "named",
    "of_profile",
]

CONTRACT_VERSION = "1.6"
#: The pool contract's version (docs/pool-contract.md): a pool's certification reports it.
POOL_CONTRACT_VERSION = "1.0"


class Label(enum.StrEnum):
    """An enumeration of the reports whose values are identifiers (``not_run``), for programs,
    and whose labels are words (not run), for people."""

    @property
    def label(self) -> str:
        return self.value.replace("non_", "non-").replace("_", " ")


class Level(enum.StrEnum):
    """RFC 2119 level of a requirement."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Area(enum.StrEnum):
    """The contract's areas, in the order the suite runs them: the basics first, destructive last."""

    HEALTH = "health"
    READY = "ready"
    INFO = "info"
    CONFIGURATION = "configuration"
    CODE = "code"
    EXECUTE = "execute"
    STATE = "state"
    ERRORS = "errors"
    INPUT = "input"
    OUTPUT = "output"
    CONCURRENCY = "concurrency"
    TIMEOUT = "timeout"
    RESTART = "restart"
    SCHEMA = "schema"
    CRASH = "crash"
    SECURITY = "security"
    ISOLATION = "isolation"
    # The pool contract's areas (docs/pool-contract.md): a manager and its executors, together.
    POOL_API = "pool-api"
    POOL_HANDOVER = "pool-handover"
    POOL_ISOLATION = "pool-isolation"

    @property
    def order(self) -> int:
        return list(Area).index(self)

    @property
    def of_pool(self) -> bool:
        """An area of the pool contract, whose requirements a pool's certification judges."""
        return self.value.startswith("pool-")


class Need(enum.StrEnum):
    """What a test needs of the target beyond the basics (``@pytest.mark.conformance_needs(Need.X)``).

    A target that lacks it reports the test's requirement *not run*, saying what was missing.
    """

    WORKSPACE = "workspace"
    DESTRUCTIVE = "destructive"
    MEMORY_LIMIT = "memory_limit"
    SETTINGS = "settings"
    LOGS = "logs"

    @property
    def missing(self) -> str:
        """Why a target that lacks it cannot run the test, and what to do about it."""
        return _MISSING[self]

    @property
    def taken_on_trust(self) -> bool:
        """A target that lacks it has the behaviour taken on trust (reported skipped), not left unchecked (not run).

        The settings and the log of an executor the kit did not start are the user's to vouch for,
        as the port it is reached on is: asking for them would leave every URL certification incomplete.
        """
        return self in (Need.SETTINGS, Need.LOGS)


_MISSING = {
    Need.WORKSPACE: "the executor was not started with the kit's sample workspace (export it with "
    "`executor-conformance workspace DIR`, start the executor with it, pass --workspace-mounted)",
    Need.DESTRUCTIVE: "a destructive scenario (crash, killed process): pass --allow-destructive to run it",
    Need.MEMORY_LIMIT: "no memory limit is known to bound the executor: pass --memory-limited if one does",
    Need.SETTINGS: "taken on trust: the kit did not start the executor, so it could not choose its settings "
    "(PORT, WORKSPACE_FOLDER, SESSION_ENV ...) and see them honoured (certify by --image or --command to check)",
    Need.LOGS: "taken on trust: the kit reads the executor's own log only where it started it (certify by "
    "--image or --command to check)",
}


class Profile(Label):
    """A named set of requirements a verdict is given for (``--profile``).

    ``core`` is what a manager needs of any executor, the original executor README's promises:
    health, readiness, outputs of ``type`` and ``text``, state, restart (state cleared, mounted
    code loaded again), mounted code, timeouts and the port. ``full`` is the whole executor
    contract. ``pool`` is the pool contract, judged of a running pool through its manager
    (``executor-conformance pool``): no executor profile holds any of its requirements.
    Judged under ``core``, an execute response needs only ``outputs``: a ``status`` it leaves
    out is read from them (an ``error`` item: error; none: ok), and a timeout by when it answers.
    """

    CORE = "core"
    FULL = "full"
    POOL = "pool"

    @property
    def description(self) -> str:
        return _PROFILES[self]


_PROFILES = {
    Profile.CORE: "what a manager needs of any executor (the original executor README's promises)",
    Profile.FULL: "the whole executor contract",
    Profile.POOL: "a pool: its manager and executors together (docs/pool-contract.md)",
}


#: Optional features an executor may declare in ``GET /info``. Requirements that belong
#: to a feature are skipped-by-declaration when the executor (or the user) turns it off.
#: A requirement of no feature (``None``) can never be switched off.
FEATURES: dict[str, str] = {
    "mounted_code": "loads the source files of WORKSPACE_FOLDER (.py, .js) into the session",
    "timeout_override": "honours a per-request `timeout`",
    "rich_output": "returns display_data items with their MIME bundle",
    "restart_status": "serves GET /restart-status",
    "info": "serves GET /info",
    "executor_token": "with EXECUTOR_TOKEN set, serves API calls only to the bearer of that token",
}


@dataclass(frozen=True)
class Requirement:
    """One normative sentence of the contract."""

    id: str
    level: Level
    area: Area
    title: str
    feature: str | None = None

    @property
    def profiles(self) -> tuple[Profile, ...]:
        """The profiles this requirement belongs to: every executor requirement is in ``full``, some
        in ``core`` too; the pool contract's are in ``pool`` alone."""
        if self.area.of_pool:
            return (Profile.POOL,)
        return (Profile.CORE, Profile.FULL) if self.id in CORE_PROFILE else (Profile.FULL,)

    def in_profile(self, profile: Profile) -> bool:
        return profile in self.profiles

    @property
    def label(self) -> str:
        return f"[{self.level.value} {self.id}]"


def _r(id: str, level: str, area: str, title: str, feature: str | None = None) -> Requirement:
    return Requirement(id, Level(level), Area(area), title, feature)


_ALL: tuple[Requirement, ...] = (
    _r("HEALTH-1", "MUST", "health", 'GET /health answers 200 {"status": "ok"} while the HTTP process lives'),
    _r("HEALTH-2", "MUST", "health", "GET /health answers within 1 s even while user code runs or the kernel restarts"),
    _r("READY-1", "MUST", "ready", 'GET /ready answers 200 {"ready": true, ...} when ready'),
    _r("READY-2", "MUST", "ready", "while not ready, `ready` is false and `reason` says why"),
    _r("READY-3", "SHOULD", "ready", "not-ready answers use HTTP 503"),
    _r("READY-4", "MUST", "ready", "ready only after mounted code has been loaded", "mounted_code"),
    _r("EXEC-1", "MUST", "execute", "the execute response matches the schema; `status` is one of four values"),
    _r("EXEC-2", "MUST", "execute", "stdout and stderr come back as `stream` items with the right name and exact text"),
    _r("EXEC-3", "MUST", "execute", "the value of a trailing expression comes back as `execute_result`"),
    _r(
        "EXEC-4",
        "SHOULD",
        "execute",
        "rich display output comes back as `display_data` with its MIME bundle",
        "rich_output",
    ),
    _r("EXEC-5", "MUST", "execute", "every output item has `type` and a string `text`"),
    _r(
        "EXEC-6",
        "MUST",
        "execute",
        "non-ASCII, emoji, NUL and ANSI control characters round-trip unchanged in valid JSON",
    ),
    _r("EXEC-7", "MUST", "execute", "empty or comment-only code gives `ok` with no outputs"),
    _r(
        "EXEC-8",
        "MUST",
        "execute",
        "output that is not valid Unicode (a lone surrogate) comes back with U+FFFD, the rest kept",
    ),
    _r("STATE-1", "MUST", "state", "variables, functions and imports persist between executes"),
    _r("ERROR-1", "MUST", "errors", "an exception gives 200, `status: error` and an `error` item; never a 5xx"),
    _r("ERROR-2", "MUST", "errors", "a SyntaxError is reported the same way; state defined before an error survives"),
    _r("TIMEOUT-1", "MUST", "timeout", "code past its timeout ends with `status: timeout` within timeout + 5 s"),
    _r("TIMEOUT-2", "MUST", "timeout", "output printed before the deadline is returned with the timeout"),
    _r("TIMEOUT-3", "MUST", "timeout", "the next execute after a timeout runs normally and promptly"),
    _r("TIMEOUT-4", "SHOULD", "timeout", "state survives a timeout of interruptible code (`restarted: false`)"),
    _r(
        "TIMEOUT-5", "MUST", "timeout", "code that ignores interruption is still ended by a restart (`restarted: true`)"
    ),
    _r("TIMEOUT-6", "SHOULD", "timeout", "a per-request `timeout` is honoured", "timeout_override"),
    _r("TIMEOUT-7", "MUST", "timeout", "the default timeout is set by the EXECUTION_TIMEOUT environment variable"),
    _r("RESTART-1", "MUST", "restart", 'POST /restart answers 200 {"status": "ok"|"restarting"}'),
    _r("RESTART-2", "MUST", "restart", "once a restart has completed, earlier user state is gone"),
    _r("RESTART-3", "MUST", "restart", "after a restart, mounted code is loaded again", "mounted_code"),
    _r("RESTART-4", "MUST", "restart", "no execute accepted after /restart answered sees the old state"),
    _r("RESTART-5", "MAY", "restart", 'GET /restart-status answers {"restarting": bool}', "restart_status"),
    _r(
        "CODE-1",
        "MUST",
        "code",
        "every source file of WORKSPACE_FOLDER (.py, .js: the language's) runs at start-up in the session namespace",
        "mounted_code",
    ),
    _r("CODE-2", "MUST", "code", "files run in sorted name order and can import their siblings", "mounted_code"),
    _r("CODE-3", "MUST", "code", "what loading prints never appears in an execute response", "mounted_code"),
    _r(
        "CODE-4",
        "SHOULD",
        "code",
        "a file that raises is logged and skipped; the executor still becomes ready",
        "mounted_code",
    ),
    _r(
        "CODE-5",
        "MUST",
        "code",
        "WORKSPACE_FOLDER chooses the folder; a missing or empty folder is fine",
        "mounted_code",
    ),
    _r(
        "CONC-1",
        "MUST",
        "concurrency",
        "concurrent executes never interleave: each response holds only its own outputs",
    ),
    _r("CONC-2", "MAY", "concurrency", "excess concurrent executes may get 429 or 503 with a JSON error"),
    _r("CONC-3", "SHOULD", "concurrency", "a queued execute whose client has gone away is never run"),
    _r(
        "INPUT-1",
        "MUST",
        "input",
        "malformed requests get a 4xx JSON error; no request, whatever its bytes, gets a 5xx; the executor stays usable",
    ),
    _r("INPUT-2", "SHOULD", "input", "a body over MAX_REQUEST_BYTES gets 413"),
    _r("INPUT-3", "MUST", "input", "unknown paths get 404 and wrong methods 405"),
    _r("INPUT-4", "MUST", "input", "unknown fields of an execute request are ignored"),
    _r("INPUT-5", "SHOULD", "input", "a `timeout` above MAX_EXECUTION_TIMEOUT gets 422", "timeout_override"),
    _r(
        "INPUT-6", "SHOULD", "input", "connections that send their request too slowly are closed; /health still answers"
    ),
    _r("OUTPUT-1", "MUST", "output", "huge output (50 MB) does not break the executor"),
    _r(
        "OUTPUT-2",
        "SHOULD",
        "output",
        "output past MAX_OUTPUT_BYTES is cut, with `truncated: true` and a visible marker",
    ),
    _r("CRASH-1", "MUST", "crash", "a dying environment gives `status: crashed`, `restarted: true` within 10 s"),
    _r("CRASH-2", "MUST", "crash", "the executor recovers by itself: ready again, mounted code reloaded"),
    _r("CRASH-3", "SHOULD", "crash", "memory exhaustion by user code does not take down the HTTP server"),
    _r("SEC-1", "SHOULD", "security", "user code runs as a non-root user"),
    _r("SEC-2", "SHOULD", "security", "user code cannot kill or signal the HTTP server process"),
    _r("SEC-3", "SHOULD", "security", "the mounted code folder is read-only to user code", "mounted_code"),
    _r(
        "SEC-4",
        "SHOULD",
        "security",
        "with EXECUTOR_TOKEN set, a call without that bearer token gets 401 and runs nothing; /health, /ready open",
        "executor_token",
    ),
    _r("SCHEMA-1", "MUST", "schema", "every response conforms to openapi.yaml; no generated request gets a 5xx"),
    _r(
        "SCHEMA-2", "SHOULD", "schema", "responses pass schemathesis' stricter checks (negative data rejected, headers)"
    ),
    _r("INFO-1", "MAY", "info", "GET /info describes the implementation, contract version and features", "info"),
    # -- 1.1: isolation between sessions -------------------------------------------------------
    _r(
        "ISO-1",
        "MUST",
        "isolation",
        "once /restart has answered, no process that user code started or could signal is still running",
    ),
    _r(
        "ISO-2",
        "MUST",
        "isolation",
        "files user code wrote outside the workspace and the persistent folders are gone after /restart",
    ),
    _r(
        "ISO-3",
        "MUST",
        "isolation",
        "nothing user code plants (import-path files, environment) changes what a later session runs",
    ),
    _r(
        "ISO-4", "MUST", "isolation", "output of a session's background threads and processes never reaches a later one"
    ),
    _r(
        "ISO-5",
        "MUST",
        "isolation",
        "signals user code sends to every process it can reach never take the server down or slow the next session",
    ),
    _r(
        "ISO-6",
        "SHOULD",
        "isolation",
        "the server's environment reaches user code only through the variables named in SESSION_ENV",
    ),
    # -- 1.3: isolation by ownership and in time -------------------------------------------------
    _r(
        "ISO-7",
        "MUST",
        "isolation",
        "a call waiting for its turn when /restart comes, or sent while it runs, never runs in the next session",
    ),
    _r(
        "ISO-8",
        "MUST",
        "isolation",
        "kernel objects a session made (SysV shared memory, queues, semaphores; POSIX queues) are gone after /restart",
    ),
    _r(
        "ISO-9",
        "SHOULD",
        "isolation",
        "what user code writes outside the protocol (inherited stdout and stderr) never reaches the executor's log",
    ),
    _r(
        "ISO-10",
        "MUST",
        "isolation",
        "a fork bomb neither stops /health nor slows /restart past its bound, and none of its processes outlives it",
    ),
    _r(
        "ISO-11",
        "MUST",
        "isolation",
        "zombies a session leaves, orphaned or not, are reaped by the time /restart answers",
    ),
    # -- 1.4: nothing a client or user code sends takes the server down ------------------------
    _r(
        "INPUT-7",
        "MUST",
        "input",
        "a request head past the executor's bounds (at most 1 MiB) gets a 4xx or is cut, never read on",
    ),
    _r(
        "INPUT-8",
        "SHOULD",
        "input",
        "HEAD is answered wherever GET is, with GET's status and no body",
    ),
    _r(
        "OUTPUT-3",
        "MUST",
        "output",
        "every byte a response carries from user code counts against MAX_OUTPUT_BYTES, whatever its kind or field",
    ),
    # -- 1.2: configuration ----------------------------------------------------------------------
    _r("CONFIG-1", "MUST", "configuration", "the executor listens on the port the PORT environment variable names"),
    _r(
        "CONFIG-2",
        "SHOULD",
        "configuration",
        "a setting left unset takes the contract's default (PORT 8432, WORKSPACE_FOLDER /code, EXECUTION_TIMEOUT 3)",
    ),
    # -- the pool contract (docs/pool-contract.md): a manager and its executors ---------------------
    _r("POOL-1", "MUST", "pool-api", 'GET /health answers 200 {"status": "ok"} without a token'),
    _r(
        "POOL-2",
        "MUST",
        "pool-api",
        "/allocate, /status and /deallocate refuse a call without the manager's token, or with another: 401, "
        "nothing done",
    ),
    _r(
        "POOL-3",
        "MUST",
        "pool-api",
        "/allocate answers `container_id`, the `type` asked and the allocation's `token`; an unknown type 404; "
        "none free 503",
    ),
    _r("POOL-4", "MUST", "pool-api", "/status counts the executors allocated and free, in step with the allocations"),
    _r(
        "POOL-5",
        "MUST",
        "pool-api",
        "/session/{id}/... reaches the allocation's executor with its token only: without it, or with another "
        "allocation's, 401 and nothing runs",
    ),
    _r(
        "POOL-6",
        "MUST",
        "pool-handover",
        "once /deallocate has answered, the allocation's token is refused, and the next user's session holds "
        "nothing of the last",
    ),
    _r(
        "POOL-7",
        "MUST",
        "pool-handover",
        "a call sent on an allocation while it is deallocated never runs in the session handed out next",
    ),
    _r(
        "POOL-8",
        "MUST",
        "pool-handover",
        "an allocation whose lease ran out ends as a deallocated one does: token refused, executor restarted",
    ),
    _r(
        "POOL-9",
        "MUST",
        "pool-isolation",
        "user code opens no connection to another executor of the pool, at any of its addresses and ports",
    ),
    _r("POOL-10", "MUST", "pool-isolation", "user code opens no connection to the manager"),
    _r(
        "POOL-11",
        "MUST",
        "pool-isolation",
        "an executor's session has no route out of the pool (no default route), unless the operator opened one",
    ),
    _r(
        "POOL-12",
        "MUST",
        "pool-isolation",
        "user code calling its own executor's API, bypassing the manager, is refused (401): the executor serves "
        "the manager alone",
    ),
)


#: The requirements of the ``core`` profile (see ``Profile``).
CORE_PROFILE = frozenset(
    {
        "HEALTH-1",
        "READY-1",
        "READY-4",
        "EXEC-5",
        "STATE-1",
        "TIMEOUT-1",
        "TIMEOUT-3",
        "RESTART-1",
        "RESTART-2",
        "RESTART-3",
        "CODE-1",
        "CODE-2",
        "CODE-3",
        "CODE-4",
        "CODE-5",
        "CONFIG-1",
    }
)


class UnknownRequirementError(KeyError):
    """Raised for a requirement ID that is not in the catalogue."""

    def __init__(self, requirement_id: str) -> None:
        valid = ", ".join(REQUIREMENTS)
        super().__init__(f"unknown requirement ID {requirement_id!r}; valid IDs: {valid}")


def _index(requirements: Iterable[Requirement]) -> dict[str, Requirement]:
    index: dict[str, Requirement] = {}
    for requirement in requirements:
        if requirement.id in index:
            raise ValueError(f"duplicate requirement ID {requirement.id!r} in the catalogue")
        if requirement.feature is not None and requirement.feature not in FEATURES:
            raise ValueError(f"{requirement.id}: unknown feature {requirement.feature!r}")
        index[requirement.id] = requirement
    if CORE_PROFILE - set(index):
        raise ValueError(f"the core profile names unknown requirements: {sorted(CORE_PROFILE - set(index))}")
    return index


REQUIREMENTS: dict[str, Requirement] = _index(_ALL)


def get(requirement_id: str) -> Requirement:
    """Return the requirement with this ID, or raise listing the valid ones."""
    try:
        return REQUIREMENTS[requirement_id]
    except KeyError:
        raise UnknownRequirementError(requirement_id) from None


def matching(pattern: str) -> list[str]:
    """The IDs ``pattern`` names (any case): an ID (``HEALTH-1``), an area (``timeout``), an ID's
    prefix (``CONFIG``) or a glob (``READY-*``). ValueError if it names none."""
    wanted = pattern.strip()
    upper = wanted.upper()
    found = [
        r.id
        for r in REQUIREMENTS.values()
        if r.id == upper
        or r.area.value == wanted.lower()
        or r.id.startswith(f"{upper}-")
        or fnmatch.fnmatchcase(r.id, upper)
    ]
    if not found:
        areas = ", ".join(Area)
        close = difflib.get_close_matches(upper, [*REQUIREMENTS, *(a.value.upper() for a in Area)], n=3)
        meant = f"; did you mean {', '.join(c if c in REQUIREMENTS else c.lower() for c in close)}?" if close else ""
        raise ValueError(
            f"no requirement is {wanted!r} (an ID such as HEALTH-1, a glob such as READY-*, or an area: {areas}){meant}"
        )
    return found


def named(values: Iterable[str]) -> set[str]:
    """The IDs that option values name: each a comma-separated list of ``matching`` patterns.
    ValueError, starting with the pattern, for one that names nothing."""
    ids: set[str] = set()
    for value in values:
        for pattern in filter(None, (part.strip() for part in value.split(","))):
            try:
                ids.update(matching(pattern))
            except ValueError as exc:
                raise ValueError(f"{pattern}: {exc}") from None
    return ids


@dataclass(frozen=True)
class Selection:
    """Which requirements a run keeps: those of ``profile`` that ``--requirement`` names (all,
    without it), less those ``--skip-requirement`` names."""

    chosen: frozenset[str] = frozenset()
    left_out: frozenset[str] = frozenset()
    profile: Profile = Profile.FULL

    @classmethod
    def of(cls, requirement: Iterable[str], skip_requirement: Iterable[str], profile: str = Profile.FULL) -> Selection:
        """From the options' values; ValueError naming the option and the pattern that names nothing."""
        parts: dict[str, frozenset[str]] = {}
        for flag, values in (("--requirement", requirement), ("--skip-requirement", skip_requirement)):
            try:
                parts[flag] = frozenset(named(values))
            except ValueError as exc:
                raise ValueError(f"{flag} {exc}") from None
        return cls(parts["--requirement"], parts["--skip-requirement"], Profile(profile))

    def __bool__(self) -> bool:
        """Whether it leaves any requirement out: always, as no profile holds both contracts."""
        return bool(self.chosen or self.left_out) or len(of_profile(self.profile)) < len(REQUIREMENTS)

    def members(self) -> frozenset[str] | None:
        """The requirements a run of this selection judges: those ``--requirement`` names in the
        profile, less those ``--skip-requirement`` names; None without either (the whole profile)."""
        if not (self.chosen or self.left_out):
            return None
        return frozenset(rid for rid in REQUIREMENTS if self.keeps([rid]))

    def keeps(self, ids: Iterable[str]) -> bool:
        """Whether a test of ``ids`` runs: one of them in the profile and chosen, none left out."""
        ids = list(ids)
        return any(
            get(rid).in_profile(self.profile) and (not self.chosen or rid in self.chosen) for rid in ids
        ) and not any(rid in self.left_out for rid in ids)


def contract_version(profile: Profile) -> str:
    """The version of the contract ``profile`` judges: the pool contract's, or the executor's."""
    return POOL_CONTRACT_VERSION if profile is Profile.POOL else CONTRACT_VERSION


def of_profile(profile: Profile) -> list[str]:
    """The IDs of ``profile``'s requirements, in the catalogue's order."""
    return [r.id for r in REQUIREMENTS.values() if r.in_profile(profile)]


def markdown_table(ids: Iterable[str] | None = None) -> str:
    """The executor contract's requirement table (or that of ``ids``: the pool contract's, say),
    generated from the catalogue."""
    lines = ["| ID | Level | Profile | Feature | Requirement |", "| --- | --- | --- | --- | --- |"]
    chosen = set(of_profile(Profile.FULL) if ids is None else ids)
    for r in (r for r in REQUIREMENTS.values() if r.id in chosen):
        title = r.title.replace("|", "\\|")
        profile = r.profiles[0].value
        lines.append(f"| {r.id} | {r.level.value} | {profile} | {r.feature or '-'} | {title} |")
    return "\n".join(lines) + "\n"
