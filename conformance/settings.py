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
    "CHOSEN",
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
        values = {setting.variable: getattr(self, name) for name, setting in CHOSEN.items()}
        env = {name: env_value(value) for name, value in values.items() if value is not None}
        if self.session_env is not None:
            env.update(SESSION_ENV_PROBE)
        return env

    def with_values(self, **changes: Any) -> ExecutorSettings:
        """A copy with the values that are not None in ``changes`` replaced."""
        return replace(self, **{key: value for key, value in changes.items() if value is not None})


#: Where the kit mounts its workspace in CODE-5's second container: not the default's folder.
WORKSPACE_ELSEWHERE = "/srv/conformance-workspace"


@dataclass(frozen=True)
class Setting:
    """One row of the contract's configuration table: its default, the kit's value, how the kit
    checks it. The environment, the defaults, the options and the report's table are made of these
    rows (``SETTINGS``): a new setting is a row here (and a field of ``ExecutorSettings``)."""

    variable: str
    #: The ExecutorSettings field; None for a setting the kit does not choose.
    field: str | None
    #: The contract's default (CONFIG-2), and the kit's value: apart from the default, on the side
    #: where the check can see the difference.
    default: Any
    kit: Any
    checked_by: tuple[str, ...]
    #: How the kit checks it (the report and the contract say it).
    how: str
    #: The type of its value (a whole number: written and declared as one).
    value_type: type = str
    #: A target option gives it (``--executor-<variable>``): for a URL, what the user declares.
    option: bool = False
    #: How the option's help names its value.
    metavar: str = "VALUE"
    #: An executor may declare it in GET /info's ``settings`` (contract 1.6), up to this bound: the
    #: kit's waits and the sizes it sends and reads follow it, so a hostile or careless declaration
    #: (EXECUTION_TIMEOUT=1e9) would hang the kit or take its memory: above it a value is refused and
    #: said, and the option gives it instead. None: not declarable.
    declarable_up_to: float | None = None

    @property
    def flags(self) -> tuple[str, str]:
        """The option's canonical and short names: ``--executor-max-output-bytes``, ``--max-output-bytes``."""
        short = "--" + self.variable.lower().replace("_", "-")
        return f"--executor-{short[2:]}", short


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "PORT", "port", 8432, 9432, ("CONFIG-1", "CONFIG-2"),
        "the kit sets a port other than 8432 and talks to the executor only there; an executor that "
        "answers on 8432 instead fails CONFIG-1 (and is certified there for the rest). A container "
        "started with no settings must answer on 8432 (CONFIG-2).",
        value_type=int,
    ),
    Setting(
        # The main container keeps the default's path (an executor reading a fixed folder fails
        # CODE-5 alone); CODE-5 starts a second container with the workspace elsewhere.
        "WORKSPACE_FOLDER", "workspace_folder", "/code", "/code", ("CODE-5", "CONFIG-2"),
        f"a second container gets the workspace at {WORKSPACE_ELSEWHERE} and the variable naming it, "
        "with nothing at /code: its files must load (CODE-5). A container started with no settings "
        "and the workspace at /code must load it (CONFIG-2).",
        option=True, metavar="DIR",
    ),
    Setting(
        "EXECUTION_TIMEOUT", "execution_timeout", 3.0, 2.0, ("TIMEOUT-7", "CONFIG-2"),
        "the kit sets 2 s: code sleeping 1.3x that (2.6 s, under the default of 3 s) must end "
        "`timeout`, code sleeping 0.5x must end `ok`. A container started with no settings must "
        "cut code at 3 s by the same two checks (CONFIG-2).",
        value_type=float, option=True, metavar="S", declarable_up_to=600,
    ),
    Setting(
        "MAX_OUTPUT_BYTES", "max_output_bytes", 1024 * 1024, 256 * 1024, ("OUTPUT-2",),
        "the kit sets 256 KiB: 512 KiB printed must come back cut to about 256 KiB, `truncated: "
        "true`; 128 KiB printed must come back whole.",
        value_type=int, option=True, metavar="N", declarable_up_to=64 * 1024 * 1024,
    ),
    Setting(
        "MAX_REQUEST_BYTES", "max_request_bytes", 1024 * 1024, 2 * 1024 * 1024, ("INPUT-2",),
        "the kit sets 2 MiB: a 1.5 MiB body (over the default) must be accepted, a body over 2 MiB get 413.",
        value_type=int, option=True, metavar="N", declarable_up_to=64 * 1024 * 1024,
    ),
    Setting(
        "MAX_EXECUTION_TIMEOUT", "max_execution_timeout", 3600.0, 120.0, ("INPUT-5",),
        "the kit sets 120 s: a `timeout` of 121 s must get 422, one of 120 s be accepted.",
        value_type=float, declarable_up_to=3600,
    ),
    Setting(
        "SESSION_ENV", "session_env", None, "CONFORMANCE_PASSED_ON", ("ISO-6",),
        "the kit sets two variables and names one: only that one may reach user code.",
    ),
    Setting(
        "SUBMISSION_DIR", None, None, None, ("ISO-2",),
        "not set by the kit (it cannot know which folder an image may write to): with "
        "`--executor-env SUBMISSION_DIR=...` and `--persistent-folder`, ISO-2 spares that folder.",
    ),
    Setting(
        "PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE", None, None, None, (),
        "Python's own variables, passed to the session: not checked.",
    ),
)  # fmt: skip

#: The rows of the settings the kit chooses (ExecutorSettings' fields), by field.
CHOSEN = {setting.field: setting for setting in SETTINGS if setting.field is not None}

#: The contract's defaults: what an executor started without a setting uses (CONFIG-2).
CONTRACT_DEFAULTS = ExecutorSettings(**{name: setting.default for name, setting in CHOSEN.items()})

#: What the kit starts executors with: each value apart from the default, on the side where the
#: check tells them apart. PORT is a free port on 127.0.0.1 for a local command.
KIT_SETTINGS = ExecutorSettings(**{name: setting.kit for name, setting in CHOSEN.items()})

#: What an executor may declare in GET /info's ``settings``, by variable.
DECLARABLE = {setting.variable: setting for setting in CHOSEN.values() if setting.declarable_up_to is not None}


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
        setting = DECLARABLE.get(variable)
        if setting is None or setting.field is None or setting.declarable_up_to is None:
            continue  # a setting of its own, not the contract's
        most, whole = setting.declarable_up_to, setting.value_type is int
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and 0 < value <= most and (not whole or value == int(value)):
            values[setting.field] = setting.value_type(value)
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
            value, default = getattr(settings, setting.field), setting.default
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
