"""HTTP framing shared by the MCP endpoints: plain ASGI (no framework),
JSON and event-stream bodies, and the event stream that carries a session's
or a request's messages as they come, from any thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Any, Literal

from wassette.server.core import jsonrpc

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Any  # async () -> Message
Send = Any  # async (Message) -> None

JSON = b"application/json"
SSE_HEADERS = [
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"text/event-stream"),
    (b"x-accel-buffering", b"no"),
]
# A comment line on long-lived streams, so idle proxies keep them open.
PING_INTERVAL_S = 15.0
PING = b": ping\r\n\r\n"
# Messages waiting on one stream for a client that stopped reading; beyond,
# the stream is ended (its client reconnects).
MAX_QUEUED = 1024


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (the last of repeated ones),
    built once per request."""
    headers: dict[bytes, bytes] | None = scope.get("wassette.headers")
    if headers is None:
        headers = scope["wassette.headers"] = {k.lower(): v for k, v in scope["headers"]}
    return headers


def sse_event(message: dict[str, Any], event_id: str | None = None) -> bytes:
    """One `message` event (compact JSON has no line breaks: one data line),
    with its id when the stream can be resumed."""
    head = (
        b"event: message\r\nid: " + event_id.encode("ascii") + b"\r\n" if event_id else b"event: message\r\n"
    )
    return head + b"data: " + jsonrpc.dumps(message) + b"\r\n\r\n"


def priming_event(event_id: str, retry_ms: int) -> bytes:
    """The first event of a stream that can be resumed (SEP-1699): an id and
    no data, and how long a client waits before it reconnects."""
    return b"id: %s\r\nretry: %d\r\ndata: \r\n\r\n" % (event_id.encode("ascii"), retry_ms)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes | None = JSON,
) -> None:
    """A whole response at once."""
    all_headers = [(b"content-type", content_type)] if content_type else []
    all_headers += [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, message: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    await respond(send, status, jsonrpc.dumps(message), headers)


async def respond_error(
    send: Send, status: int, code: int, text: str, headers: list[tuple[bytes, bytes]], data: Any = None
) -> None:
    """A JSON-RPC error (id null) with an HTTP status: a refusal before any
    request could be read."""
    await respond_json(send, status, jsonrpc.error(None, code, text, data), headers)


async def until_disconnect(receive: Receive) -> None:
    """Returns when the client has gone (the body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def wait_for(event: asyncio.Event, timeout: float | None) -> bool:
    """Clears `event` and waits for it to be set again; False on timeout."""
    event.clear()
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def accepts(headers: dict[bytes, bytes]) -> tuple[bool, bool]:
    """Whether the client accepts JSON, and event streams."""
    types = [p.split(";")[0].strip() for p in headers.get(b"accept", b"").decode("latin-1").split(",")]
    has_json = "application/json" in types or "application/*" in types or "*/*" in types
    has_sse = "text/event-stream" in types or "text/*" in types or "*/*" in types
    return has_json, has_sse


def is_json(headers: dict[bytes, bytes]) -> bool:
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    return "application/json" in (p.strip() for p in content_type.split(";")[0].split(","))


class Stream:
    """Messages for one client, pushed from any thread, written by one task
    as events. `closed` once the client has gone or the stream was ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread = threading.get_ident()
        self._queue: deque[bytes | None] = deque()
        self._wake = asyncio.Event()
        self.closed = False

    def push(self, data: bytes | None) -> bool:
        """Queues an event (None: end the stream); False once closed."""
        if self.closed:
            return False
        if threading.get_ident() == self._thread:
            self._add(data)
        else:
            try:
                self.loop.call_soon_threadsafe(self._add, data)
            except RuntimeError:  # the loop is gone: so is the client
                return False
        return True

    def _add(self, data: bytes | None) -> None:
        if self.closed:
            return
        if len(self._queue) >= MAX_QUEUED:
            self._queue.clear()
            data = None  # a client that stopped reading: end its stream
        self._queue.append(data)
        self._wake.set()

    def close(self) -> None:
        self.push(None)

    async def next(self, timeout: float | None) -> bytes | Literal[False] | None:
        """The next event; None at the end of the stream; False on timeout."""
        while not self._queue:
            if not await wait_for(self._wake, timeout):
                return False
        return self._queue.popleft()

    async def pump(
        self, send: Send, receive: Receive, first: bytes = b"", until: float | None = None
    ) -> bool:
        """Writes events until the stream ends or the client goes away
        (headers were sent); pings while idle. With `until` (the loop's
        time), stops writing then, the stream still open: True (the client
        resumes it later, SEP-1699's polling)."""
        gone = asyncio.ensure_future(until_disconnect(receive))
        polled = False
        try:
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            while not gone.done():
                wait = PING_INTERVAL_S
                if until is not None:
                    left = until - self.loop.time()
                    if left <= 0 and not self._queue:  # nothing unwritten is left behind
                        polled = True
                        break
                    wait = max(0.0, min(wait, left))
                item = await self._next_or(gone, wait)
                if item is None:
                    break
                if not item and until is not None and self.loop.time() >= until:
                    continue  # not a ping: the time is up
                await send({"type": "http.response.body", "body": item or PING, "more_body": True})
        finally:
            self.closed = True
            gone.cancel()
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        return polled

    async def _next_or(self, gone: asyncio.Future[None], wait: float = PING_INTERVAL_S) -> bytes | None:
        """The next event, b"" for a ping, None when the stream or client ended."""
        item = asyncio.ensure_future(self.next(wait))
        await asyncio.wait((item, gone), return_when=asyncio.FIRST_COMPLETED)
        if not item.done():
            item.cancel()
            return None
        value = item.result()
        return b"" if value is False else value
