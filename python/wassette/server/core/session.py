"""A client's session and the requests in progress on it.

A `Session` is one client as the protocol sees it: a stdio connection, a
Streamable HTTP session (`Mcp-Session-Id`), a legacy SSE connection, or a
single 2026-07-28 HTTP request (which carries everything about its client
itself). An `Exchange` is one request in progress: where its messages go,
its cancel token, and the way to ask the client something while it runs.

Transports supply the `Channel` of each request and the session's
`Outbound` (where messages not tied to a request go); everything here is
thread-safe, as requests are answered from the reading thread, the event
loop and worker threads alike.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from wassette.runtime.instances import Scope
from wassette.server.core import jsonrpc
from wassette.server.core.exchange import Exchange, NoBackChannel
from wassette.server.core.jsonrpc import Id

log = logging.getLogger("wassette.server")

# How long a question to the user (elicitation) may go unanswered.
ASK_TIMEOUT_S = 600.0
# A client opens its standing GET stream just after `initialize`, in
# parallel with its first requests (the SDK's does): a question asked in that
# moment waits this long for the stream before giving up.
STREAM_WAIT_S = 5.0


class Channel(Protocol):
    """Where one request's messages go: related notifications, questions to
    the client, and finally its answer."""

    def send(self, message: dict[str, Any], final: bool) -> object: ...

    def cancelled(self, request_id: Id) -> None:
        """The client cancelled the request: end it as the transport does
        (stdio: no answer; handshake-era HTTP: the error -32800)."""
        ...

    @property
    def can_ask(self) -> bool:
        """Whether a request to the client can travel here and its answer come back."""
        ...

    @property
    def carries_events(self) -> bool:
        """Whether messages before the answer (progress, logs) travel here
        (a plain-JSON HTTP answer carries the answer only)."""
        ...


class Outbound(Protocol):
    """Where a session's messages that belong to no request go (change
    notifications, questions to the client); False when there is no such
    channel right now (e.g. no open GET stream)."""

    def send(self, message: dict[str, Any]) -> bool: ...


class _Waiter:
    """Our request to the client, waiting for its answer."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: Any = None


def session_scope(session_id: str) -> str:
    """The scope of a session's kept instances (runtime/instances.py)."""
    return "session:" + session_id


