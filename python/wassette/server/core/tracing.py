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
import contextvars
import os
import random
from collections.abc import Iterator, Mapping
from typing import Any

from wassette import __version__
from wassette.runtime.calls import OK, CallResult
from wassette.runtime.naming import Tool
from wassette.runtime.runtime import Runtime

ENDPOINT_SETTINGS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Set in a request's context that is not traced (see `keeps_root`): its
# tool calls make no span either.
_UNSAMPLED: contextvars.ContextVar[bool] = contextvars.ContextVar("wassette_unsampled", default=False)


class _Unsampled:
    """Held while an untraced request is served (a class, not a generator:
    it is entered at nearly every request, and costs a third as much)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _UNSAMPLED.set(True)

    def __exit__(self, *exc: object) -> None:
        _UNSAMPLED.reset(self._token)


def root_ratio(env: Mapping[str, str] = os.environ) -> float | None:
    """The share of traces the configured sampler keeps for a request that
    names no parent (None: a sampler whose decision only the SDK can take)."""
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    if sampler in ("always_on", "parentbased_always_on"):
        return 1.0
    if sampler in ("always_off", "parentbased_always_off"):
        return 0.0
    if sampler in ("traceidratio", "parentbased_traceidratio"):
        try:
            return min(1.0, max(0.0, float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))))
        except ValueError:
            return None
    return None


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
        # A request that names no parent trace is sampled here, before any
        # span is made: measured, the SDK's span for a request it then drops
        # costs ~67 us of a served worker's time (ids, sampler, context).
        self.ratio = root_ratio()
        self._random = random.random
        self.observe(runtime)

    def keeps_root(self) -> bool:
        """Whether to trace a request that names no parent trace (the
        sampler's decision, taken without the SDK where it can be)."""
        ratio = self.ratio
        return ratio is None or ratio >= 1.0 or (ratio > 0.0 and self._random() < ratio)

    def unsampled(self) -> _Unsampled:
        """A request left untraced: nor are its tool calls."""
        return _Unsampled()

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
        if _UNSAMPLED.get():
            return None
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
        sent = received = 0
        for egress in result.egress:
            sent += egress.get("sent") or 0
            received += egress.get("received") or 0
            span.add_event("wassette.egress", _egress_attributes(egress))
        if result.egress:
            span.set_attribute("wassette.egress.sent_bytes", sent)
            span.set_attribute("wassette.egress.received_bytes", received)
        if result.status != OK:
            span.set_status(
                self.tracing.status(self.tracing.status_code.ERROR, result.error or result.status)
            )
        span.end()


def _egress_attributes(egress: dict[str, Any]) -> dict[str, Any]:
    """One destination of a call's allowed network accesses, in the
    OpenTelemetry conventions' names where they have one."""
    attributes = {
        "network.transport": "udp" if egress.get("transport") == "udp" else "tcp",
        "url.scheme": str(egress.get("transport", "")),
        "server.address": str(egress.get("host", "")),
        "server.port": int(egress.get("port") or 0),
        "wassette.egress.connections": int(egress.get("connections") or 0),
    }
    for key in ("sent", "received"):
        if egress.get(key) is not None:
            attributes[f"wassette.egress.{key}_bytes"] = int(egress[key])
    return attributes
