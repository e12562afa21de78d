"""Where component calls run: a first slice on the caller's own thread
(`FirstSlices`: the event loop's over HTTP, the reading thread's over stdio),
the rest of a longer call in a worker thread.

The engine releases the GIL during a call, so long calls run in parallel in
the workers while the caller keeps serving. Unlike a thread pool that wakes
its idle threads in turn, the thread that finished most recently takes the
next call: its caches are still warm. Nothing here waits in an event
loop: a job answers its request itself (session.Exchange), from its thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wassette.runtime.calls import CallResult, ToolCall

log = logging.getLogger("wassette.workers")

_Job = Callable[[], None]


class _Worker(threading.Thread):
    def __init__(self, pool: Workers, job: _Job) -> None:
        super().__init__(name=f"wassette-call-{len(pool._threads)}", daemon=True)
        self.pool = pool
        self.job: _Job | None = job
        # A lock as a one-shot signal: released (by `start`) to wake the
        # worker, taken back by it. threading.Semaphore is Python code over a
        # Condition: it was 7 % of the event loop's time under load.
        self.wake = threading.Lock()
        self.wake.acquire()

    def run(self) -> None:
        while True:
            job = self.job
            if job is not None:
                self.job = None
                try:
                    job()
                except Exception:  # a worker outlives any job
                    log.exception("a job in a worker thread failed")
            job = self.pool._next(self)
            if job is not None:
                self.job = job
                continue
            self.wake.acquire()


class Workers:
    """Up to `limit` threads; calls beyond that wait their turn."""

    def __init__(self, limit: int = 32, max_backlog: int = 4096) -> None:
        self.limit = limit
        self.max_backlog = max_backlog
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # a stack: the last one to finish is on top
        self._threads: list[_Worker] = []
        self._backlog: deque[_Job] = deque()

    def start(self, job: Callable[[], None]) -> bool:
        """Runs `job` in a worker thread (nobody waits for it), or, when
        every worker is busy, as soon as one is free; False when already
        `max_backlog` jobs wait (the caller refuses the work)."""
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
                worker.job = job
                worker.wake.release()
            elif len(self._threads) < self.limit:
                worker = _Worker(self, job)
                self._threads.append(worker)
                worker.start()
            elif len(self._backlog) < self.max_backlog:
                self._backlog.append(job)
            else:
                return False
        return True

    def _next(self, worker: _Worker) -> _Job | None:
        """The next job for a worker that is done, or None after parking it."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            self._idle.append(worker)
            return None


class FirstSlices:
    """A call's first slice runs on the caller's own thread, for up to
    `budget_ms`: most calls end by then, and handing each to a worker thread
    costs two thread wake-ups, more than such a call itself (measured:
    BENCHMARKS.md). A call still running then is finished by a worker while
    the caller serves others; the tool's next call starts on a worker, until
    one of its calls is short again."""

    def __init__(self, workers: Workers, budget_ms: int) -> None:
        self.workers = workers
        self.budget_ms = budget_ms
        self._long: set[str] = set()

    def run(self, name: str, call: ToolCall) -> CallResult | None:
        """The result if the call ended within the slice (or None)."""
        if name in self._long:
            return None
        result = call.run_for(self.budget_ms)
        if result is None:
            self._long.add(name)
        return result

    def complete(self, name: str, call: ToolCall) -> CallResult:
        """Runs the call to its end, on this (worker) thread; a short one
        lets the tool's next call start on the caller's thread again."""
        result = call.finish()
        if result.duration_ms < self.budget_ms:
            self._long.discard(name)
        return result


# Component calls of every transport run in these threads, after a first
# slice on the caller's.
WORKERS = Workers()
FIRST_SLICES = FirstSlices(WORKERS, budget_ms=3)
