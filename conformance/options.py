"""The options that choose and shape the executor under test, shared by every front door.

The pytest plugin (``--executor-image`` ...) and the benchmark (``executor-conformance bench``)
register the same options from ``TARGET_OPTIONS``, and build the same target from them with
``target_from``, so an executor is started the same way whether it is certified or measured.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from .targets import Capabilities, ProcessTarget, Target, UrlTarget
from .timeouts import KitTimeouts

__all__ = ["TARGET_OPTIONS", "OptionError", "add_target_options", "target_from", "timeouts_from"]

#: (flags, keyword arguments) in the form both argparse and pytest's ``addoption`` take.
TARGET_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--executor-image", "--image"), {"dest": "executor_image", "help": "a local container image"}),
    (("--executor-url", "--url"), {"dest": "executor_url", "help": "an executor already running at URL"}),
    (("--executor-command",), {"dest": "executor_command", "help": "a local command ({port} is replaced)"}),
    (
        ("--executor-env",),
        {"action": "append", "default": [], "metavar": "KEY=VALUE", "help": "extra environment for the executor"},
    ),
    (
        ("--header",),
        {
            "dest": "executor_header",
            "action": "append",
            "default": [],
            "metavar": "'NAME: VALUE'",
            "help": "(--url) a header sent with every request (a manager's session token, say)",
        },
    ),
    (("--workspace-mounted",), {"action": "store_true", "help": "(--url) the executor runs with the kit's workspace"}),
    (("--no-workspace",), {"action": "store_true", "help": "(--image, local) do not mount the kit's workspace"}),
    (("--workspace-folder",), {"default": "/code", "help": "(--image) where the image reads its workspace"}),
    (("--allow-destructive",), {"action": "store_true", "help": "(--url) run crash and kill scenarios"}),
    (("--memory-limited",), {"action": "store_true", "help": "(--url) a memory limit bounds the executor"}),
    (("--memory",), {"default": "256m", "help": "(--image) memory limit, or 'none' (default 256m)"}),
    (
        ("--process-memory-limit",),
        {"default": "2g", "help": "(local) address-space limit of each process, or 'none'"},
    ),
    (("--cpus",), {"default": "0.25", "help": "(--image) CPU limit, or 'none' (default 0.25)"}),
    (
        ("--execution-timeout",),
        {"type": float, "default": None, "help": "EXECUTION_TIMEOUT of the executor, in seconds"},
    ),
    (("--max-output-bytes",), {"type": int, "default": 1024 * 1024, "help": "MAX_OUTPUT_BYTES of the executor"}),
    (("--max-request-bytes",), {"type": int, "default": 1024 * 1024, "help": "MAX_REQUEST_BYTES of the executor"}),
    (("--timeout-factor",), {"type": float, "default": 1.0, "help": "multiply the kit's own waits (slow machines)"}),
    (("--startup-timeout",), {"type": float, "default": None, "help": "seconds for the executor to become ready"}),
]


class OptionError(ValueError):
    """An option has a value the kit cannot use; the message says which and why."""


def add_target_options(add: Callable[..., Any]) -> None:
    """Register the target options with ``add`` (argparse's add_argument or pytest's addoption)."""
    for flags, kwargs in TARGET_OPTIONS:
        add(*flags, **kwargs)


def limit(value: str) -> str | None:
    """A limit option's value, or None for 'none' / '0' / ''."""
    return None if value.strip().lower() in ("none", "0", "") else value


def size_in_bytes(value: str, option: str) -> int | None:
    """'512m', '2g', '1048576' or 'none' as a number of bytes (None for no limit)."""
    text = limit(value)
    if text is None:
        return None
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    try:
        return int(float(text[:-1]) * units[text[-1].lower()]) if text[-1].lower() in units else int(text)
    except ValueError:
        raise OptionError(f"{option} {value!r}: use a size such as 512m or 2g, or none") from None


def headers_from(values: list[str]) -> dict[str, str]:
    """'Name: value' options as a dict of headers, or OptionError saying which one is malformed."""
    headers = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise OptionError(f"--header {value!r}: use 'Name: value', e.g. 'Authorization: Bearer TOKEN'")
        headers[name.strip()] = text.strip()
    return headers


def timeouts_from(option: Callable[[str], Any]) -> KitTimeouts:
    """The kit's waits, scaled and overridden as the options say."""
    timeouts = KitTimeouts().scaled(option("timeout_factor"))
    if option("startup_timeout"):
        timeouts = KitTimeouts(**{**timeouts.__dict__, "startup": option("startup_timeout")})
    if option("execution_timeout") and not option("executor_url"):
        timeouts = KitTimeouts(**{**timeouts.__dict__, "execution_timeout": option("execution_timeout")})
    return timeouts


def target_from(option: Callable[[str], Any], timeouts: KitTimeouts) -> Target:
    """The unstarted target the options describe: an image, a URL, or a local command."""
    env = dict(pair.split("=", 1) for pair in option("executor_env") if "=" in pair)
    capabilities = Capabilities(
        max_output_bytes=option("max_output_bytes"), max_request_bytes=option("max_request_bytes")
    )
    if option("executor_image"):
        from .image import ImageTarget  # testcontainers is imported only when an image is used

        return ImageTarget(
            option("executor_image"),
            timeouts,
            memory=limit(option("memory")),
            cpus=float(c) if (c := limit(option("cpus"))) else None,
            workspace_folder=option("workspace_folder"),
            workspace="missing" if option("no_workspace") else "kit",
            env=env,
            capabilities=capabilities,
        )
    headers = headers_from(option("executor_header"))
    if headers and not option("executor_url"):
        raise OptionError("--header goes with --url: the kit starts other targets itself")
    if option("executor_url"):
        capabilities.workspace_mounted = option("workspace_mounted")
        capabilities.destructive = option("allow_destructive")
        capabilities.memory_limited = option("memory_limited")
        capabilities.execution_timeout = option("execution_timeout") or 3.0
        return UrlTarget(option("executor_url"), timeouts, capabilities, headers=headers)
    command = shlex.split(option("executor_command")) if option("executor_command") else None
    return ProcessTarget(
        timeouts,
        command=command,
        env=env,
        workspace="missing" if option("no_workspace") else "kit",
        capabilities=capabilities,
        memory_limit_bytes=size_in_bytes(option("process_memory_limit"), "--process-memory-limit"),
    )
