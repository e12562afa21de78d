"""One POSTed request's messages, gathered on the event loop whichever
thread sends them: the `Channel` the core answers a Streamable HTTP request
through."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import REQUEST_CANCELLED, Id
from wassette.server.http.resume import Framing
from wassette.server.http.wire import Stream, sse_event, wait_for


class PostChannel:
    """One POSTed request's messages, gathered on the event loop whichever
    thread sends them."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, stream_ok: bool, answer_cancel: bool, can_ask: bool
    ) -> None:
        self.loop = loop
        self._thread = threading.get_ident()
        self.stream_ok = stream_ok
        self.answer_cancel = answer_cancel
        self._can_ask = can_ask
        self.events: list[dict[str, Any]] = []
        self.final: dict[str, Any] | None = None
        self.stream: Stream | None = None
        # Ids for a stream the client can resume (resume.py); None: none.
        self.framing: Framing | None = None
        self._wake: asyncio.Event | None = None

    @property
    def can_ask(self) -> bool:
        return self._can_ask

    @property
    def carries_events(self) -> bool:
        return self.stream_ok

    def send(self, message: dict[str, Any], final: bool) -> None:
        if threading.get_ident() == self._thread:
            self._deliver(message, final)
        else:
            with contextlib.suppress(RuntimeError):  # the server is stopping: nobody to answer
                self.loop.call_soon_threadsafe(self._deliver, message, final)

    def cancelled(self, request_id: Id) -> None:
        """A handshake-era request the client cancelled ends with -32800
        (this wire ends a request's stream only with an answer)."""
        if self.answer_cancel:
            self.send(jsonrpc.error(request_id, REQUEST_CANCELLED, "Request cancelled"), True)
        else:
            self.send({}, True)

    def _deliver(self, message: dict[str, Any], final: bool) -> None:
        if final:
            self.final = message
        elif not self.stream_ok:
            return  # a plain-JSON answer carries nothing but the answer
        stream = self.stream
        if stream is not None and not stream.closed:
            if message:
                stream.push(self.frame(message))
            if final:
                stream.close()
        elif stream is not None and self.framing is not None:
            if message and not final:  # the client is away: kept for when it is back
                self.framing.keep(self.framing.frame(message))
        elif not final:
            self.events.append(message)
        if self._wake is not None:
            self._wake.set()

    def frame(self, message: dict[str, Any]) -> bytes:
        """`message` as an event of this request's stream."""
        return self.framing.frame(message) if self.framing is not None else sse_event(message)

    async def next_change(self, timeout: float) -> bool:
        """Waits for an event or the answer; False on timeout."""
        if self._wake is None:
            self._wake = asyncio.Event()
        if self.final is not None or self.events:
            return True
        return await wait_for(self._wake, timeout)
