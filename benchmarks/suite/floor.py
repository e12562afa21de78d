"""The floor: the engine's own instantiate + call of the same export, in
this process, without any protocol (`wassette._engine.Component.start(...)
.finish()`: a new store from the pre-instantiated component per call, as the
server does)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from suite import fixtures
from suite.stats import Records, latency_ms


def measure(records: Records, built: dict[str, Path], cache_dir: Path, calls: int, repeats: int) -> None:
    from wassette import _engine

    engine = _engine.Engine(str(cache_dir))
    components = {name: engine.compile(built[name].read_bytes()) for name in fixtures.FIXTURES}
    for repeat in range(repeats):
        for name, call in fixtures.CALLS.items():
            component = components[name]
            args = json.dumps(call.arguments)
            samples = []
            for i in range(calls + max(10, calls // 10)):
                t = time.perf_counter()
                out = component.start(call.interface, call.function, args).finish()
                elapsed = time.perf_counter() - t
                if out.status != "ok":
                    raise RuntimeError(f"floor {name}: {out.status} {out.error}")
                if i >= max(10, calls // 10):
                    samples.append(elapsed)
            records.add(
                "latency",
                "floor",
                repeat,
                transport="in-process",
                client="none",
                fixture=name,
                **latency_ms(samples),
            )
