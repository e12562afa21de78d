"""The MCP server object, shared by every transport.

Component exports and the built-in tools are the tools; each component call
runs in a fresh sandbox, its first slice on the event loop's thread and the
rest, if any, in a worker thread (workers.py; the engine releases the GIL).
Guest output never reaches the protocol stream: the engine captures it, and
guest stderr may be forwarded as MCP log messages.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from wassette import __version__, _engine
from wassette.runtime.catalog import Tool
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import CallResult, Runtime
from wassette.server import wire
from wassette.server.builtin_specs import NAMES
from wassette.server.builtins import BuiltinTools
from wassette.server.http_guard import CLIENT_GONE
from wassette.server.workers import FIRST_SLICES

log = logging.getLogger("wassette.server")

# Where a handshake-era connection keeps the level chosen with logging/setLevel.
_LOG_LEVEL_STATE = "wassette.log_level"
# How long one client may hold up a change notification before it is skipped.
_NOTIFY_TIMEOUT_S = 5.0


def client_gone(ctx: Any) -> anyio.Event | None:
    """The HTTP request's client-gone event (None on stdio)."""
    scope = getattr(getattr(ctx, "request", None), "scope", None)
    event = scope.get(CLIENT_GONE) if isinstance(scope, dict) else None
    return event if isinstance(event, anyio.Event) else None


def connection_of(ctx: Any) -> Connection | None:
    """The client connection a request arrived on.

    The SDK (2.3) builds a new `ServerSession` proxy per request and hands
    lowlevel handlers no public handle on the connection behind it, which is
    what outlives the request (its standalone channel, `state`, `exit_stack`).
    """
    connection = getattr(getattr(ctx, "session", None), "_connection", None)
    return connection if isinstance(connection, Connection) else None


def mcp_tool(tool: Tool) -> types.Tool:
    return types.Tool.model_validate(wire.component_tool(tool))


def tool_result(result: CallResult) -> types.CallToolResult:
    return types.CallToolResult.model_validate(wire.call_result(result))


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult.model_validate(wire.error_result(message))


