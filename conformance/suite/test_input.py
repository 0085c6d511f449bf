"""Bad input and hostile clients (INPUT-1 to INPUT-7)."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import httpx
import pytest

from conformance.client import ExecutorClient, output_text
from conformance.pace import Timing
from conformance.raw_http import HEAD_SHAPES, NOT_HTTP_1_1, flood_heads, send_raw
from conformance.targets import Capabilities
from conformance.violations import Exchange

JSON = {"Content-Type": "application/json"}
#: INPUT-6: how many slow connections the kit opens at once.
SLOW_CONNECTIONS = 20
#: INPUT-7: never-ending heads of each shape at once, and how much of each the kit sends at most:
#: far past the contract's largest bound (1 MiB) and the kernel's socket buffers, and together
#: half a 256 MB container's memory.
HEAD_FLOODS = 4
HEAD_FLOOD_BYTES = 32 * 1024 * 1024

#: Malformed execute requests: (name, raw body). Each must get a 4xx JSON error.
BAD_BODIES = {
    "malformed JSON": b'{"code": "1+1"',
    "not JSON at all": b"print('hello')",
    "empty body": b"",
    "JSON array": b'["1+1"]',
    "JSON string": b'"1+1"',
    "JSON null": b"null",
    "missing code": b"{}",
    "code is a number": b'{"code": 42}',
    "code is null": b'{"code": null}',
    "code is a list": b'{"code": ["1+1"]}',
    "timeout is zero": b'{"code": "1+1", "timeout": 0}',
    "timeout is negative": b'{"code": "1+1", "timeout": -3}',
    "timeout is a string": b'{"code": "1+1", "timeout": "soon"}',
    "invalid UTF-8": b'{"code": "\xff\xfe"}',
    "timeout is NaN": b'{"code": "1+1", "timeout": NaN}',
    "timeout is Infinity": b'{"code": "1+1", "timeout": Infinity}',
    "a body 100,000 arrays deep": b"[" * 100_000 + b"]" * 100_000,
}

#: Valid JSON built to break a parser or what comes after it: (name, raw body). An executor may run
#: them (2xx) or refuse them (4xx JSON), never answer 5xx (INPUT-1).
HOSTILE_BODIES = {
    "an unknown field 100,000 arrays deep": b'{"code": "1+1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "an unknown field of 500,000 digits": b'{"code": "1+1", "x": ' + b"7" * 500_000 + b"}",
    "a timeout of 500,000 digits": b'{"code": "1+1", "timeout": ' + b"7" * 500_000 + b"}",
    "a lone surrogate in the code": b'{"code": "print(\'\\ud800\')"}',
    "a lone surrogate as the code": b'{"code": "\\udfff"}',
    "duplicate keys": b'{"code": 42, "code": "1+1"}',
}


def _expect_json_4xx(executor: ExecutorClient, exchange: Exchange, what: str) -> None:
    executor.expect(
        exchange.status is not None and 400 <= exchange.status < 500,
        f"a 4xx answer to {what}",
        exchange.response_line,
        exchange,
    )
    executor.expect(isinstance(exchange.json, dict), f"a JSON error body for {what}", exchange.response_line, exchange)


@pytest.mark.conformance_requirement("INPUT-1")
@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_request_gets_a_4xx_json_error(
    executor: ExecutorClient, declared_features: frozenset[str], case: str
) -> None:
    """Malformed requests get a 4xx JSON error, never a 5xx, and the executor stays usable. A bad
    `timeout` is malformed only where the executor honours one (feature `timeout_override`);
    elsewhere it is an unknown field (INPUT-4): 2xx, or a 4xx JSON error, never a 5xx."""
    exchange = executor.request("POST", "/execute", content=BAD_BODIES[case], headers=JSON)
    if case.startswith("timeout") and "timeout_override" not in declared_features:
        _expect_no_5xx(executor, exchange, f"{case}, from a client of an executor without per-request timeouts")
    else:
        _expect_json_4xx(executor, exchange, case)
    body = executor.run(executor.code("one_plus_one"))
    executor.expect_status(body, "ok")


def _expect_no_5xx(executor: ExecutorClient, exchange: Exchange, what: str) -> None:
    executor.expect(
        exchange.status is not None and (200 <= exchange.status < 300 or 400 <= exchange.status < 500),
        f"2xx, or a 4xx JSON error, for {what}",
        exchange.response_line,
        exchange,
    )
    if exchange.status is not None and exchange.status >= 400:
        executor.expect(
            isinstance(exchange.json, dict), f"a JSON error body for {what}", exchange.response_line, exchange
        )


@pytest.mark.conformance_requirement("INPUT-1")
@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_hostile_valid_json_never_gets_a_5xx(executor: ExecutorClient, case: str) -> None:
    """Deep nesting, huge numbers, lone surrogates, duplicate keys: 2xx or a 4xx JSON error, never a 5xx."""
    exchange = executor.request("POST", "/execute", content=HOSTILE_BODIES[case], headers=JSON)
    _expect_no_5xx(executor, exchange, case)
    executor.expect_status(executor.run(executor.code("one_plus_one")), "ok")


@pytest.mark.conformance_requirement("INPUT-1")
@pytest.mark.parametrize("case", list(NOT_HTTP_1_1))
def test_bytes_that_are_not_http_1_1_never_get_a_5xx(executor: ExecutorClient, case: str) -> None:
    """An HTTP/2 preface, a TLS handshake, a broken Content-Length: a 4xx (JSON, if it has a body)
    or the connection closed; never a 5xx, and the executor stays usable."""
    url = httpx.URL(executor.base_url)
    answer = send_raw(url.host, url.port or 80, NOT_HTTP_1_1[case], within=executor.timeouts.request)
    executor.expect(
        (answer.status is None and answer.closed and not answer.received)
        or (answer.status is not None and 400 <= answer.status < 500),
        f"a 4xx, or the connection closed, for {case}",
        answer.describe(),
        None,
    )
    if answer.status is not None and answer.body:
        executor.expect(
            "json" in answer.head.lower() and _is_json(answer.body),
            f"a JSON error body for {case}",
            f"{answer.head!r} {answer.body[:200]!r}",
            None,
        )
    executor.expect_status(executor.run(executor.code("one_plus_one")), "ok")


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@pytest.mark.conformance_requirement("INPUT-2")
def test_body_over_the_size_limit_gets_413(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """A body over MAX_REQUEST_BYTES gets 413; one of three quarters of it is accepted."""
    limit = capabilities.settings.max_request_bytes
    for size, status in ((limit * 3 // 4, 200), (limit + 1024, 413)):
        content = b'{"code": "' + b"#" * size + b'"}'
        exchange = executor.request("POST", "/execute", content=content, headers=JSON)
        executor.expect(
            exchange.status == status,
            f"HTTP {status} for a {len(content)}-byte body (MAX_REQUEST_BYTES = {limit})",
            exchange.response_line,
            exchange,
        )
    executor.expect_status(executor.run(executor.code("one_plus_one")), "ok")


@pytest.mark.conformance_requirement("INPUT-3")
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no-such-endpoint", 404),
        ("POST", "/no/such/endpoint", 404),
        ("GET", "/execute", 405),
        ("PUT", "/execute", 405),
        ("POST", "/health", 405),
        ("DELETE", "/ready", 405),
        ("GET", "/restart", 405),
    ],
)
def test_unknown_paths_get_404_and_wrong_methods_405(
    executor: ExecutorClient, method: str, path: str, status: int
) -> None:
    """Unknown paths get 404 and wrong methods 405."""
    exchange = executor.request(method, path)
    executor.expect(exchange.status == status, f"HTTP {status}", exchange.response_line, exchange)


@pytest.mark.conformance_requirement("INPUT-4")
def test_unknown_request_fields_are_ignored(executor: ExecutorClient) -> None:
    """Unknown fields of an execute request are ignored."""
    body = executor.run(executor.code("print_sum", a=20, b=22), session="abc", language="python", options={"x": 1})
    executor.expect_status(body, "ok")
    executor.expect(output_text(body) == "42\n", "the output '42'", body["outputs"])


@pytest.mark.conformance_requirement("INPUT-5")
def test_a_timeout_above_the_maximum_gets_422(executor: ExecutorClient, capabilities: Capabilities) -> None:
    """A `timeout` above MAX_EXECUTION_TIMEOUT is refused with 422; the maximum itself is accepted."""
    cases = [(1e30, 422)]  # above any maximum an operator would set
    if capabilities.settings.max_execution_timeout is not None:  # known: the kit set it, or the executor said it
        maximum = capabilities.settings.max_execution_timeout
        cases = [(maximum + 1, 422), (maximum, 200), *cases]
    for timeout, status in cases:
        exchange = executor.execute(
            executor.code("one_plus_one"), timeout=timeout, client_timeout=executor.timeouts.request
        )
        executor.expect(
            exchange.status == status,
            f"HTTP {status} for a timeout of {timeout:g} s (MAX_EXECUTION_TIMEOUT: "
            f"{capabilities.settings.max_execution_timeout or 'unknown'})",
            exchange.response_line,
            exchange,
        )


def _slow_connections(host: str, port: int) -> list[socket.socket]:
    """Connections that send half a request head, then stop (half of them), or trickle (the rest)."""
    connections = []
    for _ in range(SLOW_CONNECTIONS):
        connection = socket.create_connection((host, port), timeout=5)
        connection.sendall(b"POST /execute HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Le")
        connection.setblocking(False)
        connections.append(connection)
    return connections


def _closed_by_peer(connection: socket.socket) -> bool:
    try:
        return connection.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: closed too
        return True


@pytest.mark.conformance_requirement("INPUT-6")
def test_slow_clients_are_closed_and_do_not_starve_health(executor: ExecutorClient) -> None:
    """Connections that stop sending, or trickle, their request head are closed; /health answers meanwhile."""
    url = httpx.URL(executor.base_url)
    connections = _slow_connections(url.host, url.port or 80)
    try:
        deadline = time.monotonic() + executor.timeouts.slow_client
        open_ = list(connections)
        trickled = 0
        timing = Timing(
            executor.timeouts.health, f"/health within {executor.timeouts.health:.0f} s while slow connections are open"
        )
        while open_ and time.monotonic() < deadline:
            health = executor.health(timeout=executor.timeouts.health, new_connection=True)  # a new client
            # No answer in time is late (judged on the executor's time, below); a wrong one fails.
            executor.expect(health.timed_out or health.status == 200, timing.expected, health.response_line, health)
            timing.saw_answer(health)
            open_ = [c for c in open_ if not _closed_by_peer(c)]
            for connection in open_[: len(open_) // 2]:  # the trickling half: one more byte each round
                with contextlib.suppress(OSError):
                    connection.send(b"n")
                    trickled += 1
            time.sleep(executor.timeouts.poll_interval * 10)
        executor.judge_time(timing)
        executor.expect(
            not open_,
            f"all {SLOW_CONNECTIONS} slow connections closed by the executor within "
            f"{executor.timeouts.slow_client:.0f} s",
            f"{len(open_)} still open ({trickled} bytes trickled)",
        )
    finally:
        for connection in connections:
            connection.close()
    executor.expect_status(executor.run(executor.code("one_plus_one")), "ok")


@pytest.mark.conformance_requirement("INPUT-7")
def test_request_heads_are_bounded(executor: ExecutorClient) -> None:
    """Never-ending request heads are answered with a 4xx or cut; /health answers and the session lives."""
    url = httpx.URL(executor.base_url)
    what = f"{HEAD_FLOODS} never-ending heads at once, of each shape ({', '.join(HEAD_SHAPES)})"
    with executor.attacked(what):
        floods = flood_heads(
            url.host, url.port or 80, connections=HEAD_FLOODS, cap=HEAD_FLOOD_BYTES, within=executor.timeouts.head_flood
        )
    unbounded = [flood.describe() for flood in floods if flood.unbounded]
    executor.expect(
        not unbounded,
        f"every head answered with a 4xx, closed or no longer read before {HEAD_FLOOD_BYTES >> 21} MiB of the "
        f"{HEAD_FLOOD_BYTES >> 20} MiB sent (within {executor.timeouts.head_flood:.0f} s)",
        "; ".join(unbounded),
        None,
    )
    wrong = [flood.describe() for flood in floods if flood.status is not None and not 400 <= flood.status < 500]
    executor.expect(not wrong, "only 4xx answers (431) to a head past the executor's bounds", "; ".join(wrong), None)
    executor.expect_status(executor.run(executor.code("one_plus_one")), "ok")


@pytest.mark.conformance_requirement("INPUT-8")
@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_head_is_answered_wherever_get_is(executor: ExecutorClient, path: str) -> None:
    """HEAD gets GET's status, and no body (RFC 9110, 9.3.2)."""
    get = executor.request("GET", path)
    head = executor.request("HEAD", path)
    executor.expect(
        head.status == get.status and head.body_text == "",
        f"HTTP {get.status}, as GET {path} answers, with no body",
        head.response_line,
        head,
    )