class Session:
    """One client's state: the revision and what the client said about
    itself, requests in progress, and our requests waiting for answers."""

    def __init__(
        self,
        outbound: Outbound | None = None,
        *,
        session_id: str | None = None,
        version: str | None = None,
        era: str | None = None,
        ready: bool = False,
    ) -> None:
        self.id = session_id
        # Whether the session outlives its request (a stdio connection, an
        # HTTP session with an id): only such a session keeps instances.
        self.lasting = session_id is not None
        self._scope = session_scope(session_id or secrets.token_hex(16))
        self.outbound = outbound
        # "handshake" or "modern"; None until the client's first request decides.
        self.era = era
        self.version = version
        # Set once `initialize` was answered (handshake era); sessions made
        # for one request, or without sessions, are `ready` from the start.
        self.initialized = ready
        # Set once the client said `notifications/initialized`.
        self.client_initialized = self.initialized
        self.client_capabilities: dict[str, Any] = {}
        self.client_info: Any = None
        # Who the client is (the HTTP identity's owner key), for what is
        # kept on its behalf between requests (tasks); None: not known.
        self.owner: str | None = None
        # The level chosen with logging/setLevel (handshake era).
        self.log_level: int | None = None
        self.closed = False
        # Told when what the session is changes (initialize, initialized,
        # setLevel): `serve --workers N` shares it with the other workers.
        self.on_change: Callable[[Session], None] | None = None
        # Where a question goes when there is no stream to the client here:
        # another worker's (`serve --workers N`); False when none has one.
        self.forward: Callable[[dict[str, Any]], bool] | None = None
        self._lock = threading.Lock()
        self._requests: dict[Id, Exchange] = {}
        self._calls = 0
        self._waiting: dict[Id, _Waiter] = {}
        self._ids = itertools.count(1)
        self._idle = threading.Condition(self._lock)

    @property
    def modern(self) -> bool:
        return self.era == "modern"

    def instance_scope(self) -> Scope | None:
        """Whose kept instances this session's calls use (runtime/instances.py):
        its own, in the 2025 revisions; none in 2026-07-28 (instance ids)."""
        if self.lasting and self.era == "handshake":
            return Scope(self._scope, self.owner)
        return None

    @property
    def scope_key(self) -> str:
        return self._scope

    # -- requests in progress ----------------------------------------------

    def begin(self, exchange: Exchange, *, call: bool, cap: int) -> bool:
        """Registers a request in progress; False when it is a call and
        `cap` calls of this session have not ended."""
        with self._lock:
            if call and self._calls >= cap:
                return False
            self._calls += call
            if exchange.id is not None:
                self._requests[exchange.id] = exchange
            return True

    def end(self, exchange: Exchange) -> None:
        with self._lock:
            if exchange.id is not None and self._requests.get(exchange.id) is exchange:
                del self._requests[exchange.id]
            self._calls -= exchange.is_call
            self._idle.notify_all()

    def cancel(self, request_id: object) -> bool:
        """Cancels a request in progress (notifications/cancelled)."""
        with self._lock:
            exchange = self._requests.get(cast(Id, request_id)) if jsonrpc.valid_id(request_id) else None
        if exchange is None:
            return False
        exchange.cancel(by_client=True)
        return True

    def abandon(self, request_id: object) -> None:
        """The client of one request went away (its connection closed)."""
        with self._lock:
            exchange = self._requests.get(cast(Id, request_id)) if jsonrpc.valid_id(request_id) else None
        if exchange is not None:
            exchange.cancel(by_client=False)

    def in_progress(self) -> int:
        with self._lock:
            return len(self._requests)

    def wait_idle(self, timeout: float) -> bool:
        """Waits until no request is in progress (or the timeout)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._requests, timeout=timeout)

    def close(self, reason: str | None = None) -> None:
        """The client is gone (or the server stops): every request in
        progress is stopped (and, if it can still be answered, answered with
        `reason`), every question to the client given up."""
        with self._lock:
            self.closed = True
            requests = list(self._requests.values())
            waiting = list(self._waiting.values())
        for exchange in requests:
            exchange.stop_reason = reason
            exchange.cancel(by_client=False)
        for waiter in waiting:
            waiter.error = {"code": jsonrpc.INTERNAL_ERROR, "message": "the client went away"}
            waiter.done.set()

    # -- our requests to the client ------------------------------------------

    def ask(self, method: str, params: dict[str, Any], channel: Channel | None, token: Any) -> Any:
        """Sends a request to the client and waits for its answer (in a
        worker thread). Raises NoBackChannel where none can be sent,
        jsonrpc.RpcError for an error answer, TimeoutError."""
        if self.modern:
            raise NoBackChannel("this protocol revision has no requests from server to client")
        waiter = _Waiter()
        with self._lock:
            if self.closed:
                raise NoBackChannel("the client went away")
            request_id: Id = next(self._ids)
            self._waiting[request_id] = waiter
        message = jsonrpc.request(request_id, method, params)
        try:
            if channel is not None and channel.can_ask:
                channel.send(message, False)
            else:
                self._send_standing(message, token)
            deadline_left = ASK_TIMEOUT_S
            while not waiter.done.wait(min(0.5, deadline_left)):
                deadline_left -= 0.5
                if deadline_left <= 0:
                    raise TimeoutError(f"no answer to {method} within {ASK_TIMEOUT_S:g} s")
                if token is not None and token.cancelled:
                    raise NoBackChannel("the request was cancelled")
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
        if waiter.error is not None:
            error = waiter.error if isinstance(waiter.error, dict) else {}
            raise jsonrpc.RpcError(
                int(error.get("code", jsonrpc.INTERNAL_ERROR)),
                str(error.get("message", "error")),
                error.get("data"),
            )
        return waiter.result

    def _send_standing(self, message: dict[str, Any], token: Any) -> None:
        """Sends on the session's standing stream (here or, through
        `forward`, on another worker), waiting up to STREAM_WAIT_S for one
        to open."""
        waited = 0.0
        while not (
            (self.outbound is not None and self.outbound.send(message))
            or (self.forward is not None and self.forward(message))
        ):
            cancelled = token is not None and token.cancelled
            if waited == 0:
                log.info("a question to the client waits for its stream (up to %g s)", STREAM_WAIT_S)
            if waited >= STREAM_WAIT_S or self.closed or cancelled:
                raise NoBackChannel("there is no open stream to the client to ask on")
            # Polled: the stream may open on this worker or on another one
            # (seen through the shared session record), with no event for both.
            time.sleep(0.05)
            waited += 0.05

    def answered(self, message: jsonrpc.Message) -> bool:
        """A response from the client to one of our requests; False when
        no request of this session here waits for it."""
        with self._lock:
            waiter = self._waiting.get(message.id) if message.id is not None else None
        if waiter is None:
            return False
        waiter.result, waiter.error = message.result, message.error
        if waiter.error is None and waiter.result is None:
            waiter.result = {}
        waiter.done.set()
        return True

    # -- what the client asked for -------------------------------------------

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def can_elicit(self) -> bool:
        caps = self.client_capabilities
        return isinstance(caps, dict) and isinstance(caps.get("elicitation"), dict)

    def send(self, message: dict[str, Any]) -> bool:
        """A message that belongs to no request (e.g. a change notification)."""
        return self.outbound is not None and not self.closed and self.outbound.send(message)


__all__ = ["Channel", "Exchange", "NoBackChannel", "Outbound", "Session", "session_scope"]
