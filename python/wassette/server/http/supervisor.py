"""`wassette serve --workers N`: N worker processes serve one address.

The parent (this module) loads no engine and serves nothing itself: it
reserves the address, starts the workers, replaces one that dies, and on
SIGTERM or SIGINT lets them drain and stop. A worker is a fork of the
parent (which has imported the CLI and read the configuration by then, and
runs no thread: a fork is safe, and a worker starts ~60 ms sooner than a new
interpreter would) that then does what `wassette serve` does alone: it opens
its own listening socket on the address with SO_REUSEPORT, so the kernel
spreads new connections over the workers, and shares sessions,
cancellations and tool changes with the others through the set's private
directory (worker.py).

The first worker starts alone: it provisions (`--manifest`) and compiles
what the engine's artifact cache lacks, and serves from then on (the set is
announced as serving); the others then start from that cache instead of
compiling again, and take their share of new connections once they listen.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NamedTuple

log = logging.getLogger("wassette.http")

# After SIGTERM, how long the parent waits for its workers (which drain their
# requests for `app.DRAIN_S`) before it kills them.
STOP_GRACE_S = 15
# A worker that dies this soon after it started, this many times in a row,
# is not started again: the set stops (it would die again; say why, once).
CRASH_WINDOW_S = 10.0
MAX_CRASHES = 5

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


class WorkerSpec(NamedTuple):
    """What a worker is told by its parent."""

    directory: Path
    number: int  # 0 .. workers-1; a replacement takes the number of the one it replaces
    workers: int  # in the set
    host: str
    port: int
    ready_fd: int  # -1: nobody waits for it
    # A key the set's workers share (sessions.py binds session ids to their
    # owners with it): made by the parent, so each worker, and each one that
    # replaces another, has the same.
    secret: bytes = b""

    @property
    def provisions(self) -> bool:
        """Whether this worker applies `--manifest`: the set's first, at the
        set's start (a replacement finds it done)."""
        return self.number == 0 and self.ready_fd >= 0

    def ready(self) -> None:
        """Tells the parent this worker listens."""
        if self.ready_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.ready_fd, b"1")
                os.close(self.ready_fd)


Serve = Callable[[WorkerSpec], int]


def _become_worker(number: int, keep: int) -> None:
    """In a fresh fork: the parent's signal handling undone, its own session
    (Ctrl-C in a terminal reaches the parent only, which stops the workers
    once), death with the parent, a name `ps -o comm` and `top` show, and
    no descriptor of the parent's but the standard ones and `keep`."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the server reloads on it (app.py)
    signal.alarm(0)
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    libc.prctl(_PR_SET_NAME, f"wassette-w{number}".encode())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if keep >= 3:
        os.closerange(3, keep)
    os.closerange(max(3, keep + 1), 1 << 16)


class Supervisor:
    def __init__(self, count: int, host: str, port: int, serve: Serve) -> None:
        self.count = count
        self.host = host
        self.port = port
        self.serve = serve
        self.parent = os.getpid()
        self.secret = os.urandom(32)
        self.directory = Path(tempfile.mkdtemp(prefix="wassette-serve-"))
        (self.directory / "bus").mkdir()
        (self.directory / "sessions").mkdir()
        # Each worker's metrics, added up at every scrape (server/core/metrics.py).
        (self.directory / "metrics").mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.directory / "metrics")
        # pid -> the worker's number, when it started
        self.workers: dict[int, tuple[int, float]] = {}
        self.stopping = False
        self.crashes = 0

    def spawn(self, number: int, *, wait_ready: bool) -> bool:
        """Starts worker `number`; with `wait_ready`, returns once it listens
        (False: it exited first)."""
        read_fd, write_fd = os.pipe() if wait_ready else (-1, -1)
        spec = WorkerSpec(self.directory, number, self.count, self.host, self.port, write_fd, self.secret)
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            code = 1
            try:
                _become_worker(number, write_fd)
                if os.getppid() != self.parent:  # the parent died before PDEATHSIG was set
                    os._exit(1)
                code = self.serve(spec)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                log.exception("worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = (number, time.monotonic())
        if not wait_ready:
            return True
        os.close(write_fd)
        try:
            return os.read(read_fd, 1) == b"1"  # b"": the worker exited
        finally:
            os.close(read_fd)

    def signal_all(self, signum: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("stopping %d workers (they finish what is in flight first)", len(self.workers))
        self.stopping = True
        self.signal_all(signal.SIGTERM)
        signal.alarm(STOP_GRACE_S)

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        log.info("reloading the configuration in %d workers", len(self.workers))
        self.signal_all(signal.SIGHUP)

    def _kill(self, signum: int, frame: FrameType | None) -> None:
        log.warning("workers still running after %d s: killed", STOP_GRACE_S)
        self.signal_all(signal.SIGKILL)

    def run(self, announce: str) -> int:
        """Serves until stopped; `announce`: the line saying where, logged
        as soon as the first worker listens (it serves alone until the
        others listen too)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGALRM, self._kill)
        signal.signal(signal.SIGHUP, self._reload)
        try:
            if not self.spawn(0, wait_ready=True):
                return self._first_failed()
            log.info("%s", announce)
            for number in range(1, self.count):
                if self.stopping or not self.spawn(number, wait_ready=True):
                    break
            if not self.stopping:
                log.info("%d workers serving", len(self.workers))
            return self._watch()
        finally:
            self.signal_all(signal.SIGKILL)
            for pid in list(self.workers):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            shutil.rmtree(self.directory, ignore_errors=True)

    def _first_failed(self) -> int:
        pid = next(iter(self.workers))
        _, raw = os.waitpid(pid, 0)
        self.workers.clear()
        code = os.waitstatus_to_exitcode(raw)
        return code if code > 0 else 1

    def _watch(self) -> int:
        """Waits on the workers; replaces one that dies (unless stopping)."""
        status = 0
        while self.workers:
            pid, raw = os.wait()
            gone = self.workers.pop(pid, None)
            if gone is None:
                continue
            number, started = gone
            code = os.waitstatus_to_exitcode(raw)
            from wassette.server.core.metrics import worker_gone

            worker_gone(pid)
            if self.stopping:
                continue
            quick = time.monotonic() - started < CRASH_WINDOW_S
            self.crashes = self.crashes + 1 if quick else 0
            if self.crashes >= MAX_CRASHES:
                log.error("worker %d keeps exiting (%s); stopping", number, _how(code))
                self.stopping = True
                self.signal_all(signal.SIGTERM)
                signal.alarm(STOP_GRACE_S)
                status = 1
                continue
            log.warning("worker %d (pid %d) %s; starting another", number, pid, _how(code))
            self.spawn(number, wait_ready=False)
        return status


def _how(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"
