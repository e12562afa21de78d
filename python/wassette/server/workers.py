"""Where component calls run: a first slice on the caller's own thread
(`FirstSlices`: the event loop's over HTTP, the reading thread's over stdio),
the rest of a longer call in a worker thread.

The engine releases the GIL during a call, so long calls run in parallel in
the workers while the caller keeps serving. Unlike a thread pool that wakes
its idle threads in turn, the thread that finished most recently takes the
next call: its caches are still warm. Loaded by stdio too, so asyncio is
imported only when an event loop uses the workers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import asyncio

    from wassette.runtime.lifecycle import CallResult, ToolCall

T = TypeVar("T")

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


def _settle(future: asyncio.Future[object], outcome: tuple[object, BaseException | None]) -> None:
    if not future.done():
        value, error = outcome
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class Workers:
    """Up to `limit` threads; calls beyond that wait their turn."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # a stack: the last one to finish is on top
        self._threads: list[_Worker] = []
        self._backlog: deque[_Job] = deque()

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Starts `fn` in a worker thread; its result arrives in a future of
        the running event loop. A caller that stops waiting does not stop
        `fn` (callers stop it by other means)."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()

        def job() -> None:
            try:
                result = fn()
            except BaseException as e:  # handed to the awaiting task
                outcome: tuple[object, BaseException | None] = (None, e)
            else:
                outcome = (result, None)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, outcome)

        self.start(job)
        return future  # type: ignore[return-value]

    def start(self, job: Callable[[], None]) -> None:
        """Runs `job` in a worker thread; nobody waits for it."""
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
                worker.job = job
                worker.wake.release()
            elif len(self._threads) < self.limit:
                worker = _Worker(self, job)
                self._threads.append(worker)
                worker.start()
            else:
                self._backlog.append(job)

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

    def finish(self, name: str, call: ToolCall) -> asyncio.Future[CallResult]:
        """`complete` in a worker thread, for an event loop to await."""
        return self.workers.submit(lambda: self.complete(name, call))


# Component calls of every transport run in these threads, after a first
# slice on the caller's.
WORKERS = Workers()
FIRST_SLICES = FirstSlices(WORKERS, budget_ms=3)
