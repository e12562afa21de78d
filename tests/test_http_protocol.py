"""Streamable HTTP answers as the official SDK's own transport would.

Each request goes to a real `wassette serve` and to the SDK's server
(tests/oracle.py) behind its own Streamable HTTP app, in process; status and
messages must be the same, in the SSE and the plain-JSON response modes,
for the handshake era and 2026-07-28. Where the specification lets a server
choose, ours answers one message as one JSON body (a client keeps the
connection) and the SDK streams it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from mcp.server.transport_security import TransportSecuritySettings

from oracle import comparable, sdk_server
from servers import RAW_HEADERS, HttpServer, RawSession, http_server, messages
from wassette.runtime.config import Settings
from wassette.runtime.runtime import Runtime
from wassette.server.core import protocol

pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("add", {"a": 40, "b": 2}),
    ("add", {"a": "x", "b": 1}),
    ("echo", {"s": "héllo ☃ \u2028"}),
    ("boom", {}),
    ("print-stdout", {"text": "no result value"}),
    ("flood", {"bytes": 2_000_000}),
    ("read-file", {"path": "/etc/hostname"}),
    ("print-stderr", {"text": "a diagnostic"}),
]
MODERN = "2026-07-28"
ENVELOPE = {
    protocol.VERSION_KEY: MODERN,
    protocol.CAPABILITIES_KEY: {},
    protocol.CLIENT_INFO_KEY: {"name": "t", "version": "0"},
}


@pytest.fixture(scope="module", params=["sse", "json"])
def server(request, module_env, module_cli, components, tmp_path_factory) -> Iterator[HttpServer]:
    for name in ("arith", "strings", "trap", "io", "spin"):
        assert module_cli("component", "load", components[name].as_uri()).returncode == 0
    args = ["--json-response"] if request.param == "json" else []
    with http_server(module_env, tmp_path_factory.mktemp("log") / "serve.log", *args) as s:
        s.json_response = request.param == "json"  # type: ignore[attr-defined]
        yield s


class Oracle:
    """The SDK's Streamable HTTP app on the same component directory."""

    def __init__(self, env: dict[str, str], json_response: bool) -> None:
        runtime = Runtime(Settings.load(env=env))
        runtime.refresh()
        server = sdk_server(runtime)
        self.app = server.streamable_http_app(
            streamable_http_path="/mcp",
            json_response=json_response,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    def post_all(
        self, bodies: list[tuple[dict[str, Any], dict[str, str]]], session: bool
    ) -> list[httpx.Response]:
        """Posts each (body, headers), after an initialize when `session`."""

        async def run() -> list[httpx.Response]:
            out = []
            async with self.app.router.lifespan_context(self.app):
                transport = httpx.ASGITransport(app=self.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                    headers = dict(RAW_HEADERS)
                    if session:
                        init = {
                            "protocolVersion": "2025-11-25",
                            "capabilities": {},
                            "clientInfo": {"name": "t", "version": "0"},
                        }
                        r = await client.post(
                            "/mcp",
                            json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init},
                            headers=headers,
                        )
                        headers = {
                            **headers,
                            "mcp-session-id": r.headers["mcp-session-id"],
                            "mcp-protocol-version": "2025-11-25",
                        }
                        await client.post(
                            "/mcp",
                            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                            headers=headers,
                        )
                    for body, extra in bodies:
                        r = await client.post("/mcp", json=body, headers={**headers, **extra})
                        await r.aread()
                        out.append(r)
            return out

        return asyncio.run(run())


def shape(response: httpx.Response) -> tuple[int, list[dict[str, Any]]]:
    return response.status_code, [comparable(m) for m in messages(response)]


def test_handshake_era_answers_as_the_sdk(server: HttpServer, module_env) -> None:
    s = RawSession(server.url)
    level = {"jsonrpc": "2.0", "id": "lvl", "method": "logging/setLevel", "params": {"level": "info"}}
    bodies = [(level, {})]
    for i, (name, args) in enumerate(CALLS):
        params = {"name": name, "arguments": args}
        bodies.append(({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": params}, {}))
    bodies += [
        ({"jsonrpc": "2.0", "id": "list", "method": "tools/list"}, {}),
        ({"jsonrpc": "2.0", "id": "prompts", "method": "prompts/list"}, {}),
        ({"jsonrpc": "2.0", "id": "ping", "method": "ping"}, {}),
    ]
    ours = [s.post(body) for body, _ in bodies]
    theirs = Oracle(module_env, server.json_response).post_all(bodies, session=True)  # type: ignore[attr-defined]
    for (body, _), mine, sdk in zip(bodies, ours, theirs, strict=True):
        if body["id"] == "list":  # ours lists the built-in tools too
            assert mine.status_code == sdk.status_code == 200
            continue
        assert shape(mine) == shape(sdk), body
        assert mine.headers["mcp-session-id"] == s.headers["mcp-session-id"]
        # One message is one JSON body (the connection can be kept); a log
        # message and the answer are an event stream, as the SDK's.
        expected = "application/json" if len(messages(mine)) == 1 else "text/event-stream"
        assert mine.headers["content-type"] == expected
        if expected == "text/event-stream":
            keep = ("content-type", "cache-control", "x-accel-buffering")
            assert {k: mine.headers.get(k) for k in keep} == {k: sdk.headers.get(k) for k in keep}
    logged = messages(ours[-4])  # print-stderr, after setLevel info
    if len(logged) == 2:  # SSE: the log comes first
        assert logged[0]["params"]["data"] == {"tool": "print-stderr", "stderr": "a diagnostic"}


def test_2026_answers_as_the_sdk(server: HttpServer, module_env) -> None:
    def post(
        method: str, params: dict[str, Any], name: str | None = None, **headers: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        body = {"jsonrpc": "2.0", "id": method, "method": method, "params": params}
        routing = {
            "mcp-protocol-version": MODERN,
            "mcp-method": method,
            **({"mcp-name": name} if name else {}),
        }
        return body, {**routing, **headers}

    envelope = {"_meta": ENVELOPE}
    bodies = [
        post("server/discover", envelope),
        post("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}, **envelope}, "add"),
        post("tools/call", {"name": "boom", "arguments": {}, **envelope}, "boom"),
        post("ping", envelope),
        post(
            "initialize",
            {
                **envelope,
                "protocolVersion": MODERN,
                "capabilities": {},
                "clientInfo": {"name": "x", "version": "1"},
            },
        ),
        post("prompts/list", {}),
        post("tools/list", envelope, **{"mcp-method": "tools/call"}),
        post("tools/call", {"name": "add", "arguments": {}, **envelope}, "other"),
        post("logging/setLevel", {"level": "info", **envelope}),
    ]
    ours = [httpx.post(server.url, json=body, headers={**RAW_HEADERS, **extra}) for body, extra in bodies]
    theirs = Oracle(module_env, server.json_response).post_all(bodies, session=False)  # type: ignore[attr-defined]
    for (body, _), mine, sdk in zip(bodies, ours, theirs, strict=True):
        status, got = shape(mine)
        sdk_status, expected = shape(sdk)
        assert status == sdk_status, (body, mine.text, sdk.text)
        assert len(got) == len(expected) == 1
        if "error" in expected[0]:
            assert got[0]["error"]["code"] == expected[0]["error"]["code"], (body, mine.text, sdk.text)
        else:
            assert got[0] == expected[0], body
    listed = httpx.post(
        server.url,
        json=post("tools/list", envelope)[0],
        headers={**RAW_HEADERS, **post("tools/list", envelope)[1]},
    )
    result = listed.json()["result"]
    assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == ("complete", 0, "private")
    assert result["_meta"][protocol.SERVER_INFO_KEY] == protocol.SERVER_INFO


@pytest.mark.parametrize("extra", [{}, {"_meta": {"wassette-test": "an extra _meta key changes nothing"}}])
def test_cancelled_call_answered_as_the_sdk(server: HttpServer, extra: dict[str, Any]) -> None:
    """A call cancelled by `notifications/cancelled` ends with the JSON-RPC
    error -32800 on its response (as the SDK answers), and its guest stops."""
    s = RawSession(server.url)
    answer: list[httpx.Response] = []
    caller = threading.Thread(target=lambda: answer.append(s.call(7, "spin", {}, **extra)))
    started = time.monotonic()
    caller.start()
    time.sleep(0.5)
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
    assert s.post(cancel).status_code == 202
    caller.join(10)
    assert not caller.is_alive() and time.monotonic() - started < 5
    assert messages(answer[0])[-1] == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32800, "message": "Request cancelled"},
    }
    assert messages(s.call(8, "add", {"a": 1, "b": 2}))[-1]["result"]["structuredContent"] == {"result": 3}


def test_a_long_call_does_not_hold_up_others(server: HttpServer) -> None:
    """Calls start on the event loop's thread; one still running after a few
    milliseconds moves to a worker thread, so other clients are answered
    meanwhile (and the long call can still be cancelled)."""
    long, other = RawSession(server.url), RawSession(server.url)
    answer: list[httpx.Response] = []
    caller = threading.Thread(target=lambda: answer.append(long.call(1, "spin", {})))
    caller.start()
    time.sleep(0.3)
    for i in range(20):
        started = time.monotonic()
        added = messages(other.call(i, "add", {"a": i, "b": 1}))[-1]
        assert added["result"]["structuredContent"] == {"result": i + 1}
        assert time.monotonic() - started < 1.0
    assert caller.is_alive()  # still spinning, on its worker thread
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    assert long.post(cancel).status_code == 202
    caller.join(10)
    assert messages(answer[0])[-1]["error"]["code"] == -32800


def test_refusals(server: HttpServer) -> None:
    """Requests the transport refuses, as the SDK's does: a client that does
    not accept the answer's type (406), an unknown session (404), a
    revision nobody serves (400, naming the ones served)."""
    s = RawSession(server.url)
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1}},
    }
    assert (
        s.client.post(server.url, json=call, headers={**s.headers, "accept": "text/plain"}).status_code == 406
    )
    unknown = {**s.headers, "mcp-session-id": "0" * 32}
    assert s.client.post(server.url, json=call, headers=unknown).status_code == 404
    bad_version = {**s.headers, "mcp-protocol-version": "1999-01-01"}
    r = s.client.post(server.url, json=call, headers=bad_version)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == -32022 and "1999-01-01" in error["message"]
    assert error["data"]["supported"] == list(protocol.SUPPORTED_VERSIONS)
    assert all(v in error["message"] for v in protocol.SUPPORTED_VERSIONS)
