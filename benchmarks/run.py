"""The benchmark suite: ours side by side with Microsoft's Wassette 0.8 and
the floor (the engine's in-process instantiate + call), same components, same
clients, one run. Writes the raw results (JSON) and the tables in BENCHMARKS.md.

Usage:
  python benchmarks/run.py [--parts latency,throughput,startup,memory,load]
                           [--repeats 3] [--calls 200] [--seconds 3] [--quick]
                           [--wassette PATH | --no-wassette] [--json OUT] [--markdown FILE]
  python benchmarks/run.py --from-json benchmarks/results/benchmarks.json   # tables only

Ours is `python -m wassette` of this interpreter: for published figures, run
it where `wassette` is installed from a release build of the engine (see
BENCHMARKS.md). Wassette 0.8 is found at --wassette, $WASSETTE_ANCHOR or
~/.cache/wassette-anchor/wassette (../shared/anchors/install-wassette.sh);
without it, ours and the floor are measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from suite import fixtures, floor, latency, load, memory, report, startup, throughput
from suite.stats import Records
from suite.subjects import Subject, bench_components, find_wassette, make_subjects

REPO = Path(__file__).resolve().parent.parent
PARTS = ("latency", "throughput", "startup", "memory", "load")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare(subject: Subject, name: str, components: list[tuple[str, str]], built: dict[str, Path]) -> Path:
    """A component directory with these components (kept when it exists,
    for reruns with --work)."""
    directory = subject.home / "dirs" / name
    marker = directory / ".complete"
    if not marker.exists():
        log(f"{subject.name}: preparing {name} ({len(components)} components)")
        subject.populate(directory, components, built)
        marker.touch()
    return directory


def main() -> int:
    logging.getLogger("mcp").setLevel(logging.CRITICAL)  # e.g. a 202 to the closing DELETE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of: " + ", ".join(PARTS))
    ap.add_argument("--repeats", type=int, default=3, help="fresh servers per figure (default 3)")
    ap.add_argument("--cold-repeats", type=int, help="repeats of cold start-ups (default: --repeats)")
    ap.add_argument("--calls", type=int, default=200, help="timed calls per latency cell (default 200)")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of a throughput cell (default 3)")
    ap.add_argument("--quick", action="store_true", help="1 repeat, 50 calls, 1 s cells: a smoke run")
    ap.add_argument("--wassette", type=Path, help="Wassette 0.8 executable (or wrapper)")
    ap.add_argument("--no-wassette", action="store_true", help="measure ours and the floor only")
    ap.add_argument("--ours", help="command line of ours (default: this python -m wassette)")
    ap.add_argument("--work", type=Path, help="keep state here (reused by later runs) instead of a temp dir")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks/results/benchmarks.json")
    ap.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--no-markdown", action="store_true", help="write the JSON only")
    ap.add_argument(
        "--from-json", type=Path, help="measure nothing: write the tables of an earlier run's JSON"
    )
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        records = Records()
        records.items = saved["records"]
        report.write(args.markdown, records, saved["meta"])
        print(report.markdown(records, saved["meta"]))
        return 0
    if args.quick:
        args.repeats, args.calls, args.seconds = 1, 50, 1.0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    cold_repeats = args.cold_repeats or args.repeats

    load_at_start = os.getloadavg()
    built = fixtures.build()
    wassette = find_wassette(args.wassette, args.no_wassette)
    work_ctx = tempfile.TemporaryDirectory(prefix="wassette-bench-") if args.work is None else None
    root = Path(work_ctx.name) if work_ctx else args.work
    root.mkdir(parents=True, exist_ok=True)
    subjects = make_subjects(root, wassette, args.ours.split() if args.ours else None)
    records = Records()
    from wassette import _engine

    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
        },
        "versions": {s.name: s.version() for s in subjects},
        "engine": f"wassette._engine from {Path(_engine.__file__).parent}",
        "repeats": args.repeats,
        "calls": args.calls,
        "seconds": args.seconds,
        "parts": parts,
        "json": str(args.json.relative_to(REPO) if args.json.is_relative_to(REPO) else args.json),
    }
    try:
        dirs: dict[tuple[str, str], Path] = {}
        expected: dict[tuple[str, str], int] = {}
        wanted = {"bench4"} if {"latency", "throughput"} & set(parts) or "memory" in parts else set()
        if "startup" in parts:
            wanted |= {"c0", "c10"}
        if "memory" in parts:
            wanted |= {"c1", "c10", "c50"}
        for s in subjects:
            for name in sorted(wanted):
                comps = bench_components() if name == "bench4" else fixtures.component_set(int(name[1:]))
                dirs[s.name, name] = prepare(s, name, comps, built)
                expected[s.name, name] = s.expected_tools(dirs[s.name, name])

        if "latency" in parts:
            log("floor")
            floor.measure(records, built, subjects[0].home / "floor-cache", args.calls, args.repeats)
        for repeat in range(args.repeats):
            # Alternate who goes first, so drifting machine load hits both alike.
            order = subjects if repeat % 2 == 0 else list(reversed(subjects))
            for part in parts:
                for s in order:
                    log(f"repeat {repeat + 1}/{args.repeats}: {part}: {s.name}")
                    if part == "latency":
                        latency.measure(
                            records, s, dirs[s.name, "bench4"], expected[s.name, "bench4"], args.calls, repeat
                        )
                    elif part == "throughput":
                        throughput.measure(
                            records,
                            s,
                            dirs[s.name, "bench4"],
                            expected[s.name, "bench4"],
                            args.seconds,
                            repeat,
                        )
                    elif part == "startup":
                        for n in (0, 10):
                            d = dirs[s.name, f"c{n}"]
                            want = expected[s.name, f"c{n}"]
                            for transport in ("stdio", "http"):
                                startup.measure(records, s, d, n, "warm", transport, want, repeat)
                            if repeat < cold_repeats:
                                startup.measure(records, s, d, n, "cold", "stdio", want, repeat)
                    elif part == "memory":
                        for n in (1, 10, 50):
                            memory.loaded(
                                records, s, dirs[s.name, f"c{n}"], n, expected[s.name, f"c{n}"], repeat
                            )
                        memory.per_call(
                            records, s, dirs[s.name, "bench4"], expected[s.name, "bench4"], 20, repeat
                        )
                        if s.is_ours:
                            memory.workers(
                                records, s, dirs[s.name, "c10"], 10, expected[s.name, "c10"], repeat
                            )
                    elif part == "load":
                        load.measure(records, s, built, repeat)
            # Keep what is measured so far, in case a later part fails.
            save(args.json, meta, records)
    finally:
        if work_ctx is not None:
            work_ctx.cleanup()

    save(args.json, meta, records)
    log(f"wrote {args.json}")
    if not args.no_markdown:
        report.write(args.markdown, records, meta)
        log(f"wrote {args.markdown}")
    print(report.markdown(records, meta))
    return 0


def save(path: Path, meta: dict[str, object], records: Records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"meta": meta, "records": records.items}, indent=1) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
