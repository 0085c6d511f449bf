"""The manager against real executor processes on 127.0.0.1 (the fast subprocess executor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.routing import Route

from conformance.cli import main as kit_command
from conformance.raw_http import flood_heads
from executor_pool.__main__ import main as pool_command
from executor_pool.manager.app import create_app
from executor_pool.manager.listen import NoDefaultRoute, default_route_interface
from executor_pool.manager.pool import Pool
from tests.conftest import (
    EXAMPLE_EXECUTOR,
    EXAMPLES,
    ROOT,
    RunningExecutor,
    reachable_by_every_user,
    run_kit,
    start_executor,
    start_manager,
    stop_executor,
)


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[httpx.Client, list[RunningExecutor]]]:
    """Three executors (two "python", one "other") and a manager over them; yields (manager client, executors)."""
    env = {"WORKSPACE_FOLDER": str(EXAMPLES / "test_code"), "EXECUTION_TIMEOUT": "2"}
    yield from _pool_of(["python", "python", "other"], env, tmp_path)


def _pool_of(
    types: list[str], env: dict[str, str], folder: Path, manager_env: dict[str, str] | None = None
) -> Iterator[tuple[httpx.Client, list[RunningExecutor]]]:
    """Example executors of ``types`` (ids 0, 1, ...) and a manager over them, stopped afterwards."""
    executors = [start_executor(EXAMPLE_EXECUTOR, env, folder / f"executor-{i}.log") for i in range(len(types))]
    try:
        config = {
            str(i): {"url": e.base_url, "type": kind} for i, (e, kind) in enumerate(zip(executors, types, strict=True))
        }
        manager = start_manager(config, folder, manager_env)
        try:
            yield manager.client, executors
        finally:
            stop_executor(manager)
    finally:
        for executor in executors:
            stop_executor(executor)


def test_allocation_per_type_until_exhausted(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, _ = pool
    first = manager.post("/allocate", params={"container_type": "python"}).json()
    second = manager.post("/allocate", params={"container_type": "python"}).json()
    assert {first["container_id"], second["container_id"]} == {"0", "1"} and first["type"] == "python"
    exhausted = manager.post("/allocate", params={"container_type": "python"})
    assert exhausted.status_code == 503 and "allocated" in exhausted.json()["detail"]
    assert manager.post("/allocate", params={"container_type": "gpu"}).status_code == 404
    status = manager.get("/status").json()
    assert status == {"available": 1, "allocated": 2, "total": 3, "available_by_type": {"python": 0, "other": 1},
                      "allocated_ids": ["0", "1"], "not_ready_ids": [], "needs_restart_ids": [],
                      "lease_s": None}  # fmt: skip


def test_deallocation_restarts_the_executor_and_returns_it(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, _ = pool
    allocated = manager.post("/allocate", params={"container_type": "other"}).json()["container_id"]
    assert manager.post(f"/session/{allocated}/execute", json={"code": "secret = 1"}).status_code == 200
    assert manager.post(f"/deallocate/{allocated}").json() == {"status": "deallocated", "container_id": allocated}
    body = manager.post(f"/session/{allocated}/execute", json={"code": "'secret' in globals()"}).json()
    assert body["outputs"][0]["text"] == "False"
    assert manager.post("/allocate", params={"container_type": "other"}).json()["container_id"] == allocated


def test_session_calls_are_proxied_with_the_executors_status_and_body(
    pool: tuple[httpx.Client, list[RunningExecutor]],
) -> None:
    manager, executors = pool
    body = manager.post("/session/0/execute", json={"code": "greet('proxy')"}).json()
    assert body["status"] == "ok" and body["outputs"][0]["text"] == "'Hello, proxy!'"
    assert manager.get("/session/0/ready").json() == {"ready": True, "reason": None}
    assert manager.get("/session/0/health").json() == {"status": "ok"}
    assert manager.post("/session/0/restart").json() == {"status": "ok"}
    bad = manager.post("/session/0/execute", content=b"{bad", headers={"Content-Type": "application/json"})
    direct = executors[0].client.post("/execute", content=b"{bad", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()) == (direct.status_code, direct.json())
    assert manager.get("/session/0/execute").status_code == 405
    assert manager.get("/session/0/no-such-path").status_code == 404


def test_unknown_and_dead_executors_get_json_errors(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, executors = pool
    unknown = manager.get("/session/99/health")
    assert unknown.status_code == 404 and "99" in unknown.json()["detail"]
    assert manager.post("/deallocate/99").status_code == 404
    stop_executor(executors[2])
    dead = manager.post("/session/2/execute", json={"code": "1"})
    assert dead.status_code == 502 and "unreachable" in dead.json()["detail"]


def test_a_down_executor_is_never_handed_out(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, executors = pool
    stop_executor(executors[2])  # the only one of type "other"
    refused = manager.post("/allocate", params={"container_type": "other"})
    assert refused.status_code == 503 and "none ready" in refused.json()["detail"]
    status = manager.get("/status").json()
    assert status["not_ready_ids"] == ["2"] and status["available_by_type"]["other"] == 1  # still in the pool


def test_giving_back_a_down_executor_keeps_the_pool_whole(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    """It returns to the pool marked for a restart: never lost, never handed out with its old state."""
    manager, executors = pool
    assert manager.post("/allocate", params={"container_type": "other"}).json()["container_id"] == "2"
    stop_executor(executors[2])
    failed = manager.post("/deallocate/2")
    assert failed.status_code == 502 and "cleared before it is handed out" in failed.json()["detail"]
    status = manager.get("/status").json()
    assert status["available_by_type"]["other"] == 1 and status["needs_restart_ids"] == ["2"]
    assert manager.post("/allocate", params={"container_type": "other"}).status_code == 503


def test_a_body_over_the_limit_gets_413_from_the_manager(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    manager, _ = pool
    huge = b'{"code": "' + b"#" * (2 * 1024 * 1024) + b'"}'
    answer = manager.post("/session/0/execute", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "MAX_REQUEST_BYTES" in answer.json()["detail"]


def test_the_manager_bounds_request_heads_as_executors_do(pool: tuple[httpx.Client, list[RunningExecutor]]) -> None:
    """Never-ending heads are cut (INPUT-7), a head with too many fields gets 431, HEAD is GET's
    head (INPUT-8), and the manager still serves."""
    manager, _ = pool
    url = manager.base_url
    floods = flood_heads(url.host, url.port or 80, connections=4, cap=32 * 1024 * 1024, within=20)
    assert not [flood.describe() for flood in floods if flood.unbounded]
    answer = manager.get("/health", headers={f"X-F{i}": "1" for i in range(101)})
    assert answer.status_code == 431 and "header fields" in answer.json()["detail"]
    assert manager.head("/health").status_code == 200 and manager.get("/health").status_code == 200


def test_any_id_string_works(tmp_path: Path) -> None:
    """Ids need not be numbers: /status lists numeric ids in numeric order, then the others."""
    config = {name: {"url": "http://127.0.0.1:9", "type": "python"} for name in ("10", "gpu-a", "2")}
    manager = start_manager(config, tmp_path)
    try:
        status = manager.client.get("/status")
        assert status.status_code == 200 and status.json()["not_ready_ids"] == []
        assert manager.client.post("/allocate").status_code == 503  # none of them answers
        assert manager.client.get("/status").json()["not_ready_ids"] == ["2", "10", "gpu-a"]
    finally:
        stop_executor(manager)


MANAGER_TOKEN = "operator-secret-of-the-tests"
EXECUTOR_TOKEN = "the-executors-token-of-the-tests"


@pytest.fixture
def authenticated_pool(tmp_path: Path) -> Iterator[tuple[httpx.Client, list[RunningExecutor]]]:
    """Two executors, with the kit's sample workspace and EXECUTOR_TOKEN (SEC-4), behind a manager
    started with MANAGER_TOKEN, which sends the executors' token on every call to them."""
    workspace = reachable_by_every_user(tmp_path) / "workspace"
    assert kit_command(["workspace", str(workspace)]) == 0
    env = {"WORKSPACE_FOLDER": str(workspace), "EXECUTION_TIMEOUT": "1", "EXECUTOR_TOKEN": EXECUTOR_TOKEN}
    manager_env = {"MANAGER_TOKEN": MANAGER_TOKEN, "EXECUTOR_TOKEN": EXECUTOR_TOKEN}
    yield from _pool_of(["python", "python"], env, tmp_path, manager_env)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_with_a_token_one_user_can_neither_reach_nor_end_anothers_session(
    authenticated_pool: tuple[httpx.Client, list[RunningExecutor]],
) -> None:
    manager, executors = authenticated_pool
    assert manager.post("/allocate").status_code == 401 and manager.get("/status").status_code == 401
    # Issue #29: the executors serve the manager alone, which holds their token.
    assert all(e.client.post("/execute", json={"code": "1"}).status_code == 401 for e in executors)
    operator = _bearer(MANAGER_TOKEN)
    mine, theirs = (manager.post("/allocate", headers=operator).json() for _ in range(2))
    assert mine["token"] != theirs["token"]
    code = {"code": "secret = 'mine'"}
    assert manager.post(f"/session/{mine['container_id']}/execute", json=code).status_code == 401
    assert manager.post(f"/session/{mine['container_id']}/execute", json=code, headers=operator).status_code == 401
    stolen = manager.post(f"/session/{mine['container_id']}/execute", json=code, headers=_bearer(theirs["token"]))
    assert stolen.status_code == 401 and "token" in stolen.json()["detail"]
    ran = manager.post(f"/session/{mine['container_id']}/execute", json=code, headers=_bearer(mine["token"]))
    assert ran.status_code == 200 and ran.json()["status"] == "ok"
    assert manager.post(f"/deallocate/{mine['container_id']}", headers=_bearer(theirs["token"])).status_code == 401
    assert manager.post(f"/deallocate/{mine['container_id']}", headers=_bearer(mine["token"])).status_code == 200
    after = manager.get(f"/session/{mine['container_id']}/ready", headers=_bearer(mine["token"]))
    assert after.status_code == 401  # the token ended with the allocation
    assert manager.get("/status", headers=operator).json()["allocated_ids"] == [theirs["container_id"]]


