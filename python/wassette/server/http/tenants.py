"""The tenants a server serves (config [tenants]): for each, a part of the
server of its own — its runtime (components, policies, secrets, audit log),
its MCP server (tools, change notifications) and its transports' sessions —
made when its first request comes. Nothing is shared between two parts but
the engine (whose artifact cache is keyed by the wasm's digest), so what
one tenant does can reach another's callers by no path the server has.

The untenanted part (`name` None) is what callers without a tenant reach:
the static token, or no auth at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from wassette.runtime.errors import WassetteError
from wassette.runtime.runtime import Runtime
from wassette.server.core.server import McpServer, ServerOptions
from wassette.server.http.legacy_sse import LegacySse
from wassette.server.http.streamable import StreamableHttp

# Parts made at most, per process (each holds a runtime and its threads):
# tenant names come from tokens an issuer signed, but an issuer may err.
MAX_TENANTS = 1000


class Served:
    """One tenant's part of the server."""

    def __init__(
        self,
        runtime: Runtime,
        server_options: ServerOptions,
        *,
        json_response: bool,
        legacy_sessions: bool,
        poll_after_ms: int = 0,
    ) -> None:
        self.name = runtime.settings.tenant
        self.runtime = runtime
        self.server = McpServer(runtime, server_options)
        self.streamable = StreamableHttp(
            self.server,
            json_response=json_response,
            legacy_sessions=legacy_sessions,
            poll_after_ms=poll_after_ms,
        )
        self.sse = LegacySse(self.server)

    def close_streams(self) -> None:
        self.server.changes.close_listeners()
        self.streamable.sessions.close_streams()
        self.sse.close_all()

    def close(self, reason: str | None) -> None:
        self.close_streams()
        self.streamable.sessions.close_all(reason)

    def stop(self) -> None:
        self.server.changes.stop()


class Tenants:
    """The parts of this server: the untenanted one, and each tenant's once used."""

    def __init__(self, base: Served, make: Callable[[str], Served] | None = None) -> None:
        self.base = base
        self._make = make
        self._parts: dict[str, Served] = {}
        self._lock = threading.Lock()

    def known(self, name: str | None) -> Served | None:
        """The part of `name` if it was made (no I/O: for the event loop)."""
        return self.base if name is None else self._parts.get(name)

    def get(self, name: str | None) -> Served:
        """The part of `name`, made now if it is its first request (reads its
        state: call it off the event loop)."""
        served = self.known(name)
        if served is not None:
            return served
        assert name is not None
        if self._make is None:
            raise WassetteError("this server has no tenants")
        with self._lock:
            served = self._parts.get(name)
            if served is None:
                if len(self._parts) >= MAX_TENANTS:
                    raise WassetteError(f"this server serves at most {MAX_TENANTS} tenants per process")
                served = self._parts[name] = self._make(name)
        return served

    def all(self) -> list[Served]:
        return [self.base, *list(self._parts.values())]
