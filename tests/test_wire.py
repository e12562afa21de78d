"""The stdio fast path answers exactly as the MCP SDK would.

The same JSON-RPC messages go to the SDK's server (in process, over memory
streams) and to a stdio session that never gets an SDK attached (so every
answer it gives is its own); their answers must be equal, at each revision
the fast path serves. Messages the fast path leaves to the SDK must wait for
it, unanswered.
"""

from __future__ import annotations

import json
import os
import re
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from wassette.runtime.lifecycle import Runtime
from wassette.server import wire
from wassette.server.app import WassetteServer
from wassette.server.stdio import Output, StdioSession

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("add", {"a": 40, "b": 2}),
    ("add-u64", {"a": 2**64 - 2, "b": 1}),
    ("add", {"a": "x", "b": 1}),  # invalid arguments
    ("echo", {"s": 'héllo ☃ \u2028 "quoted"'}),
    ("boom", {}),  # a trap
    ("print-stdout", {"text": "no result value"}),  # a function without a result
    ("flood", {"bytes": 2_000_000}),  # guest output truncated
    ("read-file", {"path": "/etc/hostname"}),  # WIT err, with a denial
]


def requests(version: str) -> list[dict[str, Any]]:
    init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    out: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "list", "method": "tools/list"},
    ]
    for i, (name, args) in enumerate(CALLS):
        out.append(
            {
                "jsonrpc": "2.0",
                "id": i + 1,
                "method": "tools/call",
                "params": {"name": name, "arguments": args},
            }
        )
    meta = {"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": {"progressToken": "p1"}}
    out.append({"jsonrpc": "2.0", "id": "with-meta", "method": "tools/call", "params": meta})
    out.append({"jsonrpc": "2.0", "id": "ping", "method": "ping"})
    out.append(
        {"jsonrpc": "2.0", "id": "level", "method": "logging/setLevel", "params": {"level": "warning"}}
    )
    return out


@pytest.fixture
def loaded(runtime: Runtime, components: dict[str, Path]) -> Runtime:
    for name in ("arith", "strings", "trap", "io"):
        runtime.load_component(components[name].as_uri())
    return runtime


