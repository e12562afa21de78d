"""An MCP client (the official SDK) talking to `wassette run` over stdio,
at each protocol revision; and bad input written by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client

from servers import cpu_seconds, initialize_at, piped_session, run_piped
from wassette.server.core.server import ServerOptions
from wassette.server.core.workers import WORKERS
from wassette.server.stdio import EOF_GRACE_S, SHUTDOWN_MESSAGE

pytestmark = pytest.mark.anyio

WORKER_THREADS = WORKERS.limit
MAX_CALLS_IN_FLIGHT = ServerOptions().max_calls_per_session


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def session(env: dict[str, str], *args: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", *args], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        yield s


@pytest.mark.parametrize("command", [["run"], ["serve", "--stdio"]])
async def test_list_and_call(cli, env, components: dict[str, Path], command: list[str]) -> None:
    """tools/list shows loaded components' tools with schemas; tools/call runs them."""
    cli("component", "load", components["arith"].as_uri())
    cli("component", "load", components["iface"].as_uri())
    async with session(env, *command) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert {"add", "add-u64", "test_iface_math_double"} <= set(tools)
        add = tools["add"]
        assert add.input_schema["required"] == ["a", "b"]
        assert add.output_schema == {
            "type": "object",
            "properties": {"result": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}},
            "required": ["result"],
        }
        r = await s.call_tool("add", {"a": 40, "b": 2})
        assert not r.is_error
        assert r.structured_content == {"result": 42}
        assert r.content[0].text == "42"
        r = await s.call_tool("add-u64", {"a": 2**64 - 2, "b": 1})
        assert r.structured_content == {"result": 2**64 - 1}
        r = await s.call_tool("test_iface_math_double", {"x": 21})
        assert r.structured_content == {"result": 42}


async def test_errors_are_tool_errors(cli, env, components: dict[str, Path]) -> None:
    """Bad arguments, a WIT err, a trap and an unknown tool are `isError` results,
    and the server keeps serving after each."""
    for name in ("arith", "trap", "types"):
        cli("component", "load", components[name].as_uri())
    async with session(env, "run") as s:
        r = await s.call_tool("add", {"a": "x", "b": 1})
        assert r.is_error and 'args.a: expected an integer (s32), got string "x"' in r.content[0].text
        r = await s.call_tool("checked-div", {"a": 1, "b": 0})
        assert r.is_error and "the tool returned an error" in r.content[0].text
        assert r.structured_content == {"result": {"err": "division by zero"}}
        r = await s.call_tool("boom", {})
        assert r.is_error and "unreachable" in r.content[0].text
        r = await s.call_tool("nope", {})
        assert r.is_error and "no tool named 'nope'" in r.content[0].text
        r = await s.call_tool("add", {"a": 1, "b": 2})
        assert not r.is_error and r.structured_content == {"result": 3}


async def test_guest_stdout_cannot_inject_messages(cli, env, components: dict[str, Path]) -> None:
    """A component printing JSON-RPC to stdout does not reach the protocol stream."""
    cli("component", "load", components["io"].as_uri())
    forged = json.dumps({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "forged"}]}}) + "\n"
    async with session(env, "run") as s:
        r = await s.call_tool("print-stdout", {"text": forged * 3})
        assert not r.is_error
        r = await s.call_tool("flood", {"bytes": 3_000_000})
        assert not r.is_error and r.structured_content == {"result": 3_000_000}
        names = [t.name for t in (await s.list_tools()).tools]
        assert "forged" not in names and "print-stdout" in names


