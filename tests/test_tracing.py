"""OpenTelemetry traces: `serve` with the standard OTLP settings exports a
span per MCP request and per tool call to a collector the test starts (an
OTLP/HTTP receiver decoding the protocol's own protobuf messages), joined to
the caller's trace named by `traceparent` (header, or 2026-07-28 `_meta`)."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from homes import Cli
from servers import RAW_HEADERS, RawSession, http_server, static_web
from test_http_protocol import ENVELOPE, MODERN


class Collector:
    """Receives OTLP/HTTP exports: keeps every span as a dict, and each
    metric's data points as last pushed (name -> [(attributes, value)])."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.metrics: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.path.endswith("/v1/metrics"):
                    collector.take_metrics(body)
                else:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    with collector.lock:
                        for resource in request.resource_spans:
                            service = {a.key: a.value.string_value for a in resource.resource.attributes}
                            for scope in resource.scope_spans:
                                for span in scope.spans:
                                    collector.spans.append(_span(span, service))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def take_metrics(self, body: bytes) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        points = getattr(metric, kind).data_points
                        self.metrics[metric.name] = [
                            (
                                {a.key: _value(a.value) for a in p.attributes},
                                float(p.count if kind == "histogram" else _number(p)),
                            )
                            for p in points
                        ]

    def metric(self, name: str, timeout: float = 15, **attributes: Any) -> float:
        """The sum of the metric's points with these attributes, once it is above 0."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                points = self.metrics.get(name, [])
                total = sum(v for a, v in points if all(a.get(k) == x for k, x in attributes.items()))
            if total > 0:
                return total
            assert time.monotonic() < deadline, f"no {name} {attributes}; got {sorted(self.metrics)}"
            time.sleep(0.05)

    def wait(self, condition: Any, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [s for s in self.spans if condition(s)]
            if found:
                return found
            assert time.monotonic() < deadline, f"no such span; got {[s['name'] for s in self.spans]}"
            time.sleep(0.05)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _number(point: Any) -> float:
    return float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)


def _span(span: Any, service: dict[str, str]) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent": span.parent_span_id.hex(),
        "attributes": {a.key: _value(a.value) for a in span.attributes},
        "events": [(e.name, {a.key: _value(a.value) for a in e.attributes}) for e in span.events],
        "status": span.status.code,
        "service": service.get("service.name"),
    }


def modern_add(url: str, traceparent: str) -> httpx.Response:
    """A 2026-07-28 `add` call naming its trace in `_meta` (no header)."""
    meta = {**ENVELOPE, "traceparent": traceparent}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 1}, "_meta": meta}}  # fmt: skip
    headers = {**RAW_HEADERS, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "add"}
    return httpx.post(url, json=body, headers=headers, timeout=30)


@pytest.fixture
def collector() -> Iterator[Collector]:
    made = Collector()
    yield made
    made.httpd.shutdown()


def test_spans_of_requests_and_tool_calls_join_the_callers_trace(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path], collector: Collector
) -> None:
    cli = Cli(env)
    for name in ("arith", "io"):
        assert cli("component", "load", components[name].as_uri()).returncode == 0
    traced = {
        **env,
        "WASSETTE_WORKERS": "2",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_SERVICE_NAME": "wassette-test",
    }
    with http_server(traced, tmp_path / "serve.log") as server:
        trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
        session = RawSession(server.url, headers={"traceparent": f"00-{trace_id}-{parent}-01"})
        assert session.call(1, "add", {"a": 2, "b": 3}).status_code == 200
        assert session.call(2, "read-file", {"path": "/etc/hostname"}).status_code == 200  # refused inside

        request = collector.wait(lambda s: s["name"] == "mcp tools/call" and s["trace_id"] == trace_id)[0]
        assert request["parent"] == parent and request["service"] == "wassette-test"
        assert request["attributes"]["rpc.method"] == "tools/call"
        add = collector.wait(lambda s: s["name"] == "tool add" and s["trace_id"] == trace_id)[0]
        assert add["attributes"]["wassette.component.id"] == "arith"
        assert len(add["attributes"]["wassette.component.digest"]) == 64
        assert add["attributes"]["wassette.outcome"] == "ok" and add["attributes"]["wassette.duration_ms"] > 0
        requests = {s["span_id"] for s in collector.spans if s["name"] == "mcp tools/call"}
        assert add["parent"] in requests  # the call's span is inside its request's
        read = collector.wait(lambda s: s["name"] == "tool read-file" and s["trace_id"] == trace_id)[0]
        denied = [attrs for name, attrs in read["events"] if name == "wassette.denied"]
        assert denied and denied[0]["wassette.denial.kind"] == "storage", read["events"]

        # 2026-07-28: no header, the trace named in the request's _meta.
        modern_trace, modern_parent = secrets.token_hex(16), secrets.token_hex(8)
        assert modern_add(server.url, f"00-{modern_trace}-{modern_parent}-01").status_code == 200
        modern = collector.wait(lambda s: s["name"] == "mcp tools/call" and s["trace_id"] == modern_trace)[0]
        assert modern["parent"] == modern_parent
        collector.wait(lambda s: s["name"] == "tool add" and s["trace_id"] == modern_trace)


def test_off_without_an_endpoint(env: dict[str, str], tmp_path: Path) -> None:
    """No OTLP setting: nothing of OpenTelemetry is even imported."""
    script = (
        "import sys\n"
        "from wassette.runtime.config import Settings\n"
        "from wassette.runtime.runtime import Runtime\n"
        "from wassette.server.http.app import App\n"
        "from wassette.server.http.options import HttpOptions\n"
        "App(Runtime(Settings.load()), HttpOptions())\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_dropped_trace_makes_no_call_span(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path], collector: Collector
) -> None:
    """A caller's trace marked not sampled (`-00`): parent-based sampling
    keeps nothing of it, not even the tool call's span; a sampled one next
    to it is kept whole."""
    assert Cli(env)("component", "load", components["arith"].as_uri()).returncode == 0
    traced = {
        **env,
        "WASSETTE_WORKERS": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    with http_server(traced, tmp_path / "serve.log") as server:
        dropped, kept = secrets.token_hex(16), secrets.token_hex(16)
        for trace_id, flags in ((dropped, "00"), (kept, "01")):
            header = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"}
            assert RawSession(server.url, headers=header).call(1, "add", {"a": 1, "b": 2}).status_code == 200
        collector.wait(lambda s: s["name"] == "tool add" and s["trace_id"] == kept)
    assert not [s for s in collector.spans if s["trace_id"] == dropped]


def test_the_sampler_decides_before_any_span_is_made(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path], collector: Collector
) -> None:
    """`parentbased_traceidratio` at 0: requests naming no trace make no
    span, nor do their tool calls (the server decides before the SDK makes
    one); a request in a sampled caller's trace is still traced whole, and
    one with its traceparent in 2026-07-28 `_meta` too."""
    assert Cli(env)("component", "load", components["arith"].as_uri()).returncode == 0
    traced = {
        **env,
        "WASSETTE_WORKERS": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
    }
    with http_server(traced, tmp_path / "serve.log") as server:
        plain = RawSession(server.url)
        for i in range(5):
            assert plain.call(i, "add", {"a": i, "b": 1}).status_code == 200
        kept = secrets.token_hex(16)
        header = {"traceparent": f"00-{kept}-{secrets.token_hex(8)}-01"}
        assert RawSession(server.url, headers=header).call(1, "add", {"a": 1, "b": 2}).status_code == 200
        modern = secrets.token_hex(16)
        assert modern_add(server.url, f"00-{modern}-{secrets.token_hex(8)}-01").status_code == 200
        collector.wait(lambda s: s["name"] == "tool add" and s["trace_id"] == kept)
        collector.wait(lambda s: s["name"] == "tool add" and s["trace_id"] == modern)
    assert {s["trace_id"] for s in collector.spans} == {kept, modern}, collector.spans


def test_a_calls_span_says_where_its_network_accesses_went(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path], collector: Collector
) -> None:
    """The span tree of one call that fetches from a granted host: the
    request's span, inside it the call's, with an egress event (host, port,
    connections, bytes each way) and the byte totals; Prometheus counts
    the same bytes."""
    body = b"x" * 5000
    stack = contextlib.ExitStack()
    port = stack.enter_context(static_web(body))
    cli = Cli(env)
    assert cli("component", "load", components["http-probe"].as_uri()).returncode == 0
    assert cli("permission", "grant", "network", "http-probe", f"http://127.0.0.1:{port}").returncode == 0
    traced = {
        **env,
        "WASSETTE_WORKERS": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    try:
        with http_server(traced, tmp_path / "serve.log") as server:
            trace_id = secrets.token_hex(16)
            session = RawSession(
                server.url, headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
            )
            answer = session.call(1, "fetch-url", {"url": f"http://127.0.0.1:{port}/data", "method": "GET"})
            assert answer.status_code == 200 and "200" in answer.text, answer.text
            call = collector.wait(lambda s: s["name"] == "tool fetch-url" and s["trace_id"] == trace_id)[0]
            request = collector.wait(lambda s: s["name"] == "mcp tools/call" and s["trace_id"] == trace_id)[0]
            assert call["parent"] == request["span_id"]
            [(_, egress)] = [e for e in call["events"] if e[0] == "wassette.egress"]
            assert egress["server.address"] == "127.0.0.1" and egress["server.port"] == port
            assert egress["url.scheme"] == "http" and egress["wassette.egress.connections"] == 1
            assert (
                egress["wassette.egress.received_bytes"]
                > len(body)
                > 0
                < egress["wassette.egress.sent_bytes"]
            )
            assert (
                call["attributes"]["wassette.egress.received_bytes"]
                == egress["wassette.egress.received_bytes"]
            )
            metrics = httpx.get(f"{server.base}/metrics", timeout=10).text
            line = next(
                x
                for x in metrics.splitlines()
                if x.startswith("wassette_egress_bytes_total{") and 'direction="received"' in x
            )
            assert float(line.rsplit(" ", 1)[1]) == egress["wassette.egress.received_bytes"]
    finally:
        stack.close()


def test_metrics_are_pushed_by_otlp_too(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path], collector: Collector
) -> None:
    """The measures /metrics serves, pushed by OTLP to the collector: calls
    by outcome, the time they took, refused accesses by kind, compiles
    (cache hits), pulls."""
    cli = Cli(env)
    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    pushed = {
        **env,
        "WASSETTE_WORKERS": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }
    with http_server(pushed, tmp_path / "serve.log") as server:
        session = RawSession(server.url)
        for i in range(3):
            assert session.call(i, "env-count", {}).status_code == 200
        assert session.call(5, "read-file", {"path": "/etc/hostname"}).status_code == 200  # refused inside
        loaded = session.call(6, "load-component", {"path": components["arith"].as_uri()})
        assert loaded.status_code == 200 and '"isError":false' in loaded.text.replace(" ", "")
        assert (
            collector.metric("wassette.tool.calls", tool="env-count", outcome="ok", component="io", tenant="")
            == 3
        )
        assert 0 < collector.metric("wassette.tool.call.time", component="io") < 30
        assert collector.metric("wassette.denials", kind="storage", component="io") == 1
        assert collector.metric("wassette.compiles", cached="true") >= 1
        assert collector.metric("wassette.pulls", scheme="file", outcome="ok") == 1
