"""The HTTP fast path answers component tool calls exactly as the SDK's
transport does.

Each call is posted twice on one session of a real `wassette serve`: as is
(the fast path takes it) and with an extra `_meta` key (which the fast path
leaves to the SDK, and which changes nothing in the SDK's answer). Status,
headers that matter and the messages in the body must be the same, in the
SSE and the plain-JSON response modes, for results, errors, logs and a
cancelled call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from servers import HttpServer, RawSession, http_server, messages

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
SDK_ONLY = {"_meta": {"wassette-test": "take the SDK path"}}


def shape(response: httpx.Response) -> dict[str, Any]:
    keep = ("content-type", "cache-control", "mcp-session-id", "x-accel-buffering")
    return {
        "status": response.status_code,
        "headers": {k: response.headers.get(k) for k in keep},
        "messages": messages(response),
    }


@pytest.fixture(scope="module", params=["sse", "json"])
def server(request, module_env, module_cli, components, tmp_path_factory) -> Iterator[HttpServer]:
    for name in ("arith", "strings", "trap", "io", "spin"):
        assert module_cli("component", "load", components[name].as_uri()).returncode == 0
    args = ["--json-response"] if request.param == "json" else []
    with http_server(module_env, tmp_path_factory.mktemp("log") / "serve.log", *args) as s:
        yield s


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
def test_fast_answers_as_the_sdk(server: HttpServer) -> None:
    s = RawSession(server.url)
    level = {"jsonrpc": "2.0", "id": "lvl", "method": "logging/setLevel", "params": {"level": "info"}}
    assert s.post(level).status_code == 200
    for i, (name, args) in enumerate(CALLS):
        fast, sdk = s.call(2 * i + 1, name, args), s.call(2 * i + 1, name, args, **SDK_ONLY)
        assert fast.status_code == sdk.status_code == 200, f"{name} {args}"
        assert fast.headers["mcp-session-id"] == sdk.headers["mcp-session-id"]
        assert messages(fast) == messages(sdk), f"{name} {args}"
        # One message is one JSON body (the connection can be kept); a log
        # message and the answer are an event stream, as the SDK's.
        expected = "application/json" if len(messages(fast)) == 1 else "text/event-stream"
        assert shape(fast)["headers"]["content-type"] == expected
        if expected == "text/event-stream":
            assert shape(fast)["headers"] == shape(sdk)["headers"]
        if sdk.headers["content-type"] == "text/event-stream":
            # Proof of the two paths: the SDK streams (chunked), the fast path sends one body.
            assert sdk.headers.get("transfer-encoding") == "chunked"
            assert "transfer-encoding" not in fast.headers
    logged = messages(s.call(99, "print-stderr", {"text": "a diagnostic"}))
    if logged[-1]["id"] == 99 and len(logged) == 2:  # SSE: the log comes first
        assert logged[0]["params"]["data"] == {"tool": "print-stderr", "stderr": "a diagnostic"}


@pytest.mark.parametrize("extra", [{}, SDK_ONLY], ids=["fast", "sdk"])
def test_cancelled_call_answered_as_the_sdk(server: HttpServer, extra: dict[str, Any]) -> None:
    """A call cancelled by `notifications/cancelled` ends with the JSON-RPC
    error -32800 on its response, and its guest stops."""
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


def test_what_the_fast_path_leaves_to_the_sdk(server: HttpServer) -> None:
    """Requests the SDK would refuse keep the SDK's refusal."""
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
    assert s.client.post(server.url, json=call, headers=bad_version).status_code == 400
