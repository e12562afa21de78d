"""Built-in tools, agent-grant approval, notifications, progress, logging,
cancellation and robustness, with the official MCP client over stdio."""

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
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = pytest.mark.anyio

BUILTINS = {
    "load-component",
    "unload-component",
    "list-components",
    "search-components",
    "get-policy",
    "grant-storage-permission",
    "grant-network-permission",
    "grant-environment-variable-permission",
    "revoke-storage-permission",
    "revoke-network-permission",
    "revoke-environment-variable-permission",
    "reset-permission",
    "open-instance",
    "close-instance",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def session(env: dict[str, str], *args: str, **kwargs: Any) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", "run", *args], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write, **kwargs) as s:
        await s.initialize()
        yield s


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_builtin_tools_listed_with_annotations(env) -> None:
    async with session(env) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert set(tools) == BUILTINS
    for name in ("list-components", "search-components", "get-policy"):
        assert tools[name].annotations.read_only_hint is True
    assert tools["unload-component"].annotations.destructive_hint is True
    assert tools["grant-storage-permission"].input_schema["properties"]["details"]["required"] == [
        "uri",
        "access",
    ]


async def test_disable_builtin_tools(env, cli, components) -> None:
    cli("component", "load", components["arith"].as_uri())
    async with session(env, "--disable-builtin-tools") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert "add" in names and not names & BUILTINS
        r = await s.call_tool("list-components", {})
        assert r.is_error and "no tool named 'list-components'" in text(r)


async def test_load_and_unload_notify_and_report_progress(env, components) -> None:
    """load-component: tools appear, `tools/list_changed` arrives, progress is
    reported for the token; unload-component removes them and notifies again."""
    changes: list[str] = []

    async def on_message(message: Any) -> None:
        if (
            isinstance(message, types.ServerNotification)
            and isinstance(message, types.ToolListChangedNotification)
        ) or getattr(message, "method", None) == "notifications/tools/list_changed":
            changes.append("changed")

    progress: list[tuple[float, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, message))

    async with session(env, message_handler=on_message) as s:
        r = await s.call_tool(
            "load-component", {"path": components["strings"].as_uri()}, progress_callback=on_progress
        )
        assert not r.is_error, text(r)
        assert json.loads(text(r))["tools"] == ["echo", "length"]
        assert {"echo", "length"} <= {t.name for t in (await s.list_tools()).tools}
        with anyio.fail_after(5):
            while not changes:
                await anyio.sleep(0.05)
        assert [m for _, m in progress][:2] == [
            f"fetching {components['strings'].as_uri()}",
            "compiling strings (560 bytes)",
        ] or progress
        assert progress, "progress notifications for the progress token"
        r = await s.call_tool("list-components", {})
        assert [c["id"] for c in json.loads(text(r))["components"]] == ["strings"]
        r = await s.call_tool("unload-component", {"id": "strings"})
        assert not r.is_error
        with anyio.fail_after(5):
            while len(changes) < 2:
                await anyio.sleep(0.05)
        assert "echo" not in {t.name for t in (await s.list_tools()).tools}
        r = await s.call_tool("unload-component", {"id": "strings"})
        assert r.is_error and "no component with id 'strings'" in text(r)


async def test_search_and_get_policy(env, cli, components) -> None:
    cli("component", "load", components["io"].as_uri())
    async with session(env) as s:
        r = await s.call_tool("search-components", {"query": "weather"})
        assert json.loads(text(r))["components"][0]["name"] == "get-weather-js"
        r = await s.call_tool("get-policy", {"component_id": "io"})
        assert json.loads(text(r)) == {"component_id": "io", "policy": {"version": "1.0", "permissions": {}}}
        r = await s.call_tool("get-policy", {"component_id": "nope"})
        assert r.is_error and "no component with id 'nope'" in text(r)


GRANT = {"component_id": "io", "details": {"key": "API_KEY"}}


async def policy_keys(s: ClientSession) -> list[str]:
    r = await s.call_tool("get-policy", {"component_id": "io"})
    env_rules = json.loads(text(r))["policy"].get("permissions", {}).get("environment", {}).get("allow", [])
    return [e["key"] for e in env_rules]


async def test_agent_grant_refused_without_elicitation(env, cli, components) -> None:
    """Default `ask`, a client that cannot ask the user: refused, with the
    exact command the user can run; nothing changes."""
    cli("component", "load", components["io"].as_uri())
    async with session(env) as s:
        r = await s.call_tool("grant-environment-variable-permission", GRANT)
        assert r.is_error
        assert "wassette permission grant environment-variable io API_KEY" in text(r)
        assert await policy_keys(s) == []


@pytest.mark.parametrize(("action", "granted"), [("accept", True), ("decline", False), ("cancel", False)])
async def test_agent_grant_confirmed_by_elicitation(env, cli, components, action: str, granted: bool) -> None:
    """With elicitation, the user sees component, permission and scope, and decides."""
    cli("component", "load", components["io"].as_uri())
    asked: list[types.ElicitRequestParams] = []

    async def elicit(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action=action, content={} if action == "accept" else None)

    async with session(env, elicitation_callback=elicit) as s:
        r = await s.call_tool("grant-environment-variable-permission", GRANT)
        assert r.is_error is (not granted), text(r)
        assert await policy_keys(s) == (["API_KEY"] if granted else [])
    assert len(asked) == 1
    assert "component 'io'" in asked[0].message and "API_KEY" in asked[0].message
    props = asked[0].requested_schema["properties"]
    assert (props["component"]["default"], props["scope"]["default"]) == ("io", "API_KEY")


@pytest.mark.parametrize(("mode", "granted"), [("allow", True), ("deny", False)])
async def test_agent_grants_flag(env, cli, components, mode: str, granted: bool) -> None:
    cli("component", "load", components["io"].as_uri())
    asked: list[Any] = []

    async def elicit(ctx: Any, params: Any) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={})

    async with session(env, "--agent-grants", mode, elicitation_callback=elicit) as s:
        r = await s.call_tool("grant-environment-variable-permission", GRANT)
        assert r.is_error is (not granted)
        assert await policy_keys(s) == (["API_KEY"] if granted else [])
    assert asked == []


