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
