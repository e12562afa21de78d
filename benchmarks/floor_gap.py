"""Where "ours minus the floor" goes: per fixture, over stdio with the raw
client, four figures measured in alternation for several rounds.

- floor: the engine's instantiate + call in this process, back to back (the
  suite's floor);
- idle floor: the same with a pause before each call, as a server idles
  between a client's round trips (the guest's memory and the interpreter's
  caches go cold);
- thin server: `suite/thin_stdio.py`, the least a Python stdio server on this
  engine can do (read a line, parse it, call, write a fixed answer);
- ours: `wassette run`.

"thin - floor" is what any Python stdio server pays on this machine; "ours -
thin" is what our server adds to it.

Usage: python benchmarks/floor_gap.py [--rounds 5] [--calls 400] [FIXTURE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from suite import clients, fixtures
from suite.subjects import Subject, stop

IDLE_S = 0.001
THIN = Path(__file__).resolve().parent / "suite" / "thin_stdio.py"


def timed(call: Callable[[], object], calls: int, idle_s: float = 0.0) -> float:
    """p50 in ms of `calls` calls after a warm-up."""
    samples = []
    for i in range(calls + 50):
        if idle_s:
            time.sleep(idle_s)  # the idle gap being measured, not synchronisation
        t = time.perf_counter()
        call()
        if i >= 50:
            samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def over_stdio(command: list[str], env: dict[str, str], call: fixtures.Call, calls: int, ours: bool) -> float:
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        client = clients.RawStdio(proc)
        if ours:
            client.initialize()
            clients.wait_listed(client, len(fixtures.FIXTURES))
        return timed(lambda: clients.call_ok(client, call.tool, call.arguments, call.tool), calls)
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("fixtures", nargs="*", default=list(fixtures.FIXTURES))
    opts = ap.parse_args()
    from wassette import _engine

    built = fixtures.build(list(fixtures.FIXTURES))
    with tempfile.TemporaryDirectory(prefix="floor-gap-") as tmp:
        root = Path(tmp)
        ours = Subject("ours", [sys.executable, "-m", "wassette"], root / "home")
        ours.home.mkdir()
        ours.populate(root / "components", [(n, n) for n in fixtures.FIXTURES], built)
        cache = str(root / "cache")
        engine = _engine.Engine(cache)
        figures: dict[tuple[str, str], list[float]] = {}
        for _ in range(opts.rounds):
            for name in opts.fixtures:
                call = fixtures.CALLS[name]
                args = json.dumps(call.arguments)
                component = engine.compile(built[name].read_bytes())

                def floor(
                    component: _engine.Component = component, call: fixtures.Call = call, args: str = args
                ) -> None:
                    component.start(call.interface, call.function, args).finish()

                thin = [sys.executable, str(THIN), cache, str(built[name]), call.function, args]
                row = {
                    "floor": timed(floor, opts.calls),
                    "idle floor": timed(floor, opts.calls, IDLE_S),
                    "thin": over_stdio(thin, ours.env, call, opts.calls, ours=False),
                    "ours": over_stdio(
                        ours.stdio_command(root / "components"), ours.env, call, opts.calls, ours=True
                    ),
                }
                for key, value in row.items():
                    figures.setdefault((name, key), []).append(value)
    print(f"p50 ms, median of {opts.rounds} rounds (range); {opts.calls} calls per figure\n")
    print(
        "| component | floor | idle floor | thin server | ours | thin - floor | ours - thin | ours - floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in opts.fixtures:
        m = {k: statistics.median(figures[(name, k)]) for k in ("floor", "idle floor", "thin", "ours")}
        cells = [f"{m[k]:.3f} ({min(figures[(name, k)]):.3f}-{max(figures[(name, k)]):.3f})" for k in m]
        gaps = [m["thin"] - m["floor"], m["ours"] - m["thin"], m["ours"] - m["floor"]]
        print(f"| {fixtures.LABELS[name]} | " + " | ".join(cells + [f"{g:.3f}" for g in gaps]) + " |")


if __name__ == "__main__":
    main()
