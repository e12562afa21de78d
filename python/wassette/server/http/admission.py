"""What a request that passed the Guard may still be refused, once its body
is read: with OAuth, a message needing a right its token's scopes lack
(403 `insufficient_scope`, naming the scope); with a rate limit, a tool call
beyond the caller's calls per minute (429, with Retry-After)."""

from __future__ import annotations

import json
import math
from typing import Any

from wassette.server.core.jsonrpc import SERVER_BUSY
from wassette.server.http.guard import IDENTITY, Guard
from wassette.server.http.limits import RateLimiter
from wassette.server.http.oauth import TokenVerifier, required_right
from wassette.server.http.wire import Scope, Send, respond_error


class Admission:
    def __init__(self, guard: Guard, verifier: TokenVerifier | None, limiter: RateLimiter | None) -> None:
        self.guard = guard
        self.verifier = verifier
        self.limiter = limiter

    async def refused(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Answers and returns True when the message(s) may not go on."""
        if (self.verifier is None and self.limiter is None) or not body:
            return False
        try:
            message = json.loads(body)
        except ValueError:
            return False  # answered as the parse error it is, further on
        items: list[Any] = message if isinstance(message, list) else [message]
        rights = [r for r in map(required_right, items) if r is not None]
        for right in rights:
            if await self.missing_right(scope, send, right):
                return True
        if self.limiter is not None and rights:  # every right is one of a tools/call
            wait = self.limiter.take(caller(scope))
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                text = f"rate limit: at most {int(self.limiter.capacity)} tool calls a minute; retry in {seconds} s"
                await respond_error(send, 429, SERVER_BUSY, text, [(b"retry-after", str(seconds).encode())])
                return True
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
