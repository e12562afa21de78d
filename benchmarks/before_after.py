"""A change on the call path, before and after, in one session: two
installs of wassette (two Python interpreters, e.g. two venvs with the same
release engine and the Python tree of each commit), the same server flags,
p50 over HTTP (raw keep-alive client, 2025-11-25 session, the C `io`
component), in alternating rounds.

Usage: python benchmarks/before_after.py --before /venv-a/bin/python --after /venv-b/bin/python
                                         [--calls 3000] [--repeats 9] [--json OUT] [-- SERVE FLAGS]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from shared_state import Server, emit, home, p50_ms, wassette
from suite import fixtures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the Python of the install before the change")
    ap.add_argument("--after", required=True, help="the Python of the install after it")
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--json", type=Path)
    ap.add_argument("flags", nargs="*", help="extra `serve` flags, after --")
    args = ap.parse_args()
    built = fixtures.build(["io"])
    call = fixtures.CALLS["io"]
    out: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="wassette-bench-ba-") as tmp:
        env = home(Path(tmp), "h", None)
        wassette(env, "component", "load", built["io"].as_uri())
        for _ in range(args.repeats):
            for name in out:
                server = Server(env, Path(tmp) / f"{name}.log", *args.flags, python=getattr(args, name))
                try:
                    out[name].append(p50_ms(server, call, args.calls))
                finally:
                    server.stop()
    p50 = {k: round(statistics.median(v), 4) for k, v in out.items()}
    emit(
        {
            "fixture": "io (C, env-count)",
            "calls": args.calls,
            "rounds": args.repeats,
            "flags": args.flags,
            "p50_ms": p50,
            "rounds_p50_ms": out,
            "ratio": round(p50["after"] / p50["before"], 3),
        },
        args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
