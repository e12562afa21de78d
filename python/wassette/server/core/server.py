"""The MCP server, whatever the transport: one dispatch table for every
method of every served revision.

`McpServer.handle` takes one parsed message of a session and answers it
through the request's `Channel`: at once, on the calling thread, for most
requests (stdio's reading thread, HTTP's event loop), or later from a worker
thread (calls that run long, built-in tools). Transports only frame bytes,
make sessions and channels, and decide where messages go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from wassette.runtime.mcp_served import McpServed
from wassette.runtime.naming import Catalog
from wassette.runtime.runtime import Runtime
from wassette.server.core import jsonrpc, protocol
from wassette.server.core.builtins import Builtins
from wassette.server.core.calls import CallRunner, answer_later, call_params
from wassette.server.core.changes import Changes
from wassette.server.core.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    SERVER_BUSY,
    Message,
    RpcError,
)
from wassette.server.core.results import tools as wire_tools
from wassette.server.core.served import Served
from wassette.server.core.session import Channel, Exchange, Session
from wassette.server.core.task_requests import TaskRequests
from wassette.server.core.tasks import Tasks, TaskStore

log = logging.getLogger("wassette.server")

HANDSHAKE, MODERN = frozenset({"handshake"}), frozenset({"modern"})
BOTH = HANDSHAKE | MODERN
# Requests served before `initialize` (handshake era).
_BEFORE_INIT = frozenset({"initialize", "ping"})


class ServerOptions(NamedTuple):
    builtin_tools: bool = True
    agent_grants: str = "ask"
    # Calls of one session running or waiting for a worker; one more is
    # refused at once (a client cannot queue without bound).
    max_calls_per_session: int = 256
    # Loads the drop directory's changes while serving (--local-components watch).
    watch_local_components: bool = False


Handler = Callable[[Exchange, dict[str, Any] | None], dict[str, Any] | None]


class Route(NamedTuple):
    handler: Handler
    eras: frozenset[str]


class McpServer:
    def __init__(self, runtime: Runtime, options: ServerOptions | None = None) -> None:
        self.runtime = runtime
        self.options = options or ServerOptions()
        self.changes = Changes(runtime)
        if self.options.watch_local_components:
            self.changes.drop_dir = runtime.settings.local_components_dir
        builtins = None
        if self.options.builtin_tools:
            builtins = Builtins(
                runtime, agent_grants=self.options.agent_grants, announce=self.changes.announce
            )
        self.calls = CallRunner(runtime, builtins, catch_up=self.changes.current)
        store = TaskStore(runtime.settings.data_dir / "tasks")
        self.tasks = self.calls.tasks = Tasks(store)
        later = lambda exchange, work: answer_later(self.calls.slices.workers.start, exchange, work)  # noqa: E731
        self.task_requests = self.calls.task_requests = TaskRequests(store, later)
        # Where a cancellation or a client's answer goes when no request here
        # is its target: `serve --workers N` relays it to the other workers.
        self.relay: Callable[[Session, Message], None] | None = None
        Listings = tuple[list[dict[str, Any]], list[dict[str, Any]]]
        self._listing: tuple[Catalog | None, frozenset[str], Listings] = (None, frozenset(), ([], []))
        self.routes: dict[str, Route] = {
            "initialize": Route(self._initialize, HANDSHAKE),
            "ping": Route(lambda ex, params: {}, HANDSHAKE),
            "logging/setLevel": Route(self._set_level, HANDSHAKE),
            "server/discover": Route(lambda ex, params: protocol.discover_result(), MODERN),
            "subscriptions/listen": Route(self._listen, MODERN),
            "tools/list": Route(self._list_tools, BOTH),
            "tools/call": Route(self._call_tool, BOTH),
        }
        served = Served(McpServed(runtime), self.calls.slices.workers.start)
        self.routes.update({method: Route(handler, BOTH) for method, handler in served.routes().items()})
        # tasks/*: the 2026-07-28 extension's, or 2025-11-25's, by the request's era.
        modern, legacy = self.tasks.routes(), self.task_requests.routes()
        for method in modern.keys() | legacy.keys():
            self.routes[method] = _by_era(modern.get(method), legacy.get(method))

    # -- messages -------------------------------------------------------------

    def handle(
        self,
        session: Session,
        message: Message,
        channel: Channel,
        headers: Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Answers (or takes note of) one message. A request is answered
        through `channel`, now or later; `headers`: the HTTP request's, which
        a 2026-07-28 request's routing headers must agree with."""
        if message.kind == "request":
            self._request(session, message, channel, headers)
        elif message.kind == "notification":
            self._notification(session, message)
        elif not session.answered(message):
            self._elsewhere(session, message)

    def _notification(self, session: Session, message: Message) -> None:
        if message.method == "notifications/cancelled":
            if not session.cancel((message.params or {}).get("requestId")):
                self._elsewhere(session, message)
        elif message.method == "notifications/initialized" and session.initialized:
            session.client_initialized = True
            session.changed()

    def _elsewhere(self, session: Session, message: Message) -> None:
        if self.relay is not None:
            self.relay(session, message)
        else:
            log.debug("dropped a %s for no request in progress here", message.method or "response")

    def _request(
        self, session: Session, message: Message, channel: Channel, headers: Mapping[bytes, bytes] | None
    ) -> None:
        method, params, rid = message.method, message.params, message.id
        assert rid is not None
        try:
            exchange = self._exchange(session, message, channel, headers)
        except RpcError as e:
            channel.send(jsonrpc.failure(rid, e), True)
            return
        is_call = method == "tools/call"
        exchange.is_call = is_call
        if not session.begin(exchange, call=is_call, cap=self.options.max_calls_per_session):
            cap = self.options.max_calls_per_session
            message_text = f"Server busy: {cap} calls of this session have not ended; retry later"
            channel.send(jsonrpc.error(rid, SERVER_BUSY, message_text), True)
            return
        try:
            body = self.routes[method].handler(exchange, params)
        except RpcError as e:
            exchange.fail(e)
            return
        except Exception:  # a bug answering one request must not end the session
            log.exception("answering %s failed", method)
            exchange.fail(RpcError(INTERNAL_ERROR, "Internal error"))
            return
        if body is not None:
            exchange.reply(body)

    def _exchange(
        self, session: Session, message: Message, channel: Channel, headers: Mapping[bytes, bytes] | None
    ) -> Exchange:
        """The request in progress, once its revision and route are known."""
        method, params = message.method, message.params
        if session.era is None:  # a duplex connection: the first request decides, once
            modern = method != "initialize" and protocol.has_envelope(params)
            session.era = "modern" if modern else "handshake"
            session.initialized = session.client_initialized = modern
        if session.modern:
            if method == "initialize" and headers is None:
                requested = (params or {}).get("protocolVersion")
                raise protocol.unsupported(requested)
            env = protocol.envelope(method, params, headers)
            version: str | None = env.version
            log_level = env.log_level
            session.client_capabilities = env.capabilities if isinstance(env.capabilities, dict) else {}
        else:
            if method != "initialize" and protocol.has_envelope(params):
                raise RpcError(
                    INVALID_REQUEST,
                    "this connection serves the handshake protocol era; requests carrying the "
                    "2026-07-28 envelope are not accepted on it",
                )
            version, log_level = session.version, session.log_level
        route = self.routes.get(method)
        if route is None or session.era not in route.eras:
            raise RpcError(METHOD_NOT_FOUND, "Method not found", method)
        if not session.initialized and method not in _BEFORE_INIT:
            raise RpcError(
                INVALID_PARAMS, "Invalid request: the session is not initialized (send initialize first)"
            )
        meta = params.get("_meta") if params else None
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        return Exchange(
            session,
            message.id,
            method,
            channel,
            version=version,
            log_level=log_level,
            progress_token=token if jsonrpc.valid_id(token) else None,
        )

    # -- methods ----------------------------------------------------------------

    def _initialize(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        info = (params or {}).get("clientInfo")
        if not (
            params is not None
            and isinstance(params.get("protocolVersion"), str)
            and isinstance(params.get("capabilities"), dict)
            and isinstance(info, dict)
            and isinstance(info.get("name"), str)
            and isinstance(info.get("version"), str)
        ):
            raise RpcError(
                INVALID_PARAMS,
                "Invalid params: initialize needs protocolVersion (a string), capabilities (an object) "
                "and clientInfo (an object with name and version)",
            )
        version = protocol.negotiate(params["protocolVersion"])
        session = exchange.session
        session.version, session.initialized = version, True
        session.client_capabilities, session.client_info = params["capabilities"], info
        exchange.version = version
        session.changed()
        return protocol.initialize_result(version)

    def _set_level(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        level = (params or {}).get("level")
        if not isinstance(level, str) or level not in protocol.LEVELS:
            raise RpcError(
                INVALID_PARAMS, f"Invalid params: level must be one of {', '.join(protocol.LEVELS)}", level
            )
        exchange.session.log_level = protocol.LEVELS[level]
        exchange.session.changed()
        return {}

    def tools(self, modern: bool = False) -> list[dict[str, Any]]:
        """Every tool offered, in wire form (rebuilt when the catalog
        changes): at 2026-07-28, or before it (with 2025-11-25's `execution`)."""
        catalog = self.runtime.catalog
        kept = self.runtime.kept_components()
        cached, cached_kept, listings = self._listing
        if cached is not catalog or cached_kept != kept:
            tools, builtin = self.runtime.tools(), self.options.builtin_tools
            listings = (
                wire_tools(tools, builtin, kept, tasks=True),
                wire_tools(tools, builtin, kept, tasks=False),
            )
            self._listing = (catalog, kept, listings)
        return listings[modern]

    def _list_tools(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any]:
        self.changes.current()
        return exchange.listing({"tools": self.tools(exchange.session.modern)})

    def _call_tool(self, exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any] | None:
        name, arguments = call_params(params)
        if params is not None and "requestState" in params:  # a retry with answers (rounds.py)
            self.calls.resume(exchange, name, params)
            return None
        return self.calls.start(exchange, name, arguments, params.get("task") if params else None)

    def _listen(self, exchange: Exchange, params: dict[str, Any] | None) -> None:
        self.changes.listen(exchange, params)
        return None

    # -- life ----------------------------------------------------------------------

    def open(self, session: Session) -> Session:
        """A session whose client is to hear of changes."""
        self.changes.track(session)
        return session

    def close(self, session: Session, reason: str | None = None) -> None:
        self.changes.forget(session)
        session.close(reason)
        self.runtime.instances.end_scope(session.scope_key)


def _by_era(modern: Handler | None, legacy: Handler | None) -> Route:
    """One method served differently by era (tasks/get, tasks/cancel)."""
    if modern is None or legacy is None:
        handler = modern or legacy
        assert handler is not None
        return Route(handler, MODERN if legacy is None else HANDSHAKE)

    def either(exchange: Exchange, params: dict[str, Any] | None) -> dict[str, Any] | None:
        return (modern if exchange.session.modern else legacy)(exchange, params)

    return Route(either, BOTH)
