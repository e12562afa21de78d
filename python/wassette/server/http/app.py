"""MCP over HTTP (`wassette serve`): Streamable HTTP at /mcp (every served
revision), or the legacy SSE transport at /sse, plus /health, /ready and
/info; every route behind the `Guard`. Plain ASGI served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wassette import __version__
from wassette.runtime.config import ConfigError, Settings
from wassette.runtime.errors import WassetteError
from wassette.runtime.runtime import Runtime
from wassette.runtime.serve_config import OAuthSettings
from wassette.server.core import protocol
from wassette.server.core.server import McpServer, ServerOptions
from wassette.server.http.guard import IDENTITY, LOOPBACK_HOSTS, METADATA_PATH, Guard, HostAllowlist
from wassette.server.http.legacy_sse import MESSAGES_PATH, LegacySse
from wassette.server.http.oauth import TokenVerifier
from wassette.server.http.sockets import bind_socket
from wassette.server.http.streamable import StreamableHttp
from wassette.server.http.supervisor import WorkerSpec
from wassette.server.http.wire import Receive, Scope, Send, header_map, respond

log = logging.getLogger("wassette.http")

MCP_PATH = "/mcp"
# The newest audit records, as JSON (with OAuth: the `audit` right).
AUDIT_PATH = "/audit"
MAX_AUDIT_RECORDS = 10_000
_TRACE_HEADERS = (b"traceparent", b"tracestate")
# Prometheus metrics (with OAuth: the `audit` right; `metrics_public`: no token).
METRICS_PATH = "/metrics"
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
    oauth: OAuthSettings | None = None
    ca_bundle: str | None = None
    metrics_public: bool = False
    rate_limit_per_minute: int = 0

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
            oauth=serve.oauth,
            metrics_public=serve.metrics_public,
            rate_limit_per_minute=serve.rate_limit_per_minute,
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
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
        self.verifier: TokenVerifier | None = None
        self._gates(options)
        self.streamable = StreamableHttp(
            server, json_response=options.json_response, legacy_sessions=options.legacy_sessions
        )
        self.sse = LegacySse(server)
        from wassette.server.core import tracing
        from wassette.server.core.metrics import Metrics

        self.metrics = Metrics(self.runtime)
        self.tracing = tracing.Tracing(self.runtime) if tracing.enabled() else None
        self.status: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
            "/health": lambda: (200, {"status": "ok"}),
            "/ready": self.ready,
            "/info": self.info,
        }

    def _gates(self, options: HttpOptions) -> None:
        """The guard, the token verifier and the admission checks, made from
        `options` (at start, and again at each reload)."""
        verifier = self.verifier
        if options.oauth is None:
            verifier = None
        elif verifier is None or verifier.settings != options.oauth:  # else: its keys are kept
            from wassette.server.http.oauth import TokenVerifier

            verifier = TokenVerifier(options.oauth, Path(options.ca_bundle) if options.ca_bundle else None)
        guard = Guard(
            hosts=HostAllowlist(options.allowed_hosts),
            token=options.auth_token,
            max_body_bytes=options.max_request_bytes,
            verifier=verifier,
            open_paths=frozenset({METRICS_PATH}) if options.metrics_public else frozenset(),
        )
        limiter = None
        if options.rate_limit_per_minute:
            from wassette.server.http.limits import RateLimiter

            worker = self.worker
            limiter = RateLimiter(
                options.rate_limit_per_minute,
                worker.directory / "rate-limits" if worker is not None else None,
            )
        from wassette.server.http.admission import Admission

        # Assigned last, together: a request sees the old gates or the new ones.
        self.verifier, self.guard, self.admission = verifier, guard, Admission(guard, verifier, limiter)
        self.options = options

    def reload(self, read: Callable[[], HttpOptions]) -> None:
        """SIGHUP: the configuration read again and applied to the next
        requests (connections, sessions and calls in flight go on). What only
        a restart changes is said; a configuration that does not read is
        refused whole, the running one kept."""
        try:
            options = read()
        except Exception as e:  # a broken file must not stop a running server
            log.error("configuration not reloaded, the running one is kept: %s", e)
            return
        fixed = ("host", "port", "transport", "legacy_sessions", "json_response")
        changed = [name for name in fixed if getattr(options, name) != getattr(self.options, name)]
        if changed:
            log.warning("%s: changed, but only a restart applies it", ", ".join(changed))
            options = dataclasses.replace(options, **{name: getattr(self.options, name) for name in changed})
        self._gates(options)
        log.info("configuration reloaded")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if await self.guard.refuse(scope, send):
            return
        path = scope["path"]
        route = self.status.get(path)
        if route is None and self.verifier is not None and path.startswith(METADATA_PATH):
            verifier = self.verifier
            route = lambda: (200, verifier.metadata())  # noqa: E731
        if path == AUDIT_PATH:
            await self._audit(scope, send)
            return
        if path == METRICS_PATH:
            public = self.options.metrics_public
            if public or not await self.admission.missing_right(scope, send, "audit"):
                text, content_type = await asyncio.to_thread(self.metrics.exposition)
                await respond(send, 200, text, [], content_type.encode())
            return
        if route is not None:
            if scope["method"] != "GET":
                await respond(send, 405, b'{"error": "method not allowed"}', [(b"allow", b"GET")])
            else:
                status, answer = route()
                await respond(send, status, json.dumps(answer).encode(), [])
            return
        if self.options.transport == "sse":
            if path == SSE_PATH and scope["method"] == "GET":
                await self.sse.open(receive, send, _owner(scope))
                return
            if path == MESSAGES_PATH or path == MESSAGES_PATH.rstrip("/"):
                body = await self.guard.read_body(scope, receive, send)
                if body is not None and not await self.admission.refused(scope, body, send):
                    with self._traced(scope, body):
                        await self.sse.post(scope, body, send, _owner(scope))
                return
        elif path == MCP_PATH:
            body = await self.guard.read_body(scope, receive, send)
            if body is not None and not await self.admission.refused(scope, body, send):
                with self._traced(scope, body):
                    await self.streamable(scope, body, header_map(scope), receive, send)
            return
        await respond(send, 404, b'{"error": "not found"}', [])

    def _traced(self, scope: Scope, body: bytes) -> contextlib.AbstractContextManager[Any]:
        """With tracing on: the span of this request (a POST of one message),
        in the caller's trace when it names one (`traceparent`: the header, or
        the message's `_meta`)."""
        if self.tracing is None or scope["method"] != "POST":
            return contextlib.nullcontext()
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        method = message.get("method") if isinstance(message, dict) else None
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in header_map(scope).items()
            if k in _TRACE_HEADERS
        }
        params = message.get("params") if isinstance(message, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        if (
            "traceparent" not in carrier
            and isinstance(meta, dict)
            and isinstance(meta.get("traceparent"), str)
        ):
            carrier = {k: meta[k] for k in ("traceparent", "tracestate") if isinstance(meta.get(k), str)}
        return self.tracing.request(method if isinstance(method, str) else "batch", carrier, "http")

    async def _audit(self, scope: Scope, send: Send) -> None:
        """`GET /audit?limit=N&component=ID&event=KIND`: the newest records, oldest first."""
        from urllib.parse import parse_qs

        if scope["method"] != "GET":
            await respond(send, 405, b'{"error": "method not allowed"}', [(b"allow", b"GET")])
            return
        if await self.admission.missing_right(scope, send, "audit"):
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        limit_text = query.get("limit", ["100"])[-1]
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_AUDIT_RECORDS:
            text = f"limit must be a number from 1 to {MAX_AUDIT_RECORDS}"
            await respond(send, 400, json.dumps({"error": text}).encode(), [])
            return
        component = query.get("component", [None])[-1]
        event = query.get("event", [None])[-1]
        try:
            records = await asyncio.to_thread(
                self.runtime.audit_records, int(limit_text), component=component, event=event
            )
        except WassetteError as e:
            await respond(send, 503, json.dumps({"error": str(e)}).encode(), [])
            return
        await respond(send, 200, json.dumps({"records": records}).encode(), [])

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
            "authRequired": options.auth_token is not None or options.oauth is not None,
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


def _owner(scope: Scope) -> str | None:
    """The OAuth identity a request speaks for (None without OAuth)."""
    identity = scope.get(IDENTITY)
    return identity.subject if identity is not None else None


def serve_http(
    runtime: Runtime,
    options: HttpOptions,
    server_options: ServerOptions,
    worker: WorkerSpec | None = None,
    reload: Callable[[], HttpOptions] | None = None,
) -> None:
    """Serves until SIGTERM or SIGINT; `worker`: as one of the worker
    processes of `serve --workers N` (supervisor.py); `reload`: what SIGHUP
    calls for the configuration as it is now."""
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
        if reload is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, app.reload, reload)
        expiry = asyncio.ensure_future(app.streamable.sessions.expire_idle())
        try:
            await http.serve(sockets=[sock])
        finally:
            expiry.cancel()
            server.changes.stop()
            app.close()
            if app.tracing is not None:
                app.tracing.shutdown()
            if peers is not None:
                peers.close()

    asyncio.run(main())
