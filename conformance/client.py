"""The kit's HTTP client for one executor, bound to the requirement a test proves.

It never raises on an HTTP status or a transport error: every call returns an ``Exchange``,
and the checking helpers (``run``, ``expect``, ``wait_ready``) raise a ``Violation`` of the
bound requirement with that exchange as evidence.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import json
import math
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from . import languages
from .catalogue import Profile
from .languages import LanguagePack
from .pace import Timing
from .settings import CONTRACT_DEFAULTS
from .timeouts import KitTimeouts
from .violations import Exchange, Inconclusive, Violation

if TYPE_CHECKING:
    from .targets import Target

__all__ = [
    "BUSY",
    "EXECUTE_FIELDS",
    "ExecutorClient",
    "Stalls",
    "answer_said",
    "has_status",
    "output_text",
    "raised",
    "status_of",
]

#: Answers that mean "not now, ask again": busy (CONC-2) or restarting (RESTART-4).
BUSY = (429, 503)

#: The session variable that an attack not aimed at the session must leave alone (``attacked``).
SURVIVOR = "conformance_survivor"

#: How many kept-alive connections a GET may find closed by the server before a fresh one.
STALE_CONNECTION_RETRIES = 3

#: The fields an execute response must carry, by profile (``core``: only the outputs, as the
#: original executor README promised; ``full``: the contract's whole ExecuteResponse).
EXECUTE_FIELDS = {
    Profile.CORE: ("outputs",),
    Profile.FULL: ("status", "outputs", "execution_count", "duration_ms", "truncated", "restarted"),
}


class Stalls:
    """Behaviours the executor once failed to show within their bound (a hang), with the evidence.

    One per run, shared by every client of it: a hang observed once is evidence for every later
    scenario that needs the same behaviour, which then ends at once instead of waiting it out
    again. Keys are the suite's names for the behaviours.
    """

    def __init__(self) -> None:
        self._seen: dict[str, Violation] = {}
        self._lock = threading.Lock()

    def record(self, behaviour: str, violation: Violation) -> Violation:
        """Keep the first evidence of ``behaviour``'s hang; return the violation to raise."""
        with self._lock:
            return self._seen.setdefault(behaviour, violation)

    def get(self, behaviour: str) -> Violation | None:
        with self._lock:
            return self._seen.get(behaviour)


class Last(enum.Enum):
    """``expect``'s default evidence: the client's last exchange."""

    EXCHANGE = "the last exchange"


