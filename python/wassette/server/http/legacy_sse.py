"""The legacy HTTP+SSE transport (`wassette serve --sse` / `--http`): the
client opens GET /sse, learns where to post from its first event, and posts
each message to /messages/?session_id=...; every answer and notification
comes back on the event stream (protocol revisions up to 2025-11-25)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import Id, Rejected
from wassette.server.core.server import McpServer
from wassette.server.core.session import Session
from wassette.server.http.wire import SSE_HEADERS, Receive, Scope, Send, Stream, respond, sse_event

if TYPE_CHECKING:
    from wassette.server.http.worker import Peers

MESSAGES_PATH = "/messages/"
TEXT = b"text/plain; charset=utf-8"


class StreamChannel:
    """A session's event stream, for every request on it and for messages
    that belong to none."""

    can_ask = True
    carries_events = True

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def send(self, message: dict[str, Any], final: bool = False) -> bool:
        return self.stream.push(sse_event(message))

    def cancelled(self, request_id: Id) -> None:
        """A cancelled request is not answered."""


class LegacySse:
    def __init__(self, server: McpServer) -> None:
        self.server = server
        self.sessions: dict[str, tuple[Session, StreamChannel]] = {}
        # With OAuth, who opened each session: only they may post to it.
        self.owners: dict[str, str | None] = {}
        # The other workers of `serve --workers N`: a post may land on a
        # worker without the session's stream; it is relayed to the one with it.
        self.peers: Peers | None = None

    async def open(self, receive: Receive, send: Send, owner: str | None = None) -> None:
        """GET /sse: one session for as long as the stream is open."""
        sid = uuid.uuid4().hex
        channel = StreamChannel(Stream(asyncio.get_running_loop()))
        session = self.server.open(Session(channel, session_id=sid))
        self.sessions[sid] = (session, channel)
        self.owners[sid] = owner
        if self.peers is not None:
            self.peers.records.save(session)  # says the session exists, to every worker
        endpoint = f"event: endpoint\r\ndata: {MESSAGES_PATH}?session_id={sid}\r\n\r\n".encode()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await channel.stream.pump(send, receive, endpoint)
        finally:
            del self.sessions[sid]
            self.owners.pop(sid, None)
            if self.peers is not None:
                self.peers.records.remove(sid)
            self.server.close(session)

    async def post(self, scope: Scope, body: bytes, send: Send, owner: str | None = None) -> None:
        """POST /messages/?session_id=...: accepted at once; answered on the stream."""
        if scope["method"] != "POST":
            await respond(send, 405, b"Method Not Allowed", [(b"allow", b"POST")], TEXT)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("session_id")
        if not given:
            await respond(send, 400, b"session_id is required", [], TEXT)
            return
        try:
            sid = uuid.UUID(hex=given[0]).hex
        except ValueError:
            await respond(send, 400, b"Invalid session ID", [], TEXT)
            return
        held = self.sessions.get(sid)
        if held is None and self.peers is not None and self.peers.records.stamp(sid) is not None:
            await respond(send, 202, b"Accepted", [], TEXT)
            self.peers.forward_sse(sid, body, owner)  # the worker with the stream checks the owner
            return
        if held is None or not self._owned(sid, owner):
            await respond(send, 404, b"Could not find session", [], TEXT)
            return
        parsed = jsonrpc.parse(body)
        if isinstance(parsed, Rejected):
            await respond(send, 400, b"Could not parse message", [], TEXT)
            if parsed.answer is not None:
                held[1].send(parsed.answer)
            return
        await respond(send, 202, b"Accepted", [], TEXT)
        session, channel = held
        self.server.handle(session, parsed, channel)

    def _owned(self, sid: str, owner: str | None) -> bool:
        opened_by = self.owners.get(sid)
        return opened_by is None or opened_by == owner

    def deliver(self, sid: str, body: bytes, owner: str | None = None) -> None:
        """A post relayed by the worker it landed on."""
        held = self.sessions.get(sid)
        if held is None or not self._owned(sid, owner):
            return
        session, channel = held
        parsed = jsonrpc.parse(body)
        if isinstance(parsed, Rejected):
            if parsed.answer is not None:
                channel.send(parsed.answer)
            return
        self.server.handle(session, parsed, channel)

    def close_all(self) -> None:
        for session, channel in list(self.sessions.values()):
            self.server.close(session)
            channel.stream.close()
