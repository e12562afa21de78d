"""2026-07-28 over Streamable HTTP: self-contained POSTs (no session; the
envelope says who asks), checked here, then served as any request
(`StreamableHttp.serve`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import HEADER_MISMATCH, INVALID_REQUEST, Rejected
from wassette.server.core.session import Session
from wassette.server.http.admission import DECODED
from wassette.server.http.guard import IDENTITY
from wassette.server.http.wire import Receive, Scope, Send, accepts, respond, respond_error, respond_json

if TYPE_CHECKING:
    from wassette.server.http.streamable import StreamableHttp

ROUTING_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
# No JSON value decoded before (admission.py decodes when it must look).
UNDECODED = object()


async def serve_modern(
    http: StreamableHttp, scope: Scope, body: bytes, headers: dict[bytes, bytes], receive: Receive, send: Send
) -> None:
    """A self-contained request: no session, its envelope says who asks."""
    if scope["method"] != "POST":
        await respond_error(send, 405, INVALID_REQUEST, "Method Not Allowed", [(b"allow", b"POST")])
        return
    has_json, has_sse = accepts(headers)
    if not has_json or (not http.json_response and not has_sse):
        text = "Not Acceptable: Client must accept application/json" + (
            "" if http.json_response else " and text/event-stream"
        )
        await respond_error(send, 406, INVALID_REQUEST, text, [])
        return
    decoded = scope.get(DECODED, UNDECODED)
    parsed = jsonrpc.parse(body) if decoded is UNDECODED else jsonrpc.classify(decoded)
    if isinstance(parsed, Rejected) or parsed.kind == "response":
        error = parsed.answer if isinstance(parsed, Rejected) else None
        if error is None or error["error"]["code"] != jsonrpc.PARSE_ERROR:
            text = "Invalid Request: the body must be a single JSON-RPC request or notification object"
            error = jsonrpc.error(getattr(parsed, "id", None), INVALID_REQUEST, text)
        await respond_json(send, 400, error, [])
        return
    session = Session(era="modern", ready=True)
    identity = scope.get(IDENTITY)
    # Without authentication every caller is one: a task's unguessable id guards it.
    session.owner = identity.owner if identity is not None else "anonymous"
    if parsed.kind == "notification":
        # Nothing to act on: a 2026-07-28 client cancels by closing its stream.
        await respond(send, 202, b"", [])
        return
    if parsed.method == "subscriptions/listen" and not has_sse:
        await respond_error(
            send, 406, INVALID_REQUEST, "Not Acceptable: a listen stream needs text/event-stream", []
        )
        return
    duplicated = _duplicated_routing_header(scope)
    if duplicated is not None:
        await respond_json(
            send,
            400,
            jsonrpc.error(parsed.id, HEADER_MISMATCH, f"{duplicated} header appears more than once"),
            [],
        )
        return
    await http.serve(session, parsed, headers, receive, send, [], modern=True)


def _duplicated_routing_header(scope: Scope) -> str | None:
    seen: set[bytes] = set()
    for name, _ in scope["headers"]:
        key = name.lower()
        if key in ROUTING_HEADERS:
            if key in seen:
                return str(key.decode("latin-1"))
            seen.add(key)
    return None