def test_the_kit_certifies_a_session_through_an_authenticated_manager(
    authenticated_pool: tuple[httpx.Client, list[RunningExecutor]], tmp_path: Path
) -> None:
    manager, _ = authenticated_pool
    allocation = manager.post("/allocate", headers=_bearer(MANAGER_TOKEN)).json()
    url = f"{manager.base_url}/session/{allocation['container_id']}"
    run = run_kit(
        ["--url", url, "--header", f"Authorization: Bearer {allocation['token']}", "--workspace-mounted",
         "--allow-destructive", "--execution-timeout", "1"],
        tmp_path / "results",
    )  # fmt: skip
    # Every MUST passes but ISO-5, which is not run: the executor behind the manager runs in the
    # kit's own PID namespace, where the kit sends no signals to every process (incomplete, exit 2).
    assert run.results["verdict"] == "incomplete" and run.returncode == 2, run.output[-3000:]
    assert {rid for rid, outcome in run.outcomes().items() if outcome == "failed"} == {"READY-3", "EXEC-4"}
    musts_not_passed = {r["id"]: r["outcome"] for r in run.results["requirements"]
                        if r["level"] == "MUST" and r["outcome"] not in ("passed", "skipped")}  # fmt: skip
    assert musts_not_passed == {"ISO-5": "not_run"}