@asynccontextmanager
async def session_at(env: dict[str, str], version: str, *args: str, **kwargs: Any) -> AsyncIterator[Any]:
    """The official client over stdio at one protocol revision."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", "run", *args], env=env)
    if version == "2026-07-28":
        async with Client(params, **kwargs) as client:
            assert client.protocol_version == version
            yield client
        return
    async with stdio_client(params) as (read, write), ClientSession(read, write, **kwargs) as s:
        if version == "2025-11-25":
            await s.initialize()
        else:
            await initialize_at(s, version)
        assert s.protocol_version == version
        yield s


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2026-07-28"])
async def test_protocol_revisions(cli, env, components: dict[str, Path], version: str) -> None:
    cli("component", "load", components["arith"].as_uri())
    async with session_at(env, version) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert tools["add"].output_schema["properties"]["result"]["type"] == "integer"
        assert tools["get-policy"].annotations.read_only_hint is True
        r = await c.call_tool("add", {"a": 40, "b": 2})
        assert r.structured_content == {"result": 42}


async def test_listen_stream_over_stdio(env, components: dict[str, Path]) -> None:
    """A 2026-07-28 client hears of a load and an unload on its
    `subscriptions/listen` stream, over stdio too."""
    events: list[Any] = []
    async with (
        session_at(env, "2026-07-28") as c,
        c.listen(tools_list_changed=True) as subscription,
        anyio.create_task_group() as tg,
    ):

        async def drain() -> None:
            async for event in subscription:
                events.append(event)

        tg.start_soon(drain)
        r = await c.call_tool("load-component", {"path": components["strings"].as_uri()})
        assert not r.is_error
        with anyio.fail_after(10):
            while not events:
                await anyio.sleep(0.02)
        assert "echo" in {t.name for t in (await c.list_tools()).tools}
        await c.call_tool("unload-component", {"id": "strings"})
        with anyio.fail_after(10):
            while len(events) < 2:
                await anyio.sleep(0.02)
        assert "echo" not in {t.name for t in (await c.list_tools()).tools}
        tg.cancel_scope.cancel()


async def test_cancellation_on_2026_07_28(cli, env, components: dict[str, Path]) -> None:
    """A 2026-07-28 client cancelling a call stops the spinning guest."""
    cli("component", "load", components["spin"].as_uri())
    cli("component", "load", components["arith"].as_uri())
    async with session_at(env, "2026-07-28") as c:
        pid = server_pid(env)
        with anyio.move_on_after(0.5):
            await c.call_tool("spin", {})
        await anyio.sleep(0.3)
        before = cpu_seconds(pid)
        await anyio.sleep(1.0)
        assert cpu_seconds(pid) - before < 0.5, "the cancelled guest is still burning CPU"
        assert (await c.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}


class RawStdio:
    """`wassette run` driven with hand-written lines."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wassette", "run", *args],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdin and self.proc.stdout
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        }
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        assert self.receive()["result"]["serverInfo"]["name"] == "wassette"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: Any) -> None:
        self.stdin.write(message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n")
        self.stdin.flush()

    def call(self, rid: int, tool: str, arguments: dict[str, Any]) -> None:
        self.send(
            {
                "jsonrpc": "2.0",
                "id": rid,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        )

    def cancel(self, rid: int) -> None:
        self.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid}})

    def receive(self) -> dict[str, Any]:
        line = self.stdout.readline()
        assert line, "the server closed its output"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_bad_lines_get_json_rpc_errors(env) -> None:
    """Oversized lines, batches and malformed requests each get their error;
    malformed notifications are dropped; the session goes on."""
    raw = RawStdio(env)
    try:
        raw.send(
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "'
            + b"x" * 5_000_000
            + b'"}}\n'
        )
        error = raw.receive()["error"]
        assert error["code"] == -32600 and "4194304-byte limit" in error["message"]
        raw.send(b'[{"jsonrpc": "2.0", "id": 2, "method": "ping"}]\n')
        assert raw.receive()["error"]["code"] == -32600
        raw.send({"jsonrpc": "2.0", "id": 3, "result": "not a request"})  # a stray response: dropped
        raw.send({"jsonrpc": "1.0", "method": "notifications/whatever"})  # a bad notification: dropped
        raw.send({"jsonrpc": "2.0", "id": 4})
        assert raw.receive() == {"jsonrpc": "2.0", "id": 4, "error": {"code": -32600, "message": ANY_INVALID}}
        raw.send(b"\n   \n")
        raw.send({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        assert "tools" in raw.receive()["result"]
    finally:
        raw.close()


ANY_INVALID = "Invalid Request: not a JSON-RPC 2.0 request object"


def test_ids_that_are_objects_or_arrays_get_invalid_request(env, cli, components: dict[str, Path]) -> None:
    """A request whose id is an object or an array (or null) is answered
    -32600 with id null, like every other invalid request; a string with a
    lone surrogate (valid JSON) is refused saying what and where."""
    cli("component", "load", components["strings"].as_uri())
    raw = RawStdio(env)
    try:
        for bad in ({"a": 1}, [1], None, 1.5):
            raw.send({"jsonrpc": "2.0", "id": bad, "method": "ping"})
            answer = raw.receive()
            assert answer["id"] is None and answer["error"]["code"] == -32600, (bad, answer)
        call = b'{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": '
        raw.send(call + b'{"name": "echo", "arguments": {"s": "x\\ud800"}}}\n')
        result = raw.receive()["result"]
        assert result["isError"] is True
        assert "args.s: lone surrogate U+D800" in result["content"][0]["text"]
        raw.send({"jsonrpc": "2.0", "id": 10, "method": "ping"})
        assert raw.receive() == {"jsonrpc": "2.0", "id": 10, "result": {}}
    finally:
        raw.close()


def test_requests_during_a_slow_call_are_read_and_answered(env, cli, components: dict[str, Path]) -> None:
    """A call's first slice runs on the reading thread; a call still running
    then is finished by a worker while reading goes on: a quick call sent
    after a spinning one is answered first, and the spinning one can be
    cancelled."""
    cli("component", "load", components["spin"].as_uri())
    cli("component", "load", components["arith"].as_uri())
    raw = RawStdio(env)
    try:
        spin = {"name": "spin", "arguments": {}}
        raw.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": spin})
        for rid in (2, 3):
            add = {"name": "add", "arguments": {"a": rid, "b": 1}}
            raw.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": add})
            start = time.monotonic()
            answer = raw.receive()
            assert answer["id"] == rid and answer["result"]["structuredContent"] == {"result": rid + 1}
            assert time.monotonic() - start < 5
        raw.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})
        raw.send({"jsonrpc": "2.0", "id": 4, "method": "ping"})
        assert raw.receive() == {
            "jsonrpc": "2.0",
            "id": 4,
            "result": {},
        }  # the cancelled call is not answered
    finally:
        raw.close()


