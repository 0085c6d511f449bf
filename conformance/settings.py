"""The executor's settings (the contract's configuration table): defaults, the kit's values, checks.

A value the kit starts an executor with is worth something only if an executor that ignores the
setting would behave differently: a kit that set ``EXECUTION_TIMEOUT=2`` and accepted anything up to
7 s could not tell it from the contract's default of 3. So every value in ``KIT_SETTINGS`` differs
from ``CONTRACT_DEFAULTS`` in the direction in which the check can see the difference, and
``SETTINGS`` says, per variable, which requirement checks it and how. The kit chooses the values
for the executors it starts (image, command); for an executor at a URL they are the ones the user
declares, or the contract's defaults, and the report says they were taken on trust.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .catalogue import Label
from .violations import cut

__all__ = [
    "CONTRACT_DEFAULTS",
    "DECLARABLE",
    "KIT_SETTINGS",
    "SESSION_ENV_PROBE",
    "SETTINGS",
    "WORKSPACE_ELSEWHERE",
    "ExecutorSettings",
    "Setting",
    "SettingsSource",
    "declared_settings",
    "env_value",
    "settings_report",
]

#: ISO-6: what the kit puts in the environment of an executor it starts. Only the variable that
#: SESSION_ENV names may reach user code.
SESSION_ENV_PROBE = {
    "CONFORMANCE_PASSED_ON": "passed-on-on-purpose",
    "CONFORMANCE_SERVER_ONLY": "server-secret",
}


def env_value(value: Any) -> str:
    """``value`` as an environment variable: a whole number without a decimal point, which an
    executor that reads the variable as an integer parses too (the original executor does
    ``int(os.getenv("EXECUTION_TIMEOUT", "180"))``; ``2.0`` stopped it at start-up)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class SettingsSource(Label):
    KIT = "set_by_the_kit"  # the kit started the executor with these values
    TRUSTED = "taken_on_trust"  # a URL: declared by the user (or the contract's defaults), not checked
    DECLARED = "declared_by_the_executor"  # a URL: what its GET /info says it runs with (INFO-1)
    NOT_SET = "not_set_by_the_kit"  # a setting the kit leaves alone


@dataclass(frozen=True)
class ExecutorSettings:
    """The values of the contract's settings for one executor (None: unset or unknown)."""

    port: int | None
    workspace_folder: str | None
    execution_timeout: float
    max_output_bytes: int
    max_request_bytes: int
    max_execution_timeout: float | None
    session_env: str | None

    def environment(self) -> dict[str, str]:
        """The variables to start an executor with; an unset setting is left out."""
        values = {
            "PORT": self.port,
            "WORKSPACE_FOLDER": self.workspace_folder,
            "EXECUTION_TIMEOUT": self.execution_timeout,
            "MAX_OUTPUT_BYTES": self.max_output_bytes,
            "MAX_REQUEST_BYTES": self.max_request_bytes,
            "MAX_EXECUTION_TIMEOUT": self.max_execution_timeout,
            "SESSION_ENV": self.session_env,
        }
        env = {name: env_value(value) for name, value in values.items() if value is not None}
        if self.session_env is not None:
            env.update(SESSION_ENV_PROBE)
        return env

    def with_values(self, **changes: Any) -> ExecutorSettings:
        """A copy with the values that are not None in ``changes`` replaced."""
        return replace(self, **{key: value for key, value in changes.items() if value is not None})


#: The contract's defaults: what an executor started without a setting uses (CONFIG-2).
CONTRACT_DEFAULTS = ExecutorSettings(
    port=8432,
    workspace_folder="/code",
    execution_timeout=3.0,
    max_output_bytes=1024 * 1024,
    max_request_bytes=1024 * 1024,
    max_execution_timeout=3600.0,
    session_env=None,
)

#: What the kit starts executors with: each value apart from the default, on the side where the
#: check tells them apart. PORT is a free port on 127.0.0.1 for a local command; WORKSPACE_FOLDER
#: keeps the default's path for the main container (so that an executor reading a fixed folder
#: fails CODE-5 alone), and CODE-5 starts a second container with the workspace elsewhere.
KIT_SETTINGS = ExecutorSettings(
    port=9432,
    workspace_folder=CONTRACT_DEFAULTS.workspace_folder,
    execution_timeout=2.0,  # TIMEOUT-7: 1.3 x 2 s = 2.6 s ends `timeout` here, `ok` under 3 s
    max_output_bytes=256 * 1024,  # OUTPUT-2: 512 KiB printed is cut here, not under 1 MiB
    max_request_bytes=2 * 1024 * 1024,  # INPUT-2: a 1.5 MiB body is accepted here, 413 under 1 MiB
    max_execution_timeout=120.0,  # INPUT-5: a timeout of 121 s gets 422 here, not under 3600 s
    session_env="CONFORMANCE_PASSED_ON",  # ISO-6: one of two variables reaches user code
)

#: Where the kit mounts its workspace in CODE-5's second container: not the default's folder.
WORKSPACE_ELSEWHERE = "/srv/conformance-workspace"


