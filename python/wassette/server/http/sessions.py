"""The sessions of Streamable HTTP's handshake era (`Mcp-Session-Id`):
each the core's `Session` with its standing GET stream, closed when idle.

With `serve --workers N` (`peers`, worker.py) a session is every worker's:
its record (shared_sessions.py) says what it is and which worker holds its
GET stream; a worker takes up a session another opened, lets go of one
another ended, and sends a question to the worker with the stream.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wassette.server.core.server import McpServer
from wassette.server.core.session import Session
from wassette.server.http.resume import Resumable
from wassette.server.http.wire import Stream, sse_event

if TYPE_CHECKING:
    from wassette.server.http.shared_sessions import Stamp
    from wassette.server.http.worker import Peers

log = logging.getLogger("wassette.http")

# A session with nothing in flight for this long is closed (its id then
# answers 404 and the client opens a new one).
SESSION_IDLE_S = 30 * 60
EXPIRY_INTERVAL_S = 60
MAX_SESSIONS = 10_000


# Binds session ids to the identity that opened them (OAuth). A worker set's
# workers use the key their parent made (`share_owner_key`), so a session
# opened on one is its owner's on every other.
_owner_key = os.urandom(32)


def share_owner_key(key: bytes) -> None:
    global _owner_key
    _owner_key = key
    _owned.clear()


def _tag(base: str, owner: str) -> str:
    return hmac.new(_owner_key, f"{base}\0{owner}".encode(), hashlib.sha256).hexdigest()[:32]


def session_id(owner: str | None) -> str:
    """A new session id; with an owner, `<random>.<tag>` where the tag is a
    MAC of the random part and the owner."""
    base = uuid.uuid4().hex
    return base if owner is None else f"{base}.{_tag(base, owner)}"


# (session id, owner) pairs found to match: a client sends the same ones at
# every request, and the MAC costs more than a dict lookup (measured ~10 us
# of a served request). Bounded; started over when full.
_owned: set[tuple[str, str]] = set()
_OWNED_MEMO = 4096


def owned_by(sid: str, owner: str | None) -> bool:
    """Whether `sid` may be used by `owner` (anyone, without OAuth)."""
    if owner is None or (sid, owner) in _owned:
        return True
    base, _, tag = sid.partition(".")
    if not tag or not hmac.compare_digest(tag, _tag(base, owner)):
        return False
    if len(_owned) >= _OWNED_MEMO:
        _owned.clear()
    _owned.add((sid, owner))
    return True


@dataclass
class HttpSession:
    """A handshake-era session: the core's, its standing GET stream, and
    how busy it is (for the idle timeout)."""

    session: Session
    stream: Stream | None = None
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    # The shared record as last read or written, and the worker holding the
    # GET stream when another does (`serve --workers N`).
    stamp: Stamp | None = None
    remote_stream: int | None = None
    # Streams the server ended early, waiting for their client (resume.py).
    resumable: Resumable = field(default_factory=Resumable)

    def here(self) -> bool:
        """Whether this worker holds the session's open GET stream."""
        return self.stream is not None and not self.stream.closed

    # Outbound: messages that belong to no request go to the GET stream.
    def send(self, message: dict[str, Any]) -> bool:
        stream = self.stream
        return stream is not None and not stream.closed and stream.push(sse_event(message))

    def push(self, message: dict[str, Any]) -> None:
        """A question another worker asks on this worker's GET stream."""
        self.send(message)


