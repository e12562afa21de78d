"""The audit log: append-only JSON lines in the data directory.

Every access the sandbox refused, and every change of permissions, is one
line. Secret values never appear here: records carry keys and paths only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("wassette.audit")


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Also given every record (a shared state ships them to its database).
        self.also: Callable[[dict[str, Any]], None] | None = None

    def record(self, event: str, **fields: Any) -> None:
        entry = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        line = (json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n").encode()
        if self.also is not None:
            self.also(entry)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # O_APPEND: each record is one write at the end, even with
                # several processes logging at once.
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except OSError as e:
            # Losing an audit line must not break a tool call; say so loudly.
            log.error("cannot write audit log %s: %s", self.path, e.strerror)

    def read(
        self, limit: int, *, component: str | None = None, event: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest `limit` records (oldest first) that match, read from
        the end of the file (a long log is not read whole)."""
        try:
            with self.path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                found: list[dict[str, Any]] = []
                tail = b""
                position = end
                while position > 0 and len(found) < limit:
                    step = min(_READ_CHUNK, position)
                    position -= step
                    f.seek(position)
                    chunk = f.read(step) + tail
                    lines = chunk.split(b"\n")
                    tail = lines.pop(0) if position > 0 else b""
                    for line in reversed(lines):
                        entry = _entry(line)
                        if entry is not None and _matches(entry, component, event):
                            found.append(entry)
                            if len(found) == limit:
                                break
                if position == 0 and tail and len(found) < limit:
                    entry = _entry(tail)
                    if entry is not None and _matches(entry, component, event):
                        found.append(entry)
        except FileNotFoundError:
            return []
        return found[::-1]


_READ_CHUNK = 64 * 1024


def _entry(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None  # a torn or hand-edited line is skipped, not fatal
    return value if isinstance(value, dict) else None


def _matches(entry: dict[str, Any], component: str | None, event: str | None) -> bool:
    return (component is None or entry.get("component") == component) and (
        event is None or entry.get("event") == event
    )
