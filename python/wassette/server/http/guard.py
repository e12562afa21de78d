"""The checks every HTTP request passes before it reaches MCP: Host/Origin
allowlist (against DNS rebinding), optional bearer token (a static one, or
OAuth access tokens: oauth.py), body size limit.

One ASGI middleware in front of every route (MCP, SSE, /health, /info), so
no route can be reached around it.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from wassette.runtime.config import split_host
from wassette.runtime.errors import WassetteError
from wassette.server.core.jsonrpc import INVALID_REQUEST, UNAUTHORIZED
from wassette.server.http.wire import Message, Receive, Scope, Send, header_map, respond_error

if TYPE_CHECKING:
    from wassette.runtime.tenants import Tenancy
    from wassette.server.http.oauth import Identity, TokenVerifier

METADATA_PATH = "/.well-known/oauth-protected-resource"

log = logging.getLogger("wassette.http")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Probes (liveness/readiness) answer without a token: they reveal nothing.
OPEN_PATHS = frozenset({"/health", "/ready"})
_ALLOWED_MEMO = 256
# Tokens found valid, kept (by value) until they expire or for this long at
# most: a client's every request carries the same one, and checking its
# signature each time would cost more than the call it guards.
_TOKEN_MEMO_S = 60.0
_TOKEN_MEMO = 1024
IDENTITY = "wassette.identity"


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


class Guard:
    """The checks every request passes first: its Host (and Origin, when a
    browser sends one) is allowed, it carries the bearer token (when one is
    configured), and its body fits the limit."""

    def __init__(
        self,
        *,
        hosts: HostAllowlist,
        token: str | None,
        max_body_bytes: int,
        verifier: TokenVerifier | None = None,
        open_paths: frozenset[str] = frozenset(),
        tenancy: Tenancy | None = None,
    ) -> None:
        self.hosts = hosts
        self.open_paths = OPEN_PATHS | open_paths
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.verifier = verifier
        self.tenancy = tenancy
        # (Host, Origin) pairs found allowed.
        self._allowed: set[tuple[bytes, bytes | None]] = set()
        self._valid: dict[bytes, tuple[float, Identity]] = {}
        self.metadata_url = verifier.metadata_url if verifier is not None else ""

    async def refuse(self, scope: Scope, send: Send) -> bool:
        """Answers and returns True when the request may not go on."""
        raw = header_map(scope)
        seen = (raw.get(b"host", b""), raw.get(b"origin"))
        if seen not in self._allowed:  # a client sends the same ones every time
            if await self._host_refused(seen[0].decode("latin-1"), seen[1], send):
                return True
            if len(self._allowed) < _ALLOWED_MEMO:
                self._allowed.add(seen)
        if self.verifier is not None and scope["path"] not in self.open_paths:
            return await self._oauth(scope, raw.get(b"authorization", b""), send)
        if self.token is not None and scope["path"] not in self.open_paths:
            scheme, _, given = raw.get(b"authorization", b"").partition(b" ")
            # compare_digest: the time taken does not tell how much of a guess was right.
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
                challenge = [(b"www-authenticate", b'Bearer realm="wassette"')]
                await respond_error(send, 401, UNAUTHORIZED, "missing or wrong bearer token", challenge)
                return True
        return False

    async def refuse_host(self, scope: Scope, send: Send) -> bool:
        """The Host and Origin checks alone (the console's sign-in page:
        its token comes in the form, not a header)."""
        raw = header_map(scope)
        return await self._host_refused(raw.get(b"host", b"").decode("latin-1"), raw.get(b"origin"), send)

    async def _oauth(self, scope: Scope, authorization: bytes, send: Send) -> bool:
        """An OAuth access token: valid, for this resource (the identity goes
        on in the scope); else 401 with the challenge that leads a client to
        the metadata. The metadata itself needs no token."""
        assert self.verifier is not None
        if scope["path"].startswith(METADATA_PATH):
            return False
        scheme, _, given = authorization.partition(b" ")
        token = given.strip()
        if scheme.lower() != b"bearer" or not token:
            # The scope a client should ask for first: calling tools (it steps up on a 403).
            tools = self.verifier.scope_of("tools")
            return await self.challenge(send, 401, "an OAuth access token is required", None, tools)
        now = time.monotonic()
        known = self._valid.get(token)
        if known is not None and known[0] > now:
            scope[IDENTITY] = known[1]
            return False
        from wassette.server.http.oauth import InvalidToken

        try:
            identity = await self.verifier.verify(token.decode("ascii"))
        except (InvalidToken, UnicodeDecodeError) as e:
            why = str(e) if isinstance(e, InvalidToken) else "not a JWT"
            return await self.challenge(send, 401, why, "invalid_token")
        if self.tenancy is not None:
            try:
                tenant = self.tenancy.tenant_of(identity.subject, identity.claims)
            except WassetteError as e:
                # A valid token that gives no tenant: nothing here is its caller's.
                await respond_error(send, 403, UNAUTHORIZED, str(e), [])
                return True
            identity = identity._replace(tenant=tenant)
        exp = identity.claims.get("exp")
        ttl = min(_TOKEN_MEMO_S, float(exp) - time.time()) if isinstance(exp, int | float) else 0.0
        if ttl > 0:
            if len(self._valid) >= _TOKEN_MEMO:
                self._valid = {k: v for k, v in self._valid.items() if v[0] > now}
            if len(self._valid) < _TOKEN_MEMO:
                self._valid[token] = (now + ttl, identity)
        scope[IDENTITY] = identity
        return False

    async def challenge(self, send: Send, status: int, why: str, error: str | None, scope: str = "") -> bool:
        """401 (no or bad token) or 403 (`insufficient_scope`), with the
        `WWW-Authenticate` challenge RFC 6750 and RFC 9728 describe."""
        params = [f'resource_metadata="{self.metadata_url}"']
        if error:
            clean = why.replace('"', "'").replace("\\", "/")
            params.insert(0, f'error="{error}", error_description="{clean}"')
        if scope:
            params.append(f'scope="{scope}"')
        header = ("Bearer " + ", ".join(params)).encode("latin-1", "replace")
        await respond_error(send, status, UNAUTHORIZED, why, [(b"www-authenticate", header)])
        return True

    async def _host_refused(self, host: str, raw_origin: bytes | None, send: Send) -> bool:
        if not self.hosts.allows(host):
            log.warning("refused a request for Host %r (not in the allowed hosts)", host[:100])
            await respond_error(
                send, 421, INVALID_REQUEST, f"Host {host!r} is not allowed (see --allowed-host)", []
            )
            return True
        origin = raw_origin.decode("latin-1") if raw_origin is not None else None
        if origin is not None and not self.hosts.allows_origin(origin):
            log.warning("refused a request from Origin %r", origin[:100])
            await respond_error(send, 403, INVALID_REQUEST, f"Origin {origin!r} is not allowed", [])
            return True
        return False

    async def read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The request's body; None (answered 413) once it exceeds the limit,
        or when the client left while sending it."""
        limit = self.max_body_bytes
        length = header_map(scope).get(b"content-length")
        too_big = f"request body larger than the {limit}-byte limit"
        if length is not None and length.isdigit() and int(length) > limit:
            await respond_error(send, 413, INVALID_REQUEST, too_big, [])
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await respond_error(send, 413, INVALID_REQUEST, too_big, [])
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