def by_id(messages: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Answers by request id; code offsets in trap backtraces (which vary
    from one instantiation to the next) blanked."""
    return {m["id"]: json.loads(re.sub(r"0x[0-9a-f]+", "0x?", json.dumps(m))) for m in messages if "id" in m}


def sdk_answers(runtime: Runtime, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the SDK's server answers, as the stdio writer puts it on the wire."""
    app = WassetteServer(runtime)
    expected = sum(1 for m in messages if "id" in m)

    async def run() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with create_client_server_memory_streams() as (client, server), anyio.create_task_group() as tg:
            tg.start_soon(lambda: app.server.run(server[0], server[1], app.initialization_options()))

            async def collect() -> None:
                async for message in client[0]:
                    assert isinstance(message, SessionMessage)
                    out.append(json.loads(message.message.model_dump_json(by_alias=True, exclude_unset=True)))

            tg.start_soon(collect)
            for m in messages:
                await client[1].send(SessionMessage(types.jsonrpc_message_adapter.validate_python(m)))
                if m.get("method") == "initialize":  # as a client would: wait for the answer
                    with anyio.fail_after(10):
                        while not out:
                            await anyio.sleep(0.005)
            with anyio.fail_after(60):
                while sum(1 for m in out if "id" in m) < expected:
                    await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
        return out

    return anyio.run(run)


class FastSession:
    """A stdio session on pipes, with no SDK attached."""

    def __init__(self, runtime: Runtime) -> None:
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.session = StdioSession(runtime, Output(self.out_w), self.in_r)
        self.session.start()
        self.buffer = b""

    def send(self, messages: list[dict[str, Any]]) -> None:
        os.write(self.in_w, b"".join(json.dumps(m).encode() + b"\n" for m in messages))

    def receive(
        self, count: int, timeout: float = 60, until: Callable[[list[dict[str, Any]]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Messages until `count` answers (with an id) came (or `until` says
        so), or the timeout."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        done = until or (lambda ms: sum(1 for m in ms if "id" in m) >= count)
        while not done(out) and time.monotonic() < deadline:
            ready, _, _ = select.select([self.out_r], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                self.buffer += os.read(self.out_r, 1 << 20)
            *lines, self.buffer = self.buffer.split(b"\n")
            out += [json.loads(line) for line in lines if line.strip()]
        return out

    def close(self) -> None:
        os.close(self.in_w)  # end of input
        assert self.session.ended.wait(10)
        self.session.stop()
        for fd in (self.in_r, self.out_r, self.out_w):
            os.close(fd)


@pytest.mark.parametrize("version", sorted(wire.FAST_VERSIONS))
def test_fast_path_answers_as_the_sdk(loaded: Runtime, version: str) -> None:
    messages = requests(version)
    expected = sdk_answers(loaded, messages)
    fast = FastSession(loaded)
    try:
        fast.send(messages)
        got = fast.receive(sum(1 for m in messages if "id" in m))
    finally:
        fast.close()
    assert by_id(got).keys() == by_id(expected).keys()
    for rid, answer in by_id(expected).items():
        assert by_id(got)[rid] == answer, f"answer to {rid!r} differs"
    assert by_id(got)[0]["result"]["protocolVersion"] == version
    truncated = by_id(got)[CALLS.index(("flood", {"bytes": 2_000_000})) + 1]
    assert "guest output truncated" in json.dumps(truncated)
    assert not fast.session.sdk_needed  # all of it answered without the SDK


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # setLevel, 2025
def test_stderr_log_as_the_sdk_sends_it(loaded: Runtime) -> None:
    """Guest stderr becomes a log message once the client set a level, as
    from the SDK."""
    init = requests("2025-11-25")[:2]
    set_level = {"jsonrpc": "2.0", "id": "lvl", "method": "logging/setLevel", "params": {"level": "info"}}
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call"}
    call["params"] = {"name": "print-stderr", "arguments": {"text": "a diagnostic"}}
    expected = sdk_answers(loaded, [*init, set_level, call])
    fast = FastSession(loaded)
    try:
        fast.send([*init, set_level, call])
        got = fast.receive(3)
        assert [m["id"] for m in got if "id" in m] == [0, "lvl", 9]
    finally:
        fast.close()
    assert by_id(got)["lvl"] == by_id(expected)["lvl"]
    logs = [m for m in got if m.get("method") == "notifications/message"]
    assert logs == [m for m in expected if m.get("method") == "notifications/message"]
    assert logs[0]["params"]["data"] == {"tool": "print-stderr", "stderr": "a diagnostic"}


def test_what_the_fast_path_leaves_to_the_sdk(loaded: Runtime) -> None:
    """Built-in tools, ping, unknown tools and odd shapes wait for the SDK;
    sessions at other revisions are the SDK's alone."""
    fast = FastSession(loaded)
    try:
        fast.send(requests("2025-11-25")[:2])
        assert [m["id"] for m in fast.receive(1)] == [0]
        assert not fast.session.sdk_needed
        left = [
            {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"progressToken": 1}}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list-components"}},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "nope"}},
            {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": 42}},
            {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "add", "task": {}}},
            {"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {"_meta": {"progressToken": 1}}},
            {"jsonrpc": "1.0", "id": 7, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 8, "method": "logging/setLevel", "params": {"level": "verbose"}},
        ]
        fast.send(left)
        assert fast.receive(1, timeout=1.0) == []
        waiting = [json.loads(line) for line, _ in fast.session._pending if line is not None]
        assert [m.get("id") for m in waiting if "id" in m] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
        assert fast.session.sdk_needed
    finally:
        fast.close()

    older = FastSession(loaded)
    try:
        older.send(requests("2025-03-26")[:3])
        assert older.receive(1, timeout=1.0) == []  # initialize and tools/list wait for the SDK
    finally:
        older.close()


def test_versions_match_the_sdk() -> None:
    assert wire.HANDSHAKE_VERSIONS == HANDSHAKE_PROTOCOL_VERSIONS
    assert wire.MODERN_VERSIONS == MODERN_PROTOCOL_VERSIONS
    assert set(HANDSHAKE_PROTOCOL_VERSIONS) >= wire.FAST_VERSIONS
    for requested in (*HANDSHAKE_PROTOCOL_VERSIONS, "2026-07-28", "1999-01-01", 7):
        expected = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else HANDSHAKE_PROTOCOL_VERSIONS[-1]
        assert wire.negotiate(requested) == expected


def test_tool_list_changes_announced_as_the_sdk(loaded: Runtime, components: dict[str, Path]) -> None:
    """A component added by another process is announced to a session served
    without the SDK, with the notification the SDK itself sends."""
    app = WassetteServer(loaded)

    async def sdk_notification() -> dict[str, Any]:
        async with create_client_server_memory_streams() as (client, server), anyio.create_task_group() as tg:
            tg.start_soon(lambda: app.server.run(server[0], server[1], app.initialization_options()))
            for m in requests("2025-11-25")[:2]:
                await client[1].send(SessionMessage(types.jsonrpc_message_adapter.validate_python(m)))
            await client[0].receive()  # the initialize answer
            await anyio.sleep(0.1)  # the initialized notification handled
            await app.tools_changed()
            with anyio.fail_after(10):
                message = await client[0].receive()
            tg.cancel_scope.cancel()
        assert isinstance(message, SessionMessage)
        out: dict[str, Any] = json.loads(message.message.model_dump_json(by_alias=True, exclude_unset=True))
        return out

    expected = anyio.run(sdk_notification)
    fast = FastSession(loaded)
    try:
        fast.send(requests("2025-11-25")[:2])
        fast.receive(1)
        other = Runtime(loaded.settings)  # e.g. `wassette component load` elsewhere
        other.load_component(components["iface"].as_uri())
        got = fast.receive(0, timeout=5, until=lambda ms: any("method" in m for m in ms))
    finally:
        fast.close()
    assert got == [expected] == [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}]
    assert "test_iface_math_double" in {t.name for t in loaded.tools()}
    assert not fast.session.sdk_needed


def test_a_failure_answering_one_message_does_not_end_the_session(
    loaded: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault while answering (here forced: the listing and the shaping of
    a call's result raise) costs that request an answer or gets it an
    internal error; the session reads on and answers what follows."""
    fast = FastSession(loaded)
    try:
        fast.send(requests("2025-11-25")[:2])
        assert [m["id"] for m in fast.receive(1)] == [0]

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(loaded, "tools", broken)
        monkeypatch.setattr(wire, "call_result", broken)
        add = {"name": "add", "arguments": {"a": 1, "b": 2}}
        fast.send(
            [
                {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": add},
                {"jsonrpc": "2.0", "id": 3, "method": "ping"},
            ]
        )
        got = by_id(fast.receive(2))
        assert got[2]["error"] == {"code": -32603, "message": "Internal error"}
        assert got[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}
        assert 1 not in got
    finally:
        fast.close()
