"""`wassette serve --workers N`: N worker processes serve one address.

The parent (this module) loads no engine and serves nothing itself: it
reserves the address, starts the workers, replaces one that dies, and on
SIGTERM or SIGINT lets them drain and stop. Each worker is `wassette serve`
itself, told by `WASSETTE_WORKER` that it is one of a set: it opens its own
listening socket on the address with SO_REUSEPORT, so the kernel spreads new
connections over the workers, and it shares sessions, cancellations and tool
changes with the others through the set's private directory (worker.py).

The first worker starts alone: it provisions (`--manifest`) and compiles
what the engine's artifact cache lacks, and serves from then on (the set is
announced as serving); the others then start from that cache instead of
compiling again, and take their share of new connections once they listen.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NamedTuple

from wassette.runtime.errors import ConfigError

log = logging.getLogger("wassette.http")

WORKER_ENV = "WASSETTE_WORKER"
# After SIGTERM, how long the parent waits for its workers (which drain their
# requests for `app.DRAIN_S`) before it kills them.
STOP_GRACE_S = 15
# A worker that dies this soon after it started, this many times in a row,
# is not started again: the set stops (it would die again; say why, once).
CRASH_WINDOW_S = 10.0
MAX_CRASHES = 5

_PR_SET_PDEATHSIG = 1


class WorkerSpec(NamedTuple):
    """What a worker is told by its parent."""

    directory: Path
    number: int  # 0 .. workers-1; a replacement takes the number of the one it replaces
    workers: int  # in the set
    host: str
    port: int
    ready_fd: int  # -1: nobody waits for it

    @classmethod
    def from_env(cls) -> WorkerSpec | None:
        raw = os.environ.get(WORKER_ENV)
        if not raw:
            return None
        try:
            v = json.loads(raw)
            return cls(
                Path(v["directory"]),
                int(v["number"]),
                int(v["workers"]),
                str(v["host"]),
                int(v["port"]),
                int(v["ready_fd"]),
            )
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{WORKER_ENV} is set but malformed (it is for `serve --workers` only)"
            ) from None

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


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, count: int, host: str, port: int, argv: Sequence[str]) -> None:
        self.count = count
        self.host = host
        self.port = port
        self.argv = list(argv)
        self.directory = Path(tempfile.mkdtemp(prefix="wassette-serve-"))
        (self.directory / "bus").mkdir()
        (self.directory / "sessions").mkdir()
        # pid -> the worker's number, its process, when it started
        self.workers: dict[int, tuple[int, subprocess.Popen[bytes], float]] = {}
        self.stopping = False
        self.crashes = 0

    def spawn(self, index: int, *, wait_ready: bool) -> bool:
        """Starts worker `index`; with `wait_ready`, returns once it listens
        (False: it exited first)."""
        read_fd, write_fd = os.pipe() if wait_ready else (-1, -1)
        spec = {
            "directory": str(self.directory),
            "number": index,
            "workers": self.count,
            "host": self.host,
            "port": self.port,
            "ready_fd": write_fd,
        }
        env = {**os.environ, WORKER_ENV: json.dumps(spec)}
        proc = subprocess.Popen(
            self.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            pass_fds=(write_fd,) if wait_ready else (),
            # Ctrl-C in a terminal reaches the parent only, which stops the
            # workers once; they die with the parent if it is killed.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.workers[proc.pid] = (index, proc, time.monotonic())
        if not wait_ready:
            return True
        os.close(write_fd)
        try:
            return os.read(read_fd, 1) == b"1"  # b"": the worker exited
        finally:
            os.close(read_fd)

    def signal_all(self, signum: int) -> None:
        for _, proc, _ in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("stopping %d workers (they finish what is in flight first)", len(self.workers))
        self.stopping = True
        self.signal_all(signal.SIGTERM)
        signal.alarm(STOP_GRACE_S)

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
        try:
            if not self.spawn(0, wait_ready=True):
                return self._first_failed()
            log.info("%s", announce)
            for index in range(1, self.count):
                if self.stopping or not self.spawn(index, wait_ready=True):
                    break
            if not self.stopping:
                log.info("%d workers serving", len(self.workers))
            return self._watch()
        finally:
            self.signal_all(signal.SIGKILL)
            for _, proc, _ in self.workers.values():
                proc.wait()
            shutil.rmtree(self.directory, ignore_errors=True)

    def _first_failed(self) -> int:
        _, proc, _ = next(iter(self.workers.values()))
        code = proc.wait()
        self.workers.clear()
        return code if code > 0 else 1

    def _watch(self) -> int:
        """Waits on the workers; replaces one that dies (unless stopping)."""
        status = 0
        while self.workers:
            pid, raw = os.wait()
            gone = self.workers.pop(pid, None)
            if gone is None:
                continue
            index, proc, started = gone
            proc.returncode = os.waitstatus_to_exitcode(raw)
            if self.stopping:
                continue
            quick = time.monotonic() - started < CRASH_WINDOW_S
            self.crashes = self.crashes + 1 if quick else 0
            if self.crashes >= MAX_CRASHES:
                log.error("worker %d keeps exiting (%s); stopping", index, _how(proc.returncode))
                self.stopping = True
                self.signal_all(signal.SIGTERM)
                signal.alarm(STOP_GRACE_S)
                status = 1
                continue
            log.warning("worker %d (pid %d) %s; starting another", index, pid, _how(proc.returncode))
            self.spawn(index, wait_ready=False)
        return status


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The command (its arguments after `wassette`), to run as a worker."""
    return [sys.executable, "-m", "wassette", *argv]
