"""Waiting for an executor: the port it answers on, and /ready until it says ready, each within the
kit's start-up wait, with a progress line during long waits; and the first look at a URL, so that a
wrong address is said at once, not certified as a broken executor."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

import httpx

from ..settings import CONTRACT_DEFAULTS
from ..timeouts import KitTimeouts
from .base import NeverReadyError, ReadyObservation, StartupTimeout, Target, TargetError

__all__ = [
    "Alive",
    "Logs",
    "WaitProgress",
    "ports_to_try",
    "probe_executor",
    "reach_started",
    "say_on_stderr",
    "wait_until_ready",
]

#: Why the executor is gone (it exited, its container died), or None while it runs.
Alive = Callable[[], str | None]
#: The executor's last log lines.
Logs = Callable[[], str]


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
    alive: Alive,
    logs: Logs,
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
    target: Target, timeouts: KitTimeouts, ports: Callable[[], list[int]], url_of: Callable[[int], str], alive: Alive
) -> None:
    """An executor the kit started, once /ready says ready: the port it answers on (its
    ``capabilities.answered_on``) and its ``base_url``."""
    port, base_url = _find_answering_port(ports, url_of, timeouts, alive, target.logs, target.say)
    wait_until_ready(base_url, timeouts, target.startup_observations, alive, target.logs, say=target.say)
    target.capabilities.answered_on, target.base_url = port, base_url


def wait_until_ready(
    base_url: str,
    timeouts: KitTimeouts,
    observations: list[ReadyObservation],
    alive: Alive,
    logs: Logs,
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
