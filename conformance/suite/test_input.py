"""Bad input (INPUT-1 to INPUT-4)."""

from __future__ import annotations

import pytest

from conformance.client import ExecutorClient, output_text

JSON = {"Content-Type": "application/json"}

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
}


def _expect_json_4xx(executor: ExecutorClient, exchange, what: str) -> None:
    executor.expect(
        exchange.status is not None and 400 <= exchange.status < 500,
        f"a 4xx answer to {what}",
        exchange.response_line,
        exchange,
    )
    executor.expect(isinstance(exchange.json, dict), f"a JSON error body for {what}", exchange.response_line, exchange)


@pytest.mark.requirement("INPUT-1")
@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_request_gets_a_4xx_json_error(executor: ExecutorClient, case: str) -> None:
    """Malformed requests get a 4xx JSON error, never a 5xx, and the executor stays usable."""
    exchange = executor.request("POST", "/execute", content=BAD_BODIES[case], headers=JSON)
    _expect_json_4xx(executor, exchange, case)
    body = executor.run("1+1")
    executor.expect_status(body, "ok", executor.last)


@pytest.mark.requirement("INPUT-2")
def test_body_over_the_size_limit_gets_413(executor: ExecutorClient, capabilities) -> None:
    """A body over MAX_REQUEST_BYTES gets 413."""
    size = capabilities.max_request_bytes + 1024
    content = b'{"code": "' + b"#" * size + b'"}'
    exchange = executor.request("POST", "/execute", content=content, headers=JSON)
    executor.expect(
        exchange.status == 413, f"HTTP 413 for a {len(content)}-byte body", exchange.response_line, exchange
    )
    executor.expect_status(executor.run("1+1"), "ok", executor.last)


@pytest.mark.requirement("INPUT-3")
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


@pytest.mark.requirement("INPUT-4")
def test_unknown_request_fields_are_ignored(executor: ExecutorClient) -> None:
    """Unknown fields of an execute request are ignored."""
    body = executor.run("print(20 + 22)", session="abc", language="python", options={"x": 1})
    executor.expect_status(body, "ok", executor.last)
    executor.expect(output_text(body) == "42\n", "the output '42'", body["outputs"], executor.last)
