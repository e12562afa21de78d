"""Where the CLI's and the server's logs go: stderr, as text lines, or as
JSON lines (`WASSETTE_LOG_FORMAT=json`, one object per record with a stable
schema: ts, level, logger, message, and exception when there is one) for a
log pipeline. The level: `WASSETTE_LOG` (or `RUST_LOG`, as in Wassette)."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(default: str) -> None:
    level_name = (os.environ.get("WASSETTE_LOG") or os.environ.get("RUST_LOG") or default).split(",")[0]
    level = getattr(logging, level_name.strip().upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("WASSETTE_LOG_FORMAT", "text").strip().lower() == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
