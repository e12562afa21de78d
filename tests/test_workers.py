"""`wassette serve --workers N`: several processes serve one address, and a
client notices nothing of it. Requests are sent on connections pinned to a
chosen worker (the kernel gives each connection to one worker; /info says
which), so each test knows exactly which worker did what."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp.client.sse import sse_client

from servers import (
    HttpServer,
    Pinned,
    all_serving,
    cpu_seconds,
    http_server,
    http_session,
    pinned,
    process_tree,
    text,
)

INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}


def call(rid: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def open_session(p: Pinned) -> str:
    status, answer, headers = p.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
    assert status == 200 and answer[0]["result"]["protocolVersion"] == "2025-11-25"
    return headers["mcp-session-id"]


def workers_of(server: HttpServer) -> list[int]:
    return [pid for pid in process_tree(server.pid) if pid != server.pid]


@pytest.fixture
def loaded(cli, components) -> None:
    for name in ("arith", "spin", "eval", "io"):
        assert cli("component", "load", components[name].as_uri()).returncode == 0


@pytest.fixture
def pair(env, loaded, tmp_path: Path) -> Iterator[tuple[HttpServer, Pinned, Pinned]]:
    served = {**env, "API_KEY": "value-for-io"}
    with http_server(served, tmp_path / "serve.log", "--workers", "2") as server:
        all_serving(server)
        a, b = pinned(server)
        yield server, a, b
        a.close()
        b.close()


def test_two_workers_share_one_address(pair, tmp_path: Path) -> None:
    server, a, b = pair
    assert (a.worker, b.worker) == (0, 1)
    assert len(workers_of(server)) == 2
    log = server.log.read_text()
    announced = re.search(r"serving MCP \(streamable-http\) at http://\S+", log)
    assert announced and log.index("2 workers serving") > announced.end(), log
    info = a.get("/info")
    assert info["workers"] == 2 and info["tools"] >= 3


def test_a_session_spans_workers(pair) -> None:
    """Opened on one worker, used on the other: every step sees the same
    session, and DELETE on one ends it on both."""
    _, a, b = pair
    sid = open_session(a)
    status, _, _ = b.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    assert status == 202
    status, answer, _ = b.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, sid)
    assert {"add", "spin", "eval"} <= {t["name"] for t in answer[0]["result"]["tools"]}
    assert (
        a.post({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "debug"}}, sid)[
            0
        ]
        == 200
    )
    # The level chosen on A holds on B: the guest's stderr comes first, as a log message.
    _, answer, _ = b.post(call(3, "print-stderr", {"text": "seen"}), sid)
    assert answer[0]["params"]["data"] == {"tool": "print-stderr", "stderr": "seen"}, answer
    assert answer[-1]["result"]["isError"] is False, answer
    _, answer, _ = b.post(call(4, "add", {"a": 2, "b": 40}), sid)
    assert answer[-1]["result"]["structuredContent"] == {"result": 42}
    assert a.delete(sid) == 200
    status, answer, _ = b.post({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, sid)
    assert status == 404, answer
    # An id another worker never minted is no session anywhere.
    assert b.post({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, "../" + sid[3:])[0] == 404


def test_cancellation_reaches_the_call_on_another_worker(pair) -> None:
    server, a, b = pair
    sid = open_session(a)
    a.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    answers: list[dict[str, Any]] = []
    running = threading.Thread(target=lambda: answers.extend(b.post(call(7, "spin", {}), sid)[1]))
    before = cpu_seconds(server.pid)
    running.start()
    deadline = time.monotonic() + 20
    while cpu_seconds(server.pid) - before < 0.3:  # the guest spins on worker 1
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.05)
    status, _, _ = a.post(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "test"}},
        sid,
    )
    assert status == 202
    running.join(20)
    assert not running.is_alive(), "the cancelled call was never ended"
    assert answers[-1]["error"]["code"] == -32800, answers
    spent = cpu_seconds(server.pid)
    time.sleep(0.5)
    assert cpu_seconds(server.pid) - spent < 0.3, "the cancelled guest is still burning CPU"


def test_a_grant_applies_on_every_worker_from_the_next_call(pair, cli) -> None:
    _, a, b = pair
    sid = open_session(a)
    a.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    for p in (a, b):
        _, answer, _ = p.post(call(1, "get-env", {"key": "API_KEY"}), sid)
        assert answer[-1]["result"]["structuredContent"] == {"result": None}, answer
    assert cli("permission", "grant", "environment-variable", "io", "API_KEY").returncode == 0
    for p in (b, a):
        _, answer, _ = p.post(call(2, "get-env", {"key": "API_KEY"}), sid)
        assert answer[-1]["result"]["structuredContent"] == {"result": "value-for-io"}, answer


def test_a_load_on_one_worker_is_announced_and_served_by_the_other(pair, components) -> None:
    """A load made on worker 0 is announced on a session whose standing
    stream is on worker 1, and the tool is callable there at once."""
    _, a, b = pair
    sid = open_session(b)
    b.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    host, port = b.conn.host, b.conn.port
    # The standing stream must be on worker 1 too: retry until the kernel puts it there.
    for _ in range(200):
        probe = http.client.HTTPConnection(host, port, timeout=30)
        probe.request("GET", "/info")
        r = probe.getresponse()
        if json.loads(r.read())["worker"] == 1:
            stream = probe
            break
        probe.close()
    else:
        raise AssertionError("no connection reached worker 1")
    stream.request("GET", "/mcp", headers={"accept": "text/event-stream", "mcp-session-id": sid})
    events = stream.getresponse()
    assert events.status == 200
    _, answer, _ = a.post(call(8, "load-component", {"path": components["strings"].as_uri()}), sid)
    assert answer[-1]["result"]["isError"] is False, answer
    line = events.fp.readline()
    while not line.startswith(b"data:"):
        line = events.fp.readline()
    assert json.loads(line[5:])["method"] == "notifications/tools/list_changed"
    _, answer, _ = b.post(call(9, "echo", {"s": "hi"}), sid)
    assert answer[-1]["result"]["isError"] is False, answer
    stream.close()


def test_a_dead_worker_is_replaced_and_the_other_serves_on(pair) -> None:
    server, a, _b = pair
    sid = open_session(a)
    a.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    victim = [pid for pid in workers_of(server) if _number(pid) == 1]
    assert len(victim) == 1
    os.kill(victim[0], signal.SIGKILL)
    for rid in range(10, 30):  # worker 0 answers throughout
        _, answer, _ = a.post(call(rid, "add", {"a": rid, "b": 1}), sid)
        assert answer[-1]["result"]["structuredContent"] == {"result": rid + 1}
    deadline = time.monotonic() + 30
    while True:
        now = workers_of(server)
        if len(now) == 2 and victim[0] not in now:
            break
        assert time.monotonic() < deadline, f"no replacement: {now}"
        time.sleep(0.05)
    assert "worker 1" in server.log.read_text() and "SIGKILL" in server.log.read_text()
    # The session opened before lives on with the replacement.
    fresh = pinned(server)[1]
    _, answer, _ = fresh.post(call(40, "add", {"a": 1, "b": 1}), sid)
    assert answer[-1]["result"]["structuredContent"] == {"result": 2}


def test_sigterm_drains_calls_in_flight(pair) -> None:
    """A call running when SIGTERM comes is answered; then every process ends."""
    server, _a, b = pair
    sid = open_session(b)
    b.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    answers: list[dict[str, Any]] = []
    expression = "sum(range(15000000))"
    arguments = {"req": {"expression": expression, "variables": None}}
    running = threading.Thread(target=lambda: answers.extend(b.post(call(50, "eval", arguments), sid)[1]))
    before = cpu_seconds(server.pid)
    running.start()
    deadline = time.monotonic() + 20
    while cpu_seconds(server.pid) - before < 0.2:
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.02)
    members = process_tree(server.pid)
    server.proc.send_signal(signal.SIGTERM)
    running.join(30)
    assert answers and answers[-1]["result"]["isError"] is False, answers
    assert str(sum(range(15000000))) in answers[-1]["result"]["content"][0]["text"], answers
    assert server.proc.wait(20) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in members)


def test_sessions_over_legacy_sse_with_workers(env, loaded, tmp_path: Path) -> None:
    """Legacy SSE: posts land on any worker and reach the one with the stream."""

    async def main(url: str) -> None:
        async with sse_client(url) as (read, write):
            from mcp import ClientSession

            async with ClientSession(read, write) as session:
                await session.initialize()
                for n in range(20):
                    r = await session.call_tool("add", {"a": n, "b": 1})
                    assert r.structured_content == {"result": n + 1}, text(r)

    with http_server(env, tmp_path / "serve.log", "--sse", "--workers", "2") as server:
        all_serving(server)
        anyio.run(main, server.url)


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (["--workers", "0"], "workers must be 'auto' or a number from 1 to 64, got '0'"),
        (["--workers", "many"], "workers must be 'auto' or a number from 1 to 64, got 'many'"),
    ],
)
def test_bad_worker_counts(cli, given: list[str], error: str) -> None:
    done = cli("serve", "--bind-address", "127.0.0.1:0", *given, timeout=30)
    assert done.returncode == 1 and f"error: {error}" in done.stderr, done.stderr


def test_one_worker_is_one_process(env, loaded, tmp_path: Path) -> None:
    """`WASSETTE_WORKERS=1`: the process that was started serves, alone."""
    with http_server({**env, "WASSETTE_WORKERS": "1"}, tmp_path / "serve.log") as server:
        assert workers_of(server) == []
        assert Pinned(server).get("/info")["workers"] == 1
        assert "workers serving" not in server.log.read_text()


async def _official_client_session(url: str) -> None:
    async with http_session(url) as session:
        for n in range(20):
            r = await session.call_tool("add", {"a": n, "b": 2})
            assert r.structured_content == {"result": n + 2}, text(r)
        tools = await session.list_tools()
        assert isinstance(tools, types.ListToolsResult)


def test_official_client_with_workers(env, loaded, tmp_path: Path) -> None:
    with http_server(env, tmp_path / "serve.log", "--workers", "2") as server:
        all_serving(server)
        anyio.run(_official_client_session, server.url)


def _wait_for_new_worker(server: HttpServer, gone: set[int]) -> int:
    deadline = time.monotonic() + 30
    while True:
        # A fork takes its name (`wassette-w1`) a moment after it exists.
        fresh = [pid for pid in workers_of(server) if pid not in gone and _number(pid) == 1]
        if fresh:
            return fresh[0]
        assert time.monotonic() < deadline, "no replacement started"
        time.sleep(0.02)


def _running(pid: int) -> bool:
    """Alive and not a zombie (nobody may reap an orphan here)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _number(pid: int) -> int:
    """A worker's number, from its name (`wassette-wN`); -1 for anything else."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return -1
    return int(name[len("wassette-w") :]) if name.startswith("wassette-w") else -1


def test_a_worker_that_keeps_dying_stops_the_set(env, loaded, tmp_path: Path) -> None:
    with http_server(env, tmp_path / "serve.log", "--workers", "2") as server:
        all_serving(server)
        killed: set[int] = set()
        victim = next(pid for pid in workers_of(server) if _number(pid) == 1)
        for _ in range(5):
            os.kill(victim, signal.SIGKILL)
            killed.add(victim)
            if len(killed) == 5:
                break
            victim = _wait_for_new_worker(server, killed)
        assert server.proc.wait(30) == 1
        assert "worker 1 keeps exiting (was killed by SIGKILL); stopping" in server.log.read_text()


def test_workers_die_with_their_parent(env, loaded, tmp_path: Path) -> None:
    with http_server(env, tmp_path / "serve.log", "--workers", "2") as server:
        all_serving(server)
        members = workers_of(server)
        server.proc.kill()
        server.proc.wait()
        deadline = time.monotonic() + 20
        while any(_running(pid) for pid in members):
            assert time.monotonic() < deadline, "workers outlived their parent"
            time.sleep(0.05)


def test_workers_share_compiled_code(env, cli, components, tmp_path: Path) -> None:
    """Compiled once (here by the CLI's load), then every worker's first
    call maps the cached artifact instead of compiling again (which would
    rewrite it)."""
    cache = tmp_path / "compiled"
    served = {**env, "WASSETTE_CACHE_DIR": str(cache)}
    assert cli("component", "load", components["io"].as_uri(), env_extra=served).returncode == 0
    artifacts = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert artifacts, "the load compiled nothing into the cache"
    with http_server(served, tmp_path / "serve.log", "--workers", "2") as server:
        all_serving(server)
        a, b = pinned(server)
        sid = open_session(a)
        for n, p in enumerate((a, b)):
            _, answer, _ = p.post(call(n, "env-count", {}), sid)
            assert answer[-1]["result"]["isError"] is False, answer
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == artifacts


def _connection_to(server: HttpServer, number: int) -> http.client.HTTPConnection:
    """A new keep-alive connection that reached worker `number`."""
    host, port = server.base.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/info")
        if json.loads(conn.getresponse().read())["worker"] == number:
            return conn
        conn.close()
    raise AssertionError(f"no connection reached worker {number}")


def test_a_question_travels_through_the_worker_with_the_stream(env, loaded, tmp_path: Path) -> None:
    """With --json-response a call cannot ask on its own response, so the
    agent's grant request is asked on the session's GET stream, held by the
    other worker; the user's answer, posted to that worker, reaches the call."""
    with http_server(env, tmp_path / "serve.log", "--workers", "2", "--json-response") as server:
        all_serving(server)
        a, b = pinned(server)
        init = {**INIT, "capabilities": {"elicitation": {}}}
        status, _, headers = a.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        assert status == 200
        sid = headers["mcp-session-id"]
        a.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        stream = _connection_to(server, 1)
        stream.request(
            "GET",
            "/mcp",
            headers={
                "accept": "text/event-stream",
                "mcp-session-id": sid,
                "mcp-protocol-version": "2025-11-25",
            },
        )
        events = stream.getresponse()
        assert events.status == 200
        grant = call(
            1, "grant-environment-variable-permission", {"component_id": "io", "details": {"key": "API_KEY"}}
        )
        answers: list[dict[str, Any]] = []
        running = threading.Thread(target=lambda: answers.extend(a.post(grant, sid)[1]))
        running.start()
        line = events.fp.readline()
        while not line.startswith(b"data:"):
            line = events.fp.readline()
        question = json.loads(line[5:])
        assert question["method"] == "elicitation/create" and "API_KEY" in question["params"]["message"]
        reply = {"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept", "content": {}}}
        assert b.post(reply, sid)[0] == 202
        running.join(30)
        assert answers and answers[-1]["result"]["isError"] is False, answers
        stream.close()
