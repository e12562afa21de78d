"""The server never loads the MCP SDK (nor the libraries it is built on):
the protocol is served by our own core, on every transport, for every
feature. The servers here run with an import hook (a `sitecustomize` on
PYTHONPATH, test-only) under which importing any of those fails at once, so
a code path that needed one would fail its request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import mcp.types as types
import pytest
from mcp import Client

from servers import (
    HttpServer,
    RawSession,
    http_server,
    http_session,
    messages,
    piped_session,
    run_piped,
    text,
)

FORBIDDEN = (
    "mcp",
    "mcp_types",
    "pydantic",
    "pydantic_core",
    "starlette",
    "anyio",
    "sse_starlette",
    "httpx",
    "httpx2",
)
NO_SDK = f"""
import sys

class _NoSdk:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {FORBIDDEN!r}:
            raise ImportError(f"the server must not import {{name}}")
        return None

sys.meta_path.insert(0, _NoSdk())
"""
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def no_sdk_env(env: dict[str, str], cli, components, tmp_path: Path) -> dict[str, str]:
    for name in ("arith", "io"):
        assert cli("component", "load", components[name].as_uri()).returncode == 0
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_SDK)
    return {**env, "PYTHONPATH": str(hook)}


@pytest.fixture(params=[(), ("--json-response",)], ids=["sse", "json"])
def server(request, no_sdk_env: dict[str, str], tmp_path: Path) -> Iterator[HttpServer]:
    with http_server(no_sdk_env, tmp_path / "serve.log", *request.param) as s:
        s.json_response = bool(request.param)  # type: ignore[attr-defined]
        yield s


def test_the_hook_refuses_the_sdk(no_sdk_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import mcp"], env=no_sdk_env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "must not import mcp" in done.stderr


def test_a_session_over_http(server: HttpServer) -> None:
    assert httpx.get(f"{server.base}/ready").json() == {"status": "ready"}
    info = httpx.get(f"{server.base}/info").json()
    assert info["components"] == 2 and "2026-07-28" in info["protocolVersions"]
    s = RawSession(server.url)
    sid = s.headers["mcp-session-id"]
    assert len(sid) == 32
    tools = messages(s.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))[-1]["result"]["tools"]
    assert {"add", "print-stderr", "list-components"} <= {t["name"] for t in tools}
    assert info["tools"] == len(tools)
    assert messages(s.post({"jsonrpc": "2.0", "id": 2, "method": "ping"}))[-1]["result"] == {}
    added = messages(s.call(3, "add", {"a": 40, "b": 2}))[-1]
    assert added["result"]["structuredContent"] == {"result": 42}
    level = {"jsonrpc": "2.0", "id": "lvl", "method": "logging/setLevel", "params": {"level": "info"}}
    assert messages(s.post(level))[-1] == {"jsonrpc": "2.0", "id": "lvl", "result": {}}
    response = s.call(4, "print-stderr", {"text": "logged"})
    if response.headers["content-type"] == "text/event-stream":
        log = messages(response)[0]
        assert log["params"]["data"] == {"tool": "print-stderr", "stderr": "logged"}
    listing = messages(s.call(5, "list-components", {}))[-1]["result"]
    assert not listing["isError"] and "arith" in json.dumps(listing)
    # Ending the session ends it.
    assert s.client.delete(server.url, headers=s.headers).status_code == 200
    assert s.call(6, "add", {"a": 1, "b": 2}).status_code == 404
    assert s.post({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}).status_code == 404


@pytest.mark.anyio
async def test_every_feature_with_the_official_client(server: HttpServer, components) -> None:
    """Elicitation on a session, progress, change notifications on a
    2026-07-28 listen stream: all without the SDK in the server."""
    asked: list[str] = []

    async def elicit(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={})

    progress: list[str | None] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    heard: list[Any] = []
    async with (
        http_session(server.url, elicitation_callback=elicit) as s,
        Client(server.url) as c,
        c.listen(tools_list_changed=True) as subscription,
        anyio.create_task_group() as tg,
    ):

        async def drain() -> None:
            async for event in subscription:
                heard.append(event)

        tg.start_soon(drain)
        grant = {"component_id": "io", "details": {"key": "NO_SDK"}}
        r = await s.call_tool("grant-environment-variable-permission", grant)
        assert not r.is_error, text(r)
        assert len(asked) == 1 and "NO_SDK" in asked[0]
        r = await s.call_tool(
            "load-component", {"path": components["strings"].as_uri()}, progress_callback=on_progress
        )
        assert not r.is_error, text(r)
        with anyio.fail_after(10):
            while not heard:
                await anyio.sleep(0.02)
        assert "echo" in {t.name for t in (await c.list_tools()).tools}
        # Progress rides the request's event stream; with plain-JSON answers it
        # goes on the session's GET stream if that is open by then (the client
        # opens it in parallel: either way is right; scripts/conformance.sh
        # checks the JSON case with a client that waits for its stream).
        if not server.json_response:  # type: ignore[attr-defined]
            assert progress
        tg.cancel_scope.cancel()
    assert "must not import" not in server.log.read_text()


def test_a_question_waits_for_the_stream_being_opened(no_sdk_env: dict[str, str], tmp_path: Path) -> None:
    """With --json-response a question to the user goes on the session's GET
    stream; a client opens that stream in parallel with its first requests,
    so a question asked before it is open waits for it (CI once saw the SDK
    client's first grant refused in that moment)."""
    with http_server(no_sdk_env, tmp_path / "serve.log", "--json-response") as srv:
        s = RawSession(srv.url, capabilities={"elicitation": {}})
        grant = {"component_id": "io", "details": {"key": "LATE_STREAM"}}
        answers: list[httpx.Response] = []
        asking = threading.Thread(
            target=lambda: answers.append(s.call(1, "grant-environment-variable-permission", grant))
        )
        asking.start()
        # The stream opens only once the call waits for it.
        deadline = time.monotonic() + 10
        while "waits for its stream" not in srv.log.read_text():
            assert not answers and time.monotonic() < deadline, answers and answers[0].text
            time.sleep(0.02)
        with httpx.stream("GET", srv.url, headers=s.headers, timeout=30) as events:
            line = next(line for line in events.iter_lines() if line.startswith("data:"))
            question = json.loads(line[5:])
            assert (
                question["method"] == "elicitation/create" and "LATE_STREAM" in question["params"]["message"]
            )
            reply = {"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept", "content": {}}}
            assert s.post(reply).status_code == 202
            asking.join(30)
        assert answers and messages(answers[0])[-1]["result"]["isError"] is False, answers[0].text


def test_stdio_and_sse(no_sdk_env: dict[str, str], tmp_path: Path) -> None:
    """`wassette run` answers a whole session; the legacy SSE transport serves too."""
    lines = piped_session()
    done, answers = run_piped(no_sdk_env, lines)
    assert done.returncode == 0, done.stderr
    assert answers[1]["result"]["structuredContent"] == {"result": 5}
    assert "arith" in answers[2]["result"]["content"][0]["text"]
    assert b"must not import" not in done.stderr

    with (
        http_server(no_sdk_env, tmp_path / "sse.log", "--sse") as srv,
        httpx.stream("GET", srv.url) as events,
    ):
        lines_iter = events.iter_lines()
        endpoint = next(line for line in lines_iter if line.startswith("data:"))[5:].strip()
        post = srv.base + endpoint
        assert httpx.post(post, json=lines[0]).status_code == 202
        answer = next(line for line in lines_iter if line.startswith("data:"))
        assert json.loads(answer[5:])["result"]["serverInfo"]["name"] == "wassette"
