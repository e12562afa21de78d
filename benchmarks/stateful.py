"""A kept instance's call latency against a fresh instance's (issue 14:
stateful components): the same server, the same fixture, its policy
`resources.instance: per-call` (the default) or `per-session`, in
alternating rounds; p50 over HTTP (raw keep-alive client, one 2025-11-25
session, so the kept instance is that session's).

Usage: python benchmarks/stateful.py [--fixtures arith io time-server eval]
                                     [--calls 2000] [--repeats 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from shared_state import Server, emit, home, p50_ms, wassette
from suite import fixtures

POLICY = 'version: "1.0"\npermissions:\n  resources:\n    instance: {mode}\n'


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", nargs="*", default=["arith", "io", "time-server", "eval"])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    built = fixtures.build(args.fixtures)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="wassette-bench-kept-") as tmp:
        root = Path(tmp)
        for name in args.fixtures:
            env = home(root, name, None)
            wassette(env, "component", "load", built[name].as_uri())
            call = fixtures.CALLS[name]
            rounds: dict[str, list[float]] = {"per-call": [], "per-session": []}
            for _ in range(args.repeats):
                for mode, samples in rounds.items():
                    policy = root / f"{name}-{mode}.yaml"
                    policy.write_text(POLICY.format(mode=mode))
                    wassette(env, "policy", "attach", name, str(policy))
                    server = Server(env, root / f"{name}-{mode}.log")
                    try:
                        samples.append(p50_ms(server, call, args.calls))
                    finally:
                        server.stop()
            p50 = {mode: round(statistics.median(v), 4) for mode, v in rounds.items()}
            results[fixtures.LABELS[name]] = {
                "p50_ms": p50,
                "rounds_p50_ms": rounds,
                "kept_over_fresh": round(p50["per-session"] / p50["per-call"], 3),
            }
    emit({"calls": args.calls, "rounds": args.repeats, "fixtures": results}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
