"""A fast path for component tool calls over Streamable HTTP.

The SDK's session transport turns each POST into messages on memory streams,
a dispatcher task, a request context and an SSE response built by a task
group: about 1.5 ms of Python per call before the component runs. For the
calls that matter most, a component `tools/call` on an established session
at a revision in `wire.FAST_VERSIONS`, this answers the POST itself, with
the wire forms of wire.py (the same ones the SDK path validates) and the
SDK's response shape: an SSE stream with the guest's stderr as a log
message (at the level the client chose) then the result, or one JSON body
with `--json-response`.

Everything else, including any request it has the slightest doubt about
(headers the SDK would refuse, unknown sessions, other revisions, built-in
tools), goes to the SDK untouched. A `notifications/cancelled` for a call
running here stops it (and still goes to the SDK, which answers 202); a
client that disconnects stops its call too. As from the SDK, a cancelled
call is answered with the JSON-RPC error -32800 (this era's HTTP wire ends a
request's stream only with an answer), a call whose client left with nothing.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from wassette import _engine
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import CallResult
from wassette.server import wire
from wassette.server.http_guard import header_map

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


class HttpFastPath:
    def __init__(self, app: WassetteServer, *, path: str, json_response: bool) -> None:
        self.app = app
        self.path = path
        self.json_response = json_response
        # Calls running here, by (session id, request id).
        self._running: dict[tuple[str, object], _engine.CancelToken] = {}

    async def handle(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> bool:
        """Answers the request if it is one this path serves; False otherwise
        (nothing was sent, nothing was read beyond `body`)."""
        if scope["method"] != "POST" or scope["path"] != self.path:
            return False
        headers = header_map(scope)
        sid = headers.get(b"mcp-session-id", b"").decode("latin-1")
        connection = self.app.sessions.get(sid) if sid else None
        if connection is None or connection.protocol_version not in wire.FAST_VERSIONS:
            return False
        if not connection.initialize_accepted or not self._acceptable(headers):
            return False
        try:
            msg = json.loads(body)
        except (ValueError, RecursionError):
            return False
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            return False
        method = msg.get("method")
        if method == "notifications/cancelled" and "id" not in msg:
            params = msg.get("params")
            token = self._running.get((sid, params.get("requestId") if isinstance(params, dict) else None))
            if token is not None:
                token.cancel()
            return False  # the SDK answers notifications (202)
        rid = msg.get("id")
        if method != "tools/call" or not wire.valid_id(rid):
            return False
        call = wire.component_call(msg.get("params"), self.app.runtime, self.app.builtin_tools)
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
            level = self.app.client_log_level(connection)
            if (
                result.stderr
                and level is not None
                and wire.LEVELS["info"] >= level
                and not self.json_response
            ):
                log = wire.stderr_log(name, result.stderr)
                messages.append({"jsonrpc": "2.0", "method": "notifications/message", "params": log})
            messages.append({"jsonrpc": "2.0", "id": rid, "result": wire.call_result(result)})
        else:
            messages.append({"jsonrpc": "2.0", "id": rid, "result": wire.error_result(str(result))})
        await self._respond(send, sid, messages)
        return True

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
        notifications/cancelled) or _LEFT (the client disconnected). (Plain
        asyncio here: an anyio cancel scope formats the task's repr on every
        cancel, a measurable share of a short call.)"""
        from wassette.server.app import WORKERS

        token = _engine.CancelToken()
        key = (sid, rid)
        self._running[key] = token
        self._hold_session(sid)
        call = WORKERS.submit(lambda: self.app.runtime.call_tool(name, args, cancel=token))
        watch = asyncio.ensure_future(_disconnect(receive))
        try:
            await asyncio.wait((call, watch), return_when=asyncio.FIRST_COMPLETED)
            if not call.done():
                token.cancel()  # the client left: stop the guest
                return _LEFT
            if token.cancelled:
                return _CANCELLED
            try:
                return call.result()
            except WassetteError as e:
                return str(e)
        finally:
            watch.cancel()
            token.cancel()  # a finished call ignores it
            self._running.pop(key, None)

    def _hold_session(self, sid: str) -> None:
        """Pushes the session's idle deadline, as any request to the SDK's
        transport would (this path keeps a session in use as much as that)."""
        manager = self.app.server.session_manager
        transport = manager._server_instances.get(sid)  # the pinned SDK's registry of sessions
        timeout = manager.session_idle_timeout
        scope = getattr(transport, "idle_scope", None)
        if scope is not None and timeout is not None:
            # Moved only when a tenth of the timeout has passed: setting a
            # deadline costs more than the rest of this check.
            deadline = asyncio.get_running_loop().time() + timeout
            if deadline - scope.deadline > timeout / 10:
                scope.deadline = deadline

    async def _respond(self, send: Send, sid: str, messages: list[dict[str, Any]]) -> None:
        if self.json_response:
            body = wire.dumps(messages[-1])
            headers = [(b"content-type", b"application/json")]
        else:
            body = b"".join(sse_event(m) for m in messages)
            headers = [*SSE_HEADERS, (b"x-accel-buffering", b"no")]
        headers += [(b"mcp-session-id", sid.encode("latin-1")), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
