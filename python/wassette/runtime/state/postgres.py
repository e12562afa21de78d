"""The shared state of a fleet, in PostgreSQL (`--state postgresql://...`).

Each replica serves from a working copy: a component directory and a
secrets directory of its own, in the layout of the local state, so a call
reads local files exactly as without a database (the database is never on
the call path). The database is the truth:

- a change (load, unload, grant, revoke, reset, attach, accept, secret) is
  one transaction: lock the state row, catch up with what other replicas
  committed, make the change in the working copy, write the records of the
  ids whose files changed, bump the revision, NOTIFY. A replica killed
  midway commits nothing; two replicas changing at once take turns (the
  row lock), each editing what the other committed.
- every replica LISTENs, and on a notification (or at each heartbeat, when
  the revision moved) applies what changed since its own revision.
- `refusal()` is checked before every call: once the database has not been
  confirmed for longer than `state_max_staleness_ms`, calls are refused
  until it is back (a grant revoked meanwhile is never served longer).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from wassette.runtime.errors import WassetteError
from wassette.runtime.state import schema
from wassette.runtime.state.audit_log import SharedAuditLog
from wassette.runtime.state.records import Directories, Record
from wassette.runtime.state.sealed import Sealed, SecretBox

if TYPE_CHECKING:
    from wassette.runtime.config import StateSettings
    from wassette.runtime.store import ComponentStore

log = logging.getLogger("wassette.state")

# The follower's longest wait for a notification before asking the
# database itself (a heartbeat): bounds how stale a quiet replica may be.
HEARTBEAT_S = 1.0
# Connections give up on a database that stopped answering after this long
# (connect, and TCP without acknowledgement), so the follower notices.
CONNECT_TIMEOUT_S = 3


class StateUnavailable(WassetteError):
    """The shared state's database cannot be reached or refused a change."""


