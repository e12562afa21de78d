"""Handshake-era sessions that every worker of `serve --workers N` can serve.

A 2025-revision client keeps one `Mcp-Session-Id`, but its requests may
land on any worker. What the session is (the revision, the client's
capabilities and info, whether it said `notifications/initialized`, the
log level it chose) is written to one small file per session in the set's
private directory whenever it changes; a worker that sees a session id it
does not hold reads that file, and checks on each request (one `stat`) that
the session still exists and has not changed. Requests in progress and the
standing GET stream stay with the worker that has them; what must reach
them from elsewhere travels on the bus (bus.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, NamedTuple

from wassette.runtime.store import write_atomic
from wassette.server.core.session import Session

# Ids are minted in sessions.py (uuid4 hex, and with OAuth a tag binding it to
# its owner); anything else names no session, and is never used as a file name.
_SESSION_ID = re.compile(r"[0-9a-f]{32}(\.[0-9a-f]{32})?")
# How often a session in use marks its record as used (its atime), so that
# no worker's idle sweep removes a session another worker is serving.
TOUCH_INTERVAL_S = 60.0


class Stamp(NamedTuple):
    inode: int
    mtime_ns: int


class SessionRecords:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, sid: str) -> Path | None:
        return self.directory / f"{sid}.json" if _SESSION_ID.fullmatch(sid) else None

    def save(self, session: Session, stream: int | None = None) -> Stamp | None:
        """Writes what the session is (atomically: a reader sees the old
        record or the new one); `stream`: the worker that holds the
        session's standing GET stream, if one does."""
        path = self._path(session.id or "")
        if path is None:
            return None
        state = {
            "version": session.version,
            "initialized": session.initialized,
            "client_initialized": session.client_initialized,
            "client_capabilities": session.client_capabilities,
            "client_info": session.client_info,
            "log_level": session.log_level,
            "stream": stream,
        }
        write_atomic(path, json.dumps(state).encode(), 0o600, durable=False)
        return self.stamp(session.id or "")

    def stamp(self, sid: str) -> Stamp | None:
        """The record's identity now; None when the session does not exist."""
        path = self._path(sid)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return Stamp(st.st_ino, st.st_mtime_ns)

    def load(self, sid: str, session: Session) -> tuple[Stamp, int | None] | None:
        """Sets `session` to what its record says; returns the record's stamp
        and the worker holding the session's GET stream (or None); None when
        there is no record."""
        path = self._path(sid)
        if path is None:
            return None
        try:
            stamp = self.stamp(sid)
            state: dict[str, Any] = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        session.version = state.get("version")
        session.initialized = bool(state.get("initialized"))
        session.client_initialized = bool(state.get("client_initialized"))
        caps = state.get("client_capabilities")
        session.client_capabilities = caps if isinstance(caps, dict) else {}
        session.client_info = state.get("client_info")
        level = state.get("log_level")
        session.log_level = level if isinstance(level, int) else None
        stream = state.get("stream")
        return (stamp, stream if isinstance(stream, int) else None) if stamp is not None else None

    def touch(self, sid: str) -> None:
        """Marks the session as used now (its atime; the mtime says what changed)."""
        path = self._path(sid)
        if path is None:
            return
        with contextlib.suppress(OSError):
            st = os.stat(path)
            os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))

    def remove(self, sid: str) -> None:
        path = self._path(sid)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    def expired(self, idle_s: float) -> list[str]:
        """Sessions no worker has used for `idle_s`."""
        limit = time.time() - idle_s
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                if not entry.name.endswith(".json"):
                    continue
                with contextlib.suppress(OSError):
                    st = entry.stat()
                    if max(st.st_atime, st.st_mtime) < limit:
                        found.append(entry.name[: -len(".json")])
        return found
