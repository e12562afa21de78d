"""MCP over HTTP (`wassette serve`): Streamable HTTP at /mcp (every served
revision), or the legacy SSE transport at /sse, plus /health, /ready and
/info; every route behind the `Guard`. Plain ASGI served by uvicorn."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wassette import __version__
from wassette.runtime.errors import WassetteError
from wassette.runtime.runtime import Runtime
from wassette.server.core import protocol
from wassette.server.core.server import ServerOptions
from wassette.server.http.guard import IDENTITY, METADATA_PATH, Guard, HostAllowlist
from wassette.server.http.lanes import Lanes
from wassette.server.http.legacy_sse import MESSAGES_PATH
from wassette.server.http.oauth import TokenVerifier
from wassette.server.http.options import (
    AUDIT_PATH,
    DRAIN_S,
    MAX_AUDIT_RECORDS,
    MCP_PATH,
    METRICS_PATH,
    SSE_PATH,
    HttpOptions,
    announcement,
    check_tenancy,
)
from wassette.server.http.sessions import EXPIRY_INTERVAL_S
from wassette.server.http.sockets import bind_socket
from wassette.server.http.supervisor import WorkerSpec
from wassette.server.http.tenants import Served, Tenants
from wassette.server.http.traced import traced
from wassette.server.http.wire import Receive, Scope, Send, header_map, respond

if TYPE_CHECKING:
    from wassette.server.http.console_mount import ConsoleMount
    from wassette.server.http.worker import WorkerLink

log = logging.getLogger("wassette.http")


class App:
    """The whole HTTP application: the gates every request passes, then the
    part of the server of the caller's tenant (tenants.py)."""

    def __init__(
        self,
        runtime: Runtime,
        options: HttpOptions,
        server_options: ServerOptions | None = None,
        worker: WorkerSpec | None = None,
    ) -> None:
        self.worker = worker
        self.options = options
        self.server_options = server_options or ServerOptions()
        self.verifier: TokenVerifier | None = None
        self.lanes = Lanes()
        # The other workers of a set (serve_http links them).
        self.link: WorkerLink | None = None
        from wassette.server.core import otlp_metrics, tracing
        from wassette.server.core.metrics import Metrics

        self.metrics = Metrics(runtime)
        self.tracing = tracing.Tracing(runtime) if tracing.enabled() else None
        self.otlp = otlp_metrics.OtlpMetrics(runtime) if otlp_metrics.enabled() else None
        tenancy = runtime.settings.tenancy
        check_tenancy(runtime.settings, options)
        self.tenants = Tenants(self._part(runtime), self._tenant if tenancy is not None else None)
        self._gates(options)
        self.console: ConsoleMount | None = None
        if options.console:
            from wassette.server.http.console_mount import ConsoleMount

            self.console = ConsoleMount(options, runtime)
        self.status: dict[str, Callable[[Served], tuple[int, dict[str, Any]]]] = {
            "/health": lambda served: (200, {"status": "ok"}),
            "/ready": self.ready,
            "/info": self.info,
        }

    def _part(self, runtime: Runtime) -> Served:
        return Served(
            runtime,
            self.server_options,
            json_response=self.options.json_response,
            poll_after_ms=self.options.sse_poll_after_ms,
            legacy_sessions=self.options.legacy_sessions,
        )

    def _tenant(self, name: str) -> Served:
        """A tenant's part, made at its first request (off the event loop)."""
        from wassette.runtime.tenants import for_tenant

        base = self.tenants.base.runtime
        runtime = Runtime(for_tenant(base.settings, name), engine_of=base)
        since = runtime.store.stamp()
        runtime.refresh()
        served = self._part(runtime)
        for observer in (self.metrics, self.tracing, self.otlp):
            if observer is not None:
                observer.observe(runtime)
        served.server.changes.watch(since)
        if self.link is not None:
            self.link.serve(served)
        if self.console is not None:
            self.console.hold(runtime)
        log.info("serving tenant %s (%d components)", name, len(runtime.components()))
        return served

    async def _served(self, scope: Scope, send: Send) -> Served | None:
        """The part of the caller's tenant (None: answered with why not)."""
        identity = scope.get(IDENTITY)
        tenant = identity.tenant if identity is not None else None
        served = self.tenants.known(tenant)
        if served is not None:
            return served
        try:
            return await asyncio.to_thread(self.tenants.get, tenant)
        except WassetteError as e:
            log.error("tenant %s cannot be served: %s", tenant, e)
            await respond(send, 503, json.dumps({"error": f"tenant {tenant}: {e}"}).encode(), [])
            return None

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
            tenancy=self.tenants.base.runtime.settings.tenancy if verifier is not None else None,
        )
        from wassette.server.http.admission import Admission
        from wassette.server.http.limits import RateLimiter

        shared = self.worker.directory if self.worker is not None else None
        limiter = None
        if options.rate_limit_per_minute:
            limiter = RateLimiter(options.rate_limit_per_minute, shared / "rate-limits" if shared else None)
        tenancy = guard.tenancy
        tenant_limiter = None
        if tenancy is not None and any(q.calls_per_minute for q in (tenancy.quota, *tenancy.quotas.values())):
            tenant_limiter = RateLimiter(
                tenancy.quota.calls_per_minute, shared / "tenant-limits" if shared else None
            )
        admission = Admission(guard, verifier, limiter, tenancy, tenant_limiter, self.lanes)
        # Assigned last, together: a request sees the old gates or the new ones.
        self.verifier, self.guard, self.admission = verifier, guard, admission
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
        path = scope["path"]
        if self.console is not None and (path == "/console" or path.startswith("/console/")):
            # Its own sign-in (a browser sends no bearer token); the Guard still decides.
            await self.console(scope, receive, send, self.guard, self.admission, self._served)
            return
        if await self.guard.refuse(scope, send):
            return
        if self.verifier is not None and path.startswith(METADATA_PATH):
            verifier = self.verifier
            await self._get(scope, send, lambda: (200, verifier.metadata()))
            return
        if path == METRICS_PATH:
            await self._metrics(scope, send)
            return
        served = await self._served(scope, send)
        if served is None:
            return
        route = self.status.get(path)
        if route is not None:
            await self._get(scope, send, lambda: route(served))
        elif path == AUDIT_PATH:
            await self._audit(scope, send, served)
        elif self.options.transport == "sse" and path == SSE_PATH and scope["method"] == "GET":
            await served.sse.open(receive, send, _owner(scope))
        elif self.options.transport == "sse" and path in (MESSAGES_PATH, MESSAGES_PATH.rstrip("/")):
            body = await self.guard.read_body(scope, receive, send)
            if body is not None and not await self.admission.refused(scope, body, send):
                await self._admitted(scope, body, send, served.sse.post(scope, body, send, _owner(scope)))
        elif self.options.transport != "sse" and path == MCP_PATH:
            body = await self.guard.read_body(scope, receive, send)
            if body is not None and not await self.admission.refused(scope, body, send):
                served_call = served.streamable(scope, body, header_map(scope), receive, send)
                await self._admitted(scope, body, send, served_call)
        else:
            await respond(send, 404, b'{"error": "not found"}', [])

    async def _admitted(
        self, scope: Scope, body: bytes, send: Send, serve: Coroutine[Any, Any, None]
    ) -> None:
        """Runs an admitted message (`serve`): traced, and for a tenant's
        call under a concurrency quota, in its lane."""
        lane = self.admission.lane_of(scope)
        if lane is None:
            with traced(self.tracing, scope, body):
                await serve
            return
        async with self.admission.entered(lane, send) as admitted:
            if not admitted:
                serve.close()  # never awaited: refused
                return
            with traced(self.tracing, scope, body):
                await serve

    @staticmethod
    async def _get(scope: Scope, send: Send, route: Callable[[], tuple[int, dict[str, Any]]]) -> None:
        if scope["method"] != "GET":
            await respond(send, 405, b'{"error": "method not allowed"}', [(b"allow", b"GET")])
            return
        status, answer = route()
        await respond(send, status, json.dumps(answer).encode(), [])

    async def _metrics(self, scope: Scope, send: Send) -> None:
        """Prometheus metrics: every tenant's series, so with tenants only
        for a caller of none (`metrics_public`, or the static token)."""
        if not self.options.metrics_public:
            if await self.admission.missing_right(scope, send, "audit"):
                return
            identity = scope.get(IDENTITY)
            if identity is not None and identity.tenant is not None:
                why = "/metrics shows every tenant: it is for the operator (metrics_public)"
                await respond(send, 403, json.dumps({"error": why}).encode(), [])
                return
        text, content_type = await asyncio.to_thread(self.metrics.exposition)
        await respond(send, 200, text, [], content_type.encode())

    async def _audit(self, scope: Scope, send: Send, served: Served) -> None:
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
                served.runtime.audit_records, int(limit_text), component=component, event=event
            )
        except WassetteError as e:
            await respond(send, 503, json.dumps({"error": str(e)}).encode(), [])
            return
        await respond(send, 200, json.dumps({"records": records}).encode(), [])

    def ready(self, served: Served) -> tuple[int, dict[str, Any]]:
        directory = served.runtime.settings.component_dir
        if directory.exists() and not os.access(directory, os.R_OK | os.X_OK):
            return 503, {"status": "unavailable", "reason": "component directory unreadable"}
        return 200, {"status": "ready"}

    def info(self, served: Served) -> tuple[int, dict[str, Any]]:
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
            "components": len(served.runtime.components()),
            "tools": len(served.server.tools()),
        }

    def close_streams(self) -> None:
        """The server is stopping: streams that never end by themselves
        end now (listen streams gracefully); requests in flight go on."""
        for served in self.tenants.all():
            served.close_streams()

    def close(self, reason: str | None = None) -> None:
        """The server stops: streams end, calls in flight are stopped."""
        for served in self.tenants.all():
            served.close(reason)

    async def expire_idle(self) -> None:
        """Ends idle sessions, every tenant's (for as long as the server runs)."""
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL_S)
            for served in self.tenants.all():
                served.streamable.sessions.expire_idle()


