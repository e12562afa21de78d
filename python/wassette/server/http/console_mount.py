"""Where `wassette serve --console` mounts the web console (wassette/console)
at /console: behind the same Guard as every route, and with OAuth the
`audit` right to look and the `grants` right to change anything.

A browser cannot send an `Authorization` header on its own: when the server
needs a token, /console/login takes it once (a form) and keeps it in an
`HttpOnly`, `SameSite=Strict` cookie scoped to /console; each request then
presents it to the Guard as its bearer token, so an expired or revoked
token stops working in the console exactly as it does for MCP."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import quote, unquote

from wassette.console import web
from wassette.console.app import Console, Viewer
from wassette.console.pages import PREFIX
from wassette.runtime.errors import WassetteError
from wassette.runtime.grant_queue import GrantQueue
from wassette.runtime.runtime import Runtime
from wassette.server.http.admission import Admission
from wassette.server.http.guard import IDENTITY, LOOPBACK_HOSTS, Guard
from wassette.server.http.options import HttpOptions
from wassette.server.http.tenants import Served
from wassette.server.http.wire import Message, Receive, Scope, Send

LOGIN = PREFIX + "/login"
# How long the browser keeps an OAuth token's cookie (the Guard checks the
# token's own expiry on every request); a static token's, the browser session.
_OAUTH_COOKIE_S = 3600


class ConsoleMount:
    def __init__(self, options: HttpOptions, runtime: Runtime) -> None:
        if options.host not in LOOPBACK_HOSTS and options.auth_token is None and options.oauth is None:
            raise WassetteError(
                f"--console on {options.host} needs --auth-token or OAuth: "
                "whoever reaches the console could grant permissions"
            )
        self.console = Console()
        self._held = contextlib.ExitStack()
        self.hold(runtime)

    def hold(self, runtime: Runtime) -> None:
        """While this server runs, agents' grant requests of `runtime` wait
        for the console (grant_queue.py)."""
        self._held.enter_context(GrantQueue(runtime.settings.data_dir, runtime.audit).console())

    def close(self) -> None:
        self._held.close()

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        guard: Guard,
        admission: Admission,
        served: Callable[[Scope, Send], Awaitable[Served | None]],
    ) -> None:
        from_cookie = False
        if guard.token is not None or guard.verifier is not None:
            if await guard.refuse_host(scope, send):
                return
            if scope["path"] == LOGIN and scope["method"] == "POST":
                await self._login(scope, receive, send, guard)
                return
            saved = web.cookies(scope).get(web.AUTH_COOKIE)
            if b"authorization" not in web.headers_of(scope):
                if not saved:
                    await self._ask_token(scope, send, failed=False)
                    return
                _present(scope, unquote(saved))
                from_cookie = True
        if from_cookie:
            if await _refused(guard, scope):
                await self._ask_token(scope, send, failed=True)
                return
        elif await guard.refuse(scope, send):
            return
        if await admission.missing_right(scope, send, "audit"):
            return
        part = await served(scope, send)
        if part is None:
            return
        identity = scope.get(IDENTITY)
        verifier = admission.verifier
        if identity is not None:
            who = f"console ({identity.owner})"
            may_grant = verifier is None or verifier.scope_of("grants") in identity.scopes
        else:
            who, may_grant = (
                ("console (bearer token)" if guard.token is not None else "console (local)"),
                True,
            )
        await self.console(scope, receive, send, Viewer(part.runtime, who, may_grant))

    async def _ask_token(self, scope: Scope, send: Send, failed: bool) -> None:
        body, cookies = self.console.login(scope, failed)
        forget = [web.cookie(web.AUTH_COOKIE, "", max_age=0)] if failed else []
        challenge = (b"www-authenticate", b'Bearer realm="wassette"')
        await web.send_response(send, 401, body, extra=[challenge, *cookies, *forget])

    async def _login(self, scope: Scope, receive: Receive, send: Send, guard: Guard) -> None:
        form = await web.read_form(receive)
        why = web.forged(scope, form) if form is not None else "form too large"
        if form is None or why is not None:
            await web.send_response(send, 403, f"refused: {why}".encode(), b"text/plain")
            return
        token = form.get("token", "").strip()
        check = {**scope, "path": PREFIX + "/", "method": "GET", "headers": list(scope["headers"])}
        check.pop("wassette.headers", None)
        _present(check, token)
        if not token or await _refused(guard, check):
            await self._ask_token(scope, send, failed=True)
            return
        max_age = _OAUTH_COOKIE_S if guard.verifier is not None else None
        keep = web.cookie(web.AUTH_COOKIE, quote(token, safe=""), max_age=max_age)
        await web.redirect(send, PREFIX + "/", [keep])


def _present(scope: Scope, token: str) -> None:
    """The saved token as the request's bearer token (for the Guard)."""
    scope["headers"] = [
        *scope["headers"],
        (b"authorization", b"Bearer " + token.encode("latin-1", "replace")),
    ]
    scope.pop("wassette.headers", None)  # wire.header_map's memo of the old ones


async def _refused(guard: Guard, scope: Scope) -> bool:
    """Whether the Guard refuses the request, its answer not sent (the
    console answers with the sign-in page instead)."""

    async def swallow(message: Message) -> None:
        pass

    return await guard.refuse(scope, swallow)
