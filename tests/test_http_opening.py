"""`wassette serve` answers before the MCP SDK is loaded, and hands the
sessions it opened meanwhile to the SDK.

The server listens and answers the handshake, tools/list and component calls
at once; the SDK (~0.8 s of imports) is loaded after that. To make the window
as long as a test needs, the server here runs with an import hook (a
`sitecustomize` on PYTHONPATH, test-only) that holds the first import of
`mcp` until a file appears.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import mcp.types as types
import pytest

from servers import HttpServer, RawSession, http_server, http_session, messages, text

HOLD_SDK = """
import os, sys, time

class _HoldSdk:
    def find_spec(self, name, path=None, target=None):
        if name == "mcp":
            while not os.path.exists(os.environ["WASSETTE_TEST_SDK_GATE"]):
                time.sleep(0.01)
        return None

sys.meta_path.insert(0, _HoldSdk())
"""
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

LEVEL_INFO = {"jsonrpc": "2.0", "id": "lvl", "method": "logging/setLevel", "params": {"level": "info"}}


class HeldServer:
    def __init__(self, server: HttpServer, gate: Path) -> None:
        self.server = server
        self.gate = gate

    def release(self) -> None:
        self.gate.touch()


@pytest.fixture
def held(env, cli, components, tmp_path: Path, request) -> Iterator[HeldServer]:
    """A server whose SDK import waits for `release()`."""
    for name in ("arith", "io"):
        assert cli("component", "load", components[name].as_uri()).returncode == 0
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_SDK)
    gate = tmp_path / "release-the-sdk"
    held_env = {**env, "PYTHONPATH": str(hook), "WASSETTE_TEST_SDK_GATE": str(gate)}
    args = getattr(request, "param", ())
    with http_server(held_env, tmp_path / "serve.log", *args, ready=False) as server:
        try:
            yield HeldServer(server, gate)
        finally:
            gate.touch()


@pytest.mark.parametrize("held", [(), ("--json-response",)], ids=["sse", "json"], indirect=True)
def test_sessions_opened_before_the_sdk_are_handed_over(held: HeldServer) -> None:
    server = held.server
    ready = httpx.get(f"{server.base}/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "starting"
    info = httpx.get(f"{server.base}/info").json()
    assert info["components"] == 2 and "2026-07-28" in info["protocolVersions"]

    s = RawSession(server.url)  # initialize and initialized: answered without the SDK
    sid = s.headers["mcp-session-id"]
    assert len(sid) == 32
    tools = messages(s.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))[-1]["result"]["tools"]
    assert {"add", "print-stderr", "list-components"} <= {t["name"] for t in tools}
    assert info["tools"] == len(tools)
    assert messages(s.post({"jsonrpc": "2.0", "id": 2, "method": "ping"}))[-1]["result"] == {}
    added = messages(s.call(3, "add", {"a": 40, "b": 2}))[-1]
    assert added["result"]["structuredContent"] == {"result": 42}

    # What needs the SDK waits for it, and is then answered on the same session.
    waiting: list[httpx.Response] = []
    needs_sdk = threading.Thread(target=lambda: waiting.append(s.post(LEVEL_INFO)))
    needs_sdk.start()
    time.sleep(0.5)
    assert not waiting and needs_sdk.is_alive()
    held.release()
    needs_sdk.join(30)
    assert waiting and waiting[0].status_code == 200, waiting[0].text if waiting else "no answer"
    assert messages(waiting[0])[-1] == {"jsonrpc": "2.0", "id": "lvl", "result": {}}
    assert httpx.get(f"{server.base}/ready").status_code == 200

    # The SDK now holds the session: the level set there reaches the fast path
    # (log messages are streamed, so not in plain-JSON mode), built-in tools work.
    response = s.call(4, "print-stderr", {"text": "handed over"})
    if response.headers["content-type"] == "text/event-stream":
        log = messages(response)[0]
        assert log["params"]["data"] == {"tool": "print-stderr", "stderr": "handed over"}
    listing = messages(s.call(5, "list-components", {}))[-1]["result"]
    assert not listing["isError"] and "arith" in json.dumps(listing)

    # Ending the session ends it for both paths.
    assert s.client.delete(server.url, headers=s.headers).status_code == 200
    assert s.call(6, "add", {"a": 1, "b": 2}).status_code == 404
    assert s.post({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}).status_code == 404


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_client_capabilities_survive_the_hand_over(held: HeldServer) -> None:
    """The official client's session opened before the SDK: once handed
    over, the SDK knows the client can answer elicitation, so an agent's
    grant is put to the user (not refused as from a client that cannot ask)."""
    asked: list[str] = []

    async def elicit(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={})

    async with http_session(held.server.url, elicitation_callback=elicit) as s:
        listed = {t.name for t in (await s.list_tools()).tools}
        assert "add" in listed
        assert httpx.get(f"{held.server.base}/ready").status_code == 503  # all of it without the SDK
        r = await s.call_tool("add", {"a": 2, "b": 3})
        assert r.structured_content == {"result": 5}

        async def release_soon() -> None:
            await anyio.sleep(0.3)
            held.release()

        async with anyio.create_task_group() as tg:
            tg.start_soon(release_soon)
            grant = {"component_id": "io", "details": {"key": "HANDED_OVER"}}
            r = await s.call_tool("grant-environment-variable-permission", grant)
        assert not r.is_error, text(r)
        assert len(asked) == 1 and "HANDED_OVER" in asked[0]
