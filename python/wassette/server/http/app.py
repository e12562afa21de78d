"""MCP over HTTP (`wassette serve`): Streamable HTTP at /mcp (every served
revision), or the legacy SSE transport at /sse, plus /health, /ready and
/info; every route behind the `Guard`. Plain ASGI served by uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from wassette import __version__
from wassette.runtime.config import ConfigError, Settings
from wassette.runtime.runtime import Runtime
from wassette.server.core import protocol
from wassette.server.core.server import McpServer, ServerOptions
from wassette.server.http.guard import LOOPBACK_HOSTS, Guard, HostAllowlist
from wassette.server.http.legacy_sse import MESSAGES_PATH, LegacySse
from wassette.server.http.sockets import bind_socket
from wassette.server.http.streamable import StreamableHttp
from wassette.server.http.supervisor import WorkerSpec
from wassette.server.http.wire import Receive, Scope, Send, header_map, respond

log = logging.getLogger("wassette.http")

MCP_PATH = "/mcp"
SSE_PATH = "/sse"
# At SIGTERM, requests in flight get this long to finish; those still
# running a second before the end are stopped and answered with why.
DRAIN_S = 10

Transport = Literal["streamable-http", "sse"]


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 9001
    transport: Transport = "streamable-http"
    allowed_hosts: tuple[str, ...] = ()
    auth_token: str | None = field(default=None, repr=False)
    legacy_sessions: bool = True
    json_response: bool = False
    max_request_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: Transport = "streamable-http") -> HttpOptions:
        """Where and how to serve, as the configuration says (flags,
        environment and config.toml were merged into `settings.serve`)."""
        serve = settings.serve
        try:
            HostAllowlist(serve.allowed_hosts)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return cls(
            host=serve.host,
            port=serve.port,
            transport=transport,
            allowed_hosts=serve.allowed_hosts,
            auth_token=serve.auth_token,
            legacy_sessions=serve.legacy_sessions,
            json_response=serve.json_response,
            max_request_bytes=serve.max_request_bytes,
        )

    @property
    def path(self) -> str:
        return SSE_PATH if self.transport == "sse" else MCP_PATH


class App:
    """The whole HTTP application."""

    def __init__(self, server: McpServer, options: HttpOptions, worker: WorkerSpec | None = None) -> None:
        self.server = server
        self.worker = worker
        self.runtime = server.runtime
        self.options = options
        self.guard = Guard(
            hosts=HostAllowlist(options.allowed_hosts),
            token=options.auth_token,
            max_body_bytes=options.max_request_bytes,
        )
        self.streamable = StreamableHttp(
            server, json_response=options.json_response, legacy_sessions=options.legacy_sessions
        )
        self.sse = LegacySse(server)
        self.status: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
            "/health": lambda: (200, {"status": "ok"}),
            "/ready": self.ready,
            "/info": self.info,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if await self.guard.refuse(scope, send):
            return
        path = scope["path"]
        route = self.status.get(path)
        if route is not None:
            if scope["method"] != "GET":
                await respond(send, 405, b'{"error": "method not allowed"}', [(b"allow", b"GET")])
            else:
                status, answer = route()
                await respond(send, status, json.dumps(answer).encode(), [])
            return
        if self.options.transport == "sse":
            if path == SSE_PATH and scope["method"] == "GET":
                await self.sse.open(receive, send)
                return
            if path == MESSAGES_PATH or path == MESSAGES_PATH.rstrip("/"):
                body = await self.guard.read_body(scope, receive, send)
                if body is not None:
                    await self.sse.post(scope, body, send)
                return
        elif path == MCP_PATH:
            body = await self.guard.read_body(scope, receive, send)
            if body is not None:
                await self.streamable(scope, body, header_map(scope), receive, send)
            return
        await respond(send, 404, b'{"error": "not found"}', [])

    def ready(self) -> tuple[int, dict[str, Any]]:
        directory = self.runtime.settings.component_dir
        if directory.exists() and not os.access(directory, os.R_OK | os.X_OK):
            return 503, {"status": "unavailable", "reason": "component directory unreadable"}
        return 200, {"status": "ready"}

    def info(self) -> tuple[int, dict[str, Any]]:
        options = self.options
        return 200, {
            "name": protocol.SERVER_NAME,
            "version": __version__,
            "transports": [options.transport],
            "endpoint": options.path,
            "protocolVersions": list(protocol.SUPPORTED_VERSIONS),
            "legacySessions": options.legacy_sessions,
            "jsonResponse": options.json_response,
            "authRequired": options.auth_token is not None,
            "workers": self.worker.workers if self.worker else 1,
            "worker": self.worker.number if self.worker else 0,
            "components": len(self.runtime.components()),
            "tools": len(self.server.tools()),
        }

    def close_streams(self) -> None:
        """The server is stopping: streams that never end by themselves
        end now (listen streams gracefully); requests in flight go on."""
        self.server.changes.close_listeners()
        self.streamable.sessions.close_streams()
        self.sse.close_all()

    def close(self, reason: str | None = None) -> None:
        """The server stops: streams end, calls in flight are stopped."""
        self.close_streams()
        self.streamable.sessions.close_all(reason)


def announcement(options: HttpOptions, host: str, port: int) -> str:
    """The line that says where the server listens (after any warning about how)."""
    if host not in LOOPBACK_HOSTS:
        if options.auth_token is None:
            log.warning("listening on %s without an auth token: whoever reaches it can use every tool", host)
        if not options.allowed_hosts:
            log.warning("only requests naming a loopback host are served; add --allowed-host for others")
    shown = f"[{host}]" if ":" in host else host
    return f"serving MCP ({options.transport}) at http://{shown}:{port}{options.path}"


def serve_http(
    runtime: Runtime, options: HttpOptions, server_options: ServerOptions, worker: WorkerSpec | None = None
) -> None:
    """Serves until SIGTERM or SIGINT; `worker`: as one of the worker
    processes of `serve --workers N` (supervisor.py)."""
    import uvicorn

    since = runtime.store.stamp()
    server = McpServer(runtime, server_options)
    app = App(server, options, worker)
    if worker is None:
        sock = bind_socket(options.host, options.port)
        log.info("%s", announcement(options, *sock.getsockname()[:2]))
    else:
        sock = bind_socket(worker.host, worker.port, shared=True)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,  # keep the CLI's logging set-up
        access_log=log.isEnabledFor(logging.DEBUG),
        timeout_graceful_shutdown=DRAIN_S,
        # X-Forwarded-* from a local client would be trusted by default: we
        # never act on client addresses, and skipping it saves a step per request.
        proxy_headers=False,
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and worker is not None:
                worker.ready()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Long-lived streams end first (listen streams gracefully), so
            # their connections close at once; requests in flight drain.
            app.close_streams()
            stop = asyncio.get_running_loop().call_later(
                DRAIN_S - 1, app.close, "the server is shutting down"
            )
            try:
                await super().shutdown(sockets)
            finally:
                stop.cancel()

    http = Server(config)

    async def main() -> None:
        peers = None
        if worker is not None:
            from wassette.server.http.worker import Peers

            peers = Peers(worker)
            peers.attach(app, asyncio.get_running_loop())
        server.changes.watch(since)
        expiry = asyncio.ensure_future(app.streamable.sessions.expire_idle())
        try:
            await http.serve(sockets=[sock])
        finally:
            expiry.cancel()
            server.changes.stop()
            app.close()
            if peers is not None:
                peers.close()

    asyncio.run(main())