class _Server(Server[Any]):
    """Advertises `tools.listChanged` on every transport, also where the SDK
    builds the initialization options itself (Streamable HTTP sessions)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


class WassetteServer:
    """Owns the MCP `Server` and routes its requests to the runtime."""

    def __init__(self, runtime: Runtime, *, builtin_tools: bool = True, agent_grants: str = "ask") -> None:
        self.runtime = runtime
        self.builtin_tools = builtin_tools
        self.builtins = BuiltinTools(runtime, agent_grants=agent_grants, on_change=self.tools_changed)
        # 2026-07-28 clients hear of changes on `subscriptions/listen` streams
        # fed by this bus; handshake-era connections that can be written to at
        # any time (stdio, HTTP sessions, SSE) are tracked in `_connections`.
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self._connections: set[Connection] = set()
        # HTTP sessions by their Mcp-Session-Id, for the HTTP fast path.
        self.sessions: dict[str, Connection] = {}
        # A transport that tells its own client of changes (the stdio fast
        # path) keeps its connection out of the tracking and hooks in here.
        self.tracks: Callable[[Connection], bool] = lambda connection: True
        self.on_tools_changed: Callable[[], None] | None = None
        with warnings.catch_warnings():
            # Logging is deprecated from 2026-07-28 on, but part of the 2025
            # revisions we also serve.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            self.server: Server[Any] = _Server(
                wire.SERVER_NAME,
                version=__version__,
                instructions=wire.INSTRUCTIONS,
                on_list_tools=self._list_tools,
                on_call_tool=self._call_tool,
                on_set_logging_level=self._set_logging_level,
                on_subscriptions_listen=self.listen,
            )
        self.server.middleware.append(self._track_connection)

    def initialization_options(self) -> InitializationOptions:
        return self.server.create_initialization_options()

    # -- notifications ---------------------------------------------------

    async def _track_connection(self, ctx: Any, call_next: CallNext) -> HandlerResult:
        """Remembers every handshake-era connection with a standing channel
        (from its first message on), until it closes."""
        connection = connection_of(ctx)
        if (
            connection is not None
            and connection not in self._connections
            and self.tracks(connection)
            and connection.has_standalone_channel
            and connection.protocol_version not in MODERN_PROTOCOL_VERSIONS
        ):
            self._connections.add(connection)
            connection.exit_stack.callback(self._connections.discard, connection)
        if connection is not None and connection.session_id and connection.session_id not in self.sessions:
            self.sessions[connection.session_id] = connection
            connection.exit_stack.callback(self.sessions.pop, connection.session_id, None)
        return await call_next(ctx)

    def client_log_level(self, connection: Connection) -> int | None:
        """The level a handshake-era client chose with logging/setLevel, if any."""
        level = connection.state.get(_LOG_LEVEL_STATE)
        return level if isinstance(level, int) else None

    async def tools_changed(self) -> None:
        """Tells every client the tool list changed (after load, unload, reload):
        listen streams through the bus, handshake-era connections directly."""
        await self.bus.publish(ToolsListChanged())
        if self.on_tools_changed is not None:
            self.on_tools_changed()

        async def notify(connection: Connection) -> None:
            with anyio.move_on_after(_NOTIFY_TIMEOUT_S):
                await connection.send_tool_list_changed()  # best effort: never raises

        async with anyio.create_task_group() as tg:
            for connection in list(self._connections):
                tg.start_soon(notify, connection)

    async def rescan(self) -> None:
        """Picks up components changed by another process; notifies on change."""
        if await anyio.to_thread.run_sync(self.runtime.rescan):
            await self.tools_changed()

    async def watch_components(
        self, interval: float = 1.0, since: frozenset[tuple[str, int]] | None = None
    ) -> None:
        """Rescans (and so notifies clients) when components change under the
        running server: `wassette component load|unload` from another
        process, or files copied in by hand. `since`: the directory's stamp
        when the runtime last read it, if that was before this started."""
        store = self.runtime.store
        last = store.stamp() if since is None else since
        while True:
            now = store.stamp()
            if now != last:
                last = now
                try:
                    await self.rescan()
                except WassetteError as e:
                    log.warning("rescanning components failed: %s", e)
            await anyio.sleep(interval)

    async def _set_logging_level(self, ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        connection = connection_of(ctx)
        if connection is not None:
            connection.state[_LOG_LEVEL_STATE] = wire.LEVELS.get(params.level, logging.INFO)
        return types.EmptyResult()

    async def _log_to_client(self, ctx: Any, level: str, data: Any) -> None:
        """A log message about this request, if the client asked for that level:
        with logging/setLevel (up to 2025-11-25), or per request in `_meta`
        (2026-07-28, where the SDK applies the opt-in itself)."""
        session: Any = getattr(ctx, "session", None)
        if session is None:
            return
        if session.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            connection = connection_of(ctx)
            wanted = self.client_log_level(connection) if connection is not None else None
            if wanted is None or wire.LEVELS[level] < wanted:
                return
        try:
            await session.send_log_message(level, data, logger="wassette", related_request_id=ctx.request_id)
        except Exception as e:  # logging is best effort
            log.debug("log message to client failed: %s", e)

    # -- requests --------------------------------------------------------

    def tools(self) -> list[types.Tool]:
        """Every tool offered: component exports, then the built-in tools."""
        return [types.Tool.model_validate(t) for t in wire.tools(self.runtime.tools(), self.builtin_tools)]

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools())

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name in NAMES and self.builtin_tools:
            return await self.builtins.call(params.name, args, ctx)
        try:
            self.runtime.tool(params.name)
        except WassetteError as e:
            return error_result(str(e))
        token = _engine.CancelToken()
        try:
            result = await self._run_call(params.name, args, token, client_gone(ctx))
        except WassetteError as e:
            return error_result(str(e))
        finally:
            # Stops the guest within one epoch tick if the request was
            # cancelled or the client left; harmless once the call is done.
            token.cancel()
        if result is None:
            return error_result("cancelled: the client disconnected")
        if result.stderr:
            entry = wire.stderr_log(params.name, result.stderr)
            await self._log_to_client(ctx, entry["level"], entry["data"])
        return tool_result(result)

    async def _run_call(
        self, name: str, args: dict[str, Any], token: _engine.CancelToken, gone: anyio.Event | None
    ) -> CallResult | None:
        """Runs a component call, its first slice on this thread and the rest
        (if any) in a worker thread; None if the client went away first. A
        cancelled request stops waiting at once (the caller's token then
        stops the guest)."""
        call = self.runtime.start_tool(name, args, cancel=token)
        result = FIRST_SLICES.run(name, call)
        if result is not None:
            return result
        if gone is None:
            return await FIRST_SLICES.finish(name, call)
        async with anyio.create_task_group() as tg:

            async def cancel_when_gone() -> None:
                await gone.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(cancel_when_gone)
            result = await FIRST_SLICES.finish(name, call)
            tg.cancel_scope.cancel()
            return result
        return None
