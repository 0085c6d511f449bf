"""The bounds on a request that both servers apply, with their defaults and how they are read
from the environment. The standard library alone: imported before the reference executor's first
kernel starts."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DRAIN_LIMIT_BYTES",
    "MAX_REQUEST_BYTES",
    "REQUEST_READ_TIMEOUT",
    "HeadLimits",
    "SettingError",
    "not_installed",
    "positive",
]

#: Seconds a client has to send a whole request, from its connection or its request's first byte
#: (REQUEST_READ_TIMEOUT; contract INPUT-6); past it the connection is closed.
REQUEST_READ_TIMEOUT = 5.0
#: The largest request body served, unless MAX_REQUEST_BYTES says otherwise (the contract's
#: default; the manager passes on no larger body than its executors take).
MAX_REQUEST_BYTES = 1024 * 1024
#: A body over its limit is read (and dropped) up to this many bytes before the 413 goes out:
#: closing on unread data would send a TCP reset that can destroy the 413 (RFC 9112, 9.6).
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class SettingError(ValueError):
    """An environment variable has a value the server cannot use."""


def positive(env: Mapping[str, str], name: str, default: float, kind: type[float] | type[int] = float) -> Any:
    """A positive number from ``env[name]`` (``default`` when unset), or SettingError saying why not."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a {'number' if kind is float else 'whole number'}") from None
    if value <= 0:
        raise SettingError(f"{name}={raw!r} must be greater than 0")
    return value


@dataclass(frozen=True)
class HeadLimits:
    """Bounds on a request's head, in bytes and fields (contract INPUT-7).

    A head past one gets 431 and its connection closed, and is never read further: without
    them four never-ending header lines of 39 MiB each took a 256 MB container's memory
    (issue #28). The reference executor and the manager serve with the same bounds.
    """

    #: The request line, and each header field, name and value (MAX_HEADER_LINE_BYTES).
    line: int = 8 * 1024
    #: The whole head: the request line and every header field (MAX_HEAD_BYTES).
    head: int = 64 * 1024
    #: Header fields in one request (MAX_HEADER_COUNT).
    count: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HeadLimits:
        default = cls()
        return cls(
            line=positive(env, "MAX_HEADER_LINE_BYTES", default.line, int),
            head=positive(env, "MAX_HEAD_BYTES", default.head, int),
            count=positive(env, "MAX_HEADER_COUNT", default.count, int),
        )


def not_installed(modules: Iterable[str]) -> list[str]:
    """Those of ``modules`` that cannot be imported here (looked up, not imported: it is cheap)."""
    absent = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            absent.append(name)
    return absent
