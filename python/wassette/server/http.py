"""MCP over HTTP (`wassette serve`): Streamable HTTP at /mcp (protocol
revisions 2025-06-18, 2025-11-25 and 2026-07-28), or the legacy SSE transport
at /sse, plus /health, /ready and /info; all behind the `Guard`.

The MCP endpoints are the official SDK's transports on the shared
`WassetteServer`, served by uvicorn, with the fast path of http_fast.py in
front; the SDK is loaded once the server listens (http_sdk.py).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from wassette import __version__
from wassette.runtime.errors import ConfigError
from wassette.runtime.lifecycle import Runtime
from wassette.server import wire
from wassette.server.http_fast import HttpFastPath
from wassette.server.http_guard import LOOPBACK_HOSTS, Guard, HostAllowlist, split_host
from wassette.server.http_sdk import SdkApp
from wassette.server.limits import DEFAULT_MAX_REQUEST_BYTES, max_request_bytes

if TYPE_CHECKING:
    from wassette.server.app import WassetteServer

log = logging.getLogger("wassette.http")

DEFAULT_BIND_ADDRESS = "127.0.0.1:9001"
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
SSE_MESSAGES_PATH = "/messages/"

Transport = Literal["streamable-http", "sse"]


def parse_bind_address(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, `:port` or `host` (default port 9001)."""
    try:
        host, port = split_host(text) if not text.startswith(":") else ("", int(text[1:]))
    except ValueError:
        raise ConfigError(f"bind address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9001") from None
    if port is None:
        port = int(DEFAULT_BIND_ADDRESS.rsplit(":", 1)[1])
    if not 0 <= port <= 65535:
        raise ConfigError(f"bind address {text!r}: port out of range")
    return host or "127.0.0.1", port


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 9001
    transport: Transport = "streamable-http"
    allowed_hosts: tuple[str, ...] = ()
    auth_token: str | None = field(default=None, repr=False)
    legacy_sessions: bool = True
    json_response: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @classmethod
    def resolve(
        cls,
        *,
        bind_address: str | None,
        allowed_hosts: Sequence[str],
        auth_token: str | None,
        transport: Transport,
        legacy_sessions: bool,
        json_response: bool,
        request_limit: int | None,
        env: Mapping[str, str],
        config: Mapping[str, Any],
    ) -> HttpOptions:
        """Flag > environment (`WASSETTE_BIND_ADDRESS`, or `BIND_HOST` and
        `PORT`; `WASSETTE_ALLOWED_HOSTS`, `WASSETTE_AUTH_TOKEN`) > config.toml
        (`bind_address`, `allowed_hosts`, `max_request_bytes`) > defaults."""
        if bind_address:
            host, port = parse_bind_address(bind_address)
        elif env.get("WASSETTE_BIND_ADDRESS"):
            host, port = parse_bind_address(env["WASSETTE_BIND_ADDRESS"])
        else:
            configured = config.get("bind_address", DEFAULT_BIND_ADDRESS)
            if not isinstance(configured, str):
                raise ConfigError("config key 'bind_address' must be a string like \"127.0.0.1:9001\"")
            host, port = parse_bind_address(configured)
            host = env.get("BIND_HOST") or host
            if env.get("PORT"):
                try:
                    port = int(env["PORT"])
                except ValueError:
                    raise ConfigError(f"PORT={env['PORT']!r} is not a port number") from None
        hosts: Sequence[str] = allowed_hosts
        if not hosts and env.get("WASSETTE_ALLOWED_HOSTS"):
            hosts = env["WASSETTE_ALLOWED_HOSTS"].split(",")
        if not hosts:
            hosts = config.get("allowed_hosts", [])
            if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
                raise ConfigError("config key 'allowed_hosts' must be a list of strings, e.g. [\"myhost\"]")
        try:
            HostAllowlist(hosts)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return cls(
            host=host,
            port=port,
            transport=transport,
            allowed_hosts=tuple(h.strip() for h in hosts if h.strip()),
            auth_token=auth_token or env.get("WASSETTE_AUTH_TOKEN") or None,
            legacy_sessions=legacy_sessions,
            json_response=json_response,
            max_request_bytes=max_request_bytes(config, request_limit),
        )

    @property
    def path(self) -> str:
        return SSE_PATH if self.transport == "sse" else MCP_PATH


