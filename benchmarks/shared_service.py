"""Throughput of a shared service: calls per second at 16 concurrent HTTP
clients (each its own session on a keep-alive connection) for the C `io`
component, with OAuth (a real issuer on loopback, tests/issuer.py) and
telemetry (traces and metrics by OTLP to a receiver on loopback, Prometheus
metrics) on, against the same server with neither, and against Microsoft's
Wassette 0.8 (no auth, no telemetry: it has neither), in alternating rounds
of one run. Ours runs its default worker count (one per usable core).

Usage: python benchmarks/shared_service.py [--seconds 5] [--repeats 3] [--clients 16] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shared_state import emit
from suite import clients, fixtures
from suite.subjects import Subject, find_wassette, free_port, make_subjects
from suite.throughput import calls_per_second

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from issuer import RESOURCE, Issuer  # noqa: E402  (the tests' issuer)
from test_tracing import Collector  # noqa: E402  (the tests' OTLP receiver)


def rate(
    subject: Subject, component_dir: Path, extra: list[str], token: str | None, args: argparse.Namespace
) -> float:
    port = free_port()
    if token:
        clients.HTTP_HEADERS["authorization"] = f"Bearer {token}"
    try:
        with subject.process([*subject.http_command(component_dir, port), *extra], stdio=False):
            first = clients.connect_http(port)
            clients.wait_listed(first, 1)
            first.close()
            time.sleep(clients.SETTLE_S)
            return asyncio.run(calls_per_second(port, fixtures.CALLS["io"], args.clients, args.seconds))
    finally:
        clients.HTTP_HEADERS.pop("authorization", None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--sample", type=float, help="the share of traces kept (OTEL_TRACES_SAMPLER); default all"
    )
    args = ap.parse_args()
    built = fixtures.build(["io"])
    issuer, collector = Issuer(), Collector()
    rates: dict[str, list[float]] = {
        "ours_oauth_telemetry": [],
        "ours_oauth": [],
        "ours_plain": [],
        "wassette": [],
    }
    try:
        with tempfile.TemporaryDirectory(prefix="wassette-bench-service-") as tmp:
            subjects = {s.name: s for s in make_subjects(Path(tmp), find_wassette(None, False), None)}
            ours = subjects["ours"]
            plain = Subject("ours", ours.command, ours.home)
            ours.env.update(
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                }
            )
            if args.sample is not None:
                ours.env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
                ours.env["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample)
            dirs = {}
            for name, subject in subjects.items():
                dirs[name] = subject.home / "components"
                subject.load(built["io"], dirs[name])
            oauth = ["--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE]
            for _ in range(args.repeats):
                token = issuer.token(scope="wassette:tools")
                rates["ours_oauth_telemetry"].append(rate(ours, dirs["ours"], oauth, token, args))
                rates["ours_oauth"].append(rate(plain, dirs["ours"], oauth, token, args))
                rates["ours_plain"].append(rate(plain, dirs["ours"], [], None, args))
                if "wassette" in subjects:
                    rates["wassette"].append(rate(subjects["wassette"], dirs["wassette"], [], None, args))
    finally:
        issuer.close()
        collector.httpd.shutdown()
    median = {k: round(statistics.median(v), 1) for k, v in rates.items() if v}
    results = {
        "fixture": "io (C, env-count)",
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": args.repeats,
        "calls_per_s": median,
        "rounds_calls_per_s": rates,
        "sample": args.sample,
        "spans_received": len(collector.spans),
        "oauth_telemetry_vs_plain": round(median["ours_oauth_telemetry"] / median["ours_plain"], 3),
        "oauth_vs_plain": round(median["ours_oauth"] / median["ours_plain"], 3),
    }
    if "wassette" in median:
        results["oauth_telemetry_vs_wassette"] = round(median["ours_oauth_telemetry"] / median["wassette"], 3)
        results["plain_vs_wassette"] = round(median["ours_plain"] / median["wassette"], 3)
        results["oauth_vs_wassette"] = round(median["ours_oauth"] / median["wassette"], 3)
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
