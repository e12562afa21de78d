"""The legacy HTTP+SSE transport (`wassette serve --sse` / `--http`): the
client opens GET /sse and posts its messages to /messages/?session_id=...
(protocol revisions up to 2025-11-25). The SDK's transport does the work."""

from __future__ import annotations

from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from wassette.server.app import WassetteServer

MESSAGES_PATH = "/messages/"


class _SseEndpoint:
    """GET /sse: one MCP connection for as long as the event stream is open."""

    def __init__(self, server: WassetteServer, transport: SseServerTransport) -> None:
        self.server = server
        self.transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.transport.connect_sse(scope, receive, send) as (read, write):
            await self.server.server.run(read, write, self.server.initialization_options())


def sse_app(server: WassetteServer, security: TransportSecuritySettings, max_body_bytes: int) -> Starlette:
    transport = SseServerTransport(
        MESSAGES_PATH, security_settings=security, max_request_body_size=max_body_bytes
    )
    return Starlette(
        routes=[
            Route("/sse", endpoint=_SseEndpoint(server, transport), methods=["GET"]),
            Mount(MESSAGES_PATH, app=transport.handle_post_message),
        ]
    )
