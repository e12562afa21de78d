"""The shared state's tables, as numbered migrations.

`migrate` applies those the database lacks, each in its own transaction,
holding a session advisory lock so two replicas starting at once migrate
once (the second waits, then finds nothing to do). A database migrated by a
newer wassette than this one is refused, not guessed at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wassette.runtime.errors import WassetteError

if TYPE_CHECKING:
    import psycopg

# pg_advisory_lock key: "wassette" as a number, shared by every replica.
MIGRATION_LOCK = 0x7761737365747465

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "components, policies, sealed secrets, blobs by digest, the audit log",
        """
        CREATE TABLE wassette_state (
            id integer PRIMARY KEY CHECK (id = 1),
            -- bumped by every change: replicas apply what is newer than theirs
            revision bigint NOT NULL
        );
        INSERT INTO wassette_state VALUES (1, 0);

        -- component bytes, stored once per digest
        CREATE TABLE wassette_blobs (
            sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            bytes bytea NOT NULL,
            added_at timestamptz NOT NULL DEFAULT now()
        );

        -- one row per id ever changed; sha256 NULL: not installed (a tombstone
        -- other replicas apply as an unload)
        CREATE TABLE wassette_components (
            id text PRIMARY KEY,
            revision bigint NOT NULL,
            sha256 text REFERENCES wassette_blobs (sha256),
            -- source, installed_at, exports (tool schemas), provenance
            metadata jsonb,
            changed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX wassette_components_revision ON wassette_components (revision);

        CREATE TABLE wassette_policies (
            component_id text PRIMARY KEY REFERENCES wassette_components (id) ON DELETE CASCADE,
            active text,     -- the enforced policy (YAML, as written)
            meta jsonb,      -- where it came from, when attached
            pending text     -- a shipped policy not accepted yet
        );

        CREATE TABLE wassette_secrets (
            component_id text NOT NULL REFERENCES wassette_components (id) ON DELETE CASCADE,
            name text NOT NULL,
            key_id text NOT NULL,
            nonce bytea NOT NULL,
            ciphertext bytea NOT NULL,
            PRIMARY KEY (component_id, name)
        );

        CREATE TABLE wassette_audit (
            id bigserial PRIMARY KEY,
            ts timestamptz NOT NULL,
            replica text NOT NULL,
            event text NOT NULL,
            component text,
            record jsonb NOT NULL
        );
        CREATE INDEX wassette_audit_component ON wassette_audit (component, ts);
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


class SchemaError(WassetteError):
    """The database's schema is not one this wassette can use."""


def version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The schema version of the database (0: never migrated)."""
    row = conn.execute("SELECT to_regclass('wassette_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM wassette_migrations").fetchone()
    return int(str(row[0])) if row else 0


def migrate(conn: psycopg.Connection[tuple[object, ...]], schema: str | None = None) -> list[int]:
    """Applies the missing migrations; returns their numbers. `conn` must
    be in autocommit mode (each migration is its own transaction), its
    search_path `schema` (a tenant's, made here) when one is given."""
    from psycopg import sql as psql

    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        if schema is not None:
            conn.execute(psql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(psql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS wassette_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        have = version(conn)
        if have > LATEST:
            raise SchemaError(
                f"the database is at schema version {have}, newer than this wassette knows ({LATEST}): "
                "upgrade wassette"
            )
        applied = []
        for number, name, sql in MIGRATIONS:
            if number <= have:
                continue
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute(
                    "INSERT INTO wassette_migrations (version, name) VALUES (%s, %s)", (number, name)
                )
            applied.append(number)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
