"""`wassette state import` and `export`: a local state (component directory,
secrets directory, audit log) into the shared state, and back.

An import is one transaction: every component of the directory, with its
policies and secrets (sealed with this replica's key), and the local audit
log's records; replicas apply it from the notification. An export writes
every component of the database, with its policies and secrets (opened with
this replica's key), into the local directories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wassette.runtime.errors import WassetteError
from wassette.runtime.state import audit_log
from wassette.runtime.state.postgres import (
    PostgresState,
    StateUnavailable,
    apply_record,
    read_records,
    write_record,
)
from wassette.runtime.state.records import Directories


def import_local(state: PostgresState, source: Directories, audit_file: Path | None) -> dict[str, Any]:
    import psycopg

    ids = sorted(cid for cid in source.ids() if not source.read(cid)[0].empty)
    audit = _audit_lines(audit_file) if audit_file is not None else []
    try:
        with state.connect() as conn, conn.transaction():
            conn.execute("SELECT revision FROM wassette_state WHERE id = 1 FOR UPDATE")
            replaced = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM wassette_components WHERE id = ANY(%s) AND sha256 IS NOT NULL", (ids,)
                )
            ]
            revision = int(
                conn.execute(
                    "UPDATE wassette_state SET revision = revision + 1 WHERE id = 1 RETURNING revision"
                ).fetchone()[0]
            )
            with source.store.flocked():
                for cid in ids:
                    write_record(conn, state.box, source, cid, revision, secrets=True)
            with conn.cursor() as cur:
                cur.executemany(audit_log.INSERT, audit_log.rows(audit, "import"))
            conn.execute("SELECT pg_notify(%s, %s)", (state.settings.channel, str(revision)))
    except psycopg.Error as e:
        raise StateUnavailable(f"nothing was imported: {str(e).strip().splitlines()[0]}") from None
    return {
        "status": "imported",
        "components": ids,
        "replaced": sorted(replaced),
        "audit_records": len(audit),
        "from": str(source.store.dir),
    }


def export_local(state: PostgresState, target: Directories) -> dict[str, Any]:
    import psycopg

    written: list[str] = []
    try:
        with state.connect() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            records = read_records(conn, state.box, -1)
            with target.store.flocked():
                for record in records.values():
                    if record.sha256 is not None:  # unloaded ids stay as the directory has them
                        apply_record(conn, target, record)
                        written.append(record.id)
    except psycopg.Error as e:
        raise StateUnavailable(f"export stopped: {str(e).strip().splitlines()[0]}") from None
    return {"status": "exported", "components": written, "to": str(target.store.dir)}


def _audit_lines(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise WassetteError(f"cannot read {path}: {e.strerror}") from None
    out = []
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise WassetteError(f"{path}:{n}: not a JSON audit record; nothing was imported") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("ts"), str) or "event" not in entry:
            raise WassetteError(f"{path}:{n}: not an audit record (ts, event); nothing was imported")
        out.append(entry)
    return out
