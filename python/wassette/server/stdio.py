"""MCP over stdio (`wassette run`)."""

from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server

from wassette.runtime.lifecycle import Runtime
from wassette.server.app import WassetteServer


def serve_stdio(runtime: Runtime, *, builtin_tools: bool = True, agent_grants: str = "ask") -> None:
    app = WassetteServer(runtime, builtin_tools=builtin_tools, agent_grants=agent_grants)

    async def main() -> None:
        # The SDK points fd 1 at stderr while serving, so stray native output
        # cannot corrupt the protocol stream.
        async with stdio_server() as (read, write):
            await app.server.run(read, write, app.initialization_options())

    anyio.run(main)
