"""The audit log: append-only JSON lines in the data directory.

Every access the sandbox refused, every change of permissions and every
tool call is one line. Secret values never appear here: records carry keys
and paths only. The lines form a hash chain with signed checkpoints
(audit_chain.py), kept linear while several processes append to one file
(`serve --workers N`, the CLI beside a server): each append holds an
exclusive lock on the file while it reads the chain's end and writes.

Records of a change are written before `record` returns; a tool call's
`call` record is queued (`enqueue`) and written by a thread, in batches,
so a call does not wait for the disk; the queue is written out before any
read, at `close` and at exit.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from wassette.runtime.audit_chain import CHECKPOINT, EMPTY, Head, head_of, read_head, seal, sign

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger("wassette.audit")

# A signed checkpoint after this many records (and at a clean close).
CHECKPOINT_EVERY = 1000
# Queued records beyond this are written by the caller itself (back
# pressure when the disk is slow, never a lost record).
MAX_QUEUED = 10_000
# Records written under one lock of the file; how long the writer thread
# lets queued records gather first.
BATCH = 256
LINGER_S = 0.05

# A queued record: when (time.time()), event, fields.
_Item = tuple[float, str, dict[str, Any]]


def checkpoint_file(path: Path) -> Path:
    """Where the newest checkpoint is also kept: beside the log, so a log
    cut short before it is seen as such (audit_verify.py)."""
    return path.with_name(path.name + ".checkpoint")


class _Tail(NamedTuple):
    """The file as this process last saw it: inode, size, chain's end."""

    inode: int
    size: int
    head: Head