#: How long the old user keeps calling, with the old token, once /deallocate is sent.
HAND_OVER_WINDOW_S = 10.0


def test_a_token_is_refused_from_the_moment_deallocate_arrives_and_nothing_reaches_the_next_user(
    authenticated_pool: tuple[httpx.Client, list[RunningExecutor]],
) -> None:
    """Issue #29: an execute sent 0.15 s after /deallocate, with the old token, was proxied while
    the executor restarted and ran in the session the next user was handed (the token stayed valid
    until the restart had ended). Now the token ends first, in-flight calls end before the
    restart, and the executor is handed out again once restarted and ready."""
    manager, _ = authenticated_pool
    operator = _bearer(MANAGER_TOKEN)
    old = manager.post("/allocate", params={"container_type": "python"}, headers=operator).json()
    other = manager.post(
        "/allocate", params={"container_type": "python"}, headers=operator
    ).json()  # one free left: none
    session, token = f"/session/{old['container_id']}", _bearer(old["token"])
    plant = {"code": "planted_by_the_old_user = True"}
    assert manager.post(f"{session}/execute", json=plant, headers=token).json()["status"] == "ok"
    answers: list[int] = []
    done = threading.Event()

    def deallocate() -> None:
        try:
            manager.post(f"/deallocate/{old['container_id']}", headers=token, timeout=60)
        finally:
            done.set()

    thread = threading.Thread(target=deallocate)
    thread.start()
    deadline = time.monotonic() + HAND_OVER_WINDOW_S
    try:
        with httpx.Client(base_url=str(manager.base_url), timeout=30) as late:  # the old user's own connection
            while not done.is_set() and time.monotonic() < deadline:
                answers.append(late.post(f"{session}/execute", json=plant, headers=token).status_code)
    finally:
        thread.join(timeout=60)
    manager.post(f"/deallocate/{other['container_id']}", headers=operator)
    # The first may beat the revocation; every later one, sent while the executor restarted, is refused.
    assert len(answers) > 1 and all(status == 401 for status in answers[1:]), answers
    new = manager.post("/allocate", params={"container_type": "python"}, headers=operator).json()
    for allocation in (new, manager.post("/allocate", params={"container_type": "python"}, headers=operator).json()):
        read = manager.post(
            f"/session/{allocation['container_id']}/execute",
            json={"code": "print('planted_by_the_old_user' in globals())"},
            headers=_bearer(allocation["token"]),
        ).json()
        assert read["status"] == "ok" and read["outputs"][0]["text"] == "False\n", read


