"""One request in progress (an `Exchange`): where its messages go, its
cancel token, and the way to ask the client something while it runs. Its
session is session.py's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wassette import _engine
from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import Id
from wassette.server.core.protocol import LEVELS, NOT_CACHED, finish_result, is_modern

if TYPE_CHECKING:
    from wassette.server.core.session import Channel, Session


class NoBackChannel(Exception):
    """The client cannot be asked anything on this transport or revision."""


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