def test_more_long_calls_than_workers_do_not_stop_reading(env, cli, components: dict[str, Path]) -> None:
    """A client that starts more spinning calls than there are worker threads
    (32) is still read: a quick call sent after them is answered, the spinning
    ones are all cancelled (those still waiting for a worker too), and the
    server is idle again afterwards."""
    cli("component", "load", components["spin"].as_uri())
    cli("component", "load", components["arith"].as_uri())
    raw = RawStdio(env)
    spinning = range(100, 100 + WORKER_THREADS + 2)
    try:
        for rid in spinning:
            raw.call(rid, "spin", {})
        start = time.monotonic()
        raw.call(1, "add", {"a": 1, "b": 2})
        answer = raw.receive()
        assert answer["id"] == 1 and answer["result"]["structuredContent"] == {"result": 3}
        assert time.monotonic() - start < 10
        for rid in spinning:
            raw.cancel(rid)
        raw.send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert raw.receive() == {"jsonrpc": "2.0", "id": 2, "result": {}}  # no answer to a cancelled call
        time.sleep(0.5)
        before = cpu_seconds(raw.proc.pid)
        time.sleep(1.0)
        assert cpu_seconds(raw.proc.pid) - before < 0.5, "cancelled guests are still burning CPU"
    finally:
        raw.close()