def test_a_manager_on_an_address_others_reach_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    """Issue #29: a manager on 0.0.0.0 without MANAGER_TOKEN served anyone who could reach it."""
    config = tmp_path / "container_config.json"
    config.write_text(json.dumps({"0": {"url": "http://127.0.0.1:9", "type": "python"}}))
    env = {k: v for k, v in os.environ.items() if k != "MANAGER_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "executor_pool.manager", "--config", str(config), "--host", "0.0.0.0", "--port", "9"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "refusing to listen on 0.0.0.0 without a token" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAX_HEADER_COUNT", "many", "MAX_HEADER_COUNT='many' is not a whole number"),
        ("MAX_REQUEST_BYTES", "-5", "MAX_REQUEST_BYTES='-5' must be greater than 0"),
        ("REQUEST_READ_TIMEOUT", "soon", "REQUEST_READ_TIMEOUT='soon' is not a number"),
    ],
)
def test_a_manager_given_a_bad_request_bound_says_which_and_stops(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """The manager reads the bounds on a request as the reference does (executor_serving.settings);
    a value it cannot use ended it in a traceback before (REQUEST_READ_TIMEOUT was not read)."""
    config = tmp_path / "container_config.json"
    config.write_text(json.dumps({"0": {"url": "http://127.0.0.1:9", "type": "python"}}))
    done = subprocess.run(
        [sys.executable, "-m", "executor_pool.manager", "--config", str(config), "--port", "9"],
        capture_output=True, text=True, timeout=60, env={**os.environ, variable: value}, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


def _listening_on(port: int) -> set[str]:
    """The IPv4 addresses that TCP sockets of this machine listen on at ``port`` (/proc/net/tcp)."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            addresses.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return addresses


def _default_route_address() -> str:
    """What `ip` says: the IPv4 address of the interface the default route leaves by."""
    route = subprocess.run(["ip", "-4", "-o", "route", "show", "default"], capture_output=True, text=True, check=True)
    device = route.stdout.split(" dev ")[1].split()[0]
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", device], capture_output=True, text=True, check=True
    )
    return shown.stdout.split(" inet ")[1].split("/")[0]


def test_a_manager_on_the_default_route_listens_nowhere_else(tmp_path: Path) -> None:
    """Issue #29: in a generated pool the manager joins every executor's network to reach it, and on
    0.0.0.0 it listened on all of them, so user code in any executor could call it. With --host
    default-route it listens on loopback and on the default route's interface only: here the
    machine's Docker bridges, as an executor's network would be, get no listening socket."""
    config = {"0": {"url": "http://127.0.0.1:9", "type": "python"}}
    manager = start_manager(config, tmp_path, {"MANAGER_TOKEN": "m" * 32}, args=("--host", "default-route"))
    try:
        port = int(manager.base_url.rsplit(":", 1)[1])
        assert _listening_on(port) == {"127.0.0.1", _default_route_address()}, manager.logs()
    finally:
        stop_executor(manager)


def test_the_default_route_is_read_as_the_kernel_gives_it() -> None:
    """The lowest metric among the default routes that are up and not reject ones; none: an error."""
    header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
    routes = header + "".join(
        f"{iface}\t00000000\t0100000A\t{flags}\t0\t0\t{metric}\t00000000\t0\t0\t0\n"
        for iface, flags, metric in (("down0", "0002", 0), ("reject0", "0201", 0), ("slow0", "0003", 200),
                                     ("eth1", "0003", 100))
    ) + "eth9\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n"  # fmt: skip
    assert default_route_interface(routes) == "eth1"
    with pytest.raises(NoDefaultRoute):
        default_route_interface(header)


def test_the_managers_routes_are_the_pool_contracts() -> None:
    """Every path of pool-openapi.yaml is one of the manager's routes, and every route is in it."""
    document = yaml.safe_load((ROOT / "conformance" / "pool-openapi.yaml").read_text(encoding="utf-8"))
    app = create_app(Pool({}))
    routes = {(method, route.path.replace("{path:path}", "{path}")) for route in app.routes if isinstance(route, Route)
              for method in getattr(route, "methods", ()) if method != "HEAD"}  # fmt: skip
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented <= routes and {r for r in routes if not r[1].startswith("/session/")} <= documented


def test_latency_measures_what_users_wait_for_one_after_another(
    authenticated_pool: tuple[httpx.Client, list[RunningExecutor]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``executor-pool latency``: allocate, run, deallocate, cycle after cycle, through the real
    manager with its token; the median and 99th percentile of each, in milliseconds."""
    manager, _ = authenticated_pool
    token_file = tmp_path / "manager-token"
    token_file.write_text(MANAGER_TOKEN + "\n")
    assert pool_command(["latency", "--manager", str(manager.base_url), "--token-file", str(token_file),
                         "--cycles", "6", "--warm-up", "1"]) == 0  # fmt: skip
    figures = json.loads(capsys.readouterr().out)
    assert figures["cycles"] == 6
    for call in ("allocate", "deallocate"):
        assert 0 < figures[f"{call}_p50_ms"] <= figures[f"{call}_p99_ms"], figures
    assert manager.get("/status", headers=_bearer(MANAGER_TOKEN)).json()["available"] == 2  # each one given back
    assert pool_command(["latency", "--manager", str(manager.base_url), "--cycles", "1"]) == 1  # no token: refused
    assert "HTTP 401" in capsys.readouterr().err
