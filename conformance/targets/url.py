"""The URL target: an executor that is already running. The kit neither starts nor stops it; the
user says what it may do (``--workspace-mounted``, ``--allow-destructive``, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..timeouts import KitTimeouts
from .base import Beside, TargetState
from .readiness import probe_executor, wait_until_ready

__all__ = ["UrlTarget"]


@dataclass
class UrlTarget(TargetState):
    """An executor that is already running. The user says how it was started."""

    kind: ClassVar[str] = "url"
    on_kit_host: ClassVar[bool] = False
    timeouts: KitTimeouts

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

    def run_beside(
        self, script: Path, args: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
    ) -> Beside | None:
        return None  # the kit has no place beside an executor it did not start
