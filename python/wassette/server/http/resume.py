"""Event streams a client can resume (SEP-1699, the 2025-11-25 revision).

A handshake-era request answered as an event stream starts with a priming
event (an id, no data, and `retry:`), and every event after it has an id.
With `sse_poll_after_ms` set, the server ends the HTTP response of a call
still running after that long without ending its stream: the call goes on,
what it says meanwhile is kept, and the client, `retry` milliseconds later,
comes back with `GET` and `Last-Event-ID`; that response carries what was
kept, then the rest, up to the answer (or until the next poll). A stream
nobody comes back for within RESUME_GRACE_S has its call stopped.

A client that goes away on its own (the connection drops) stops its call,
as before: only streams the server ended are resumed. What is kept for one
stream is bounded (MAX_KEPT_BYTES; beyond, notifications are dropped).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wassette.server.core.jsonrpc import INVALID_REQUEST, Id
from wassette.server.http.resume_relay import keeper_of
from wassette.server.http.wire import (
    SSE_HEADERS,
    Receive,
    Send,
    priming_event,
    respond,
    respond_error,
    sse_event,
)

if TYPE_CHECKING:
    from wassette.server.core.session import Session
    from wassette.server.http.channel import PostChannel
    from wassette.server.http.sessions import HttpSession
    from wassette.server.http.streamable import StreamableHttp

log = logging.getLogger("wassette.http")

# How long a client waits before it reconnects (the `retry:` field).
RETRY_MS = 500
# How long a polled stream waits for its client to come back.
RESUME_GRACE_S = 60.0
# What one stream keeps for its client while it is away.
MAX_KEPT_BYTES = 8 << 20
# Streams one session may have waiting for their client at once.
MAX_WAITING = 64


def new_stream_id() -> str:
    return secrets.token_hex(12)


def stream_of(last_event_id: str) -> str:
    """The stream an event id names (`<stream>-<n>`)."""
    return last_event_id.rsplit("-", 1)[0]


@dataclass
class Framing:
    """A stream's ids: the priming event, then one per event."""

    stream_id: str
    seq: int = 0
    # Ended early once already (a resumed stream is not ended again).
    polled: bool = False
    kept: list[bytes] = field(default_factory=list)
    kept_bytes: int = 0

    def priming(self) -> bytes:
        return priming_event(f"{self.stream_id}-0", RETRY_MS)

    def frame(self, message: dict[str, Any]) -> bytes:
        self.seq += 1
        return sse_event(message, f"{self.stream_id}-{self.seq}")

    def keep(self, event: bytes) -> None:
        """An event for a client that is away (dropped past MAX_KEPT_BYTES)."""
        if self.kept_bytes + len(event) > MAX_KEPT_BYTES:
            log.warning(
                "stream %s: an event for a client that is away was dropped (over %d bytes kept)",
                self.stream_id,
                MAX_KEPT_BYTES,
            )
            return
        self.kept.append(event)
        self.kept_bytes += len(event)

    def take_kept(self) -> bytes:
        data = b"".join(self.kept)
        self.kept.clear()
        self.kept_bytes = 0
        return data


@dataclass
class Waiting:
    """A polled stream waiting for its client."""

    channel: PostChannel
    request_id: Id | None
    timer: asyncio.TimerHandle


class Resumable:
    """One session's polled streams, by stream id (on the event loop)."""

    def __init__(self) -> None:
        self._waiting: dict[str, Waiting] = {}

    def wait(self, session: Session, channel: PostChannel, request_id: Id | None) -> None:
        """The server ended the response of `channel`'s stream; the call goes on."""
        framing = channel.framing
        assert framing is not None
        if len(self._waiting) >= MAX_WAITING:
            session.abandon(request_id)  # too many away at once: stop this one
            return
        framing.polled = True
        stream_id = framing.stream_id
        timer = channel.loop.call_later(RESUME_GRACE_S, self._expire, session, stream_id)
        self._waiting[stream_id] = Waiting(channel, request_id, timer)

    def take(self, stream_id: str) -> Waiting | None:
        waiting = self._waiting.pop(stream_id, None)
        if waiting is not None:
            waiting.timer.cancel()
        return waiting

    def _expire(self, session: Session, stream_id: str) -> None:
        waiting = self._waiting.pop(stream_id, None)
        if waiting is not None and waiting.channel.final is None:
            log.info(
                "stream %s: its client did not come back in %.0f s; its call is stopped",
                stream_id,
                RESUME_GRACE_S,
            )
            session.abandon(waiting.request_id)

    def close(self) -> None:
        for waiting in self._waiting.values():
            waiting.timer.cancel()
        self._waiting.clear()


# -- GET with Last-Event-ID (Streamable HTTP) ---------------------------------------


async def resume_get(
    http: StreamableHttp,
    held: HttpSession,
    last_event_id: str,
    receive: Receive,
    send: Send,
    id_header: list[tuple[bytes, bytes]],
) -> None:
    """GET with Last-Event-ID: a stream the server ended, resumed."""
    stream_id = stream_of(last_event_id)
    waiting = held.resumable.take(stream_id)
    keeper = keeper_of(stream_id)
    if waiting is None and http.resume_relay is not None and keeper not in (None, http.resume_relay.number):
        assert keeper is not None
        await _resume_elsewhere(http, held, stream_id, keeper, receive, send, id_header)
        return
    if waiting is None:
        text = "Not Found: no stream to resume with that Last-Event-ID (it ended, or was not kept)"
        await respond_error(send, 404, INVALID_REQUEST, text, id_header)
        return
    channel = waiting.channel
    assert channel.framing is not None
    first = channel.framing.take_kept()
    if channel.final is not None:  # it ended meanwhile: all of it, at once
        data = first + channel.frame(channel.final)
        await respond(send, 200, data, [*SSE_HEADERS[:2], *SSE_HEADERS[3:], *id_header], SSE_HEADERS[2][1])
        return
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *id_header]})
    await http.stream_events(held.session, waiting.request_id, channel, send, receive, first, held, False)


async def _resume_elsewhere(
    http: StreamableHttp,
    held: HttpSession,
    stream_id: str,
    keeper: int,
    receive: Receive,
    send: Send,
    id_header: list[tuple[bytes, bytes]],
) -> None:
    """The stream is kept by another worker of the set: fed from there."""
    relay = http.resume_relay
    assert relay is not None and held.session.id is not None
    stream = await relay.read(held.session.id, stream_id, keeper)
    if stream is None:
        text = "Not Found: no stream to resume with that Last-Event-ID (it ended, or was not kept)"
        await respond_error(send, 404, INVALID_REQUEST, text, id_header)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *id_header]})
    await stream.pump(send, receive)
    relay.gone(stream_id, keeper)  # nothing if it ended with its answer