def test_calls_beyond_the_session_cap_are_refused(env, cli, components: dict[str, Path]) -> None:
    """A client cannot queue calls without bound: with MAX_CALLS_IN_FLIGHT
    calls not ended, the next is refused at once with a JSON-RPC error; once
    they are cancelled, calls run again."""
    cli("component", "load", components["spin"].as_uri())
    cli("component", "load", components["arith"].as_uri())
    raw = RawStdio(env)
    spinning = range(1000, 1000 + MAX_CALLS_IN_FLIGHT)
    add = {"name": "add", "arguments": {"a": 1, "b": 2}}
    try:
        for rid in spinning:
            raw.call(rid, "spin", {})
        raw.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": add})
        refused = raw.receive()
        assert refused["id"] == 1 and refused["error"]["code"] == -32000
        assert f"{MAX_CALLS_IN_FLIGHT} calls of this session" in refused["error"]["message"]
        for rid in spinning:
            raw.cancel(rid)
        deadline = time.monotonic() + 30
        while True:  # the cancelled calls end within an epoch tick or two
            raw.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": add})
            answer = raw.receive()
            if "result" in answer or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer["id"] == 2 and answer["result"]["structuredContent"] == {"result": 3}
    finally:
        raw.close()


def test_requests_read_before_stdin_closes_are_answered(env, cli, components: dict[str, Path]) -> None:
    """`printf ... | wassette run`: every request read before the input ended
    is answered, component calls and built-ins alike."""
    cli("component", "load", components["arith"].as_uri())
    done, answers = run_piped(
        env, piped_session({"jsonrpc": "2.0", "id": 3, "method": "sampling/createMessage"})
    )
    assert done.returncode == 0
    assert sorted(answers) == [0, 1, 2, 3]
    assert answers[1]["result"]["structuredContent"] == {"result": 5}
    assert "arith" in answers[2]["result"]["content"][0]["text"]
    assert answers[3]["error"]["code"] == -32601


def test_client_leaving_mid_call_ends_the_server(env, cli, components: dict[str, Path]) -> None:
    """Closing stdin while a guest spins: after the grace for answering what
    was read, the guest is stopped and the server exits, long before the
    guest's deadline."""
    cli("component", "load", components["spin"].as_uri())
    raw = RawStdio(env)
    try:
        raw.send(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "spin", "arguments": {}}}
        )
        time.sleep(0.5)
        raw.stdin.close()
        assert raw.proc.wait(timeout=EOF_GRACE_S + 10) == 0
        answer = raw.receive()  # the call is answered, with why it stopped
        assert answer["id"] == 1 and answer["result"]["isError"]
        assert answer["result"]["content"][0]["text"] == SHUTDOWN_MESSAGE
    finally:
        raw.close()


def server_pid(env: dict[str, str]) -> int:
    """The `wassette run` process serving this test (found by its environment)."""
    marker = env["XDG_DATA_HOME"].encode()
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if marker in (p / "environ").read_bytes() and b"wassette" in (p / "cmdline").read_bytes():
                    return int(p.name)
            except OSError:
                continue
    raise AssertionError("server process not found")


async def test_load_by_another_process_notifies(cli, env, components: dict[str, Path]) -> None:
    """`wassette component load` while `wassette run` serves: the client is
    told the tool list changed and sees the new tools."""
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed" or isinstance(
            message, types.ToolListChangedNotification
        ):
            changed.set()

    params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", "run"], env=env)
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, message_handler=on_message) as s,
    ):
        await s.initialize()
        assert "echo" not in {t.name for t in (await s.list_tools()).tools}
        loaded = await anyio.to_thread.run_sync(
            lambda: cli("component", "load", components["strings"].as_uri())
        )
        assert loaded.returncode == 0, loaded.stderr
        with anyio.fail_after(10):
            await changed.wait()
        assert "echo" in {t.name for t in (await s.list_tools()).tools}