class PostgresState:
    def __init__(self, settings: StateSettings, dirs: Directories) -> None:
        self.settings = settings
        self.dirs = dirs
        self.box = SecretBox(settings.secrets_key, settings.secrets_key_source)
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._conn: Any = None
        self._conn_pid = 0
        self._conn_lock = threading.RLock()
        # The database revision the working copy shows (-1: not read yet:
        # the next catch-up compares every id).
        self._applied = -1
        # When (monotonic) the database last confirmed the working copy.
        self._confirmed: float | None = None
        self.on_change: Callable[[], object] | None = None
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self.audit_log = SharedAuditLog(self.connect, self.replica)
        self._outage_logged = False
        self.started = False

    # -- connections ------------------------------------------------------------------

    def connect(self, *, autocommit: bool = False) -> Any:
        import psycopg

        schema = self.settings.schema
        # A tenant's tables are its schema's; tenants.py allows no quote,
        # space or backslash in a name.
        options = f'-c search_path="{schema}"' if schema is not None else None
        try:
            return psycopg.connect(
                self.settings.url,
                options=options,
                autocommit=autocommit,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="wassette",
                tcp_user_timeout=CONNECT_TIMEOUT_S * 1000,
                keepalives_idle=2,
                keepalives_interval=1,
                keepalives_count=2,
            )
        except psycopg.Error as e:
            raise StateUnavailable(
                f"cannot reach the shared state at {self.settings.shown}: {_why(e)}"
            ) from None

    def _connection(self) -> Any:
        """This process's connection for changes (a fork makes its own)."""
        if self._conn is None or self._conn.closed or self._conn_pid != os.getpid():
            self._conn = self.connect()
            self._conn_pid = os.getpid()
        return self._conn

    # -- start ------------------------------------------------------------------------

    def start(self) -> None:
        """Migrates the schema if needed (one replica at a time), then brings
        the working copy up to date. Raises StateUnavailable, SchemaError."""
        import psycopg

        self.settings.working_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.settings.working_dir, 0o700)
        conn = self.connect(autocommit=True)
        try:
            done = schema.migrate(conn, self.settings.schema)
            if done:
                log.info("shared state migrated to schema %s", done[-1])
        except psycopg.Error as e:
            raise StateUnavailable(f"shared state at {self.settings.shown}: {_why(e)}") from None
        finally:
            conn.close()
        self.sync()
        self.started = True

    def sync(self) -> bool:
        """Applies what changed in the database since the working copy's
        revision. True when any file changed."""
        import psycopg

        started = time.monotonic()
        try:
            with self._conn_lock:
                conn = self._connection()
                changed = self._catch_up(conn)
        except psycopg.Error as e:
            self._drop_connection()
            raise StateUnavailable(f"shared state at {self.settings.shown}: {_why(e)}") from None
        self._confirmed = started
        return changed

    def _drop_connection(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            self._conn = None

    def _catch_up(self, conn: Any) -> bool:
        """One consistent read of everything newer than the working copy,
        applied under the directory lock."""
        with self.dirs.store.flocked(), conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return self._pull(conn)

    def _pull(self, conn: Any) -> bool:
        """Inside a transaction that sees a settled state: makes the working
        copy match every record newer than `_applied`."""
        row = conn.execute("SELECT revision FROM wassette_state WHERE id = 1").fetchone()
        revision = int(row[0])
        if revision == self._applied:
            return False
        since = self._applied
        records = read_records(conn, self.box, since)
        if since < 0:  # a first read: what the database does not have goes
            for cid in self.dirs.ids() - set(records):
                records[cid] = Record(id=cid)
        changed = False
        for record in records.values():
            changed |= apply_record(conn, self.dirs, record)
        self._applied = revision
        return changed

    @staticmethod
    def blob(conn: Any, sha256: str) -> bytes:
        row = conn.execute("SELECT bytes FROM wassette_blobs WHERE sha256 = %s", (sha256,)).fetchone()
        if row is None:
            raise StateUnavailable(f"the shared state names component bytes {sha256} it does not hold")
        data = bytes(row[0])
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StateUnavailable(f"component bytes {sha256} in the shared state do not match their digest")
        return data

    # -- changes ----------------------------------------------------------------------

    @contextlib.contextmanager
    def change(self, store: ComponentStore) -> Iterator[None]:
        """One change of the state (called under the directory lock)."""
        import psycopg

        started = time.monotonic()
        with self._conn_lock:
            try:
                conn = self._connection()
                with conn.transaction():
                    conn.execute("SELECT revision FROM wassette_state WHERE id = 1 FOR UPDATE")
                    self._pull(conn)
                    before = self.dirs.snapshot()
                    try:
                        yield
                    except BaseException:
                        self._applied = -1  # the working copy may be half-changed: reread it all
                        raise
                    changes = before ^ self.dirs.snapshot()
                    if changes:
                        self._push(conn, changes)
            except psycopg.Error as e:
                self._applied = -1
                self._drop_connection()
                raise StateUnavailable(
                    f"the change was not made: shared state at {self.settings.shown}: {_why(e)}"
                ) from None
        self._confirmed = started

    def _push(self, conn: Any, changes: frozenset[tuple[str, tuple[str, Any]]]) -> None:
        revision = int(
            conn.execute(
                "UPDATE wassette_state SET revision = revision + 1 WHERE id = 1 RETURNING revision"
            ).fetchone()[0]
        )
        secret_files = {str(self.dirs.secrets.path(cid)) for cid, _ in changes}
        for cid in sorted({cid for cid, _ in changes}):
            changed_secrets = any(c == cid and path in secret_files for c, (path, _) in changes)
            write_record(conn, self.box, self.dirs, cid, revision, secrets=changed_secrets)
        conn.execute("SELECT pg_notify(%s, %s)", (self.settings.channel, str(revision)))
        self._applied = revision

    # -- following other replicas ---------------------------------------------------------

    def follow(self, on_change: Callable[[], object]) -> None:
        """Starts the thread that applies other replicas' changes (and tells
        `on_change`), and confirms the database at every heartbeat."""
        self.on_change = on_change
        self._stop.clear()
        self._follower = threading.Thread(target=self._follow, name="wassette-state", daemon=True)
        self._follower.start()

    def stop(self) -> None:
        self._stop.set()

    def _follow(self) -> None:
        import psycopg
        from psycopg import sql

        while not self._stop.is_set():
            conn = None
            try:
                conn = self.connect(autocommit=True)
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.settings.channel)))
                while not self._stop.is_set():
                    started = time.monotonic()
                    if self._catch_up(conn) and self.on_change is not None:
                        self.on_change()
                    self._confirmed = started
                    if self._outage_logged:
                        log.warning("shared state at %s is back", self.settings.shown)
                        self._outage_logged = False
                    for _ in conn.notifies(timeout=HEARTBEAT_S, stop_after=1):
                        pass
            except (psycopg.Error, StateUnavailable, OSError) as e:
                if not self._outage_logged:
                    log.error("shared state at %s unreachable: %s", self.settings.shown, _why(e))
                    self._outage_logged = True
            except WassetteError as e:  # a record this replica cannot apply (e.g. no secrets key)
                if not self._outage_logged:
                    log.error("cannot apply the shared state: %s", e)
                    self._outage_logged = True
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._stop.wait(HEARTBEAT_S)

    # -- the call gate ------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why calls are refused now (None: they are not)."""
        confirmed = self._confirmed
        if confirmed is None:
            return None
        age = time.monotonic() - confirmed
        bound = self.settings.max_staleness_ms / 1000
        if age <= bound:
            return None
        return (
            f"refused: the shared state has not been confirmed for {age:.1f} s (bound {bound:g} s), "
            "so a revoked permission cannot be ruled out; calls resume when the database is back"
        )


