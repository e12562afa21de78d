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

from wassette import _engine
from wassette.runtime.instances import Scope
from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import Id
from wassette.server.core.protocol import LEVELS, NOT_CACHED, finish_result, is_modern

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


class NoBackChannel(Exception):
    """The client cannot be asked anything on this transport or revision."""


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


class Exchange:
    """One request in progress: its messages go to `channel`; `token` stops
    the call it runs. Answered exactly once (`respond`); a request the
    client cancelled is ended as its transport does instead."""

    __slots__ = (
        "_answered",
        "channel",
        "id",
        "is_call",
        "log_level",
        "method",
        "on_cancel",
        "on_end",
        "progress_token",
        "session",
        "stop_reason",
        "task",
        "token",
        "version",
        "was_cancelled",
    )

    def __init__(
        self,
        session: Session,
        request_id: Id | None,
        method: str,
        channel: Channel,
        *,
        version: str | None,
        log_level: int | None,
        progress_token: Any = None,
    ) -> None:
        self.session = session
        self.id = request_id
        self.method = method
        self.channel = channel
        self.version = version
        self.log_level = log_level
        self.progress_token = progress_token
        self.token = _engine.CancelToken()
        self.is_call = False
        self.was_cancelled = False
        # The task this request's call became (server/core/tasks.py), if it did.
        self.task: dict[str, Any] | None = None
        self._answered = False
        # Why the server stopped the request, when it did (e.g. shutting down).
        self.stop_reason: str | None = None
        # Run when the request ends (answered), and when it is cancelled.
        self.on_end: Callable[[], None] | None = None
        self.on_cancel: Callable[[], None] | None = None

    # -- from the handlers ------------------------------------------------

    def wants_log(self, level: str) -> bool:
        return self.log_level is not None and LEVELS[level] >= self.log_level

    def log(self, level: str, data: Any) -> None:
        """A log message about this request, if the client asked for that level."""
        if self.wants_log(level):
            params = {"level": level, "logger": "wassette", "data": data}
            self.notify("notifications/message", params)

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """A progress notification, when the client sent a progress token."""
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": done}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        self.notify("notifications/progress", params)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        message = jsonrpc.notification(method, params)
        if self._answered:
            # A 2025-11-25 task's call goes on after its request: its
            # messages travel on the session's standing stream.
            if self.task is not None and not self.session.modern:
                self.session.send(message)
            return
        if self.channel.carries_events:
            self.channel.send(message, False)
        else:  # a plain-JSON answer: the session's own stream, if it has one open
            self.session.send(message)

    def ask(self, method: str, params: dict[str, Any]) -> Any:
        """Asks the client (blocking; worker threads only)."""
        if is_modern(self.version):
            raise NoBackChannel("this protocol revision has no requests from server to client")
        # Answered (a task's call goes on): on the session's standing stream.
        channel = None if self._answered else self.channel
        return self.session.ask(method, params, channel, self.token)

    # -- ending ---------------------------------------------------------------

    def reply(self, body: dict[str, Any]) -> None:
        """Answers with a result, shaped for the request's revision."""
        assert self.id is not None
        self.respond(jsonrpc.result(self.id, finish_result(self.version, body)))

    def fail(self, error: jsonrpc.RpcError) -> None:
        self.respond(jsonrpc.failure(self.id, error))

    def respond(self, message: dict[str, Any]) -> None:
        """The request's answer (from any thread, once)."""
        if self._answered:
            return
        self._answered = True
        try:
            if self.was_cancelled:
                if self.id is not None:
                    self.channel.cancelled(self.id)
            else:
                self.channel.send(message, True)
        finally:
            self.token.cancel()  # a finished call ignores it
            self.session.end(self)
            if self.on_end is not None:
                self.on_end()

    def cancel(self, *, by_client: bool) -> None:
        """Stops the request's work: cancelled by the client (then it is not
        answered, or as its transport ends cancelled requests), or the
        client went away."""
        if by_client:
            self.was_cancelled = True
        self.token.cancel()
        if self.on_cancel is not None:
            self.on_cancel()

    @property
    def answered(self) -> bool:
        return self._answered

    def listing(self, body: dict[str, Any]) -> dict[str, Any]:
        """A list's answer, with the cache hints 2026-07-28 asks for."""
        if self.session.modern:
            body.update(NOT_CACHED)
        return body
