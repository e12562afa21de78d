"""A fast path for component tool calls over Streamable HTTP, and for
opening sessions while the SDK loads.

The SDK's session transport turns each POST into messages on memory streams,
a dispatcher task, a request context and an SSE response built by a task
group: about 1.5 ms of Python per call before the component runs. For the
calls that matter most, a component `tools/call` on an established session
at a revision in `wire.FAST_VERSIONS`, this answers the POST itself, with
the wire forms of wire.py (the same ones the SDK path validates): one JSON
body with the result, or, when the guest's stderr goes first as a log
message (at the level the client chose), an SSE stream as the SDK's.

Everything else, including any request it has the slightest doubt about
(headers the SDK would refuse, unknown sessions, other revisions, built-in
tools), goes to the SDK untouched. A `notifications/cancelled` for a call
running here stops it (and still goes to the SDK, which answers 202); a
client that disconnects stops its call too. As from the SDK, a cancelled
call is answered with the JSON-RPC error -32800 (this era's HTTP wire ends a
request's stream only with an answer), a call whose client left with nothing.

The SDK takes ~0.8 s to import, and is loaded once the server listens
(http_sdk.py). Until then, this path also opens sessions: it answers
`initialize` (at a revision in FAST_VERSIONS), `notifications/initialized`,
tools/list and ping as the SDK would, under a session id of its own
choosing; when the SDK runs, each such session is handed to it (its
handshake replayed under the same id) and everything else, which waited
for the SDK, goes there.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from wassette import _engine
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import CallResult, Runtime
from wassette.server import wire
from wassette.server.http_guard import header_map
from wassette.server.workers import FIRST_SLICES

if TYPE_CHECKING:
    from wassette.server.app import WassetteServer

SSE_HEADERS = [
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"text/event-stream"),
]


def sse_event(message: dict[str, Any]) -> bytes:
    """One `message` event as the SDK (sse-starlette) writes it (compact JSON
    has no line breaks, so it is one `data:` line)."""
    return b"event: message\r\ndata: " + wire.dumps(message) + b"\r\n\r\n"


# How a call ended when it has no result to send.
_LEFT, _CANCELLED = object(), object()
# The JSON-RPC error the SDK answers a cancelled request with (2025 era, HTTP).
REQUEST_CANCELLED = -32800


async def _disconnect(receive: Receive) -> None:
    """Returns when the client has gone (the body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# At most this many sessions are opened here before the SDK runs; beyond,
# new clients wait for it.
MAX_OPENED = 1024
_HELD_MEMO = 4096
_INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@dataclass
class OpenedSession:
    """A session this path opened before the SDK ran: its `initialize` (to
    be replayed to the SDK, which then keeps the client's capabilities), the
    revision negotiated, and whether the client said `initialized`."""

    initialize: dict[str, Any]
    version: str
    initialized: bool = False

    def replay(self) -> list[dict[str, Any]]:
        return [self.initialize, *([_INITIALIZED] if self.initialized else [])]


class HttpFastPath:
    def __init__(self, runtime: Runtime, *, builtin_tools: bool, path: str, json_response: bool) -> None:
        self.runtime = runtime
        self.builtin_tools = builtin_tools
        self.path = path
        self.json_response = json_response
        # The SDK's server, once it runs (`attach`).
        self.app: WassetteServer | None = None
        # Sessions opened here while the SDK loads, by Mcp-Session-Id; None
        # once the SDK runs and they were handed to it (`hand_over`).
        self.opened: dict[str, OpenedSession] | None = {}
        # Calls running here, by (session id, request id).
        self._running: dict[tuple[str, object], _engine.CancelToken] = {}
        # When each session's idle deadline was last pushed (loop time).
        self._held: dict[str, float] = {}

    def attach(self, app: WassetteServer) -> None:
        self.app = app

    def hand_over(self) -> dict[str, OpenedSession]:
        """The sessions opened here, for the SDK; from now on it opens them."""
        opened, self.opened = self.opened or {}, None
        return opened

    async def handle(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> bool:
        """Answers the request if it is one this path serves; False otherwise
        (nothing was sent, nothing was read beyond `body`)."""
        if scope["method"] != "POST" or scope["path"] != self.path:
            return False
        headers = header_map(scope)
        if not self._acceptable(headers):
            return False
        try:
            msg = json.loads(body)
        except (ValueError, RecursionError):
            return False
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            return False
        method = msg.get("method")
        raw_sid = headers.get(b"mcp-session-id")
        if raw_sid is None:
            return method == "initialize" and await self._open(msg, send)
        sid = raw_sid.decode("latin-1")
        opened = self.opened.get(sid) if self.opened is not None else None
        if opened is not None:
            if await self._handshake_era(opened, msg, sid, send):
                return True
        elif not self._sdk_session_served(sid):
            return False
        if method == "notifications/cancelled" and "id" not in msg:
            params = msg.get("params")
            token = self._running.get((sid, params.get("requestId") if isinstance(params, dict) else None))
            if token is not None:
                token.cancel()
            return False  # the SDK answers notifications (202)
        rid = msg.get("id")
        if method != "tools/call" or not wire.valid_id(rid):
            return False
        call = wire.component_call(msg.get("params"), self.runtime, self.builtin_tools)
        if call is None:
            return False
        name, args = call
        result = await self._run(sid, rid, name, args, receive)
        if result is _LEFT:
            return True  # nobody to answer
        messages: list[dict[str, Any]] = []
        if result is _CANCELLED:
            # As the SDK ends a cancelled request's stream on this era's wire.
            error = {"code": REQUEST_CANCELLED, "message": "Request cancelled"}
            messages.append({"jsonrpc": "2.0", "id": rid, "error": error})
        elif isinstance(result, CallResult):
            if result.stderr and not self.json_response and self._wants_info(sid):
                log = wire.stderr_log(name, result.stderr)
                messages.append({"jsonrpc": "2.0", "method": "notifications/message", "params": log})
            messages.append({"jsonrpc": "2.0", "id": rid, "result": wire.call_result(result)})
        else:
            messages.append({"jsonrpc": "2.0", "id": rid, "result": wire.error_result(str(result))})
        await self._respond(send, sid, messages)
        return True

    async def _open(self, msg: dict[str, Any], send: Send) -> bool:
        """Answers an `initialize` that opens a session while the SDK loads."""
        if self.opened is None or len(self.opened) >= MAX_OPENED or not wire.valid_id(msg.get("id")):
            return False
        version = wire.handshake(msg.get("params"))
        if version not in wire.FAST_VERSIONS:
            return False
        sid = uuid.uuid4().hex  # as the SDK names sessions
        self.opened[sid] = OpenedSession(msg, version)
        result = wire.initialize_result(version)
        await self._respond(send, sid, [{"jsonrpc": "2.0", "id": msg["id"], "result": result}])
        return True

    async def _handshake_era(self, opened: OpenedSession, msg: dict[str, Any], sid: str, send: Send) -> bool:
        """Answers what a session opened here needs before its first call:
        `notifications/initialized`, tools/list, ping."""
        method, rid = msg.get("method"), msg.get("id")
        if method == "notifications/initialized" and "id" not in msg:
            opened.initialized = True
            await self._accepted(send, sid)
            return True
        if not wire.valid_id(rid):
            return False
        if method == "tools/list" and wire.plain_listing(msg.get("params")):
            result = {"tools": wire.tools(self.runtime.tools(), self.builtin_tools)}
        elif method == "ping" and not msg.get("params"):
            result = {}
        else:
            return False
        await self._respond(send, sid, [{"jsonrpc": "2.0", "id": rid, "result": result}])
        return True

    def _sdk_session_served(self, sid: str) -> bool:
        """Whether the SDK holds this session, open (a DELETE ends it at once;
        its connection goes a little later) and at a revision served here."""
        if self.app is None:
            return False
        transport = self.app.server.session_manager._server_instances.get(sid)  # the pinned SDK's registry
        connection = self.app.sessions.get(sid)
        return (
            transport is not None
            and not transport.is_terminated
            and connection is not None
            and connection.protocol_version in wire.FAST_VERSIONS
            and connection.initialize_accepted
        )

    def _wants_info(self, sid: str) -> bool:
        """Whether the session's client asked for log messages at `info`
        (sessions opened here have not: logging/setLevel waits for the SDK)."""
        connection = self.app.sessions.get(sid) if self.app is not None else None
        level = self.app.client_log_level(connection) if self.app and connection else None
        return level is not None and wire.LEVELS["info"] >= level

    def _acceptable(self, headers: dict[bytes, bytes]) -> bool:
        """The headers the SDK checks, as it checks them (else it answers)."""
        version = headers.get(b"mcp-protocol-version")
        if version is not None and version.decode("latin-1") not in wire.HANDSHAKE_VERSIONS:
            return False
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if "application/json" not in (p.strip() for p in content_type.split(";")[0].split(",")):
            return False
        accept = [p.split(";")[0].strip() for p in headers.get(b"accept", b"").decode("latin-1").split(",")]
        has_json = "application/json" in accept or "application/*" in accept or "*/*" in accept
        has_sse = "text/event-stream" in accept or "text/*" in accept or "*/*" in accept
        return has_json and (self.json_response or has_sse)

    async def _run(
        self, sid: str, rid: object, name: str, args: dict[str, Any], receive: Receive
    ) -> CallResult | str | object:
        """The call's result, an error message, _CANCELLED (by a
        notifications/cancelled) or _LEFT (the client disconnected).

        The call's first slice runs on this thread (see FirstSlices).
        (Plain asyncio here: an anyio cancel scope formats the task's repr on
        every cancel, a measurable share of a short call.)"""
        self._hold_session(sid)
        token = _engine.CancelToken()
        try:
            call = self.runtime.start_tool(name, args, cancel=token)
        except WassetteError as e:
            return str(e)
        result = FIRST_SLICES.run(name, call)
        if result is not None:
            return result
        key = (sid, rid)
        self._running[key] = token
        finished = FIRST_SLICES.finish(name, call)
        watch = asyncio.ensure_future(_disconnect(receive))
        try:
            await asyncio.wait((finished, watch), return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                token.cancel()  # the client left: stop the guest
                return _LEFT
            if token.cancelled:
                return _CANCELLED
            return finished.result()
        finally:
            watch.cancel()
            token.cancel()  # a finished call ignores it
            self._running.pop(key, None)

    def _hold_session(self, sid: str) -> None:
        """Pushes the session's idle deadline, as any request to the SDK's
        transport would (this path keeps a session in use as much as that).
        Only when a tenth of the timeout has passed since the last push:
        setting a deadline costs more than the rest of a short call's work."""
        if self.app is None:
            return  # opened here: the SDK's clock starts when it takes the session
        manager = self.app.server.session_manager
        timeout = manager.session_idle_timeout
        if timeout is None:
            return
        now = asyncio.get_running_loop().time()
        if now - self._held.get(sid, -timeout) < timeout / 10:
            return
        if len(self._held) >= _HELD_MEMO:
            self._held.clear()  # forgets ended sessions (the rest are pushed once more)
        self._held[sid] = now
        transport = manager._server_instances.get(sid)  # the pinned SDK's registry of sessions
        scope = getattr(transport, "idle_scope", None)
        if scope is not None:
            scope.deadline = now + timeout

    async def _accepted(self, send: Send, sid: str) -> None:
        """202, as the SDK answers a notification."""
        headers = [(b"content-type", b"application/json"), (b"mcp-session-id", sid.encode("latin-1"))]
        await send(
            {"type": "http.response.start", "status": 202, "headers": [*headers, (b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    async def _respond(self, send: Send, sid: str, messages: list[dict[str, Any]]) -> None:
        """One JSON body when the answer is one message (always with
        `--json-response`, where log messages are not sent); an event stream
        when a log message comes before it. The specification lets a server
        answer any request either way. A client reads a JSON body to its end
        and keeps the connection; the official client stops reading an event
        stream at the answer and so opens a new connection for every request
        (measured: BENCHMARKS.md)."""
        if self.json_response or len(messages) == 1:
            body = wire.dumps(messages[-1])
            headers = [(b"content-type", b"application/json")]
        else:
            body = b"".join(sse_event(m) for m in messages)
            headers = [*SSE_HEADERS, (b"x-accel-buffering", b"no")]
        headers += [(b"mcp-session-id", sid.encode("latin-1")), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
