"""Quantities in policies, Kubernetes-style: memory sizes, CPU cores, durations."""

from __future__ import annotations

import re
from typing import Any

from wassette.runtime.errors import PolicyError

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_quantity(value: Any, where: str) -> int:
    """`512Mi`, `1Gi`, `2048Ki`, `1G`, or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KkMmGg]i?)?\s*", str(value))
    if not m:
        raise PolicyError(f"{where}: {value!r} is not a memory size (e.g. 512Mi, 1Gi, 268435456)")
    number = float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    if number < 65536 or number > 4 * 1024**3:
        raise PolicyError(f"{where}: {value!r} must be between 64Ki and 4Gi")
    return int(number)


def parse_cpu(value: Any, where: str) -> float:
    """Kubernetes-style CPU: `500m` (half a core), `1`, `1.5`."""
    text = str(value).strip()
    try:
        cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise PolicyError(f"{where}: {value!r} is not a CPU quantity (e.g. 500m, 1, 1.5)") from None
    if not 0 < cores <= 64:
        raise PolicyError(f"{where}: {value!r} must be more than 0 and at most 64 cores")
    return cores


def parse_duration_ms(value: Any, where: str) -> int:
    """`30s`, `500ms`, `2m`, or milliseconds as a number."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*", str(value))
    if not m:
        raise PolicyError(f"{where}: {value!r} is not a duration (e.g. 500ms, 30s, 2m)")
    ms = float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000}[m.group(2)]
    if not 0 < ms <= 3_600_000:
        raise PolicyError(f"{where}: {value!r} must be more than 0 and at most 1 hour")
    return int(ms)
