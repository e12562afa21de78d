"""Percentiles and summaries over repeats."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty sample."""
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/mean in milliseconds of one run's per-call times (seconds)."""
    ms = [x * 1000 for x in samples_s]
    return {
        "p50": round(percentile(ms, 0.5), 4),
        "p99": round(percentile(ms, 0.99), 4),
        "mean": round(statistics.fmean(ms), 4),
        "n": len(ms),
    }


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median and range of one figure measured once per repeat."""
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "values": [round(v, 4) for v in values],
    }


class Records:
    """Flat measurement records: one per (part, cell, subject, repeat)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, part: str, subject: str, repeat: int, **fields: Any) -> None:
        self.items.append({"part": part, "subject": subject, "repeat": repeat, **fields})

    def select(self, part: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.items if r["part"] == part and all(r.get(k) == v for k, v in match.items())]