@dataclass(frozen=True)
class Setting:
    """One row of the contract's configuration table, and how the kit checks it."""

    variable: str
    field: str | None  # the ExecutorSettings field; None for settings the kit does not choose
    checked_by: tuple[str, ...]
    how: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "PORT",
        "port",
        ("CONFIG-1", "CONFIG-2"),
        "the kit sets a port other than 8432 and talks to the executor only there; an executor that "
        "answers on 8432 instead fails CONFIG-1 (and is certified there for the rest). A container "
        "started with no settings must answer on 8432 (CONFIG-2).",
    ),
    Setting(
        "WORKSPACE_FOLDER",
        "workspace_folder",
        ("CODE-5", "CONFIG-2"),
        f"a second container gets the workspace at {WORKSPACE_ELSEWHERE} and the variable naming it, "
        "with nothing at /code: its files must load (CODE-5). A container started with no settings "
        "and the workspace at /code must load it (CONFIG-2).",
    ),
    Setting(
        "EXECUTION_TIMEOUT",
        "execution_timeout",
        ("TIMEOUT-7", "CONFIG-2"),
        "the kit sets 2 s: code sleeping 1.3x that (2.6 s, under the default of 3 s) must end "
        "`timeout`, code sleeping 0.5x must end `ok`. A container started with no settings must "
        "cut code at 3 s by the same two checks (CONFIG-2).",
    ),
    Setting(
        "MAX_OUTPUT_BYTES",
        "max_output_bytes",
        ("OUTPUT-2",),
        "the kit sets 256 KiB: 512 KiB printed must come back cut to about 256 KiB, `truncated: "
        "true`; 128 KiB printed must come back whole.",
    ),
    Setting(
        "MAX_REQUEST_BYTES",
        "max_request_bytes",
        ("INPUT-2",),
        "the kit sets 2 MiB: a 1.5 MiB body (over the default) must be accepted, a body over 2 MiB get 413.",
    ),
    Setting(
        "MAX_EXECUTION_TIMEOUT",
        "max_execution_timeout",
        ("INPUT-5",),
        "the kit sets 120 s: a `timeout` of 121 s must get 422, one of 120 s be accepted.",
    ),
    Setting(
        "SESSION_ENV",
        "session_env",
        ("ISO-6",),
        "the kit sets two variables and names one: only that one may reach user code.",
    ),
    Setting(
        "SUBMISSION_DIR",
        None,
        ("ISO-2",),
        "not set by the kit (it cannot know which folder an image may write to): with "
        "`--executor-env SUBMISSION_DIR=...` and `--persistent-folder`, ISO-2 spares that folder.",
    ),
    Setting(
        "PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE",
        None,
        (),
        "Python's own variables, passed to the session: not checked.",
    ),
)


#: What an executor may declare in GET /info's ``settings`` (contract 1.6): the variable, the
#: ExecutorSettings field it gives, whether it is a whole number, and the most the kit takes from
#: an executor's word. The kit's waits and the sizes it sends and reads follow these values, so a
#: hostile or careless declaration (EXECUTION_TIMEOUT=1e9, MAX_REQUEST_BYTES=10**12) would hang
#: the kit or take its memory: above its bound a value is refused and said, and an option
#: (``--execution-timeout``, ...) gives it instead.
DECLARABLE = {
    "EXECUTION_TIMEOUT": ("execution_timeout", False, 600),
    "MAX_EXECUTION_TIMEOUT": ("max_execution_timeout", False, 3600),
    "MAX_OUTPUT_BYTES": ("max_output_bytes", True, 64 * 1024 * 1024),
    "MAX_REQUEST_BYTES": ("max_request_bytes", True, 64 * 1024 * 1024),
}


def declared_settings(declared: Any) -> tuple[dict[str, float | int], list[str]]:
    """The settings an executor declares (GET /info's ``settings``), by ExecutorSettings field,
    and what in it cannot be used, each said: a value that is not a positive number, or one past
    the kit's bound."""
    if declared is None:
        return {}, []
    if not isinstance(declared, dict):
        return {}, [f"`settings` is {type(declared).__name__}, not an object"]
    values: dict[str, float | int] = {}
    unusable = []
    for variable, value in declared.items():
        if variable not in DECLARABLE:
            continue  # a setting of its own, not the contract's
        field, whole, most = DECLARABLE[variable]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and 0 < value <= most and (not whole or value == int(value)):
            values[field] = int(value) if whole else float(value)
            continue
        past = f" (the kit takes at most {most})" if number and value > most else ""
        unusable.append(f"{variable}={cut(repr(value), 40)}{past}")
    return values, unusable


def settings_report(
    settings: ExecutorSettings, source: SettingsSource, declared: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The report's table of settings: each variable, its value, the default, who chose it (the
    fields in ``declared``: the executor, in GET /info), the check."""
    rows = []
    for setting in SETTINGS:
        if setting.field is None:
            value = default = None
            how = SettingsSource.NOT_SET.value
        else:
            value = getattr(settings, setting.field)
            default = getattr(CONTRACT_DEFAULTS, setting.field)
            how = (SettingsSource.DECLARED if setting.field in declared else source).value
        rows.append(
            {
                "variable": setting.variable,
                "value": value,
                "default": default,
                "source": how,
                "checked_by": list(setting.checked_by) if source is SettingsSource.KIT else [],
            }
        )
    return rows
