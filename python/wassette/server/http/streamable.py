"""Streamable HTTP at /mcp: the handshake era's sessions (`Mcp-Session-Id`,
POST, GET for a standing event stream, DELETE) and 2026-07-28's
self-contained POSTs, both answered by the one core server.

Framing only: a POST's JSON-RPC message goes to `McpServer.handle` with a
`PostChannel`. An answer given at once (most are: a component call's first
slice runs right there, on the event loop's thread) is one JSON body, or,
when a log message goes first, a short event stream. An answer that comes
later (a long call finished by a worker, a built-in tool) is awaited while
the connection is watched: a client that leaves stops its call; related
notifications (progress, logs, questions to the user) are streamed as they
come, and a silent wait turns into a stream with keep-alive pings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from wassette.server.core import jsonrpc, protocol
from wassette.server.core.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    Id,
    Message,
    Rejected,
)
from wassette.server.core.server import McpServer
from wassette.server.core.session import Session
from wassette.server.http.admission import DECODED
from wassette.server.http.channel import PostChannel
from wassette.server.http.guard import IDENTITY
from wassette.server.http.modern import UNDECODED, serve_modern
from wassette.server.http.resume import Framing, new_stream_id, resume_get
from wassette.server.http.resume_relay import ResumeRelay
from wassette.server.http.sessions import MAX_SESSIONS, HttpSession, HttpSessions, owned_by
from wassette.server.http.wire import (
    PING_INTERVAL_S,
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    Stream,
    accepts,
    is_json,
    respond,
    respond_error,
    respond_json,
    sse_event,
    until_disconnect,
)

log = logging.getLogger("wassette.http")

SESSION_HEADER = b"mcp-session-id"
VERSION_HEADER = b"mcp-protocol-version"
# HTTP status of a JSON-RPC error answered before any event was streamed
# (2026-07-28; handshake-era errors travel in a 200 body).
ERROR_STATUS = {
    jsonrpc.PARSE_ERROR: 400,
    jsonrpc.INVALID_REQUEST: 400,
    jsonrpc.INVALID_PARAMS: 400,
    jsonrpc.HEADER_MISMATCH: 400,
    jsonrpc.MISSING_CLIENT_CAPABILITY: 400,
    jsonrpc.UNSUPPORTED_PROTOCOL_VERSION: 400,
    jsonrpc.METHOD_NOT_FOUND: 404,
}


class StreamableHttp:
    """The /mcp endpoint."""

    def __init__(
        self, server: McpServer, *, json_response: bool, legacy_sessions: bool, poll_after_ms: int = 0
    ) -> None:
        self.server = server
        self.json_response = json_response
        self.legacy_sessions = legacy_sessions
        self.sessions = HttpSessions(server)
        # SEP-1699 polling: a call's stream is ended after this long, the
        # client resumes it (resume.py); 0: never. With a worker set, stream
        # ids name their worker, and one resumed elsewhere is relayed
        # (resume_relay.py).
        self.poll_after_s = poll_after_ms / 1000
        self.stream_prefix = ""
        self.resume_relay: ResumeRelay | None = None

    # -- routing ----------------------------------------------------------------

    async def __call__(
        self, scope: Scope, body: bytes, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> None:
        version = headers.get(VERSION_HEADER)
        if version is not None:
            text = version.decode("latin-1")
            if protocol.is_modern(text):
                await serve_modern(self, scope, body, headers, receive, send)
                return
            if text not in protocol.SUPPORTED_VERSIONS:
                error = protocol.unsupported(text, protocol.SUPPORTED_VERSIONS)
                await respond_error(send, 400, error.code, error.message, [], error.data)
                return
        method = scope["method"]
        identity = scope.get(IDENTITY)
        owner = identity.owner if identity is not None else None
        if method == "POST":
            await self._post(body, headers, receive, send, owner, scope.get(DECODED, UNDECODED))
        elif method == "GET" and self.legacy_sessions:
            await self._get(headers, receive, send, owner)
        elif method == "DELETE" and self.legacy_sessions:
            await self._delete(headers, send, owner)
        elif method in ("GET", "DELETE"):
            await respond_error(
                send,
                405,
                INVALID_REQUEST,
                "Method Not Allowed: this server runs without sessions",
                [(b"allow", b"POST")],
            )
        else:
            await respond_error(
                send, 405, INVALID_REQUEST, "Method Not Allowed", [(b"allow", b"GET, POST, DELETE")]
            )

    def _session(
        self, headers: dict[bytes, bytes], owner: str | None
    ) -> tuple[HttpSession | None, str | None]:
        """The session a request names, if open and (with OAuth) opened by
        the same identity: another's session id is a session not found."""
        raw = headers.get(SESSION_HEADER)
        if raw is None:
            return None, None
        sid = raw.decode("latin-1")
        if not owned_by(sid, owner):
            return None, sid
        return self.sessions.find(sid), sid

    async def _open_session(
        self, headers: dict[bytes, bytes], send: Send, owner: str | None
    ) -> tuple[HttpSession, str] | None:
        """The session a request names; None (answered 400 or 404) when it
        names none, or one that is not open."""
        held, sid = self._session(headers, owner)
        if sid is None:
            await respond_error(send, 400, INVALID_REQUEST, "Bad Request: Missing session ID", [])
            return None
        if held is None or held.session.closed:
            await respond_error(send, 404, INVALID_REQUEST, "Session not found", [])
            return None
        return held, sid

    # -- the handshake era ------------------------------------------------------

    async def _post(
        self,
        body: bytes,
        headers: dict[bytes, bytes],
        receive: Receive,
        send: Send,
        owner: str | None,
        decoded: Any = UNDECODED,
    ) -> None:
        has_json, has_sse = accepts(headers)
        if self.json_response and not has_json:
            text = "Not Acceptable: Client must accept application/json"
            await respond_error(send, 406, INVALID_REQUEST, text, [])
            return
        if not self.json_response and not (has_json and has_sse):
            text = "Not Acceptable: Client must accept both application/json and text/event-stream"
            await respond_error(send, 406, INVALID_REQUEST, text, [])
            return
        if not is_json(headers):
            text = "Unsupported Media Type: Content-Type must be application/json"
            await respond_error(send, 415, INVALID_REQUEST, text, [])
            return
        parsed = jsonrpc.parse(body) if decoded is UNDECODED else jsonrpc.classify(decoded)
        if isinstance(parsed, Rejected):
            answer = parsed.answer or jsonrpc.error(None, INVALID_REQUEST, jsonrpc.NOT_A_REQUEST)
            await respond_json(send, 400, answer, [])
            return
        if not self.legacy_sessions:
            version = headers.get(VERSION_HEADER)
            session = Session(
                version=version.decode("latin-1") if version else protocol.DEFAULT_HANDSHAKE_VERSION,
                era="handshake",
                ready=True,
            )
            await self.serve(session, parsed, headers, receive, send, [])
            return
        opening = parsed.kind == "request" and parsed.method == "initialize" and SESSION_HEADER not in headers
        if opening:
            if len(self.sessions) >= MAX_SESSIONS:
                await respond_error(send, 503, INTERNAL_ERROR, "Too many open sessions", [])
                return
            sid, held = self.sessions.open(owner)
        else:
            found = await self._open_session(headers, send, owner)
            if found is None:
                return
            held, sid = found
        id_header = [(SESSION_HEADER, sid.encode("latin-1"))]
        held.in_flight += 1
        try:
            await self.serve(held.session, parsed, headers, receive, send, id_header, held=held)
        finally:
            held.in_flight -= 1
            held.last_used = time.monotonic()
        if opening and not held.session.initialized:  # the opening request failed: nothing was established
            self.sessions.end(sid)

    async def serve(
        self,
        session: Session,
        message: Message,
        headers: dict[bytes, bytes],
        receive: Receive,
        send: Send,
        extra: list[tuple[bytes, bytes]],
        *,
        modern: bool = False,
        held: HttpSession | None = None,
    ) -> None:
        """Hands one message to the server and writes what it answers."""
        if message.kind != "request":
            await respond(send, 202, b"", extra)
            self.server.handle(session, message, _NOWHERE)
            return
        loop = asyncio.get_running_loop()
        stream_ok = not self.json_response or (modern and message.method == "subscriptions/listen")
        channel = PostChannel(
            loop, stream_ok=stream_ok, answer_cancel=not modern, can_ask=stream_ok and not modern
        )
        self.server.handle(session, message, channel, headers if modern else None)
        # A session's stream can be resumed (2025-11-25): with polling on,
        # a call still running is streamed at once, to be ended in time.
        resumable = held is not None and stream_ok
        polling = resumable and self.poll_after_s > 0
        if channel.final is None and not polling and not await self._await(channel, receive):
            self._abandon(session, message, modern)
            return
        final = channel.final
        if final is not None and not channel.events:
            status = 200
            error = final.get("error")
            if modern and isinstance(error, dict):
                status = ERROR_STATUS.get(error.get("code", 0), 200)
            await respond_json(send, status, final, extra)
        elif final is not None:  # everything is here: one body
            data = b"".join(sse_event(m) for m in (*channel.events, final))
            await respond(send, 200, data, [*SSE_HEADERS[:2], *SSE_HEADERS[3:], *extra], SSE_HEADERS[2][1])
        else:  # still running: stream what comes, then the answer
            if resumable:
                channel.framing = Framing(self.stream_prefix + new_stream_id())
            first = channel.framing.priming() if channel.framing is not None else b""
            first += b"".join(channel.frame(m) for m in channel.events)
            channel.events.clear()
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *extra]})
            await self.stream_events(session, message.id, channel, send, receive, first, held, modern)

    async def stream_events(
        self,
        session: Session,
        request_id: Id | None,
        channel: PostChannel,
        send: Send,
        receive: Receive,
        first: bytes,
        held: HttpSession | None,
        modern: bool,
    ) -> None:
        """Writes a request's events (headers were sent) until its answer;
        a stream ended for polling waits for its client to resume it."""
        stream = channel.stream = Stream(channel.loop)
        # Ended once, on the POST: the resumed stream stays until the answer.
        polls = (
            held is not None
            and self.poll_after_s > 0
            and channel.framing is not None
            and not channel.framing.polled
        )
        until = channel.loop.time() + self.poll_after_s if polls else None
        polled = await stream.pump(send, receive, first, until)
        if channel.final is not None:
            return
        if polled and held is not None:
            held.resumable.wait(session, channel, request_id)
        elif modern:
            self.server.close(session)
        else:
            session.abandon(request_id)

    def _abandon(self, session: Session, message: Message, modern: bool) -> None:
        """The client went away before its answer: its call is stopped."""
        if modern:
            self.server.close(session)
        else:
            session.abandon(message.id)

    async def _await(self, channel: PostChannel, receive: Receive) -> bool:
        """Waits until the answer or a first event is there; False if the
        client went away first."""
        gone = asyncio.ensure_future(until_disconnect(receive))
        try:
            while channel.final is None and not channel.events:
                change = asyncio.ensure_future(channel.next_change(PING_INTERVAL_S))
                await asyncio.wait((change, gone), return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    change.cancel()
                    return False
                if not change.result() and channel.stream_ok:
                    break  # silent for long: answer as a stream, with pings
            return True
        finally:
            gone.cancel()

    async def _get(
        self, headers: dict[bytes, bytes], receive: Receive, send: Send, owner: str | None
    ) -> None:
        """The standing event stream of a session: change notifications and
        questions to the user that belong to no request."""
        if not accepts(headers)[1]:
            text = "Not Acceptable: Client must accept text/event-stream"
            await respond_error(send, 406, INVALID_REQUEST, text, [])
            return
        found = await self._open_session(headers, send, owner)
        if found is None:
            return
        held, sid = found
        id_header = [(SESSION_HEADER, sid.encode("latin-1"))]
        last = headers.get(b"last-event-id")
        if last is not None:
            await resume_get(self, held, last.decode("latin-1"), receive, send, id_header)
            return
        if held.stream is not None and not held.stream.closed:
            text = "Conflict: Only one SSE stream is allowed per session"
            await respond_error(send, 409, INVALID_REQUEST, text, id_header)
            return
        stream = held.stream = Stream(asyncio.get_running_loop())
        held.remote_stream = None
        self.sessions.share(held.session)  # questions from other workers come here now
        held.in_flight += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *id_header]})
            await stream.pump(send, receive)
        finally:
            held.in_flight -= 1
            held.last_used = time.monotonic()
            if held.stream is stream:
                held.stream = None
                self.sessions.share(held.session)

    async def _delete(self, headers: dict[bytes, bytes], send: Send, owner: str | None) -> None:
        found = await self._open_session(headers, send, owner)
        if found is None:
            return
        sid = found[1]
        self.sessions.end(sid)
        await respond(send, 200, b"", [(SESSION_HEADER, sid.encode("latin-1"))])


class _Nowhere:
    """The channel of a notification or response: never used."""

    can_ask = False
    carries_events = False

    def send(self, message: dict[str, Any], final: bool) -> None:
        pass

    def cancelled(self, request_id: Id) -> None:
        pass


_NOWHERE = _Nowhere()