class ExecutorClient:
    """Talks to the executor at ``base_url`` (which may carry a path prefix such as /session/3)."""

    def __init__(
        self,
        base_url: str,
        timeouts: KitTimeouts,
        *,
        requirement: str | None = None,
        http: httpx.Client | None = None,
        default_execution_timeout: float | None = None,
        headers: dict[str, str] | None = None,
        keep: int | None = None,
        stalls: Stalls | None = None,
        profile: Profile = Profile.FULL,
        language: LanguagePack | None = None,
    ) -> None:
        """``headers``: sent with every request (a manager's session token, say). ``keep``: how many
        exchanges the history holds (default: all; the benchmark keeps one, as evidence of a failure).
        ``stalls``: the run's record of hangs (default: this client's own). ``profile``: the fields
        an execute response must carry (see ``EXECUTE_FIELDS``). ``language``: the pack whose code
        the client sends (default: the default pack)."""
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.requirement = requirement
        #: The executor's EXECUTION_TIMEOUT, to bound a call without a timeout of its own.
        self.default_execution_timeout = default_execution_timeout or CONTRACT_DEFAULTS.execution_timeout
        self._headers = headers
        self._http = http or httpx.Client(
            base_url=self.base_url,
            timeout=timeouts.request,
            headers=headers,
            limits=httpx.Limits(keepalive_expiry=timeouts.keepalive),
        )
        self._lock = threading.Lock()
        self.history: deque[Exchange] = deque(maxlen=keep)
        #: Answers 429 or 503 that ``execute_when_free`` asked again after.
        self.busy_answers = 0
        self.stalls = stalls or Stalls()
        #: Violations of other requirements than the test's own, kept until its own checks are
        #: done (``expect(later=True)``): the test's list (``outcomes.deferred``), which the
        #: plugin raises from once the test has passed.
        self.deferred: list[Violation] = []
        self.profile = profile
        self.language = language or languages.load(languages.DEFAULT)

    @classmethod
    def of_target(
        cls,
        target: Target,
        timeouts: KitTimeouts,
        *,
        stalls: Stalls | None = None,
        profile: Profile = Profile.FULL,
        language: LanguagePack | None = None,
        keep: int | None = None,
    ) -> ExecutorClient:
        """A client of a started target: its URL, the headers it needs, its EXECUTION_TIMEOUT."""
        return cls(
            target.base_url,
            timeouts,
            default_execution_timeout=target.capabilities.execution_timeout,
            headers=target.headers,
            keep=keep,
            stalls=stalls,
            profile=profile,
            language=language,
        )

    def like(self, base_url: str | None = None, **changes: Any) -> ExecutorClient:
        """A client made from this one: every setting of this one's (its URL, waits, requirement,
        connection, headers, record of hangs, profile, language), less ``changes``. The one way the
        kit makes a client from another."""
        kept: dict[str, Any] = {
            "requirement": self.requirement,
            "http": self._http,
            "default_execution_timeout": self.default_execution_timeout,
            "headers": self._headers,
            "keep": self.history.maxlen,
            "stalls": self.stalls,
            "profile": self.profile,
            "language": self.language,
        }
        return ExecutorClient(base_url or self.base_url, self.timeouts, **{**kept, **changes})

    def bound_to(self, requirement: str) -> ExecutorClient:
        """The same connection, with failures reported against ``requirement``."""
        client = self.like(requirement=requirement)
        client.history, client.deferred = self.history, self.deferred
        return client

    def of_sibling(self, base_url: str, **settings: Any) -> ExecutorClient:
        """A client of a second executor of the run (CODE-5's, CONFIG-2's), with a connection, a
        record of hangs, headers and waits of its own, and this client's requirement, profile and
        language (``settings``: others to change)."""
        own = {"http": None, "stalls": None, "headers": None, "default_execution_timeout": None, "keep": None}
        return self.like(base_url, **{**own, **settings})

    def close(self) -> None:
        self._http.close()

    @contextlib.contextmanager
    def _fresh(self) -> Iterator[ExecutorClient]:
        """This client on a connection of its own, as a new client's would be; closed after."""
        fresh = self.of_sibling(
            self.base_url, default_execution_timeout=self.default_execution_timeout, headers=self._headers
        )
        try:
            yield fresh
        finally:
            fresh.close()

    def code(self, snippet: str, /, **params: Any) -> str:
        """The language pack's code for ``snippet`` (``languages.SNIPPETS``); a test that needs one
        the pack lacks is not run (``languages.MissingSnippetError``)."""
        return self.language.code(snippet, **params)

    # -- raw calls -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Exchange:
        """Send one request; return what happened, whatever it was."""
        if json_body is not None:
            content = json.dumps(json_body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        shown = content.decode("utf-8", "replace") if isinstance(content, bytes) else (content or "")
        exchange = Exchange(method=method, path=path, request_body=shown, base_url=self.base_url)
        started = time.monotonic()
        try:
            response = self._send(method, path, content, headers, timeout)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            exchange.timed_out = isinstance(exc, httpx.TimeoutException)
        else:
            exchange.status = response.status_code
            exchange.body_text = response.text
            exchange.headers = dict(response.headers)
            try:
                exchange.json = response.json()
            except ValueError:
                exchange.json = None
        exchange.elapsed = time.monotonic() - started
        with self._lock:
            self.history.append(exchange)
        return exchange

    def send_now(self, method: str, path: str, *, json_body: Any) -> Callable[[float], Exchange]:
        """Send one request on a connection of its own and return once its bytes are sent, before
        any answer: the server has it before any request sent after this returns (ISO-7 orders
        calls so). Returns a function that waits up to its argument, in seconds, for the answer."""
        url = urllib.parse.urlsplit(self.base_url)
        content = json.dumps(json_body)
        exchange = Exchange(method=method, path=path, request_body=content, base_url=self.base_url)
        started = time.monotonic()
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=self.timeouts.request)
        try:
            connection.request(
                method, url.path + path, content, {"Content-Type": "application/json", **(self._headers or {})}
            )
        except OSError as exc:
            connection.close()
            exchange.error = f"{type(exc).__name__}: {exc}"

        def answer(within: float) -> Exchange:
            if exchange.error is None:
                try:
                    if connection.sock is not None:
                        connection.sock.settimeout(max(0.1, within - (time.monotonic() - started)))
                    response = connection.getresponse()
                    exchange.status, exchange.headers = response.status, dict(response.getheaders())
                    exchange.body_text = response.read().decode("utf-8", "replace")
                    with contextlib.suppress(ValueError):
                        exchange.json = json.loads(exchange.body_text)
                except (OSError, http.client.HTTPException) as exc:
                    exchange.error = f"{type(exc).__name__}: {exc}"
                    exchange.timed_out = isinstance(exc, socket.timeout)
                finally:
                    connection.close()
            exchange.elapsed = time.monotonic() - started
            with self._lock:
                self.history.append(exchange)
            return exchange

        return answer

    def _send(
        self, method: str, path: str, content: bytes | str | None, headers: dict[str, str] | None, timeout: float | None
    ) -> httpx.Response:
        """One request. A GET that meets a kept-alive connection the server closed as idle just as
        it was reused (HTTP allows both) is asked again, as a client would: it changes nothing."""
        attempts = 1 + (STALE_CONNECTION_RETRIES if method == "GET" else 0)
        for attempt in range(1, attempts + 1):
            try:
                return self._http.request(
                    method,
                    self.base_url + path,
                    content=content,
                    headers=headers,
                    timeout=timeout or self.timeouts.request,
                )
            except httpx.RemoteProtocolError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def health(self, timeout: float | None = None, *, new_connection: bool = False) -> Exchange:
        """GET /health; with ``new_connection``, on a connection of its own, as a new client would."""
        if new_connection:
            with self._fresh() as fresh:
                exchange = fresh.request("GET", "/health", timeout=timeout)
            with self._lock:
                self.history.append(exchange)
            return exchange
        return self.request("GET", "/health", timeout=timeout)

    def ready(self) -> Exchange:
        return self.request("GET", "/ready")

    def restart(self) -> Exchange:
        return self.request("POST", "/restart", timeout=self.timeouts.ready + self.timeouts.request)

    def restart_answered(self) -> Exchange:
        """POST /restart, whose answer must be 200 ``ok`` or ``restarting`` (else RESTART-1 is violated)."""
        exchange = self.restart()
        body = exchange.json
        self.expect(
            exchange.status == 200 and isinstance(body, dict) and body.get("status") in ("ok", "restarting"),
            'HTTP 200 {"status": "ok"} or {"status": "restarting"}',
            exchange.response_line,
            exchange,
            requirement="RESTART-1",
        )
        return exchange

    def new_session(self) -> float:
        """Restart as a manager does between two users, and wait for /ready: the seconds it took."""
        started = time.monotonic()
        self.restart_answered()
        self.wait_ready()
        return time.monotonic() - started

    def execute(
        self, code: str, timeout: float | None = None, *, client_timeout: float | None = None, **extra: Any
    ) -> Exchange:
        """POST /execute, waiting long enough for the code's timeout and the contract's slack.

        ``client_timeout``: give up (and close the connection) after this many seconds instead.
        """
        body: dict[str, Any] = {"code": code, **extra}
        if timeout is not None:
            body["timeout"] = timeout
        budget = (timeout or self.default_execution_timeout) + self.timeouts.timeout_slack + self.timeouts.request
        return self.request("POST", "/execute", json_body=body, timeout=client_timeout or budget)

    @contextlib.contextmanager
    def health_watched(self, what: str) -> Iterator[None]:
        """/health must answer within ``timeouts.health`` throughout the block (asked from a
        thread, on a new connection each time, as a new client would). A wrong answer fails at
        once; a late one (or none in time) must be confirmed by another (``conformance.pace``)."""
        wrong: list[Exchange] = []
        timing = Timing(self.timeouts.health, f"/health within {self.timeouts.health:.0f} s throughout {what}")
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                health = self.health(timeout=self.timeouts.health, new_connection=True)
                if health.timed_out or health.status == 200:
                    timing.saw_answer(health)
                else:
                    wrong.append(health)
                stop.wait(self.timeouts.health_watch)

        watcher = threading.Thread(target=watch, name="conformance-health-watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
        self.expect(not wrong, timing.expected, wrong[0].response_line if wrong else "", wrong[0] if wrong else None)
        self.judge_time(timing)

    @contextlib.contextmanager
    def attacked(self, what: str) -> Iterator[None]:
        """Around an attack not aimed at the session: /health answers throughout
        (``health_watched``), and a variable defined before it survives."""
        value = f"survived {what}"
        self.expect_status(self.run(self.code("define", name=SURVIVOR, value=value)), "ok")
        with self.health_watched(what):
            yield
        kept = self.evaluate(self.code("variable_value", name=SURVIVOR))
        self.expect(kept == value, f"the session's variable still {value!r} after {what}", kept)

    # -- checks ----------------------------------------------------------------------------
    def fail(
        self, expected: str, received: str, exchange: Exchange | None = None, requirement: str | None = None
    ) -> Violation:
        """A violation of ``requirement`` (default: the bound one), to raise."""
        requirement = requirement or self.requirement
        if requirement is None:
            raise ValueError("this client is not bound to a requirement; use bound_to()")
        return Violation(requirement, expected=expected, received=received, exchange=exchange)

    def expect(
        self,
        condition: bool,
        expected: str,
        received: Any,
        exchange: Exchange | Last | None = Last.EXCHANGE,
        requirement: str | None = None,
        *,
        later: bool = False,
    ) -> None:
        """Raise a violation unless ``condition`` holds; the evidence is the last exchange unless given.

        ``later``: a check of another ``requirement`` that the test's own checks do not depend on
        (the fields of an error item, in a test of the session's state): the test goes on, and the
        violation is raised once it has passed, so that its own requirement is judged too."""
        if not condition:
            evidence = self.last if exchange is Last.EXCHANGE else exchange
            violation = self.fail(
                expected, received if isinstance(received, str) else repr(received), evidence, requirement
            )
            if not later or violation.requirement.id == self.requirement:  # the test's own: at once
                raise violation
            self.deferred.append(violation)

    def run(
        self, code: str, timeout: float | None = None, *, requirement: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Execute ``code`` and return the response body, which must be a 200 execute response.

        A 429 or 503 (busy, or a restart under way: CONC-2, RESTART-4) is asked again, as a
        client would, until ``timeouts.ready`` passes.
        """
        return self.expect_execute_response(self.execute_when_free(code, timeout, **extra), requirement=requirement)

    def execute_when_free(
        self, code: str, timeout: float | None = None, *, within: float | None = None, **extra: Any
    ) -> Exchange:
        """POST /execute, asked again while the answer is 429 or 503 (for ``within`` s, by default
        ``timeouts.ready``); the exchange of the last try."""
        deadline = time.monotonic() + (within or self.timeouts.ready)
        exchange = self.execute(code, timeout, **extra)
        while exchange.status in BUSY and time.monotonic() < deadline:
            self.busy_answers += 1
            time.sleep(self.timeouts.poll_interval)
            exchange = self.execute(code, timeout, **extra)
        return exchange

    def expect_execute_response(self, exchange: Exchange, *, requirement: str | None = None) -> dict[str, Any]:
        self.expect(exchange.error is None, "an answer", exchange.response_line, exchange, requirement)
        self.expect(exchange.status == 200, "HTTP 200", exchange.response_line, exchange, requirement)
        body = exchange.json
        fields = EXECUTE_FIELDS[self.profile]
        expected = f"a JSON execute response with {', '.join(fields)}"
        # A malformed execute response is an EXEC-1 violation, whichever test saw it. Without its
        # outputs no test can go on; without the rest (its status too, read from the outputs then:
        # ``status_of``), the test goes on and judges its own requirement, and EXEC-1's violation
        # is raised after (``expect(later=True)``).
        usable = isinstance(body, dict) and isinstance(body.get("outputs"), list)
        self.expect(usable, expected, exchange.response_line, exchange, "EXEC-1")
        assert isinstance(body, dict)
        complete = all(name in body for name in fields)
        self.expect(complete, expected, exchange.response_line, exchange, "EXEC-1", later=True)
        return body

    @property
    def last(self) -> Exchange | None:
        """The most recent exchange, as evidence."""
        return self.history[-1] if self.history else None

    def evaluate(self, expression: str, *, requirement: str | None = None) -> Any:
        """The value of a JSON-serialisable ``expression`` (code of the session's language) in the session."""
        body = self.run(self.code("print_json", expression=expression), requirement=requirement)
        lines = output_text(body, type_="stream", name="stdout").strip().splitlines()
        text = lines[-1] if lines else ""
        self.expect(
            status_of(body) == "ok",
            f"`{expression}` to evaluate",
            f"status {status_of(body)!r}: {output_text(body)}",
            self.last,
            requirement,
        )
        try:
            return json.loads(text)
        except ValueError:
            raise self.fail(f"the JSON value of `{expression}` on stdout", repr(text), self.last, requirement) from None

    def printed(self, code: str, expected: str, timeout: float | None = None) -> Any:
        """The JSON value ``code`` prints on its last line (its status must be ok)."""
        return self.printed_in(self.run(code, timeout), expected)

    def printed_in(self, body: dict[str, Any], expected: str) -> Any:
        """The JSON value an execute response ``body`` printed on its last line (its status must be ok)."""
        self.expect_status(body, "ok")
        lines = output_text(body, type_="stream", name="stdout").strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            raise self.fail(expected, output_text(body)[-500:], self.last) from None

    def expect_status(
        self,
        body: dict[str, Any],
        status: str,
        exchange: Exchange | Last | None = Last.EXCHANGE,
        requirement: str | None = None,
    ) -> None:
        self.expect(
            has_status(body, status),
            f'"status": "{status}"',
            f'"status": {status_of(body)!r}; outputs: {body.get("outputs")!r}',
            exchange,
            requirement,
        )

    def judge_time(
        self, first: Timing, again: Callable[[], Timing] | None = None, *, requirement: str | None = None
    ) -> None:
        """Judge a time bound on the executor's time, not the machine's (``conformance.pace``).

        ``first``: what a scenario saw; ``again``: runs the scenario once more (None: it cannot
        be, and ``first`` must be late twice on its own). Passes unless confirmed late; then fails
        on a quiet path, and raises ``Inconclusive`` on a loaded one."""
        if again is None:  # the scenario's own second late observation confirms; the path, measured after
            if not first.confirmed:
                return  # the one late answer was the machine's
            second, path = first, self.path_delay()
            received = first.received
        else:
            if not first.late:
                return
            before = self.path_delay()
            second = again()
            if not second.late:
                return  # the first was the machine's
            path = max(before, self.path_delay())
            received = f"{first.received}, and again {second.received}"
        received += f"; the kit's no-op round trip took {path:.3f} s"
        requirement = requirement or self.requirement
        if requirement is None:
            raise ValueError("this client is not bound to a requirement; use bound_to()")
        if path > self.timeouts.quiet_path:
            raise Inconclusive(requirement, expected=second.expected, received=received)
        raise self.fail(second.expected, received, second.late[-1].exchange, requirement)

    def path_delay(self) -> float:
        """The kit's own path to the executor, idle: the round trip of ``GET /health`` and of an
        execute of trivial code, each on a connection of its own; the longer, in seconds (no
        answer in time: infinite). Recorded in no history: it is the kit's measure, not evidence."""
        within = self.timeouts.request
        with self._fresh() as probe:
            health = probe.request("GET", "/health", timeout=within)
        with self._fresh() as probe:
            trivial = probe.execute_when_free(self.code("trivial"), within=within, client_timeout=within)
        answered = all(exchange.error is None for exchange in (health, trivial))
        return max(health.elapsed, trivial.elapsed) if answered else math.inf

    def wait_until(self, condition: Callable[[], Exchange | None], within: float, expected: str) -> Exchange:
        """Poll ``condition`` (returns an exchange when satisfied, None otherwise) until ``within`` s pass."""
        deadline = time.monotonic() + within
        last: Exchange | None = None
        while True:
            result = condition()
            if result is not None:
                return result
            last = self.history[-1] if self.history else None
            if time.monotonic() >= deadline:
                raise self.fail(
                    expected, f"not within {within:.0f} s; last answer: {last.response_line if last else 'none'}", last
                )
            time.sleep(self.timeouts.poll_interval)

    def usable(self) -> bool:
        """Ready and running trivial code with status ok.

        A session an earlier test left busy or unready (code still running past a timeout that
        never fired, say) is restarted once, as a manager restarts it between two users, rather
        than waited out: a few seconds for it to answer, then the restart and the full waits.
        """
        if self._runs_trivial_code(self.timeouts.prompt):
            return True
        self.restart()
        return self._runs_trivial_code(self.timeouts.ready)

    def _runs_trivial_code(self, within: float) -> bool:
        try:
            self.wait_ready(within)
        except Violation:
            return False
        exchange = self.execute_when_free(self.code("trivial"), within=within, client_timeout=within)
        return exchange.status == 200 and isinstance(exchange.json, dict) and has_status(exchange.json, "ok")

    def wait_ready(self, within: float | None = None) -> Exchange:
        """Poll /ready until it says ready; a violation of the bound requirement if it never does."""

        def ready_now() -> Exchange | None:
            exchange = self.ready()
            ok = exchange.status == 200 and isinstance(exchange.json, dict) and exchange.json.get("ready") is True
            return exchange if ok else None

        return self.wait_until(ready_now, within or self.timeouts.ready, '/ready to answer 200 {"ready": true}')


def status_of(body: dict[str, Any]) -> str:
    """The response's ``status``; one left out (the ``core`` profile allows it) read from the
    outputs: an ``error`` item means error, none means ok."""
    status = body.get("status")
    if isinstance(status, str):
        return status
    outputs = body.get("outputs")
    items = outputs if isinstance(outputs, list) else []
    return "error" if any(isinstance(item, dict) and item.get("type") == "error" for item in items) else "ok"


def has_status(body: dict[str, Any], status: str) -> bool:
    """Whether the response says ``status``. A timeout cannot be read from the outputs: a response
    without ``status`` (``core``) is judged on its timing alone, by the caller."""
    if status == "timeout" and "status" not in body:
        return True
    return status_of(body) == status


def answer_said(body: dict[str, Any]) -> str:
    """What an execute response said, for a violation's "Received:": its status, and the error it
    reported (name and message, or its text's last line), whatever shape the item has."""
    said = f"status {status_of(body)!r}"
    for item in body.get("outputs", []):
        if isinstance(item, dict) and item.get("type") == "error":
            name, value = item.get("ename", item.get("name")), item.get("evalue", item.get("value"))
            last = str(item.get("text", "")).strip().splitlines()[-1:] or [""]
            said += f": {name}: {value}" if name is not None else f": {last[0]}"
            break
    return said


def raised(body: dict[str, Any], name: str) -> bool:
    """Whether an ``error`` item names the exception ``name``, in whichever of its fields it does
    (``ename``, ``text``, ``traceback``, or an executor's own such as ``name``). Which fields an
    item must have is EXEC-5's and ERROR-1's to judge, in their own tests: a check that reads the
    session's state (was the variable gone?) judges the state, not the item's shape."""
    return any(
        isinstance(item, dict) and item.get("type") == "error" and name in _said(item)
        for item in body.get("outputs", [])
    )


def _said(item: dict[str, Any]) -> str:
    """Every string an output item holds, in its fields and their lists, joined."""
    strings = [value for value in item.values() if isinstance(value, str)]
    strings += [part for value in item.values() if isinstance(value, list) for part in value if isinstance(part, str)]
    return "\n".join(strings)


def output_text(body: dict[str, Any], *, type_: str | None = None, name: str | None = None) -> str:
    """The texts of the response's output items joined, optionally of one type or stream name."""
    return "".join(
        str(item.get("text", ""))
        for item in body.get("outputs", [])
        if isinstance(item, dict)
        and (type_ is None or item.get("type") == type_)
        and (name is None or item.get("name") == name)
    )
