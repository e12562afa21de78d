"""`wassette console`: the console alone, for a server that has no HTTP of
its own (`wassette run` over stdio), on a loopback port, from the same
store, policies and audit log.

Loopback is not private on a shared machine, and the console grants
permissions: the printed URL carries a key made for this run, which the
first visit trades for an `HttpOnly`, `SameSite=Strict` cookie; a request
without it is refused. Requests must name the loopback address they came
to (`Host`), so a rebound DNS name cannot reach it."""

from __future__ import annotations

import hmac
import logging
import secrets
import socket
from collections.abc import Callable

from wassette.console import web
from wassette.console.app import Console, Viewer
from wassette.console.pages import PREFIX
from wassette.console.web import Receive, Scope, Send
from wassette.runtime.errors import ConfigError
from wassette.runtime.grant_queue import GrantQueue
from wassette.runtime.runtime import Runtime

log = logging.getLogger("wassette.console")
WHO = "console (local)"


class Standalone:
    def __init__(self, runtime: Runtime, port: int, key: str | None = None) -> None:
        self.console = Console()
        self.viewer = Viewer(runtime, WHO, True)
        self.key = key or secrets.token_urlsafe(24)
        self.hosts = {f"{name}:{port}".encode() for name in ("127.0.0.1", "localhost")}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if web.headers_of(scope).get(b"host") not in self.hosts:
            await web.send_response(send, 421, b"this console answers on loopback only", b"text/plain")
            return
        path = scope["path"]
        if path == "/":
            await web.redirect(send, PREFIX + "/")
            return
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await web.send_response(send, 404, b"not found", b"text/plain")
            return
        given = web.query(scope).get("key")
        if given is not None and hmac.compare_digest(given.encode(), self.key.encode()):
            await web.redirect(send, PREFIX + "/", [web.cookie(web.AUTH_COOKIE, self.key)])
            return
        saved = web.cookies(scope).get(web.AUTH_COOKIE, "")
        if not hmac.compare_digest(saved.encode(), self.key.encode()):
            text = b"open the URL `wassette console` printed (it carries this run's key)"
            await web.send_response(send, 401, text, b"text/plain")
            return
        await self.console(scope, receive, send, self.viewer)


def serve_console(runtime: Runtime, port: int, announce: Callable[[str], None]) -> None:
    """Serves until interrupted; `announce` is given the URL to open."""
    import asyncio

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from None
    sock.listen(64)
    bound = sock.getsockname()[1]
    app = Standalone(runtime, bound)
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, proxy_headers=False)
    # Held while it serves: agents' grant requests wait for this console.
    with GrantQueue(runtime.settings.data_dir, runtime.audit).console():
        announce(f"http://127.0.0.1:{bound}{PREFIX}/?key={app.key}")
        try:
            asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
        finally:
            sock.close()
            runtime.close()
