"""`component load` time per fixture (the CLI process, start to exit):
first (empty component directory, no compiled artifacts) and cached (the
same load again: ours finds the compiled artifact by content hash,
Wassette 0.8 its `<id>.cwasm`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from suite import fixtures
from suite.stats import Records
from suite.subjects import Subject


def measure(records: Records, subject: Subject, built: dict[str, Path], repeat: int) -> None:
    scratch = Subject(subject.name, subject.command, subject.home / "load-bench")
    for name in fixtures.FIXTURES:
        shutil.rmtree(scratch.home, ignore_errors=True)
        scratch.home.mkdir(parents=True)
        component_dir = scratch.home / "components"
        first = scratch.load(built[name], component_dir)
        cached = scratch.load(built[name], component_dir)
        records.add(
            "load",
            subject.name,
            repeat,
            fixture=name,
            first_ms=round(first * 1000, 1),
            cached_ms=round(cached * 1000, 1),
        )
    shutil.rmtree(scratch.home, ignore_errors=True)
