"""Metrics by OTLP (the OpenTelemetry SDK, over HTTP): the same measures
`/metrics` serves to Prometheus, pushed to a collector that takes OTLP.

On when the standard settings name an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`
or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`; the exporter reads every other
`OTEL_EXPORTER_OTLP_*` setting, and `OTEL_METRIC_EXPORT_INTERVAL` how often
it pushes, 60 s by default); `OTEL_METRICS_EXPORTER=none` keeps it off. Each
process (each worker of a set) pushes its own, made after the fork: the
collector adds them up.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from wassette import __version__
from wassette.runtime.calls import CallResult
from wassette.runtime.events import listen
from wassette.runtime.naming import Tool
from wassette.runtime.runtime import Runtime
from wassette.server.core.metrics import EVENT_METRICS

ENDPOINT_SETTINGS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    return (
        any(env.get(name) for name in ENDPOINT_SETTINGS)
        and env.get("OTEL_SDK_DISABLED", "") != "true"
        and env.get("OTEL_METRICS_EXPORTER", "otlp") != "none"
    )


class OtlpMetrics:
    """The meter provider, and the observer of each runtime's calls.

    Counts are kept here, in a dict, and read by the SDK's observable
    instruments when it exports: measured, the SDK's own instruments cost
    42.7 us a call for this observer's four updates (attributes hashed and
    looked up under a lock at each; the histogram alone ~60 % of it),
    against 4.5 us for the Prometheus one. So the time calls took is pushed
    as its sum (`wassette.tool.call.time`, seconds; over `wassette.tool.calls`,
    the mean): the SDK has no observable histogram, and the distribution is
    Prometheus' (`/metrics`)."""

    def __init__(self, runtime: Runtime, service: str = "wassette") -> None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        self.provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self.provider.get_meter("wassette", __version__)
        self.lock = threading.Lock()
        # metric -> its attributes' names, and -> their values (a tuple in that order) -> count
        self.labels: dict[str, tuple[str, ...]] = {
            "wassette.tool.calls": ("tenant", "component", "tool", "outcome"),
            "wassette.tool.call.time": ("tenant", "component"),
            "wassette.denials": ("tenant", "component", "kind"),
            "wassette.egress": ("tenant", "component", "direction"),
        }
        self.labels.update(
            {metric.replace("_", "."): ("tenant", *labels) for metric, _, labels in EVENT_METRICS.values()}
        )
        self.counts: dict[str, dict[tuple[str, ...], float]] = {metric: {} for metric in self.labels}
        self.running: dict[str, int] = defaultdict(int)  # tenant -> calls in flight
        for name, unit, text in (
            ("wassette.tool.calls", "{call}", "Tool calls the engine ran"),
            ("wassette.tool.call.time", "s", "Time tool calls took, added up"),
            ("wassette.denials", "{access}", "Accesses the sandbox refused"),
            ("wassette.egress", "By", "Bytes over allowed HTTP connections"),
            *((metric.replace("_", "."), "1", text) for metric, text, _ in EVENT_METRICS.values()),
        ):
            meter.create_observable_counter(name, [self._reader(name)], unit, text)
        meter.create_observable_up_down_counter(
            "wassette.tool.calls.in_flight", [self._in_flight], "{call}", "Tool calls running now"
        )
        self.event_names = {
            name: (metric.replace("_", "."), labels) for name, (metric, _, labels) in EVENT_METRICS.items()
        }
        listen(self.event)
        self.observe(runtime)

    def add(self, metric: str, value: float, key: tuple[str, ...]) -> None:
        """Adds to the count of `metric` for these attribute values (in the
        order of `labels[metric]`)."""
        with self.lock:
            values = self.counts[metric]
            values[key] = values.get(key, 0) + value

    def _reader(self, metric: str) -> Any:
        from opentelemetry.metrics import Observation

        names = self.labels[metric]

        def read(options: Any) -> Any:
            with self.lock:
                found = list(self.counts[metric].items())
            return [Observation(value, dict(zip(names, key, strict=True))) for key, value in found]

        return read

    def _in_flight(self, options: Any) -> Any:
        from opentelemetry.metrics import Observation

        with self.lock:
            found = list(self.running.items())
        return [Observation(value, {"tenant": tenant}) for tenant, value in found]

    def observe(self, runtime: Runtime) -> None:
        runtime.observers.append(_Calls(self, runtime.settings.tenant or ""))

    def event(self, name: str, labels: Mapping[str, str]) -> None:
        found = self.event_names.get(name)
        if found is not None:
            metric, names = found
            self.add(metric, 1, (labels.get("tenant", ""), *(labels.get(k, "") for k in names)))

    def shutdown(self) -> None:
        """Pushes what is still unsent (the server stops)."""
        self.provider.shutdown()


class _Calls:
    """The observer of one runtime's calls (Runtime.observers)."""

    def __init__(self, metrics: OtlpMetrics, tenant: str) -> None:
        self.metrics = metrics
        self.tenant = tenant

    def started(self, tool: Tool) -> None:
        m = self.metrics
        with m.lock:
            m.running[self.tenant] += 1

    def ended(self, result: CallResult, handle: object) -> None:
        m, tenant = self.metrics, self.tenant
        with m.lock:
            m.running[tenant] -= 1
        component = result.tool.component_id
        m.add("wassette.tool.calls", 1, (tenant, component, result.tool.name, result.status))
        m.add("wassette.tool.call.time", result.duration_ms / 1000, (tenant, component))
        for denial in result.denials:
            m.add("wassette.denials", 1, (tenant, component, str(denial.get("kind", "other"))))
        for egress in result.egress:
            for direction in ("sent", "received"):
                if egress.get(direction):
                    m.add("wassette.egress", egress[direction], (tenant, component, direction))