class AuditLog:
    def __init__(self, path: Path, *, key_file: Path | None = None, every: int = CHECKPOINT_EVERY) -> None:
        """`key_file`: the Ed25519 key signing checkpoints (made on first
        use; None: a chain without checkpoints)."""
        self.path = path
        self.key_file = key_file
        self.every = every
        # Also given every record, sealed (a shared state ships them to its
        # database), and told to finish shipping at close.
        self.also: Callable[[dict[str, Any]], None] | None = None
        self.also_flush: Callable[[], None] | None = None
        self._io = threading.Lock()  # one batch at a time: file order is queue order
        self._queue: deque[_Item] = deque()
        self._wake = threading.Event()
        self._pid = 0
        self._tail: _Tail | None = None
        self._key: Ed25519PrivateKey | None = None
        self._key_failed = False
        self._unsealed = False  # this process wrote records no checkpoint covers yet

    # -- writing ---------------------------------------------------------------

    def record(self, event: str, **fields: Any) -> None:
        """Appends a record (after the queued ones); written when this returns."""
        item = (time.time(), event, fields)
        self._started()
        with self._io:
            self._drain()
            self._write([item])

    def enqueue(self, event: str, **fields: Any) -> None:
        """Queues a record for the writer thread: a call's, which must not
        wait on the disk (a deque append, and a wake-up when it was idle)."""
        if self._pid != os.getpid():
            self._started()
        self._queue.append((time.time(), event, fields))
        if not self._wake.is_set():
            self._wake.set()
        if len(self._queue) > MAX_QUEUED:
            self.flush()

    def flush(self) -> None:
        """Writes what is queued (returns once it is in the file)."""
        with self._io:
            self._drain()

    def close(self) -> None:
        """Writes what is queued and, if this process appended records since
        the last checkpoint, a checkpoint after them."""
        with self._io:
            self._drain()
            self._write([], checkpoint=self._unsealed)
        if self.also_flush is not None:
            self.also_flush()

    def _started(self) -> None:
        if self._pid == os.getpid():
            return
        with _STARTING:
            if self._pid == os.getpid():
                return
            # First use in this process (or in a fork of one that used it:
            # the parent's thread, queue and locks are not ours).
            self._queue = deque()
            self._wake = threading.Event()
            self._io = threading.Lock()
            threading.Thread(target=self._run, name="wassette-audit-writer", daemon=True).start()
            atexit.register(self.close)
            self._pid = os.getpid()

    def _drain(self) -> None:
        """Writes the queue out, BATCH records at a time. Holds self._io."""
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(BATCH, len(queue)))]
            self._write(batch)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            # Gathering a batch: one lock and one write for many records,
            # and few wake-ups competing with calls for the interpreter.
            time.sleep(LINGER_S)
            self.flush()

    def _write(self, batch: list[_Item], *, checkpoint: bool = False) -> None:
        """Seals and appends `batch` (and a checkpoint when one is due) under
        the file's lock. Holds self._io."""
        if not batch and not checkpoint:
            return
        entries = [{"ts": _stamp(when), "event": event, **fields} for when, event, fields in batch]
        try:
            fd = self._open()
        except OSError as e:
            # Losing an audit line must not break a tool call; say so loudly.
            log.error("cannot write audit log %s: %s", self.path, e.strerror)
            self._ship(entries)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            stat = os.fstat(fd)
            head, lead = self._head(fd, stat)
            out = [lead]
            signed = None  # the newest checkpoint of this batch
            for entry in entries:
                line, digest = seal(entry, head.seq + 1, head.hash)
                out.append(line)
                head = Head(head.seq + 1, digest)
                if (head.seq + 1) % self.every == 0 and (head := self._checkpoint(head, out)).checkpoint:
                    signed = out[-1]
            closing = checkpoint and not head.checkpoint and head.seq >= 0
            if closing and (head := self._checkpoint(head, out)).checkpoint:
                signed = out[-1]
            data = b"".join(out)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if signed is not None:
                _replace(checkpoint_file(self.path), signed)
            self._tail = _Tail(stat.st_ino, stat.st_size + len(data), head)
            self._unsealed = not head.checkpoint
        except OSError as e:
            self._tail = None  # what is in the file is read again next time
            log.error("cannot write audit log %s: %s", self.path, e.strerror)
        finally:
            os.close(fd)  # and with it the lock
        self._ship(entries)

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC  # read: the chain's end
        try:
            return os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o600)

    def _head(self, fd: int, stat: os.stat_result) -> tuple[Head, bytes]:
        """The chain's end, and b"\\n" if the file ends inside a line (a torn
        write: the next record starts on a line of its own). Only what
        another process appended since this one last wrote is read."""
        tail = self._tail
        if tail is not None and tail.inode == stat.st_ino and tail.size == stat.st_size:
            return tail.head, b""
        if tail is not None and tail.inode == stat.st_ino and tail.size < stat.st_size:
            added = os.pread(fd, stat.st_size - tail.size, tail.size)
            return head_of(added) or tail.head, b"" if added.endswith(b"\n") else b"\n"
        if stat.st_size == 0:
            return EMPTY, b""
        last = os.pread(fd, 1, stat.st_size - 1)
        return read_head(fd, stat.st_size), b"" if last == b"\n" else b"\n"

    def _checkpoint(self, head: Head, out: list[bytes]) -> Head:
        """Appends a signed checkpoint after `head` to `out` (and keeps it
        beside the log); without a key, the chain goes on unsigned."""
        key = self._signing_key()
        if key is None:
            return head
        from wassette.runtime.audit_chain import key_id

        seq = head.seq + 1
        entry = _entry(CHECKPOINT, {"records": seq, "key": key_id(key.public_key())})
        entry["chain"] = {"seq": seq, "prev": head.hash}
        sign(entry, key)
        line, digest = seal(entry, seq, head.hash)
        out.append(line)
        return Head(seq, digest, checkpoint=True)

    def _signing_key(self) -> Ed25519PrivateKey | None:
        if self._key is None and self.key_file is not None and not self._key_failed:
            from wassette.runtime.audit_chain import ensure_key

            try:
                self._key = ensure_key(self.key_file)
            except (OSError, ValueError) as e:
                self._key_failed = True  # said once; the chain goes on without checkpoints
                log.error("audit checkpoints are not signed: key %s: %s", self.key_file, e)
        return self._key

    def _ship(self, batch: list[dict[str, Any]]) -> None:
        if self.also is not None:
            for entry in batch:
                self.also(entry)

    # -- reading ---------------------------------------------------------------

    def read(
        self, limit: int, *, component: str | None = None, event: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest `limit` records (oldest first) that match, read from
        the end of the file (a long log is not read whole). Checkpoints are
        the chain's, not events: only `event="checkpoint"` lists them."""
        if self._pid == os.getpid():
            self.flush()
        try:
            with self.path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                found: list[dict[str, Any]] = []
                tail = b""
                position = end
                while position > 0 and len(found) < limit:
                    step = min(_READ_CHUNK, position)
                    position -= step
                    f.seek(position)
                    chunk = f.read(step) + tail
                    lines = chunk.split(b"\n")
                    tail = lines.pop(0) if position > 0 else b""
                    for line in reversed(lines):
                        entry = _parsed(line)
                        if entry is not None and _matches(entry, component, event):
                            found.append(entry)
                            if len(found) == limit:
                                break
                if position == 0 and tail and len(found) < limit:
                    entry = _parsed(tail)
                    if entry is not None and _matches(entry, component, event):
                        found.append(entry)
        except FileNotFoundError:
            return []
        return found[::-1]


_READ_CHUNK = 64 * 1024
_STARTING = threading.Lock()


def _entry(event: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"ts": _stamp(time.time()), "event": event, **fields}


_second: tuple[int, str] = (0, "")


def _stamp(when: float) -> str:
    """`when` as ISO 8601 UTC with milliseconds (the date part is made once a second)."""
    global _second
    whole = int(when)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((when - whole) * 1000):03d}+00:00"


def _replace(path: Path, data: bytes) -> None:
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as e:
        log.error("cannot keep the audit checkpoint in %s: %s", path, e.strerror)


def _parsed(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None  # a torn or hand-edited line is skipped, not fatal
    return value if isinstance(value, dict) else None


def _matches(entry: dict[str, Any], component: str | None, event: str | None) -> bool:
    if event is None and entry.get("event") == CHECKPOINT:
        return False
    return (component is None or entry.get("component") == component) and (
        event is None or entry.get("event") == event
    )
