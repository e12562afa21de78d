"""`wassette serve` over HTTP, driven by the official MCP client (and raw
requests where the wire itself is the point): three protocol revisions,
notifications to every client, hardening, cancellation, progress, logging,
guest output and bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import mcp.types as types
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from servers import HttpServer, cpu_seconds, http_client, http_server, http_session, text
from servers import messages as response_messages

pytestmark = pytest.mark.anyio

LEGACY = ("2025-06-18", "2025-11-25")
MODERN = "2026-07-28"
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server(module_env, module_cli, components, tmp_path_factory) -> Iterator[HttpServer]:
    """One server for the tests that do not change what is loaded."""
    for name in ("arith", "io", "spin"):
        assert module_cli("component", "load", components[name].as_uri()).returncode == 0
    with http_server(module_env, tmp_path_factory.mktemp("log") / "serve.log") as s:
        yield s


@asynccontextmanager
async def session_at(url: str, version: str, **kwargs: Any) -> AsyncIterator[ClientSession | Client]:
    """The official client at one protocol revision: `ClientSession` with the
    initialize handshake (2025), `Client` with per-request envelopes (2026)."""
    if version == MODERN:
        async with Client(url, **kwargs) as client:
            assert client.protocol_version == MODERN
            yield client
    else:
        async with http_session(url, version=version, **kwargs) as s:
            assert s.protocol_version == version
            yield s


def is_list_changed(message: Any) -> bool:
    return isinstance(message, types.ToolListChangedNotification) or (
        getattr(message, "method", None) == "notifications/tools/list_changed"
    )


async def wait_for(condition: Any, timeout: float = 10, what: Any = None) -> None:
    try:
        with anyio.fail_after(timeout):
            while not condition():
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout} s: {what}") from None


# -- protocol revisions ------------------------------------------------


@pytest.mark.parametrize("version", [*LEGACY, MODERN])
async def test_protocol_revisions(server: HttpServer, version: str) -> None:
    """Each revision lists tools (schemas, annotations) and calls them."""
    async with session_at(server.url, version) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert {"add", "print-stdout", "spin", "load-component"} <= set(tools)
        assert tools["add"].output_schema["properties"]["result"]["type"] == "integer"
        assert tools["list-components"].annotations.read_only_hint is True
        assert tools["unload-component"].annotations.destructive_hint is True
        r = await c.call_tool("add", {"a": 40, "b": 2})
        assert not r.is_error and r.structured_content == {"result": 42}
        r = await c.call_tool("add", {"a": "x", "b": 2})
        assert r.is_error and "expected an integer" in text(r)
        info = httpx.get(f"{server.base}/info").json()
        assert info["tools"] == len(tools)


def test_status_endpoints(server: HttpServer) -> None:
    assert httpx.get(f"{server.base}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.base}/ready").json() == {"status": "ready"}
    info = httpx.get(f"{server.base}/info").json()
    assert info["name"] == "wassette" and info["transports"] == ["streamable-http"]
    assert info["endpoint"] == "/mcp" and info["components"] == 3
    assert {*LEGACY, MODERN} <= set(info["protocolVersions"])
    assert info["authRequired"] is False and info["legacySessions"] is True


async def test_json_response_and_stateless(env, cli, components, tmp_path: Path) -> None:
    """`--json-response` answers with plain JSON; `--legacy-sessions false`
    serves 2025 requests without a session; 2026-07-28 works either way; a
    client leaving mid-call stops its guest here too."""
    cli("component", "load", components["arith"].as_uri())
    cli("component", "load", components["spin"].as_uri())
    with http_server(env, tmp_path / "serve.log", "--json-response", "--legacy-sessions", "false") as srv:
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        }
        r = httpx.post(
            srv.url, headers=ACCEPT, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}
        )
        assert r.headers["content-type"] == "application/json"
        assert "mcp-session-id" not in r.headers
        assert r.json()["result"]["protocolVersion"] == "2025-11-25"
        call = {"name": "add", "arguments": {"a": 2, "b": 3}}
        r = httpx.post(
            srv.url,
            headers={**ACCEPT, "mcp-protocol-version": "2025-11-25"},
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
        )
        assert r.headers["content-type"] == "application/json"
        assert r.json()["result"]["structuredContent"] == {"result": 5}
        async with session_at(srv.url, MODERN) as c:
            r2 = await c.call_tool("add", {"a": 1, "b": 1})
            assert r2.structured_content == {"result": 2}
        await assert_abandoned_call_stops(srv, {**ACCEPT, "mcp-protocol-version": "2025-11-25"})


# -- notifications -----------------------------------------------------


async def test_list_changed_reaches_every_client(env, cli, components, tmp_path: Path) -> None:
    """Three clients at once (2025-11-25 and 2025-06-18 sessions, a 2026-07-28
    listen stream): each load, reload and unload notifies all of them, and
    they all see the same tools; so does a load by another process (the
    CLI). Loads report progress on both eras."""
    uri = components["strings"].as_uri()
    with http_server(env, tmp_path / "serve.log") as srv:
        heard: dict[str, int] = {"a": 0, "b": 0, "c": 0}

        def counter(key: str) -> Any:
            async def on_message(message: Any) -> None:
                if is_list_changed(message):
                    heard[key] += 1

            return on_message

        async def names(c: Any) -> set[str]:
            return {t.name for t in (await c.list_tools()).tools}

        progress: list[str | None] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append(message)

        async with (
            http_session(srv.url, message_handler=counter("a")) as a,
            http_session(srv.url, version="2025-06-18", message_handler=counter("b")) as b,
            Client(srv.url) as c,
            c.listen(tools_list_changed=True) as subscription,
            anyio.create_task_group() as tg,
        ):

            async def drain() -> None:
                async for _event in subscription:
                    heard["c"] += 1

            tg.start_soon(drain)
            before = await names(a)
            assert "echo" not in before

            r = await a.call_tool("load-component", {"path": uri}, progress_callback=on_progress)
            assert not r.is_error, text(r)
            await wait_for(lambda: all(n >= 1 for n in heard.values()))
            lists = [await names(x) for x in (a, b, c)]
            assert lists[0] == lists[1] == lists[2] == before | {"echo", "length"}
            assert progress[:2] == [f"fetching {uri}", "compiling strings (560 bytes)"]

            progress.clear()
            r = await c.call_tool("load-component", {"path": uri}, progress_callback=on_progress)
            assert json.loads(text(r))["status"] == "component reloaded successfully"
            assert progress[:1] == [f"fetching {uri}"]
            await wait_for(lambda: all(n >= 2 for n in heard.values()))

            r = await b.call_tool("unload-component", {"id": "strings"})
            assert not r.is_error, text(r)
            await wait_for(lambda: all(n >= 3 for n in heard.values()), what=heard)
            lists = [await names(x) for x in (a, b, c)]
            assert lists[0] == lists[1] == lists[2] == before

            loaded = await anyio.to_thread.run_sync(lambda: cli("component", "load", uri))
            assert loaded.returncode == 0, loaded.stderr
            await wait_for(lambda: all(n >= 4 for n in heard.values()))
            lists = [await names(x) for x in (a, b, c)]
            assert lists[0] == lists[1] == lists[2] == before | {"echo", "length"}
            tg.cancel_scope.cancel()


# -- hardening -----------------------------------------------------------


async def test_hardening(env, cli, components, tmp_path: Path) -> None:
    """Host and Origin allowlist, bearer token (constant-time compared),
    request size limit; the official client works with the token."""
    cli("component", "load", components["arith"].as_uri())
    token = "s3cret-token-for-tests"
    with http_server(
        {**env, "WASSETTE_AUTH_TOKEN": token}, tmp_path / "serve.log", "--max-request-bytes", "65536"
    ) as srv:
        auth = {"authorization": f"Bearer {token}"}
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert httpx.get(f"{srv.base}/health").status_code == 200  # probes need no token
        assert httpx.get(f"{srv.base}/ready").status_code == 200
        r = httpx.get(f"{srv.base}/info")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert httpx.post(srv.url, headers=ACCEPT, json=ping).status_code == 401
        wrong = {"authorization": "Bearer s3cret-token-for-tesTS"}
        assert httpx.post(srv.url, headers={**ACCEPT, **wrong}, json=ping).status_code == 401
        info = httpx.get(f"{srv.base}/info", headers=auth)
        assert info.status_code == 200 and info.json()["authRequired"] is True
        assert token not in info.text

        # DNS rebinding: a page on evil.example resolving to 127.0.0.1.
        r = httpx.post(srv.url, headers={**ACCEPT, **auth, "host": "evil.example"}, json=ping)
        assert r.status_code == 421 and "not allowed" in r.json()["error"]["message"]
        r = httpx.post(srv.url, headers={**ACCEPT, **auth, "origin": "http://evil.example"}, json=ping)
        assert r.status_code == 403
        port = srv.base.rsplit(":", 1)[1]
        r = httpx.get(
            f"{srv.base}/info",
            headers={**auth, "host": f"localhost:{port}", "origin": f"http://localhost:{port}"},
        )
        assert r.status_code == 200

        big = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"pad": "x" * 70_000}},
        }
        r = httpx.post(srv.url, headers={**ACCEPT, **auth}, json=big)
        assert r.status_code == 413 and "65536-byte limit" in r.json()["error"]["message"]

        async with http_session(srv.url, headers=auth) as s:
            assert (await s.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}
        async with (
            http_client(auth) as hc,
            Client(streamable_http_client(srv.url, http_client=hc)) as c,
        ):
            assert c.protocol_version == MODERN
            assert (await c.call_tool("add", {"a": 2, "b": 2})).structured_content == {"result": 4}
        with pytest.raises(Exception):  # noqa: B017 - any failure: the handshake is refused with 401
            async with http_session(srv.url):
                pass


# -- agent grants ----------------------------------------------------------


@pytest.mark.parametrize("version", ["2025-11-25", MODERN])
async def test_agent_grant_needs_the_user_over_http(server: HttpServer, version: str) -> None:
    """A grant asked for by the agent is confirmed through elicitation on a
    session; a 2026-07-28 request cannot ask the user, so it is refused with
    the command the user can run."""
    asked: list[str] = []

    async def elicit(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={})

    grant = {"component_id": "io", "details": {"key": f"KEY_{version[:4]}"}}
    async with session_at(server.url, version, elicitation_callback=elicit) as c:
        r = await c.call_tool("grant-environment-variable-permission", grant)
        policy = json.loads(text(await c.call_tool("get-policy", {"component_id": "io"})))["policy"]
        keys = [e["key"] for e in policy.get("permissions", {}).get("environment", {}).get("allow", [])]
        if version == MODERN:
            assert r.is_error and "wassette permission grant environment-variable io KEY_2026" in text(r)
            assert asked == [] and "KEY_2026" not in keys
        else:
            assert not r.is_error, text(r)
            assert len(asked) == 1 and "KEY_2025" in asked[0] and "KEY_2025" in keys
        await c.call_tool("revoke-environment-variable-permission", grant)


# -- cancellation, logging, guest output ---------------------------------


@pytest.mark.parametrize("version", ["2025-11-25", MODERN])
async def test_cancellation_stops_the_guest(server: HttpServer, version: str) -> None:
    """A cancelled call (`notifications/cancelled` on a session, closing the
    response stream on 2026-07-28) stops the spinning guest promptly."""
    async with session_at(server.url, version) as c:
        with anyio.move_on_after(0.5):
            await c.call_tool("spin", {})
        await anyio.sleep(0.3)  # the token stops the guest within an epoch tick
        before = cpu_seconds(server.pid)
        await anyio.sleep(1.0)
        assert cpu_seconds(server.pid) - before < 0.5, "the cancelled guest is still burning CPU"
        assert (await c.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # setLevel, 2025
@pytest.mark.parametrize("version", ["2025-11-25", MODERN])
async def test_guest_stderr_forwarded_as_log(server: HttpServer, version: str) -> None:
    """Guest stderr reaches the client as a log message, only at the level the
    client asked for: logging/setLevel (2025), `_meta` per request (2026)."""
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async with session_at(server.url, version, logging_callback=on_log) as c:
        await c.call_tool("print-stderr", {"text": "not asked for"})
    kwargs: dict[str, Any] = {"log_level": "info"} if version == MODERN else {}
    async with session_at(server.url, version, logging_callback=on_log, **kwargs) as c:
        if version != MODERN:
            await c.set_logging_level("info")
        r = await c.call_tool("print-stderr", {"text": "diagnostic line"})
        assert not r.is_error
        await wait_for(lambda: logs)
    assert logs == [{"tool": "print-stderr", "stderr": "diagnostic line"}]


def _raw_session(url: str) -> dict[str, str]:
    """Opens a 2025-11-25 session with raw requests; returns its headers."""
    init = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    }
    r = httpx.post(
        url, headers=ACCEPT, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}
    )
    headers = {**ACCEPT, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    r = httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 202
    return headers


async def test_guest_stdout_cannot_inject_messages(server: HttpServer) -> None:
    """JSON-RPC text a component prints is not a message on the HTTP stream:
    the response carries exactly one message, the call's own result."""
    forged = {"jsonrpc": "2.0", "id": 99, "result": {"tools": [{"name": "forged"}]}}
    note = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    payload = "\n".join([json.dumps(forged), "event: message", "data: " + json.dumps(note), "", ""])
    headers = _raw_session(server.url)
    call = {"name": "print-stdout", "arguments": {"text": payload * 3}}
    r = httpx.post(
        server.url, headers=headers, json={"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call}
    )
    answered = response_messages(r)  # one JSON body or an event stream: exactly one message
    assert len(answered) == 1 and answered[0]["id"] == 7 and "result" in answered[0]
    async with http_session(server.url) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert "forged" not in names and "print-stdout" in names


# -- bad input -------------------------------------------------------------


def test_bad_requests_get_json_rpc_errors(server: HttpServer) -> None:
    headers = _raw_session(server.url)

    def post(body: bytes | dict[str, Any]) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(server.url, headers=headers, content=content)

    def error_code(r: httpx.Response) -> int:
        return int(response_messages(r)[0]["error"]["code"])

    r = post(b"{this is not json")
    assert r.status_code == 400 and error_code(r) == -32700
    assert error_code(post({"jsonrpc": "2.0", "id": 2, "method": "no/such/method"})) == -32601
    assert (
        error_code(post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 42}}))
        == -32602
    )
    r = post(
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": [], "b": 1}},
        }
    )
    result = response_messages(r)[0]["result"]
    assert result["isError"] is True and "args.a" in result["content"][0]["text"]
    r = post({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
    assert "tools" in response_messages(r)[0]["result"]


def test_batches_and_odd_ids_get_invalid_request(server: HttpServer) -> None:
    """A batch (an array body) is -32600 with a one-line message, as is a
    request whose id is an object or an array (id null in the answer); on a
    session and on 2026-07-28 alike."""
    headers = _raw_session(server.url)
    modern = {**ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": "ping"}
    for h in (headers, modern):
        r = httpx.post(server.url, headers=h, json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
        assert r.status_code == 400
        error = r.json()["error"]
        assert r.json()["id"] is None and error["code"] == -32600
        assert "\n" not in error["message"] and ("batch" in error["message"] or "single" in error["message"])
        for bad in ({"a": 1}, [1]):
            r = httpx.post(server.url, headers=h, json={"jsonrpc": "2.0", "id": bad, "method": "ping"})
            assert r.status_code == 400 and r.json()["id"] is None and r.json()["error"]["code"] == -32600


async def assert_abandoned_call_stops(server: HttpServer, headers: dict[str, str]) -> None:
    """Starts `spin` and goes away mid-call: the server serves others, and the
    guest stops burning CPU."""
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "spin", "arguments": {}}}
    async with httpx.AsyncClient(timeout=30) as hc:
        with anyio.move_on_after(0.5):
            async with hc.stream("POST", server.url, headers=headers, json=call) as response:
                assert response.status_code == 200
                await anyio.sleep(1)
        # the connection is closed: the client is gone
        async with session_at(server.url, MODERN) as c:
            assert (await c.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}
    await anyio.sleep(0.5)
    before = cpu_seconds(server.pid)
    await anyio.sleep(1.0)
    assert cpu_seconds(server.pid) - before < 0.5, "the abandoned guest is still burning CPU"


async def test_client_disconnecting_mid_call(server: HttpServer) -> None:
    await assert_abandoned_call_stops(server, _raw_session(server.url))


# -- legacy SSE transport ------------------------------------------------


async def test_sse_transport(env, cli, components, tmp_path: Path) -> None:
    """`serve --http` (alias `--sse`): the legacy HTTP+SSE transport, same tools
    and notifications."""
    cli("component", "load", components["arith"].as_uri())
    with http_server(env, tmp_path / "serve.log", "--http") as srv:
        assert srv.url.endswith("/sse")
        info = httpx.get(f"{srv.base}/info").json()
        assert info["transports"] == ["sse"] and info["endpoint"] == "/sse"
        changed: list[Any] = []

        async def on_message(message: Any) -> None:
            if is_list_changed(message):
                changed.append(message)

        async with (
            sse_client(srv.url) as (read, write),
            ClientSession(read, write, message_handler=on_message) as s,
        ):
            await s.initialize()
            assert (await s.call_tool("add", {"a": 20, "b": 22})).structured_content == {"result": 42}
            r = await s.call_tool("load-component", {"path": components["strings"].as_uri()})
            assert not r.is_error, text(r)
            await wait_for(lambda: changed)
            assert "echo" in {t.name for t in (await s.list_tools()).tools}
        r = httpx.get(f"{srv.base}/sse", headers={"host": "evil.example"})
        assert r.status_code == 421
