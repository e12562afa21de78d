"""The audit log of a shared state: the table `wassette_audit`, one row per
record with the replica that wrote it. Records are queued by the call that
makes them (never waiting on the database) and written in batches by a
thread; while the database is away they wait in the queue (the replica's
own audit.jsonl has them meanwhile), and a process exiting waits a moment
for the queue to drain.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from wassette.runtime.errors import WassetteError

log = logging.getLogger("wassette.state")

QUEUE = 10_000
BATCH = 500
RETRY_S = 1.0
INSERT = "INSERT INTO wassette_audit (ts, replica, event, component, record) VALUES (%s, %s, %s, %s, %s)"


def rows(records: Iterable[dict[str, Any]], replica: str) -> list[tuple[Any, ...]]:
    """The table's rows of some records (also what `state import` writes)."""
    return [(r["ts"], replica, r["event"], r.get("component"), json.dumps(r)) for r in records]


class SharedAuditLog:
    def __init__(self, connect: Callable[[], Any], replica: str) -> None:
        self.connect = connect
        self.replica = replica
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(QUEUE)
        self._shipper: threading.Thread | None = None
        self._shipper_pid = 0

    def ship(self, entry: dict[str, Any]) -> None:
        """Queues a record for the database (never blocks a call)."""
        if self._shipper is None or self._shipper_pid != os.getpid():  # a fork ships its own
            self._shipper_pid = os.getpid()
            self._shipper = threading.Thread(target=self._ship, name="wassette-audit", daemon=True)
            self._shipper.start()
            atexit.register(self.flush)
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            log.error("audit queue full: a record was kept in the local audit file only")

    def flush(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def read(self, limit: int, *, component: str | None, event: str | None) -> list[dict[str, Any]]:
        """The newest `limit` records of every replica (oldest first)."""
        import psycopg

        try:
            with self.connect() as conn:
                found = conn.execute(
                    "SELECT record FROM wassette_audit WHERE (%(c)s::text IS NULL OR component = %(c)s) "
                    "AND (%(e)s::text IS NULL OR event = %(e)s) ORDER BY id DESC LIMIT %(n)s",
                    {"c": component, "e": event, "n": limit},
                ).fetchall()
        except psycopg.Error as e:
            raise WassetteError(f"cannot read the audit log: {str(e).strip().splitlines()[0]}") from None
        return [dict(r[0]) for r in reversed(found)]

    def _ship(self) -> None:
        conn = None
        batch: list[dict[str, Any]] = []
        while True:
            if not batch:
                batch.append(self._queue.get())
                while len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
            try:
                if conn is None or conn.closed:
                    conn = self.connect()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(INSERT, rows(batch, self.replica))
            except Exception as e:  # kept and retried: the local file has them meanwhile
                log.debug("audit shipping waits: %s", e)
                conn = None
                time.sleep(RETRY_S)  # a retry's pace, not synchronisation
                continue
            for _ in batch:
                self._queue.task_done()
            batch = []