class StatusRoutes:
    """GET /health, /ready and /info, answered without the SDK (probes work
    while it loads); everything else goes to `app`."""

    def __init__(
        self, runtime: Runtime, options: HttpOptions, builtin_tools: bool, sdk: SdkApp, app: ASGIApp
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.builtin_tools = builtin_tools
        self.sdk = sdk
        self.app = app
        self.routes: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
            "/health": lambda: (200, {"status": "ok"}),
            "/ready": self.ready,
            "/info": self.info,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET":
            status, body, headers = 405, {"error": "method not allowed"}, [(b"allow", b"GET")]
        else:
            (status, body), headers = route(), []
        raw = json.dumps(body).encode()
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    def ready(self) -> tuple[int, dict[str, Any]]:
        directory = self.runtime.settings.component_dir
        if directory.exists() and not os.access(directory, os.R_OK | os.X_OK):
            return 503, {"status": "unavailable", "reason": "component directory unreadable"}
        if self.sdk.server is None:
            self.sdk.want()  # someone waits for it
            return 503, {"status": "starting", "reason": "the MCP SDK is loading"}
        return 200, {"status": "ready"}

    def info(self) -> tuple[int, dict[str, Any]]:
        options = self.options
        return 200, {
            "name": "wassette",
            "version": __version__,
            "transports": [options.transport],
            "endpoint": options.path,
            "protocolVersions": [*wire.HANDSHAKE_VERSIONS, *wire.MODERN_VERSIONS],
            "legacySessions": options.legacy_sessions,
            "jsonResponse": options.json_response,
            "authRequired": options.auth_token is not None,
            "components": len(self.runtime.components()),
            "tools": len(wire.tools(self.runtime.tools(), self.builtin_tools)),
        }


def build_app(
    runtime: Runtime, options: HttpOptions, *, builtin_tools: bool, agent_grants: str
) -> tuple[Guard, SdkApp]:
    """The whole HTTP application (guard, fast path, status routes, the SDK's
    transport once loaded) and the loader of the SDK part, to be run."""
    fast = None
    if options.transport == "streamable-http" and options.legacy_sessions:
        fast = HttpFastPath(
            runtime, builtin_tools=builtin_tools, path=MCP_PATH, json_response=options.json_response
        )

    def make_server() -> WassetteServer:
        from wassette.server.app import WassetteServer

        return WassetteServer(runtime, builtin_tools=builtin_tools, agent_grants=agent_grants)

    sdk = SdkApp(make_server, lambda server: sdk_transport(server, options), fast)
    return (
        Guard(
            StatusRoutes(runtime, options, builtin_tools, sdk, sdk),
            hosts=HostAllowlist(options.allowed_hosts),
            token=options.auth_token,
            max_body_bytes=options.max_request_bytes,
            # Plain-JSON answers do not read the connection while a call runs.
            watch_disconnect=options.json_response and options.transport != "sse",
            fast=fast,
        ),
        sdk,
    )


def sdk_transport(server: WassetteServer, options: HttpOptions) -> ASGIApp:
    """The SDK's MCP transport (Streamable HTTP or SSE) on `server`."""
    from mcp.server.transport_security import TransportSecuritySettings

    # The Guard checks Host and Origin for every route; the SDK's own check
    # (which covers only its endpoint) is turned off so there is one rule.
    no_rebinding_check = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if options.transport == "sse":
        from wassette.server.sse import sse_app

        return sse_app(server, no_rebinding_check, options.max_request_bytes)
    return server.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        json_response=options.json_response,
        stateless_http=not options.legacy_sessions,
        max_request_body_size=options.max_request_bytes,
        transport_security=no_rebinding_check,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say
    # so, and without it every streamed answer waits out a delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve_http(
    runtime: Runtime, options: HttpOptions, *, builtin_tools: bool = True, agent_grants: str = "ask"
) -> None:
    import uvicorn

    since = runtime.store.stamp()
    app, sdk = build_app(runtime, options, builtin_tools=builtin_tools, agent_grants=agent_grants)
    sock = bind_socket(options.host, options.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host not in LOOPBACK_HOSTS:
        if options.auth_token is None:
            log.warning("listening on %s without an auth token: whoever reaches it can use every tool", host)
        if not options.allowed_hosts:
            log.warning("only requests naming a loopback host are served; add --allowed-host for others")
    log.info("serving MCP (%s) at http://%s:%d%s", options.transport, shown, port, options.path)
    config = uvicorn.Config(
        app,
        lifespan="off",  # the SDK's lifespan is run by `sdk.run`
        log_config=None,  # keep the CLI's logging set-up
        access_log=log.isEnabledFor(logging.DEBUG),
        timeout_graceful_shutdown=3,
        # X-Forwarded-* from a local client would be trusted by default: we
        # never act on client addresses, and skipping it saves a step per request.
        proxy_headers=False,
    )
    http = uvicorn.Server(config)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sdk.run, since, lambda: app.requests)
            await http.serve(sockets=[sock])
            tg.cancel_scope.cancel()

    anyio.run(main)
