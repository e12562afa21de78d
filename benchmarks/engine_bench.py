"""Engine micro-benchmarks, per fixture component:

- compile: cold compile (fresh artifact cache),
- cached load: a new engine loading the same component from the artifact cache,
- call: instantiate + call of a trivial function (new store per call), p50/p99.

Usage: python benchmarks/engine_bench.py [--calls N] [--json OUT] [NAME ...]
Needs the extension built (scripts/test.sh does it) and the fixtures
(tests/components/build.py). Results are printed as a table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from wassette import _engine

REPO = Path(__file__).resolve().parent.parent

# A cheap call per fixture: (interface, function, args).
TRIVIAL: dict[str, tuple[str | None, str, dict[str, Any]]] = {
    "arith": (None, "add", {"a": 1, "b": 2}),
    "strings": (None, "length", {"s": "hello"}),
    "iface": ("test:iface/math@0.1.0", "double", {"x": 2}),
    "io": (None, "env-count", {}),
    "time-server": (None, "get-current-time", {}),
    "eval": (None, "eval", {"req": {"expression": "1+2"}}),
    "types": (None, "echo-s32", {"x": 7}),
}


def fixtures(names: list[str]) -> dict[str, Path]:
    spec = importlib.util.spec_from_file_location("fixtures_build", REPO / "tests/components/build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    built: dict[str, Path] = mod.build(names or list(TRIVIAL))
    return built


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def bench(name: str, path: Path, calls: int, allocator: str) -> dict[str, Any]:
    wasm = path.read_bytes()
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        component = _engine.Engine(cache, allocator).compile(wasm)
        compile_ms = (time.perf_counter() - t) * 1000
        assert not component.from_cache
        fresh = _engine.Engine(cache, allocator)  # a new process would start like this
        t = time.perf_counter()
        component = fresh.load(str(path), component.sha256)
        cached_ms = (time.perf_counter() - t) * 1000
        assert component.from_cache
    interface, function, args = TRIVIAL[name]
    args_json = json.dumps(args)
    first = component.start(interface, function, args_json).finish()
    assert first.status == "ok", first.error
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        out = component.start(interface, function, args_json).finish()
        samples.append((time.perf_counter() - t) * 1000)
        assert out.status == "ok"
    return {
        "fixture": name,
        "allocator": allocator,
        "size_bytes": len(wasm),
        "compile_ms": compile_ms,
        "cached_load_ms": cached_ms,
        "first_call_ms": first.duration_ms,
        "call_p50_ms": statistics.median(samples),
        "call_p99_ms": percentile(samples, 0.99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", choices=[*TRIVIAL, []], help="fixtures (default: all)")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument(
        "--allocator", choices=("pooling", "on-demand"), default="pooling", help="instance allocator"
    )
    ap.add_argument("--json", type=Path, help="also write raw results here")
    opts = ap.parse_args()
    rows = [bench(n, p, opts.calls, opts.allocator) for n, p in fixtures(opts.names).items()]
    cols = [
        "fixture",
        "size_bytes",
        "compile_ms",
        "cached_load_ms",
        "first_call_ms",
        "call_p50_ms",
        "call_p99_ms",
    ]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
