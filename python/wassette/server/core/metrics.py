"""Prometheus metrics of the server (prometheus_client): tool calls by
outcome, their duration, refused accesses by kind, calls in flight, and the
components and tools offered.

With a worker set (`serve --workers N`) each worker writes its values into
the set's directory (the client's multiprocess mode, chosen by
`PROMETHEUS_MULTIPROC_DIR`, which the supervisor sets before it forks) and
`/metrics`, whichever worker answers it, adds up every worker's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from wassette.runtime.calls import CallResult
from wassette.runtime.events import listen
from wassette.runtime.naming import Tool
from wassette.runtime.runtime import Runtime

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Calls last from microseconds (WAT) to the time limit: seconds.
MAX_CHILDREN = 10_000
# events.py's events: metric, help, labels (besides the tenant).
EVENT_METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "compile": ("wassette_compiles", "Components compiled, or taken from the artifact cache", ("cached",)),
    "pull": ("wassette_pulls", "Components fetched, by source scheme", ("scheme", "outcome")),
    "signature_check": ("wassette_signature_checks", "Signature checks of OCI components", ("status",)),
}
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Observes every call the engine runs (Runtime.observers)."""

    def __init__(self, runtime: Runtime) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.runtimes: list[Runtime] = []
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        # Values go to this registry (or, multiprocess, to the set's files);
        # what is exposed is assembled at each scrape (`exposition`).
        self.registry = on = CollectorRegistry()
        self.calls = Counter(
            "wassette_tool_calls",
            "Tool calls the engine ran, by outcome",
            ["tenant", "component", "tool", "outcome"],
            registry=on,
        )
        self.duration = Histogram(
            "wassette_tool_call_duration_seconds",
            "Time tool calls took",
            ["tenant", "component"],
            buckets=BUCKETS,
            registry=on,
        )
        self.denials = Counter(
            "wassette_denials",
            "Accesses the sandbox refused, by kind",
            ["tenant", "component", "kind"],
            registry=on,
        )
        self.egress = Counter(
            "wassette_egress_bytes",
            "Bytes tool calls sent and received over allowed HTTP connections",
            ["tenant", "component", "direction"],
            registry=on,
        )
        # Compiles (and artifact-cache hits), pulls, signature checks (events.py).
        self.events = {
            name: (Counter(metric, text, ["tenant", *labels], registry=on), labels)
            for name, (metric, text, labels) in EVENT_METRICS.items()
        }
        listen(self.event)
        self.in_flight = Gauge(
            "wassette_tool_calls_in_flight",
            "Tool calls running now",
            multiprocess_mode="livesum",
            registry=on,
        )
        # The labelled children of each (tenant, component, tool, outcome):
        # taking them from a dict costs a third of `labels()` (measured: 1.3 -> 0.4 us).
        self.children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self.observe(runtime)

    def event(self, name: str, labels: Mapping[str, str]) -> None:
        found = self.events.get(name)
        if found is not None:
            counter, names = found
            counter.labels(labels.get("tenant", ""), *(labels.get(k, "") for k in names)).inc()

    def observe(self, runtime: Runtime) -> None:
        """Counts `runtime`'s calls too (a tenant's: its series carry its name)."""
        self.runtimes.append(runtime)
        runtime.observers.append(_Calls(self, runtime.settings.tenant or ""))

    def exposition(self) -> tuple[bytes, str]:
        """The text a scraper reads, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        offered = CollectorRegistry()
        offered.register(_Offered(list(self.runtimes)))
        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            values = CollectorRegistry()
            MultiProcessCollector(values)  # type: ignore[no-untyped-call]
        else:
            values = self.registry
        return generate_latest(values) + generate_latest(offered), CONTENT_TYPE_LATEST


class _Calls:
    """The observer of one runtime's calls (Runtime.observers)."""

    def __init__(self, metrics: Metrics, tenant: str) -> None:
        self.metrics = metrics
        self.tenant = tenant

    def started(self, tool: Tool) -> None:
        self.metrics.in_flight.inc()

    def ended(self, result: CallResult, handle: object) -> None:
        m = self.metrics
        m.in_flight.dec()
        component = result.tool.component_id
        key = (self.tenant, component, result.tool.name, result.status)
        children = m.children.get(key)
        if children is None:
            children = (m.calls.labels(*key), m.duration.labels(self.tenant, component))
            if len(m.children) < MAX_CHILDREN:
                m.children[key] = children
        children[0].inc()
        children[1].observe(result.duration_ms / 1000)
        for denial in result.denials:
            m.denials.labels(self.tenant, component, str(denial.get("kind", "other"))).inc()
        for egress in result.egress:
            for direction in ("sent", "received"):
                if egress.get(direction):
                    m.egress.labels(self.tenant, component, direction).inc(egress[direction])


class _Offered:
    """Components and tools offered now, per tenant (read at each scrape)."""

    def __init__(self, runtimes: list[Runtime]) -> None:
        self.runtimes = runtimes

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        components = GaugeMetricFamily("wassette_components", "Components installed", labels=["tenant"])
        tools = GaugeMetricFamily("wassette_tools", "Tools offered by components", labels=["tenant"])
        for runtime in self.runtimes:
            tenant = runtime.settings.tenant or ""
            components.add_metric([tenant], len(runtime.components()))
            tools.add_metric([tenant], len(runtime.tools()))
        yield components
        yield tools


def worker_gone(pid: int) -> None:
    """A worker died: its live gauges stop counting (multiprocess mode)."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