async def test_revoke_needs_no_confirmation_reset_does(env, cli, components, home: Path) -> None:
    cli("component", "load", components["io"].as_uri())
    cli("permission", "grant", "environment-variable", "io", "API_KEY")
    cli("permission", "grant", "network", "io", "api.example.com")
    async with session(env) as s:
        r = await s.call_tool("revoke-environment-variable-permission", GRANT)
        assert not r.is_error, text(r)
        assert await policy_keys(s) == []
        r = await s.call_tool("reset-permission", {"component_id": "io"})
        assert r.is_error and "wassette permission reset io" in text(r)
        r = await s.call_tool(
            "grant-storage-permission", {"component_id": "io", "details": {"uri": "fs:///etc"}}
        )
        assert r.is_error and "details.access is required" in text(r)
    audit = [json.loads(x) for x in (home / "data/wassette/audit.jsonl").read_text().splitlines()]
    assert ("revoked", "mcp") in {(a["event"], a.get("by")) for a in audit}


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # setLevel, 2025
async def test_guest_stderr_forwarded_as_log(env, cli, components) -> None:
    cli("component", "load", components["io"].as_uri())
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with session(env, logging_callback=on_log) as s:
        await s.call_tool("print-stderr", {"text": "before level set"})
        await s.set_logging_level("info")
        r = await s.call_tool("print-stderr", {"text": "diagnostic line"})
        assert not r.is_error
        with anyio.fail_after(5):
            while not logs:
                await anyio.sleep(0.05)
    assert [entry.data["stderr"] for entry in logs] == ["diagnostic line"]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pid(marker: str) -> int:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                environ = (p / "environ").read_bytes()
                cmdline = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in environ and b"wassette" in cmdline:
                return int(p.name)
    raise AssertionError("server process not found")


async def test_cancellation_stops_the_guest(env, cli, components) -> None:
    """`notifications/cancelled` stops a spinning component promptly; the
    server serves the next call."""
    cli("component", "load", components["spin"].as_uri())
    cli("component", "load", components["arith"].as_uri())
    async with session(env) as s:
        pid = _server_pid(env["XDG_DATA_HOME"])
        started = time.monotonic()
        with anyio.move_on_after(0.5):
            await s.call_tool("spin", {})
        assert time.monotonic() - started < 2
        await anyio.sleep(0.3)  # the token stops the guest within an epoch tick
        before = _cpu_seconds(pid)
        await anyio.sleep(1.0)
        assert _cpu_seconds(pid) - before < 0.5, "the cancelled guest is still burning CPU"
        r = await s.call_tool("add", {"a": 1, "b": 2})
        assert r.structured_content == {"result": 3}


def test_malformed_json_rpc_gets_errors_and_server_keeps_serving(env) -> None:
    """Junk lines and unknown methods get JSON-RPC errors; the session goes on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wassette", "run"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin and proc.stdout

    def send(obj: Any) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        proc.stdin.write(data + b"\n")
        proc.stdin.flush()

    def receive() -> dict[str, Any]:
        return json.loads(proc.stdout.readline())

    try:
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        }
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        assert receive()["result"]["serverInfo"]["name"] == "wassette"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(b"{this is not json")
        assert receive()["error"]["code"] == -32700
        send({"jsonrpc": "2.0", "id": 2, "method": "no/such/method"})
        assert receive()["error"]["code"] == -32601
        send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 42}})
        assert receive()["error"]["code"] == -32602
        send({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})
        assert "tools" in receive()["result"]
    finally:
        proc.kill()
        proc.wait()
