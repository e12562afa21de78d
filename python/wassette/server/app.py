"""The MCP server object, shared by every transport.

Component exports are tools; each call runs in a worker thread (the engine
releases the GIL), in a fresh sandbox. Guest output never reaches the
protocol stream: the engine captures it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import mcp.types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions

from wassette import __version__, _engine
from wassette.runtime.catalog import Tool
from wassette.runtime.errors import WassetteError
from wassette.runtime.lifecycle import CallResult, Runtime

log = logging.getLogger("wassette.server")

INSTRUCTIONS = (
    "Tools here run as WebAssembly components in a deny-by-default sandbox: they reach files, "
    "network hosts and environment variables only where their policy grants it."
)


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
    if result.tool.output_schema is None:
        return types.CallToolResult(
            content=[types.TextContent(text="null")]
            if not notes
            else [types.TextContent(text=n) for n in notes]
        )
    text = json.dumps(result.value, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(text=text), *(types.TextContent(text=n) for n in notes)],
        structured_content={"result": result.value},
    )


class WassetteServer:
    """Owns the MCP `Server` and routes its requests to the runtime."""

    def __init__(self, runtime: Runtime, *, builtin_tools: bool = True) -> None:
        self.runtime = runtime
        self.builtin_tools = builtin_tools
        self.server: Server[Any] = Server(
            "wassette",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    def initialization_options(self) -> InitializationOptions:
        return self.server.create_initialization_options(NotificationOptions(tools_changed=True))

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[mcp_tool(t) for t in self.runtime.tools()])

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            self.runtime.tool(params.name)
        except WassetteError as e:
            return types.CallToolResult(content=[types.TextContent(text=str(e))], is_error=True)
        token = _engine.CancelToken()
        try:
            # abandon_on_cancel: a cancelled request returns at once, and the
            # token stops the guest within one epoch tick.
            result = await anyio.to_thread.run_sync(
                lambda: self.runtime.call_tool(params.name, params.arguments or {}, cancel=token),
                abandon_on_cancel=True,
            )
        except anyio.get_cancelled_exc_class():
            token.cancel()
            raise
        except WassetteError as e:
            return types.CallToolResult(content=[types.TextContent(text=str(e))], is_error=True)
        if result.stderr:
            log.debug("guest stderr of %s: %s", params.name, result.stderr.decode("utf-8", "replace"))
        return tool_result(result)
