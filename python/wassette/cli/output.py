"""Rendering command results as json (default), yaml or table."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

FORMATS = ("json", "yaml", "table")


def render(data: Any, fmt: str = "json", *, columns: Sequence[str] | None = None) -> str:
    if fmt == "yaml":
        import yaml  # only this format needs it

        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).rstrip("\n")
    if fmt == "table":
        return _table(data, columns)
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(
    data: Any, fmt: str = "json", *, columns: Sequence[str] | None = None, out: TextIO | None = None
) -> None:
    print(render(data, fmt, columns=columns), file=out or sys.stdout)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, (dict, bool, int, float)):
        return json.dumps(value, ensure_ascii=False)
    return " ".join(str(value).split())  # one line per row: multi-line docs are folded


def _table(data: Any, columns: Sequence[str] | None) -> str:
    if isinstance(data, Mapping):
        rows: list[Mapping[str, Any]] = [data]
    elif isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        rows = data
    else:
        return _cell(data)
    cols = list(columns or (list(rows[0].keys()) if rows else []))
    if not cols:
        return "(none)"
    cells = [[c.upper() for c in cols]] + [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)
