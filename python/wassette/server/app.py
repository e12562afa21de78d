"""The MCP server object, shared by every transport.

Component exports and the built-in tools are the tools; each component call
runs in a worker thread (the engine releases the GIL), in a fresh sandbox.
Guest output never reaches the protocol stream: the engine captures it, and
guest stderr may be forwarded as MCP log messages.
"""

from __future__ import annotations

import json
import logging
import weakref
from typing import Any

import anyio
import mcp.types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from wassette import __version__, _engine
from wassette.runtime.catalog import Tool
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import CallResult, Runtime
from wassette.server.builtins import BUILTINS, NAMES, BuiltinTools

log = logging.getLogger("wassette.server")

INSTRUCTIONS = (
    "Tools here run as WebAssembly components in a deny-by-default sandbox: they reach files, "
    "network hosts and environment variables only where their policy grants it. Permission "
    "grants asked for through the built-in tools are confirmed by the user."
)

# MCP log levels, least to most severe, and their Python equivalents.
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO + 5,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL + 5,
    "emergency": logging.CRITICAL + 10,
}


def mcp_tool(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        description=tool.description or f"{tool.export} (component {tool.component_id})",
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
    )


def tool_result(result: CallResult) -> types.CallToolResult:
    """Maps an engine outcome onto MCP: `{"result": v}` as structured content,
    `isError` for anything but a successful return."""
    notes: list[str] = []
    if result.stdout_dropped or result.stderr_dropped:
        notes.append(
            f"(guest output truncated: {result.stdout_dropped} stdout and "
            f"{result.stderr_dropped} stderr bytes dropped)"
        )
    if result.is_error:
        text = result.message()
        if result.detail:
            text += "\n" + result.detail
        structured = {"result": result.value} if result.value is not None else None
        return types.CallToolResult(
            content=[types.TextContent(text="\n".join([text, *notes]))],
            structured_content=structured,
            is_error=True,
        )
    if result.denials:
        notes.append(result.message())
    if result.tool.output_schema is None:
        return types.CallToolResult(content=[types.TextContent(text=n) for n in (notes or ["null"])])
    text = json.dumps(result.value, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(text=text), *(types.TextContent(text=n) for n in notes)],
        structured_content={"result": result.value},
    )


class WassetteServer:
    """Owns the MCP `Server` and routes its requests to the runtime."""

    def __init__(self, runtime: Runtime, *, builtin_tools: bool = True, agent_grants: str = "ask") -> None:
        self.runtime = runtime
        self.builtin_tools = builtin_tools
        self.builtins = BuiltinTools(runtime, agent_grants=agent_grants, on_change=self.tools_changed)
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        # Handshake-era sessions that may want change notifications.
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._log_levels: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self.server: Server[Any] = Server(
            "wassette",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_set_logging_level=self._set_logging_level,
            on_subscriptions_listen=self.listen,
        )

    def initialization_options(self) -> InitializationOptions:
        return self.server.create_initialization_options(NotificationOptions(tools_changed=True))

    # -- notifications ---------------------------------------------------

    def _seen(self, ctx: Any) -> None:
        session = getattr(ctx, "session", None)
        if session is not None:
            self._sessions.add(session)

    async def tools_changed(self) -> None:
        """Tells every client the tool list changed (after load, unload, reload)."""
        await self.bus.publish(ToolsListChanged())
        for session in list(self._sessions):
            try:
                await session.send_tool_list_changed()
            except Exception as e:  # a gone client must not fail the change
                log.debug("list_changed to a session failed: %s", e)
                self._sessions.discard(session)

    async def rescan(self) -> None:
        """Picks up components changed by another process; notifies on change."""
        before = {t.name: t for t in self.runtime.tools()}
        await anyio.to_thread.run_sync(self.runtime.refresh)
        if {t.name: t for t in self.runtime.tools()} != before:
            await self.tools_changed()

    async def _set_logging_level(self, ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self._seen(ctx)
        if ctx.session is not None:
            self._log_levels[ctx.session] = LEVELS.get(params.level, logging.INFO)
        return types.EmptyResult()

    async def _log_to_client(self, ctx: Any, level: str, data: Any) -> None:
        session: Any = getattr(ctx, "session", None)
        wanted = self._log_levels.get(session) if session is not None else None
        if session is None or wanted is None or LEVELS[level] < wanted:
            return
        try:
            await session.send_log_message(level, data, logger="wassette", related_request_id=ctx.request_id)
        except Exception as e:
            log.debug("log message to client failed: %s", e)

    # -- requests --------------------------------------------------------

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._seen(ctx)
        tools = [mcp_tool(t) for t in self.runtime.tools()]
        if self.builtin_tools:
            tools += [b.tool() for b in BUILTINS]
        return types.ListToolsResult(tools=tools)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        self._seen(ctx)
        args = params.arguments or {}
        if params.name in NAMES and self.builtin_tools:
            return await self.builtins.call(params.name, args, ctx)
        try:
            self.runtime.tool(params.name)
        except WassetteError as e:
            return types.CallToolResult(content=[types.TextContent(text=str(e))], is_error=True)
        token = _engine.CancelToken()
        try:
            # abandon_on_cancel: a cancelled request returns at once, and the
            # token stops the guest within one epoch tick.
            result = await anyio.to_thread.run_sync(
                lambda: self.runtime.call_tool(params.name, args, cancel=token),
                abandon_on_cancel=True,
            )
        except anyio.get_cancelled_exc_class():
            token.cancel()
            raise
        except WassetteError as e:
            return types.CallToolResult(content=[types.TextContent(text=str(e))], is_error=True)
        if result.stderr:
            text = result.stderr.decode("utf-8", "replace")
            await self._log_to_client(ctx, "info", {"tool": params.name, "stderr": text})
        return tool_result(result)
