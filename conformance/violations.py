"""Violations: assertion errors that point at a requirement, with the evidence that showed it.

A check in the suite raises ``Violation`` (never a bare ``assert``) so that the report can say
which requirement failed, at which level, what was expected, what came back and which request
showed it. Example message::

    [MUST TIMEOUT-3] the next execute after a timeout runs normally and promptly.
    Expected: an answer within 5 s. Received: no answer after 20.0 s.
    Request: POST /execute {"code": "1"}
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from . import catalogue

__all__ = ["Exchange", "Inconclusive", "Violation", "cut"]

#: How much of a request or response body the evidence keeps.
EVIDENCE_CHARS = 1500


def cut(text: str, limit: int = EVIDENCE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


@dataclass
class Exchange:
    """One HTTP request to the executor and what came back (or why nothing did)."""

    method: str
    path: str
    request_body: str = ""
    status: int | None = None
    body_text: str = ""
    json: Any = None
    elapsed: float = 0.0
    error: str | None = None
    #: No answer came within the client's timeout (rather than a refused or broken connection).
    timed_out: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    #: Where the request went (the executor's base URL), for a command that sends it again.
    base_url: str = ""
    #: How to send the request again, when whoever made it says so (schemathesis does).
    reproduce: str | None = None

    @property
    def curl(self) -> str:
        """A curl command that sends the request again (a body longer than the evidence keeps is cut)."""
        if self.reproduce is not None:
            return self.reproduce
        command = ["curl", "-sS", "-i", "-X", self.method, shlex.quote(self.base_url + self.path)]
        if self.request_body:
            body = cut(self.request_body, EVIDENCE_CHARS)
            command += ["-H", shlex.quote("Content-Type: application/json"), "--data-binary", shlex.quote(body)]
        return " ".join(command)

    @property
    def request_line(self) -> str:
        body = f" {cut(self.request_body, 300)}" if self.request_body else ""
        return f"{self.method} {self.path}{body}"

    @property
    def response_line(self) -> str:
        if self.error is not None:
            return f"no answer after {self.elapsed:.1f} s ({self.error})"
        return f"HTTP {self.status} in {self.elapsed:.2f} s: {cut(self.body_text)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.request_line,
            "status": self.status,
            "response": cut(self.body_text),
            "elapsed_s": round(self.elapsed, 3),
            "error": self.error,
            "curl": self.curl,
        }


class Violation(AssertionError):
    """The executor broke requirement ``requirement_id``."""

    def __init__(
        self,
        requirement_id: str,
        *,
        expected: str,
        received: str,
        exchange: Exchange | None = None,
    ) -> None:
        self.requirement = catalogue.get(requirement_id)
        self.expected = expected
        self.received = received
        self.exchange = exchange
        #: Raised after the test's own checks had all passed (``ExecutorClient.expect(later=True)``).
        self.after_own_checks = False
        super().__init__(self.message)

    @property
    def message(self) -> str:
        r = self.requirement
        text = f"{r.label} {r.title}.\nExpected: {self.expected}.\nReceived: {cut(self.received)}."
        if self.exchange is not None:
            text += f"\nRequest: {self.exchange.request_line}"
            text += f"\nResponse: {cut(self.exchange.response_line, 300)}"
            text += f"\nReproduce: {cut(self.exchange.curl, 600)}"
        return text

    def evidence(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "received": cut(self.received),
            "exchange": self.exchange.as_dict() if self.exchange else None,
        }


class Inconclusive(Exception):
    """A time bound of ``requirement_id`` was missed twice, on a machine too loaded to say whose the
    time was (see ``conformance.pace``): the requirement is neither passed nor failed."""

    def __init__(self, requirement_id: str, *, expected: str, received: str) -> None:
        self.requirement = catalogue.get(requirement_id)
        self.expected = expected
        self.received = received
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"inconclusive on a loaded machine: {self.expected} expected; {self.received}"
