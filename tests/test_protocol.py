"""The core server answers exactly as the official SDK's own server would.

The same JSON-RPC messages go to the SDK's server (tests/oracle.py, in
process) and to our stdio connection on a pair of pipes; the answers must be
equal at every served revision: results exactly, errors by code and data
(our messages say more). Nothing here loads the SDK into the server.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from oracle import comparable, stdio_answers
from wassette.distribution.loading import load_component
from wassette.runtime.runtime import Runtime
from wassette.server.core import protocol
from wassette.server.core.server import McpServer, ServerOptions
from wassette.server.stdio import Output, StdioConnection

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("add", {"a": 40, "b": 2}),
    ("add-u64", {"a": 2**64 - 2, "b": 1}),
    ("add", {"a": "x", "b": 1}),  # invalid arguments
    ("echo", {"s": 'héllo ☃ \u2028 "quoted"'}),
    ("boom", {}),  # a trap
    ("print-stdout", {"text": "no result value"}),  # a function without a result
    ("flood", {"bytes": 2_000_000}),  # guest output truncated
    ("read-file", {"path": "/etc/hostname"}),  # WIT err, with a denial
    ("nope", {}),  # an unknown tool: a tool error
]
MODERN = "2026-07-28"
ENVELOPE = {
    protocol.VERSION_KEY: MODERN,
    protocol.CAPABILITIES_KEY: {},
    protocol.CLIENT_INFO_KEY: {"name": "t", "version": "0"},
}


def handshake(version: str) -> list[dict[str, Any]]:
    init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    return [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]


def requests(version: str) -> list[dict[str, Any]]:
    """Every kind of request, at one revision (2026-07-28: with envelopes)."""
    modern = version == MODERN
    envelope = {"_meta": ENVELOPE} if modern else {}
    out = [] if modern else handshake(version)
    out.append({"jsonrpc": "2.0", "id": "list", "method": "tools/list", "params": {**envelope}})
    for i, (name, args) in enumerate(CALLS):
        params = {"name": name, "arguments": args, **envelope}
        out.append({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": params})
    meta = {"_meta": {**ENVELOPE, "progressToken": "p1"} if modern else {"progressToken": "p1"}}
    add = {"name": "add", "arguments": {"a": 1, "b": 2}, **meta}
    out += [
        {"jsonrpc": "2.0", "id": "with-meta", "method": "tools/call", "params": add},
        {"jsonrpc": "2.0", "id": "ping", "method": "ping", "params": {**envelope}},
        {"jsonrpc": "2.0", "id": "prompts", "method": "prompts/list", "params": {**envelope}},
        {"jsonrpc": "2.0", "id": "bad", "method": "tools/call", "params": {"name": 42, **envelope}},
    ]
    if modern:
        out += [
            {"jsonrpc": "2.0", "id": "discover", "method": "server/discover", "params": {**envelope}},
            {"jsonrpc": "2.0", "id": "no-envelope", "method": "tools/list", "params": {}},
            {
                "jsonrpc": "2.0",
                "id": "init",
                "method": "initialize",
                "params": handshake("2025-11-25")[0]["params"],
            },
        ]
    else:
        level = {
            "jsonrpc": "2.0",
            "id": "level",
            "method": "logging/setLevel",
            "params": {"level": "warning"},
        }
        out += [
            level,
            {
                "jsonrpc": "2.0",
                "id": "bad-level",
                "method": "logging/setLevel",
                "params": {"level": "verbose"},
            },
            {"jsonrpc": "2.0", "id": "discover", "method": "server/discover"},
        ]
    return out


@pytest.fixture
def loaded(runtime: Runtime, components: dict[str, Path]) -> Runtime:
    for name in ("arith", "strings", "trap", "io"):
        load_component(runtime, components[name].as_uri())
    return runtime


def by_id(messages: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {m["id"]: comparable(m) for m in messages if "id" in m}


def same(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Results equal; errors of the same code (and data, where the SDK says
    something in it)."""
    if "error" in theirs:
        mine, data = ours.get("error", {}), theirs["error"].get("data")
        return mine.get("code") == theirs["error"]["code"] and (not data or mine.get("data") == data)
    return ours == theirs


class Pipes:
    """Our stdio connection on pipes, the server built as `wassette run` builds it."""

    def __init__(self, runtime: Runtime, *, builtin_tools: bool = False) -> None:
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.server = McpServer(runtime, ServerOptions(builtin_tools=builtin_tools))
        self.connection = StdioConnection(self.server, self.in_r, Output(self.out_w), 4 * 1024 * 1024)
        self.connection.start()
        self.buffer = b""

    def send(self, messages: list[dict[str, Any]]) -> None:
        os.write(self.in_w, b"".join(json.dumps(m).encode() + b"\n" for m in messages))

    def receive(
        self, count: int, timeout: float = 60, until: Callable[[list[dict[str, Any]]], bool] | None = None
    ) -> list[dict[str, Any]]:
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
        assert self.connection.ended.wait(10)
        self.connection.stop()
        for fd in (self.in_r, self.out_r, self.out_w):
            os.close(fd)


pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", MODERN])
def test_answers_as_the_sdk(loaded: Runtime, version: str) -> None:
    messages = requests(version)
    expected = by_id(stdio_answers(loaded, messages))
    pipes = Pipes(loaded)
    try:
        pipes.send(messages)
        got = by_id(pipes.receive(len(expected)))
    finally:
        pipes.close()
    assert got.keys() == expected.keys()
    for rid, answer in expected.items():
        assert same(got[rid], answer), f"answer to {rid!r} differs:\nours: {got[rid]}\nSDK:  {answer}"
    truncated = got[CALLS.index(("flood", {"bytes": 2_000_000})) + 1]
    assert "guest output truncated" in json.dumps(truncated)
    if version == MODERN:
        assert got["list"]["result"]["resultType"] == "complete"
        assert got["init"]["error"]["data"]["supported"] == [MODERN]
    else:
        assert got[0]["result"]["protocolVersion"] == version


def test_stderr_log_as_the_sdk_sends_it(loaded: Runtime) -> None:
    """Guest stderr becomes a log message once the client set a level, as
    from the SDK."""
    set_level = {"jsonrpc": "2.0", "id": "lvl", "method": "logging/setLevel", "params": {"level": "info"}}
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call"}
    call["params"] = {"name": "print-stderr", "arguments": {"text": "a diagnostic"}}
    messages = [*handshake("2025-11-25"), set_level, call]
    expected = stdio_answers(loaded, messages)
    pipes = Pipes(loaded)
    try:
        pipes.send(messages)
        got = pipes.receive(3)
        assert [m["id"] for m in got if "id" in m] == [0, "lvl", 9]
    finally:
        pipes.close()
    assert by_id(got)["lvl"] == by_id(expected)["lvl"]
    logs = [m for m in got if m.get("method") == "notifications/message"]
    assert logs == [m for m in expected if m.get("method") == "notifications/message"]
    assert logs[0]["params"]["data"] == {"tool": "print-stderr", "stderr": "a diagnostic"}


def test_versions_match_the_sdk() -> None:
    assert protocol.HANDSHAKE_VERSIONS == HANDSHAKE_PROTOCOL_VERSIONS
    assert protocol.MODERN_VERSIONS == MODERN_PROTOCOL_VERSIONS
    for requested in (*HANDSHAKE_PROTOCOL_VERSIONS, "2026-07-28", "1999-01-01", 7):
        expected = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else HANDSHAKE_PROTOCOL_VERSIONS[-1]
        assert protocol.negotiate(requested) == expected


def test_every_request_is_answered_at_once(loaded: Runtime) -> None:
    """Built-in tools, odd shapes and other revisions' methods are answered
    by the one server, each with its own answer (nothing waits for another
    implementation to load)."""
    pipes = Pipes(loaded, builtin_tools=True)
    try:
        pipes.send(handshake("2025-11-25"))
        assert [m["id"] for m in pipes.receive(1)] == [0]
        odd = [
            {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"progressToken": 1}}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list-components"}},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "nope"}},
            {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": 42}},
            {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "add", "task": {}}},
            {"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {"_meta": {"progressToken": 1}}},
            {"jsonrpc": "1.0", "id": 7, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 8, "method": "logging/setLevel", "params": {"level": "verbose"}},
            {"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": ENVELOPE}},
        ]
        pipes.send(odd)
        got = by_id(pipes.receive(len(odd), timeout=30))
    finally:
        pipes.close()
    assert sorted(got) == list(range(1, 10))
    assert got[1]["result"] == {}
    assert "arith" in got[2]["result"]["content"][0]["text"]
    assert got[3]["result"]["isError"] and "no tool named 'nope'" in got[3]["result"]["content"][0]["text"]
    assert got[4]["error"]["code"] == -32602
    # A call with `task` runs as a 2025-11-25 task: answered with the task at once.
    assert got[5]["result"]["task"]["status"] == "working" and got[5]["result"]["task"]["taskId"]
    assert "tools" in got[6]["result"]
    assert got[7]["error"]["code"] == -32600
    assert got[8]["error"]["code"] == -32602
    assert got[9]["error"]["code"] == -32600  # a 2026-07-28 envelope on a 2025 session


def test_tool_list_changes_announced_as_the_sdk(loaded: Runtime, components: dict[str, Path]) -> None:
    """A component added by another process is announced to a session with
    the notification the SDK itself sends."""
    pipes = Pipes(loaded)
    try:
        pipes.server.changes.watch()
        pipes.send(handshake("2025-11-25"))
        pipes.receive(1)
        other = Runtime(loaded.settings)  # e.g. `wassette component load` elsewhere
        load_component(other, components["iface"].as_uri())
        got = pipes.receive(0, timeout=5, until=lambda ms: any("method" in m for m in ms))
    finally:
        pipes.server.changes.stop()
        pipes.close()
    assert got == [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}]
    assert "test_iface_math_double" in {t.name for t in loaded.tools()}


def test_a_failure_answering_one_message_does_not_end_the_session(
    loaded: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault while answering (here forced: the listing and the shaping of
    a call's result raise) gets that request an internal error; the session
    reads on and answers what follows."""
    from wassette.server.core import calls

    pipes = Pipes(loaded)
    try:
        pipes.send(handshake("2025-11-25"))
        assert [m["id"] for m in pipes.receive(1)] == [0]

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(pipes.server, "tools", broken)
        monkeypatch.setattr(calls, "call_result", broken)
        add = {"name": "add", "arguments": {"a": 1, "b": 2}}
        pipes.send(
            [
                {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": add},
                {"jsonrpc": "2.0", "id": 3, "method": "ping"},
            ]
        )
        got = by_id(pipes.receive(3))
        assert got[1]["error"] == {"code": -32603, "message": "Internal error"}
        assert got[2]["error"] == {"code": -32603, "message": "Internal error"}
        assert got[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}
    finally:
        pipes.close()
