"""Grants asked for by an agent, waiting for a person's decision in the
console (`wassette serve --console`, or `wassette console` beside a stdio
server).

The queue is a directory of small JSON files next to the audit log, so the
server that waits and the console that decides may be different processes:
the built-in tool's call writes a request and waits, a bounded time, until
the file says approved or denied (a decision made in the same process wakes
it at once; another process's is seen at the next look, every 0.2 s).

A console that is open holds a shared lock on `console.lock`: that is how a
server knows a person can answer (`console_open`), without any registry of
consoles to go stale when one is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from wassette.runtime.audit import AuditLog
from wassette.runtime.errors import WassetteError
from wassette.runtime.store import write_atomic

# How long an agent's call waits for the decision before it is refused.
WAIT_S = 300.0
# How often a waiting call looks for another process's decision.
_LOOK_S = 0.2
STATES = ("pending", "approved", "denied", "expired")
_DIR = "grant-requests"
_LOCK = "console.lock"
# Wakes this process's waiting calls when this process decides (every queue
# object of the process: the console's and the built-in tools' are two).
_DECIDED = threading.Condition()


class GrantRequest(NamedTuple):
    id: str
    component: str
    permission: str  # storage | network | environment variable | reset
    scope: str  # what it names: a URI and access, a host, a key
    command: str  # the CLI command that makes the same change
    asked_at: float
    expires_at: float
    state: str = "pending"
    decided_by: str | None = None
    decided_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @property
    def waiting(self) -> bool:
        return self.state == "pending" and self.expires_at > time.time()


def stamp(when: float | None) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds") if when else ""


class GrantQueue:
    def __init__(self, data_dir: Path, audit: AuditLog) -> None:
        self.data_dir = data_dir
        self.directory = data_dir / _DIR
        self.audit = audit

    # -- is anyone there to decide -----------------------------------------

    def console_open(self) -> bool:
        """Whether a console holds the lock (this process's or another's)."""
        try:
            fd = os.open(self.data_dir / _LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # and with it a lock just taken
        return False

    @contextlib.contextmanager
    def console(self) -> Iterator[None]:
        """Held while a console serves (several may, each a shared lock)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- the agent's side ---------------------------------------------------

    def ask(
        self, component: str, permission: str, scope: str, command: str, wait_s: float = WAIT_S
    ) -> GrantRequest:
        now = time.time()
        request = GrantRequest(secrets.token_hex(8), component, permission, scope, command, now, now + wait_s)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write(request)
        self.audit.record(
            "grant_request",
            component=component,
            state="pending",
            by="mcp",
            request=request.id,
            **_what(request),
        )
        return request

    def wait(self, request: GrantRequest, stopped: Callable[[], bool] = lambda: False) -> GrantRequest:
        """The request once decided, or expired (at its deadline, or when
        `stopped` says the call was cancelled)."""
        while True:
            current = self.get(request.id) or request._replace(state="expired")
            if current.state != "pending":
                return current
            left = current.expires_at - time.time()
            if left <= 0 or stopped():
                return self._expire(current)
            with _DECIDED:
                _DECIDED.wait(min(_LOOK_S, left))

    def _expire(self, request: GrantRequest) -> GrantRequest:
        with self._locked():
            current = self.get(request.id)
            if current is not None and current.state != "pending":
                return current  # decided at the last moment: the decision stands
            expired = request._replace(state="expired", decided_at=time.time())
            self._write(expired)
        self.audit.record(
            "grant_request",
            component=request.component,
            state="expired",
            by="mcp",
            request=request.id,
            **_what(request),
        )
        return expired

    # -- the person's side ----------------------------------------------------

    def pending(self) -> list[GrantRequest]:
        """Requests still waiting, oldest first."""
        found = [r for r in self._all() if r.waiting]
        return sorted(found, key=lambda r: r.asked_at)

    def decide(self, request_id: str, approve: bool, by: str) -> GrantRequest:
        """Records a person's decision; the waiting call makes the grant."""
        with self._locked():
            current = self.get(request_id)
            if current is None or not current.waiting:
                raise WassetteError(f"grant request {request_id} is no longer waiting")
            decided = current._replace(
                state="approved" if approve else "denied", decided_by=by, decided_at=time.time()
            )
            self._write(decided)
        self.audit.record(
            "grant_request",
            component=decided.component,
            state=decided.state,
            by=by,
            request=decided.id,
            **_what(decided),
        )
        with _DECIDED:
            _DECIDED.notify_all()
        return decided

    def get(self, request_id: str) -> GrantRequest | None:
        if not request_id.isalnum():
            return None
        try:
            data = json.loads((self.directory / f"{request_id}.json").read_bytes())
            return GrantRequest(**data)
        except (OSError, ValueError, TypeError):
            return None

    # -- files --------------------------------------------------------------------

    def _all(self) -> list[GrantRequest]:
        try:
            names = [p.stem for p in self.directory.glob("*.json")]
        except OSError:
            return []
        found = [self.get(name) for name in names]
        self._sweep([r for r in found if r is not None])
        return [r for r in found if r is not None]

    def _sweep(self, requests: list[GrantRequest]) -> None:
        """Requests decided or expired an hour ago are of no more use (the
        audit log keeps what happened)."""
        old = time.time() - 3600
        for r in requests:
            if r.expires_at < old:
                (self.directory / f"{r.id}.json").unlink(missing_ok=True)

    def _write(self, request: GrantRequest) -> None:
        write_atomic(self.directory / f"{request.id}.json", json.dumps(request.to_json()).encode(), 0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One decision at a time, across processes: approve and expire race."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _what(request: GrantRequest) -> dict[str, Any]:
    return {"details": {"permission": request.permission, "scope": request.scope}}
