"""What a request that passed the Guard may still be refused, once its body
is read: with OAuth, a message needing a right its token's scopes lack
(403 `insufficient_scope`, naming the scope); with a rate limit, a tool call
beyond the caller's calls per minute, or its tenant's (429, with
Retry-After)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

from wassette.runtime.tenants import Tenancy
from wassette.server.core import jsonrpc
from wassette.server.core.jsonrpc import SERVER_BUSY
from wassette.server.http.guard import IDENTITY, Guard
from wassette.server.http.lanes import Lanes
from wassette.server.http.limits import RateLimiter
from wassette.server.http.oauth import TokenVerifier, required_right
from wassette.server.http.wire import Scope, Send, respond_error

# In a request's scope: how many tool calls its message makes; its body's
# JSON value, once decoded here.
_CALLS = "wassette.calls"
DECODED = "wassette.decoded"


class Admission:
    def __init__(
        self,
        guard: Guard,
        verifier: TokenVerifier | None,
        limiter: RateLimiter | None,
        tenancy: Tenancy | None = None,
        tenant_limiter: RateLimiter | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self.guard = guard
        self.verifier = verifier
        self.limiter = limiter
        self.tenancy = tenancy
        self.tenant_limiter = tenant_limiter
        # Kept by the App across reloads (calls in flight hold their places).
        self.lanes = lanes or Lanes()

    def lane_of(self, scope: Scope) -> tuple[str, int] | None:
        """For a tenant's tool call under a `concurrent_calls` quota: the
        tenant and its quota, to take a place in its lane (`entered`)
        while it runs. None for anything else (no context manager made:
        every request asks)."""
        if self.tenancy is None or not scope.get(_CALLS):
            return None
        identity = scope.get(IDENTITY)
        tenant = identity.tenant if identity is not None else None
        limit = self.tenancy.quota_of(tenant).concurrent_calls if tenant else 0
        return (tenant, limit) if tenant and limit else None

    @contextlib.asynccontextmanager
    async def entered(self, lane: tuple[str, int], send: Send) -> AsyncIterator[bool]:
        """Held while the call runs, in its tenant's lane (lanes.py). False:
        it was refused (answered)."""
        async with self.lanes.entered(*lane) as refusal:
            if refusal is not None:
                await respond_error(
                    send, 429, SERVER_BUSY, f"over quota: {refusal}", [(b"retry-after", b"1")]
                )
            yield refusal is None

    async def refused(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Answers and returns True when the message(s) may not go on."""
        if (self.verifier is None and self.limiter is None) or not body:
            return False
        try:
            message = jsonrpc.decode(body)
        except ValueError:
            return False  # answered as the parse error it is, further on
        scope[DECODED] = message  # not decoded again (streamable.py)
        items: list[Any] = message if isinstance(message, list) else [message]
        rights = [r for r in map(required_right, items) if r is not None]
        for right in rights:
            if await self.missing_right(scope, send, right):
                return True
        if not rights:  # every right is one of a tools/call
            return False
        scope[_CALLS] = len(rights)
        if self.limiter is not None:
            wait = self.limiter.take(caller(scope))
            if wait > 0:
                return await _busy(send, wait, f"at most {int(self.limiter.capacity)} tool calls a minute")
        identity = scope.get(IDENTITY)
        tenant = identity.tenant if identity is not None else None
        if tenant is not None and self.tenancy is not None and self.tenant_limiter is not None:
            per_minute = self.tenancy.quota_of(tenant).calls_per_minute
            if per_minute and (wait := self.tenant_limiter.take(f"tenant:{tenant}", per_minute)) > 0:
                return await _busy(
                    send,
                    wait,
                    f"tenant {tenant}'s quota is {per_minute} tool calls a minute (calls_per_minute)",
                )
        return False

    async def missing_right(self, scope: Scope, send: Send, right: str) -> bool:
        """With OAuth: answers 403 `insufficient_scope` when the token lacks
        the scope of `right` (True: answered)."""
        if self.verifier is None:
            return False
        identity = scope.get(IDENTITY)
        wanted = self.verifier.scope_of(right)
        if identity is not None and wanted in identity.scopes:
            return False
        why = f"this needs the scope {wanted} ({right})"
        return await self.guard.challenge(send, 403, why, "insufficient_scope", wanted)


def caller(scope: Scope) -> str:
    """Whose calls these are: the OAuth subject, else the client's address."""
    identity = scope.get(IDENTITY)
    if identity is not None:
        return f"sub:{identity.subject}"
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:?"


async def _busy(send: Send, wait: float, limit: str) -> bool:
    seconds = max(1, math.ceil(wait))
    text = f"rate limit: {limit}; retry in {seconds} s"
    await respond_error(send, 429, SERVER_BUSY, text, [(b"retry-after", str(seconds).encode())])
    return True
