"""OpenTelemetry traces (the OpenTelemetry SDK, exported by OTLP over HTTP):
a span per MCP request and, inside it, one per tool call, joined to the
caller's trace when the request carries `traceparent` (the HTTP header, or
`_meta.traceparent` of a 2026-07-28 request).

On when the standard settings name an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the
exporter reads every other `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` setting
itself); off, nothing of OpenTelemetry is imported. Each process (each
worker of a set) has its own provider, made after the fork.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from wassette import __version__
from wassette.runtime.calls import OK, CallResult
from wassette.runtime.naming import Tool
from wassette.runtime.runtime import Runtime

ENDPOINT_SETTINGS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    return any(env.get(name) for name in ENDPOINT_SETTINGS) and env.get("OTEL_SDK_DISABLED", "") != "true"


class Tracing:
    """The tracer, and the observer that makes each tool call's span."""

    def __init__(self, runtime: Runtime, service: str = "wassette") -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("wassette", __version__)
        self.kind = trace.SpanKind
        self.status = trace.Status
        self.status_code = trace.StatusCode
        self.current_span = trace.get_current_span
        self.observe(runtime)

    def observe(self, runtime: Runtime) -> None:
        """Makes the spans of `runtime`'s calls too (a tenant's carry its name)."""
        runtime.observers.append(_Spans(self, runtime))

    @contextlib.contextmanager
    def request(self, method: str, carrier: Mapping[str, str], transport: str) -> Iterator[Any]:
        """The span of one MCP request, current while it is handled; its
        parent is the caller's span named by `traceparent` in `carrier`."""
        from opentelemetry.propagate import extract

        parent = extract(dict(carrier)) if carrier.get("traceparent") else None
        with self.tracer.start_as_current_span(
            f"mcp {method}",
            context=parent,
            kind=self.kind.SERVER,
            attributes={"rpc.system": "jsonrpc", "rpc.method": method, "network.transport": transport},
        ) as span:
            yield span

    def shutdown(self) -> None:
        """Exports what is still queued (the server stops)."""
        self.provider.shutdown()


class _Spans:
    """The observer of one runtime's calls: a span for each."""

    def __init__(self, tracing: Tracing, runtime: Runtime) -> None:
        self.tracing = tracing
        self.runtime = runtime
        tenant = runtime.settings.tenant
        self.tenant = {"wassette.tenant": tenant} if tenant is not None else {}

    def started(self, tool: Tool) -> Any:
        current = self.tracing.current_span()
        if current.get_span_context().is_valid and not current.is_recording():
            return None  # the request's trace is not kept: nor is its call's span (saves ~8 us)
        meta = self.runtime.known(tool.component_id)
        return self.tracing.tracer.start_span(
            f"tool {tool.name}",
            kind=self.tracing.kind.INTERNAL,
            attributes={
                "wassette.tool": tool.name,
                "wassette.component.id": tool.component_id,
                "wassette.component.digest": meta.sha256 if meta is not None else "",
                "wassette.export": tool.export,
                **self.tenant,
            },
        )

    def ended(self, result: CallResult, handle: object) -> None:
        if handle is None:
            return
        span: Any = handle
        span.set_attribute("wassette.outcome", result.status)
        span.set_attribute("wassette.duration_ms", result.duration_ms)
        for name, prefix, items in (
            ("wassette.denied", "wassette.denial", result.denials),
            ("wassette.network_failure", "wassette.failure", result.failures),
        ):
            for item in items:
                attributes = {
                    f"{prefix}.{k}": str(v) for k, v in item.items() if isinstance(v, str | int | float)
                }
                span.add_event(name, attributes)
        if result.status != OK:
            span.set_status(
                self.tracing.status(self.tracing.status_code.ERROR, result.error or result.status)
            )
        span.end()
