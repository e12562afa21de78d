"""The SDK's HTTP application, loaded once the server listens.

`wassette serve` listens, and the fast path (http_fast.py) answers, before
the SDK is imported (~0.8 s). `SdkApp.run` then imports it in a thread,
builds the SDK's application, hands it the sessions the fast path opened
meanwhile, and from then on serves what the fast path does not. Requests
that arrive before that wait for it.

The import starts when a request needs the SDK, when no request came for
QUIET_S, or LATEST_S after start, whichever is first: an import competes
for the GIL with the answering thread, and the first answers to a client
that just started the server (initialize, tools/list) come sooner without it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wassette.server import wire
from wassette.server.loading import freeze_loaded, prompt_switches

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from wassette.server.app import WassetteServer
    from wassette.server.http_fast import HttpFastPath, OpenedSession

log = logging.getLogger("wassette.http")

QUIET_S = 0.05
LATEST_S = 1.0


def _import_sdk() -> None:
    """Imports the SDK's modules (for their cost, here off the event loop)."""
    for module in ("mcp.server.streamable_http_manager", "wassette.server.app"):
        importlib.import_module(module)


class SdkApp:
    """ASGI: the SDK's application once it runs; until then requests wait."""

    def __init__(
        self,
        make_server: Callable[[], WassetteServer],
        build: Callable[[WassetteServer], ASGIApp],
        fast: HttpFastPath | None,
    ) -> None:
        self._make_server = make_server
        self._build = build
        self._fast = fast
        self._app: ASGIApp | None = None
        self._ready = anyio.Event()
        self._needed = anyio.Event()
        self.server: WassetteServer | None = None

    def want(self) -> None:
        """Loads the SDK now, without waiting for a quiet moment."""
        self._needed.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self.want()
            await self._ready.wait()
            assert self._app is not None
        await self._app(scope, receive, send)

    async def run(self, since: frozenset[tuple[str, int]], requests: Callable[[], int]) -> None:
        """Loads and runs the SDK until cancelled; also rescans the component
        directory for changes made since `since` (see WassetteServer.watch_components).
        `requests`: how many requests the server has seen so far."""
        with anyio.move_on_after(LATEST_S):
            seen = -1
            while requests() != seen:
                seen = requests()
                with anyio.move_on_after(QUIET_S):
                    await self._needed.wait()
                if self._needed.is_set():
                    break
        with prompt_switches():
            await anyio.to_thread.run_sync(_import_sdk)
        server = self._make_server()
        app: Any = self._build(server)
        freeze_loaded()
        async with app.router.lifespan_context(app):
            if self._fast is not None:
                self._fast.attach(server)
                manager = server.server.session_manager
                for sid, opened in self._fast.hand_over().items():
                    try:
                        await adopt(manager, sid, opened)
                    except Exception:  # that client gets 404 and opens a new session
                        log.exception("session %s could not be handed to the SDK", sid)
            self.server, self._app = server, app
            self._ready.set()
            await server.watch_components(since=since)


async def adopt(manager: StreamableHTTPSessionManager, sid: str, opened: OpenedSession) -> None:
    """Makes a session the fast path opened one of the SDK's, under the same
    id: its handshake is replayed to the SDK (answers dropped). Uses the
    session manager's own steps for opening a session (private in the
    pinned SDK; tests/test_http_opening.py covers the hand-over)."""
    async with manager._session_creation_lock:
        transport = manager._admit_session(None)
        if transport is None:
            log.warning("session %s dropped: the SDK's session limit is reached", sid)
            return
        assert transport.mcp_session_id is not None
        del manager._server_instances[transport.mcp_session_id]
        transport.mcp_session_id = sid
        manager._server_instances[sid] = transport
    initialize, *rest = opened.replay()
    await manager._serve_opening_request(transport, *_replayed(initialize, None, None))
    for message in rest:
        await transport.handle_request(*_replayed(message, sid, opened.version))


def _replayed(rpc: dict[str, Any], sid: str | None, version: str | None) -> tuple[Scope, Receive, Send]:
    """A POST of `rpc` as a client would send it, whose answer is dropped."""
    body = wire.dumps(rpc)
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-length", str(len(body)).encode()),
    ]
    if sid is not None and version is not None:
        headers += [(b"mcp-session-id", sid.encode()), (b"mcp-protocol-version", version.encode())]
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    answered = anyio.Event()
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # the client stays until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            log.warning("the SDK refused the replayed %s (HTTP %d)", rpc["method"], message["status"])
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    return scope, receive, send
