"""The checks every HTTP request passes before it reaches MCP: Host/Origin
allowlist (against DNS rebinding), optional bearer token, body size limit.

One ASGI middleware in front of every route (MCP, SSE, /health, /info), so
no route can be reached around it.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from wassette.server.http_fast import HttpFastPath

log = logging.getLogger("wassette.http")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Probes (liveness/readiness) answer without a token: they reveal nothing.
OPEN_PATHS = frozenset({"/health", "/ready"})
_ALLOWED_MEMO = 256
# Where a request's headers, by lower-case name, are kept once read.
HEADERS = "wassette.headers"
# Where the guard puts an anyio.Event set when the request's client has gone.
CLIENT_GONE = "wassette.client_gone"


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (the last of repeated ones),
    built once per request."""
    headers: dict[bytes, bytes] | None = scope.get(HEADERS)
    if headers is None:
        headers = scope[HEADERS] = {k.lower(): v for k, v in scope["headers"]}
    return headers


def split_host(value: str) -> tuple[str, int | None]:
    """`host[:port]` (IPv6 in brackets) -> (lower-case host without brackets, port)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad IPv6 address in {value!r}")
        port = rest[1:]
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if port and not port.isdigit():
        raise ValueError(f"bad port in {value!r}")
    return host, int(port) if port else None


@dataclass(frozen=True)
class HostRule:
    """An allowed Host: a name or address, on any port unless one is given."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostRule:
        host, port = split_host(text)
        if not host:
            raise ValueError(f"--allowed-host {text!r}: empty host")
        return cls(host, port)

    def matches(self, host: str, port: int | None) -> bool:
        return host == self.host and (self.port is None or port == self.port)


class HostAllowlist:
    """The hosts the operator allowed, or loopback names when none were given
    (as in Wassette, a list replaces the default); `*` allows any."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        given = [e.strip() for e in entries if e.strip()]
        self.any = "*" in given
        if given:
            self.rules = [HostRule.parse(e) for e in given if e != "*"]
        else:
            self.rules = [HostRule(h) for h in LOOPBACK_HOSTS]

    def allows(self, authority: str) -> bool:
        if self.any:
            return True
        try:
            host, port = split_host(authority)
        except ValueError:
            return False
        return any(rule.matches(host, port) for rule in self.rules)

    def allows_origin(self, origin: str) -> bool:
        """Browsers name the page's origin; only pages served from an allowed
        host may talk to us (a rebinding page has the attacker's name)."""
        if self.any:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and self.allows(parts.netloc)


def _reply(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    raw = [(b"content-type", b"application/json")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return status, json.dumps(body).encode(), raw


def jsonrpc_error(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}


class Guard:
    """ASGI middleware: refuses a request unless its Host (and Origin, when a
    browser sends one) is allowed, it carries the bearer token (when one is
    configured), and its body fits the limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: HostAllowlist,
        token: str | None,
        max_body_bytes: int,
        watch_disconnect: bool = False,
        fast: HttpFastPath | None = None,
    ) -> None:
        self.app = app
        self.fast = fast
        self.watch_disconnect = watch_disconnect
        self.hosts = hosts
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        # (Host, Origin) pairs found allowed.
        self._allowed: set[tuple[bytes, bytes | None]] = set()
        # Requests seen (when the server is quiet, it loads the MCP SDK).
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send(send, *refusal)
            return
        body = await self._read_body(scope, receive)
        if body is None:
            limit = self.max_body_bytes
            await _send(
                send, *_reply(413, jsonrpc_error(-32600, f"request body larger than the {limit}-byte limit"))
            )
            return
        if self.fast is not None and body and body[-1]["type"] == "http.request":
            raw = b"".join(m.get("body", b"") for m in body)
            if await self.fast.handle(scope, raw, receive, send):
                return
        # A client that leaves before its answer is complete sets the
        # request's CLIENT_GONE event, so that a tool call can stop its guest.
        # (A request answered early, like an SSE-transport POST with 202, has
        # not lost its client when the connection ends.) Streamed answers
        # read the connection anyway, to notice the end; plain-JSON answers
        # do not, so then a watcher task reads it.
        disconnected, gone = anyio.Event(), anyio.Event()
        scope[CLIENT_GONE] = gone
        answered = False

        def on_disconnect() -> None:
            disconnected.set()
            if not answered:
                gone.set()

        async def passthrough() -> Message:
            if body:
                return body.pop(0)
            message = await receive()
            if message["type"] == "http.disconnect":
                on_disconnect()
            return message

        async def watched() -> Message:
            if body:
                return body.pop(0)
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            on_disconnect()

        async def watched_send(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        if body and body[-1]["type"] == "http.disconnect":  # left while sending its body
            on_disconnect()
        if not self.watch_disconnect or disconnected.is_set():
            await self.app(scope, passthrough, watched_send)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await self.app(scope, watched, watched_send)
            tg.cancel_scope.cancel()

    def _refusal(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        raw = header_map(scope)
        seen = (raw.get(b"host", b""), raw.get(b"origin"))
        if seen not in self._allowed:  # a client sends the same ones every time
            refusal = self._host_refusal(seen[0].decode("latin-1"), seen[1])
            if refusal is not None:
                return refusal
            if len(self._allowed) < _ALLOWED_MEMO:
                self._allowed.add(seen)
        if self.token is not None and scope["path"] not in OPEN_PATHS:
            scheme, _, given = raw.get(b"authorization", b"").partition(b" ")
            # compare_digest: the time taken does not tell how much of a guess was right.
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
                return _reply(
                    401,
                    jsonrpc_error(-32001, "missing or wrong bearer token"),
                    {"www-authenticate": 'Bearer realm="wassette"'},
                )
        return None

    def _host_refusal(
        self, host: str, raw_origin: bytes | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        if not self.hosts.allows(host):
            log.warning("refused a request for Host %r (not in the allowed hosts)", host[:100])
            return _reply(421, jsonrpc_error(-32600, f"Host {host!r} is not allowed (see --allowed-host)"))
        origin = raw_origin.decode("latin-1") if raw_origin is not None else None
        if origin is not None and not self.hosts.allows_origin(origin):
            log.warning("refused a request from Origin %r", origin[:100])
            return _reply(403, jsonrpc_error(-32600, f"Origin {origin!r} is not allowed"))
        return None

    async def _read_body(self, scope: Scope, receive: Receive) -> list[Message] | None:
        """The request's body messages (one empty one for a GET), or None once
        they exceed the limit."""
        for name, value in scope["headers"]:
            if name.lower() == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    pass
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return messages


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