def _owner(scope: Scope) -> str | None:
    """The OAuth identity a request speaks for (None without OAuth)."""
    identity = scope.get(IDENTITY)
    return identity.owner if identity is not None else None


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
    app = App(runtime, options, server_options, worker)
    base = app.tenants.base
    if worker is None:
        sock = bind_socket(options.host, options.port)
        log.info("%s", announcement(options, *sock.getsockname()[:2]))
    else:
        from wassette.server.http.sessions import share_owner_key

        share_owner_key(worker.secret)
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
        if worker is not None:
            from wassette.server.http.worker import WorkerLink

            app.link = WorkerLink(worker)
            app.link.attach(app.tenants, asyncio.get_running_loop())
        base.server.changes.watch(since)
        if reload is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, app.reload, reload)
        expiry = asyncio.ensure_future(app.expire_idle())
        try:
            await http.serve(sockets=[sock])
        finally:
            expiry.cancel()
            for served in app.tenants.all():
                served.stop()
            app.close()
            for served in app.tenants.all():
                # A worker of a set ends with os._exit: no atexit writes its audit queue.
                served.runtime.close()
            for telemetry in (app.tracing, app.otlp):
                if telemetry is not None:
                    telemetry.shutdown()
            if app.link is not None:
                app.link.close()

    asyncio.run(main())
