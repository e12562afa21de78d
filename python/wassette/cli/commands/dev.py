"""`wassette dev [DIR]`: the development loop of a component project (as
`wassette new` makes them): build it with its `build.sh`, load the result,
and again whenever a source file changes. A server using the same component
directory (`wassette run`, `wassette serve`) sees each load and serves the
new build from its next call (and tells its clients when the tools changed).

Sources are every file under DIR but build outputs: `*.wasm`, and the
`target`, `node_modules`, `__pycache__` and dot directories. Changes are
found by polling (`--interval`): no watcher library, and nothing to miss on
network or container file systems.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from wassette.cli.options import Parents
from wassette.runtime.errors import WassetteError

SKIPPED_DIRS = frozenset({"target", "node_modules", "__pycache__"})
WORLD = re.compile(r"^\s*world\s+([a-z][a-z0-9-]*)\s*\{", re.MULTILINE)

Stamp = frozenset[tuple[str, int, int]]


def add(sub: Any, p: Parents) -> None:
    dev = sub.add_parser(
        "dev",
        parents=[p.dirs],
        help="build a component project and load it, again at every change of its sources",
    )
    dev.add_argument("dir", metavar="DIR", nargs="?", default=".", help="the project (default: here)")
    dev.add_argument("--once", action="store_true", help="build and load once, then stop")
    dev.add_argument(
        "--interval",
        type=float,
        default=0.5,
        metavar="S",
        help="how often to look for changes (default 0.5 s)",
    )
    dev.set_defaults(handler=cmd_dev)


def cmd_dev(args: argparse.Namespace) -> int:
    project = Path(args.dir).resolve()
    name = project_name(project)
    if not (project / "build.sh").is_file():
        raise WassetteError(f"{project} has no build.sh (`wassette new` makes projects that have one)")
    if not 0.05 <= args.interval <= 60:
        raise WassetteError("--interval is a number of seconds from 0.05 to 60")
    seen: Stamp | None = None
    try:
        while True:
            now = sources(project)
            if now != seen:
                seen = now
                ok = build_and_load(args, project, name)
                if args.once:
                    return 0 if ok else 1
                print(f"watching {project} (Ctrl-C to stop)", file=sys.stderr, flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def project_name(project: Path) -> str:
    """The component's name: its world's, in wit/ (what build.sh names the .wasm)."""
    for wit in sorted((project / "wit").glob("*.wit")) if (project / "wit").is_dir() else []:
        found = WORLD.search(wit.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1)
    raise WassetteError(f"no WIT world found in {project / 'wit'}")


def sources(project: Path) -> Stamp:
    """What the build reads, as (path, mtime, size): changes when any changes."""
    found = set()
    for root, dirs, files in os.walk(project):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
        for f in files:
            if f.endswith(".wasm"):
                continue
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue  # removed while looking: the next look sees it gone
            found.add((os.path.relpath(os.path.join(root, f), project), st.st_mtime_ns, st.st_size))
    return frozenset(found)


def build_and_load(args: argparse.Namespace, project: Path, name: str) -> bool:
    print(f"building {name} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    built = subprocess.run(["bash", "build.sh"], cwd=project, stdout=sys.stderr, stderr=sys.stderr)
    wasm = project / f"{name}.wasm"
    if built.returncode != 0 or not wasm.is_file():
        print(f"build failed (exit {built.returncode}): fix it and save again", file=sys.stderr, flush=True)
        return False
    from wassette.cli.common import runtime
    from wassette.distribution.loading import load_component

    try:
        report = load_component(runtime(args), wasm.as_uri())
    except WassetteError as e:
        print(f"not loaded: {e}", file=sys.stderr, flush=True)
        return False
    took = time.monotonic() - started
    tools = ", ".join(report.tools) or "no tools"
    print(f"loaded {report.id} ({took:.1f} s): {tools}", file=sys.stderr, flush=True)
    return True
