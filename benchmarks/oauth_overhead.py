"""What OAuth (and telemetry) cost a call: the same server with
`--oauth-issuer` (a real issuer on loopback, tests/issuer.py, RS256
tokens) and, with `--telemetry`, traces exported by OTLP to a receiver on
loopback (tests/test_tracing.py's) and Prometheus metrics, against neither;
p50 over HTTP (raw keep-alive client, 2025-11-25 session, the C `io`
component), in alternating rounds.

Usage: python benchmarks/oauth_overhead.py [--telemetry] [--calls 3000] [--repeats 7] [--json OUT]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from shared_state import Server, emit, home, p50_ms, wassette
from suite import clients, fixtures

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from issuer import RESOURCE, Issuer  # noqa: E402  (the tests' issuer)
from test_tracing import Collector  # noqa: E402  (the tests' OTLP receiver)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--telemetry", action="store_true", help="also traces (OTLP) on the OAuth side")
    ap.add_argument(
        "--sample", type=float, help="with --telemetry: the share of traces kept (OTEL_TRACES_SAMPLER)"
    )
    args = ap.parse_args()
    built = fixtures.build(["io"])
    call = fixtures.CALLS["io"]
    issuer = Issuer()
    collector = Collector() if args.telemetry else None
    # With --telemetry, OAuth alone is measured in the same rounds too.
    out: dict[str, list[float]] = {"oauth": [], **({"oauth_only": []} if args.telemetry else {}), "none": []}
    try:
        with tempfile.TemporaryDirectory(prefix="wassette-bench-oauth-") as tmp:
            env = home(Path(tmp), "h", None)
            wassette(env, "component", "load", built["io"].as_uri())
            oauth = ("--oauth-issuer", issuer.url, "--oauth-resource", RESOURCE)
            flags = {name: () if name == "none" else oauth for name in out}
            for _ in range(args.repeats):
                for name, extra in flags.items():
                    if extra:
                        # The raw client's connection opens its session with this header.
                        clients.HTTP_HEADERS["authorization"] = (
                            f"Bearer {issuer.token(scope='wassette:tools')}"
                        )
                    else:
                        clients.HTTP_HEADERS.pop("authorization", None)
                    traced = (
                        {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}
                        if collector and name == "oauth"
                        else {}
                    )
                    if traced and args.sample is not None:
                        traced["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
                        traced["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample)
                    server = Server({**env, **traced}, Path(tmp) / f"{name}.log", *extra)
                    try:
                        out[name].append(p50_ms(server, call, args.calls))
                    finally:
                        server.stop()
    finally:
        issuer.close()
        if collector is not None:
            collector.httpd.shutdown()
    p50 = {k: round(statistics.median(v), 4) for k, v in out.items()}
    results = {
        "fixture": "io (C, env-count)",
        "telemetry": args.telemetry,
        "sample": args.sample,
        "spans_received": len(collector.spans) if collector else 0,
        "calls": args.calls,
        "rounds": args.repeats,
        "p50_ms": p50,
        "rounds_p50_ms": out,
        "ratio": round(p50["oauth"] / p50["none"], 3),
        **({"oauth_only_ratio": round(p50["oauth_only"] / p50["none"], 3)} if args.telemetry else {}),
    }
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