def read_records(conn: Any, box: SecretBox, since: int) -> dict[str, Record]:
    """The records of every id changed after revision `since` (-1: all),
    their secrets opened with `box`."""
    records = {
        r[0]: Record(id=r[0], sha256=r[1], metadata=r[2], policy=r[3], policy_meta=r[4], pending=r[5])
        for r in conn.execute(
            "SELECT c.id, c.sha256, c.metadata, p.active, p.meta, p.pending FROM wassette_components c "
            "LEFT JOIN wassette_policies p ON p.component_id = c.id WHERE c.revision > %s ORDER BY c.id",
            (since,),
        )
    }
    for cid, name, key_id, nonce, data in conn.execute(
        "SELECT component_id, name, key_id, nonce, ciphertext FROM wassette_secrets WHERE component_id = ANY(%s)",
        (list(records),),
    ):
        records[cid].secrets[name] = box.open(cid, name, Sealed(key_id, bytes(nonce), bytes(data)))
    return records


def apply_record(conn: Any, dirs: Directories, record: Record) -> bool:
    """Makes the files in `dirs` say what `record` says (its bytes fetched
    only when the files lack them). True when any file changed."""
    wasm = None
    if record.sha256 is not None and dirs.local_sha256(record.id) != record.sha256:
        wasm = PostgresState.blob(conn, record.sha256)
    return dirs.write(record, wasm)


def write_record(
    conn: Any, box: SecretBox, dirs: Directories, cid: str, revision: int, *, secrets: bool
) -> None:
    """Writes the records of one id from the files in `dirs` (the blob only
    when the database lacks it; the sealed secrets when they changed)."""
    record, wasm_path = dirs.read(cid)
    if record.sha256 is not None and wasm_path is not None:
        known = conn.execute("SELECT 1 FROM wassette_blobs WHERE sha256 = %s", (record.sha256,)).fetchone()
        if known is None:
            data = wasm_path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != record.sha256:  # the metadata is stale: trust the bytes
                record.sha256, record.metadata = digest, None
            conn.execute(
                "INSERT INTO wassette_blobs (sha256, bytes) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (digest, data),
            )
    conn.execute(
        "INSERT INTO wassette_components (id, revision, sha256, metadata) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, sha256 = excluded.sha256, "
        "metadata = excluded.metadata, changed_at = now()",
        (cid, revision, record.sha256, _jsonb(record.metadata)),
    )
    conn.execute("DELETE FROM wassette_policies WHERE component_id = %s", (cid,))
    if record.policy is not None or record.pending is not None or record.policy_meta:
        conn.execute(
            "INSERT INTO wassette_policies (component_id, active, meta, pending) VALUES (%s, %s, %s, %s)",
            (cid, record.policy, _jsonb(record.policy_meta), record.pending),
        )
    if secrets:
        conn.execute("DELETE FROM wassette_secrets WHERE component_id = %s", (cid,))
        for name, value in sorted(record.secrets.items()):
            sealed = box.seal(cid, name, value)
            conn.execute(
                "INSERT INTO wassette_secrets (component_id, name, key_id, nonce, ciphertext) "
                "VALUES (%s, %s, %s, %s, %s)",
                (cid, name, sealed.key_id, sealed.nonce, sealed.ciphertext),
            )


def _jsonb(value: dict[str, Any] | None) -> Any:
    if value is None:
        return None
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _why(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