class HttpSessions:
    """The open sessions, by id."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._held: dict[str, HttpSession] = {}
        # The other workers of `serve --workers N` (worker.py), or None.
        self.peers: Peers | None = None

    def __len__(self) -> int:
        return len(self._held)

    def get(self, sid: str) -> HttpSession | None:
        """The session as this worker holds it (no look at the shared record)."""
        return self._held.get(sid)

    def find(self, sid: str) -> HttpSession | None:
        """The open session `sid`, as every worker knows it."""
        held = self._held.get(sid)
        if self.peers is not None:
            held = self._shared(sid, held)
        return held

    def open(self, owner: str | None = None) -> tuple[str, HttpSession]:
        """A new session (its `initialize` is yet to be answered), bound to
        `owner` (the identity of an OAuth token) when there is one."""
        sid = session_id(owner)
        return sid, self._hold(sid)

    def _shared(self, sid: str, held: HttpSession | None) -> HttpSession | None:
        """The session as every worker knows it (one stat when nothing
        changed): gone when another worker ended it, reread when it changed,
        taken up when another worker opened it."""
        assert self.peers is not None
        stamp = self.peers.records.stamp(sid)
        if stamp is None:
            if held is not None:
                self.end_here(sid)
            return None
        if held is not None and held.stamp == stamp:
            return held
        if held is None:
            if len(self._held) >= MAX_SESSIONS:
                return None
            held = self._hold(sid)
        if not self._reread(held, sid):
            self.end_here(sid)
            return None
        return held

    def _hold(self, sid: str) -> HttpSession:
        session = Session(session_id=sid, era="handshake")
        held = self._held[sid] = HttpSession(session)
        session.outbound = held
        if self.peers is not None:
            session.on_change = self.share
            session.forward = lambda message: self._forward(held, sid, message)
        self.server.open(session)
        return held

    def _reread(self, held: HttpSession, sid: str) -> bool:
        """Sets the session to its shared record; False when it has none."""
        assert self.peers is not None
        loaded = self.peers.records.load(sid, held.session)
        if loaded is not None:
            held.stamp, held.remote_stream = loaded
        return loaded is not None

    def _forward(self, held: HttpSession, sid: str, message: dict[str, Any]) -> bool:
        """A question for the client, when this worker has no GET stream of
        the session: to the worker that has one, as the record says now (it
        may have opened since this request began)."""
        assert self.peers is not None
        if self.peers.records.stamp(sid) != held.stamp:
            self._reread(held, sid)
        return held.remote_stream is not None and self.peers.push(sid, message)

    def share(self, session: Session) -> None:
        """Writes the session's record (what it is, and which worker holds its GET stream)."""
        held = self._held.get(session.id or "")
        if self.peers is None or held is None or session.closed:
            return
        stream = self.peers.spec.number if held.here() else held.remote_stream
        held.stamp = self.peers.records.save(session, stream)

    def end(self, sid: str) -> None:
        """The session ends, for every worker."""
        self.end_here(sid)
        if self.peers is not None:
            self.peers.ended(sid)

    def end_here(self, sid: str, reason: str | None = None) -> None:
        """This worker's part of the session ends: its requests in progress
        here are stopped (answered with `reason`, if any), its standing
        stream here closed."""
        held = self._held.pop(sid, None)
        if held is not None:
            held.resumable.close()
            self.server.close(held.session, reason)
            if held.stream is not None:
                held.stream.close()

    def expire_idle(self) -> None:
        """Closes sessions with nothing in flight for SESSION_IDLE_S (the
        server calls it every EXPIRY_INTERVAL_S). With other workers, a
        session is theirs too: this worker lets go of its copy, marks the
        ones it used as used, and ends those no worker used for that long."""
        now = time.monotonic()
        limit = now - SESSION_IDLE_S
        for sid, held in list(self._held.items()):
            if self.peers is not None and (held.in_flight or held.last_used > now - 2 * EXPIRY_INTERVAL_S):
                self.peers.records.touch(sid)
            if held.in_flight == 0 and held.last_used < limit:
                if self.peers is None:
                    log.info("session %s closed after %d s idle", sid, SESSION_IDLE_S)
                self.end_here(sid)
        if self.peers is not None:
            for sid in self.peers.records.expired(SESSION_IDLE_S):
                log.info("session %s closed after %d s idle", sid, SESSION_IDLE_S)
                self.end(sid)

    def close_streams(self) -> None:
        """Standing streams end (the server stops; requests in flight may finish)."""
        for held in list(self._held.values()):
            if held.stream is not None:
                held.stream.close()

    def close_all(self, reason: str | None = None) -> None:
        """This server stops: its sessions end here (other workers keep
        serving them)."""
        for sid in list(self._held):
            self.end_here(sid, reason)
