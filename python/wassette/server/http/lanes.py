"""Each tenant's tool calls in this process, at most its `concurrent_calls`
at once: a call beyond waits (costing no CPU) until one ends, for up to
WAIT_S; when WAITING_PER_SLOT calls per slot wait already, or the wait runs
out, it is refused (`429`, a clear error), REFUSAL_DELAY_S after it came.

Refusing at once is not enough: measured (benchmarks/tenant_flood.py), one
tenant's 16 connections calling without pause, every call beyond its quota
refused at once, made another tenant's p50 12.8x worse, the server's time
going to answering refusals as fast as they came. A call that waits, or a
refusal that takes its time, holds its connection: a flooder gets no
faster than its quota lets it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

WAIT_S = 30.0
WAITING_PER_SLOT = 4
MAX_WAITING = 64
REFUSAL_DELAY_S = 1.0


class _Lane:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.slots = asyncio.Semaphore(limit)
        self.waiting = 0


class Lanes:
    """The lanes of the tenants with a `concurrent_calls` quota (one event loop's)."""

    def __init__(self) -> None:
        self._lanes: dict[str, _Lane] = {}

    @contextlib.asynccontextmanager
    async def entered(self, tenant: str, limit: int) -> AsyncIterator[str | None]:
        """Held while one of `tenant`'s calls runs; gives None once it may
        run, else why it may not (then nothing is held)."""
        lane = self._lanes.get(tenant)
        if lane is None or lane.limit != limit:  # new, or its quota changed
            lane = self._lanes[tenant] = _Lane(limit)
        why = f"tenant {tenant} runs {limit} tool calls at once (quota concurrent_calls = {limit})"
        if lane.slots.locked() and lane.waiting >= min(MAX_WAITING, WAITING_PER_SLOT * limit):
            await asyncio.sleep(REFUSAL_DELAY_S)
            yield f"{why}, and {lane.waiting} more wait; retry later"
            return
        lane.waiting += 1
        try:
            await asyncio.wait_for(lane.slots.acquire(), WAIT_S)
        except TimeoutError:
            lane.waiting -= 1
            yield f"{why}, and this one waited {WAIT_S:g} s for its turn; retry later"
            return
        lane.waiting -= 1
        try:
            yield None
        finally:
            lane.slots.release()
