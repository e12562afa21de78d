"""Quotas of a runtime (a tenant's, config [tenants]; tenants.py): the
components and compiled bytes it may install, checked at each install, and
the calls it may run at once, checked at each call. Each refusal is an
`over_quota` audit record and a clear error, never a wait (the HTTP server's
per-tenant queue in front of it is server/http/lanes.py)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from wassette.runtime.errors import WassetteError

if TYPE_CHECKING:
    from wassette.runtime.runtime import Runtime


class QuotaExceeded(WassetteError):
    """A tenant asked for more than its quota allows."""


def _who(tenant: str | None) -> str:
    return f"tenant {tenant}" if tenant else "this server"


def check_install(runtime: Runtime, cid: str, sha256: str) -> None:
    """Before installing `cid` (this wasm) under the store's lock: the
    components and compiled-cache bytes stay within the quota. Raises
    QuotaExceeded (audited)."""
    quota = runtime.settings.quota
    if not quota.components and not quota.compiled_cache_bytes:
        return
    # The directory, not the runtime's view: another process (or replica,
    # through the shared state) may have installed since.
    ids = set(runtime.store.ids())
    others = ids - {cid}
    if quota.components and cid not in ids and len(others) >= quota.components:
        _over(
            runtime, "components", cid, f"{len(others)} components installed, its quota is {quota.components}"
        )
    if quota.compiled_cache_bytes:
        metas = (runtime.store.metadata(i) or runtime.known(i) for i in others)
        digests = {m.sha256 for m in metas if m is not None} | {sha256}
        used = sum(runtime.compiler.artifact_bytes(d) for d in digests)
        if used > quota.compiled_cache_bytes:
            detail = (
                f"its compiled components would take {used} bytes, its quota is {quota.compiled_cache_bytes}"
            )
            _over(runtime, "compiled_cache_bytes", cid, detail)


def _over(runtime: Runtime, quota: str, cid: str, detail: str) -> None:
    runtime.audit.record("over_quota", component=cid, quota=quota)
    who = _who(runtime.settings.tenant)
    raise QuotaExceeded(f"over quota ({quota}): {who} has {detail}; unload a component first")


class CallSlots:
    """A tenant's calls running at once, at most `limit` in this process
    (each worker of a set counts its own: docs/deployment.md "Tenants")."""

    def __init__(self, limit: int, tenant: str | None) -> None:
        self.limit = limit
        self.tenant = tenant
        self._running = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self._running >= self.limit:
                return False
            self._running += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._running -= 1

    def refusal(self) -> str:
        return (
            f"{_who(self.tenant)} already runs {self.limit} tool calls at once "
            f"(quota concurrent_calls = {self.limit}); retry when one has ended"
        )
