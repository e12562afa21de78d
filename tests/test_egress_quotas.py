"""Egress quotas (`permissions.network.limits` and `.tools`): bytes and
requests per call and per minute, enforced by the network gate on real
loopback servers with real components (`http-probe`: JavaScript `fetch` over
wasi:http; `netprobe`: Python raw sockets), through the runtime and the
MCP server as a user runs them."""

from __future__ import annotations

import http.server
import json
import re
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_protocol import Pipes, handshake
from wassette.distribution.loading import load_component
from wassette.runtime import egress
from wassette.runtime.errors import PolicyError
from wassette.runtime.runtime import Runtime

BIG = 5000  # body bytes of /big


class Web:
    """Loopback HTTP: /big (5000 bytes of body), anything else `small`."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = b"x" * BIG if self.path == "/big" else b"small"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Echo(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    w = Web()
    yield w
    w.server.shutdown()
    w.server.server_close()


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP echo server that keeps what each connection sent it."""
    received: list[bytes] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = self.request.recv(65536)
            received.append(data)
            self.request.sendall(b"echo:" + data)

    server = Echo(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def attach(runtime: Runtime, cid: str, tmp_path: Path, network: dict[str, Any]) -> None:
    path = tmp_path / f"{cid}.policy.yaml"
    path.write_text(yaml.safe_dump({"version": "1.0", "permissions": {"network": network}}))
    runtime.permissions.attach(cid, path)


def quota_records(runtime: Runtime) -> list[dict[str, Any]]:
    return runtime.audit.read(100, event="quota_exceeded")


@pytest.fixture
def http_probe(runtime: Runtime, components: dict[str, Path], web: Web, tmp_path: Path) -> Any:
    """http-probe loaded, granted the loopback server; `limit(**network)` sets its limits."""
    load_component(runtime, components["http-probe"].as_uri())

    def limit(**network: Any) -> None:
        attach(runtime, "http-probe", tmp_path, {"allow": [{"host": f"127.0.0.1:{web.port}"}], **network})

    return limit


def fetch(runtime: Runtime, web: Web, path: str) -> Any:
    return runtime.call_tool("fetch-url", {"url": f"http://127.0.0.1:{web.port}{path}", "method": "GET"})


def test_bytes_received_per_call_over_http_stop_the_call(http_probe: Any, runtime: Runtime, web: Web) -> None:
    http_probe(limits={"bytes_received_per_call": 1000})
    small = fetch(runtime, web, "/small")
    assert small.status == "ok" and small.value == {"ok": "200 small"}, small.message()

    big = fetch(runtime, web, "/big")
    assert big.status == "quota_exceeded" and big.value is None
    message = (
        "egress quota: 1000 bytes received per call exceeded (policy network.limits.bytes_received_per_call)"
    )
    assert big.error == message
    assert big.message() == f"the call was stopped: {message}"
    # What the component got stayed within the budget, and it is what is recorded.
    assert big.egress[0]["received"] <= 1000
    [record] = quota_records(runtime)
    assert {k: record[k] for k in ("component", "tool", "limit", "value")} == {
        "component": "http-probe",
        "tool": "fetch-url",
        "limit": "network.limits.bytes_received_per_call",
        "value": 1000,
    }


def test_requests_per_call_refuse_the_request_over_the_count(
    http_probe: Any, runtime: Runtime, web: Web
) -> None:
    http_probe(limits={"requests_per_call": 1})
    assert fetch(runtime, web, "/small").value == {"ok": "200 small"}
    http_probe(limits={"requests_per_call": 0})  # no network at all, though the host is granted
    web.hits.clear()
    out = fetch(runtime, web, "/small")
    assert out.status == "quota_exceeded"
    assert out.error == "egress quota: 0 requests per call exceeded (policy network.limits.requests_per_call)"
    assert web.hits == [], "the request over the count never left"
    assert quota_records(runtime)[-1]["limit"] == "network.limits.requests_per_call"


def test_a_per_minute_budget_spans_calls(http_probe: Any, runtime: Runtime, web: Web) -> None:
    now = [1000.0]
    runtime.egress.clock = lambda: now[0]
    http_probe(limits={"requests_per_minute": 2})
    assert fetch(runtime, web, "/small").status == "ok"
    now[0] += 30
    assert fetch(runtime, web, "/small").status == "ok"
    now[0] += 20
    refused = fetch(runtime, web, "/small")
    assert refused.status == "quota_exceeded"
    assert refused.error == (
        "egress quota: 2 requests per minute exceeded (policy network.limits.requests_per_minute)"
    )
    # Once the first call is more than a minute old, there is room for one more.
    now[0] += 11
    assert fetch(runtime, web, "/small").status == "ok"
    assert fetch(runtime, web, "/small").status == "quota_exceeded"
    [first, second] = quota_records(runtime)
    assert first["limit"] == second["limit"] == "network.limits.requests_per_minute"


def test_a_per_minute_byte_budget_counts_both_ways_across_calls(
    http_probe: Any, runtime: Runtime, web: Web
) -> None:
    now = [0.0]
    runtime.egress.clock = lambda: now[0]
    http_probe(limits={"bytes_per_minute": "8k"})
    first = fetch(runtime, web, "/big")
    assert first.status == "ok"
    used = first.egress[0]["sent"] + first.egress[0]["received"]
    assert BIG < used < 8000
    second = fetch(runtime, web, "/big")
    assert second.status == "quota_exceeded"
    assert (
        second.error
        == "egress quota: 8000 bytes per minute exceeded (policy network.limits.bytes_per_minute)"
    )
    now[0] += 61
    assert fetch(runtime, web, "/big").status == "ok"


def test_bytes_over_a_raw_tcp_socket(
    runtime: Runtime, components: dict[str, Path], echo: tuple[int, list[bytes]], tmp_path: Path
) -> None:
    port, received = echo
    load_component(runtime, components["netprobe"].as_uri())
    granted = [{"host": "127.0.0.1", "protocols": ["tcp"], "ports": [port]}]

    def exchange(payload: str) -> Any:
        return runtime.call_tool("tcp-exchange", {"host": "127.0.0.1", "port": port, "payload": payload})

    attach(runtime, "netprobe", tmp_path, {"allow": granted, "limits": {"bytes_received_per_call": 7}})
    ok = exchange("hi")
    assert ok.value == {"ok": "echo:hi"}
    assert ok.egress[0]["sent"] == 2 and ok.egress[0]["received"] == 7
    out = exchange("hi!")
    assert out.status == "quota_exceeded"
    assert (
        out.error
        == "egress quota: 7 bytes received per call exceeded (policy network.limits.bytes_received_per_call)"
    )
    assert quota_records(runtime)[-1]["tool"] == "tcp-exchange"

    attach(runtime, "netprobe", tmp_path, {"allow": granted, "limits": {"bytes_sent_per_call": 10}})
    received.clear()
    out = exchange("x" * 100)
    assert out.status == "quota_exceeded" and "10 bytes sent per call" in str(out.error)
    assert all(len(data) <= 10 for data in received), "no byte past the budget left"


def test_a_tools_override_is_tighter_than_the_components(
    runtime: Runtime, components: dict[str, Path], echo: tuple[int, list[bytes]], tmp_path: Path
) -> None:
    port, _ = echo
    load_component(runtime, components["netprobe"].as_uri())
    network = {
        "allow": [{"host": "127.0.0.1", "protocols": ["tcp"], "ports": [port]}],
        "limits": {"bytes_received_per_call": "1Mi", "requests_per_call": 5},
        "tools": {"tcp-exchange": {"limits": {"bytes_received_per_call": 4}}},
    }
    attach(runtime, "netprobe", tmp_path, network)
    out = runtime.call_tool("tcp-exchange", {"host": "127.0.0.1", "port": port, "payload": "hi"})
    assert out.status == "quota_exceeded"
    origin = "network.tools.tcp-exchange.limits.bytes_received_per_call"
    assert out.error == f"egress quota: 4 bytes received per call exceeded (policy {origin})"
    assert quota_records(runtime)[-1]["limit"] == origin

    # The fields the tool does not set are the component's.
    def origins(tool: str) -> set[str]:
        text = egress.call_policy(runtime.policies, runtime.egress, runtime.tool(tool))[0]
        return {b["origin"] for b in json.loads(text)["egress_limits"]}

    assert origins("tcp-exchange") == {origin, "network.limits.requests_per_call"}
    assert origins("resolve") == {
        "network.limits.bytes_received_per_call",
        "network.limits.requests_per_call",
    }


def test_the_server_stays_healthy_after_a_quota_stop(http_probe: Any, runtime: Runtime, web: Web) -> None:
    http_probe(limits={"bytes_received_per_call": 1000})
    pipes = Pipes(runtime)

    def call(rid: int, path: str) -> dict[str, Any]:
        args = {"url": f"http://127.0.0.1:{web.port}{path}", "method": "GET"}
        return {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {"name": "fetch-url", "arguments": args},
        }

    try:
        pipes.send([*handshake("2025-11-25"), call(1, "/big"), call(2, "/small"), call(3, "/big")])
        answers = {m["id"]: m for m in pipes.receive(4) if "id" in m}
    finally:
        pipes.close()
    for rid in (1, 3):
        result = answers[rid]["result"]
        assert result["isError"] is True
        assert "egress quota: 1000 bytes received per call exceeded" in result["content"][0]["text"]
    assert answers[2]["result"].get("isError") is not True
    assert "200 small" in json.dumps(answers[2]["result"])
    assert len(quota_records(runtime)) == 2


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        (
            {"bytes_received_per_call": -1},
            "permissions.network.limits.bytes_received_per_call: must be a whole number of at least 0",
        ),
        (
            {"requests_per_call": "10Mi"},
            "permissions.network.limits.requests_per_call: must be a whole number",
        ),
        ({"bytes_per_minute": "lots"}, "permissions.network.limits.bytes_per_minute: must be a whole number"),
        ({"bytes_recieved_per_call": 1}, "permissions.network.limits.bytes_recieved_per_call: unknown field"),
    ],
)
def test_a_malformed_limit_is_refused(
    runtime: Runtime, components: dict[str, Path], tmp_path: Path, limits: dict[str, Any], problem: str
) -> None:
    load_component(runtime, components["http-probe"].as_uri())
    with pytest.raises(PolicyError, match=re.escape(problem)):
        attach(runtime, "http-probe", tmp_path, {"limits": limits})
    with pytest.raises(
        PolicyError, match=re.escape("tools.fetch-url.limits.requests_per_call: must be a whole")
    ):
        attach(
            runtime, "http-probe", tmp_path, {"tools": {"fetch-url": {"limits": {"requests_per_call": 1.5}}}}
        )
    assert runtime.call_tool("fetch-url", {"url": "http://127.0.0.1:9/", "method": "GET"}).status == "err"
