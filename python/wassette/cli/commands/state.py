"""`wassette state migrate|status|import|export|new-key`: the shared state of
a fleet (`--state postgresql://...`)."""

from __future__ import annotations

import argparse
from typing import Any

from wassette.cli.options import Parents, group
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError


def add(sub: Any, p: Parents) -> None:
    ssub = group(sub, "state", "the shared state of a fleet of replicas (PostgreSQL)")
    ssub.add_parser(
        "migrate", parents=[p.dirs, p.out], help="create or upgrade the database's tables (safe to run twice)"
    ).set_defaults(handler=cmd_migrate)
    ssub.add_parser(
        "status", parents=[p.dirs, p.out], help="schema version, revision, components, audit records"
    ).set_defaults(handler=cmd_status)
    ssub.add_parser(
        "import",
        parents=[p.dirs, p.out],
        help="copy the local state (component and secrets directories, audit log) into the database",
    ).set_defaults(handler=cmd_import)
    ssub.add_parser(
        "export",
        parents=[p.dirs, p.out],
        help="copy the database's components, policies and secrets into the local directories",
    ).set_defaults(handler=cmd_export)
    ssub.add_parser(
        "new-key", parents=[p.out], help="print a new key for sealing secrets (WASSETTE_SECRETS_KEY)"
    ).set_defaults(handler=cmd_new_key)


def _shared(args: argparse.Namespace) -> Any:
    from wassette.runtime.config import Settings
    from wassette.runtime.state.postgres import PostgresState
    from wassette.runtime.state.records import Directories

    settings = Settings.load(
        component_dir=getattr(args, "component_dir", None),
        state=getattr(args, "state", None),
        tenant=getattr(args, "tenant", None),
    )
    if settings.state is None:
        raise WassetteError("no shared state: give --state postgresql://... (or WASSETTE_STATE)")
    return settings.state, PostgresState(
        settings.state, Directories(settings.component_dir, settings.secrets_dir)
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    import psycopg

    from wassette.runtime.state import schema
    from wassette.runtime.state.postgres import StateUnavailable

    config, state = _shared(args)
    with state.connect(autocommit=True) as conn:
        try:
            applied = schema.migrate(conn, config.schema)
        except psycopg.Error as e:
            raise StateUnavailable(f"migration failed: {str(e).strip().splitlines()[0]}") from None
    emit(
        {
            "status": "migrated" if applied else "up to date",
            "applied": applied,
            "version": schema.LATEST,
            "state": config.shown,
        },
        args.output_format,
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from wassette.runtime.state import schema

    config, state = _shared(args)
    with state.connect(autocommit=True) as conn:
        version = schema.version(conn)
        out: dict[str, Any] = {"state": config.shown, "schema_version": version, "latest": schema.LATEST}
        if config.schema is not None:
            out["schema"] = config.schema
        if version:
            out["revision"] = conn.execute("SELECT revision FROM wassette_state").fetchone()[0]
            out["components"] = conn.execute(
                "SELECT count(*) FROM wassette_components WHERE sha256 IS NOT NULL"
            ).fetchone()[0]
            out["audit_records"] = conn.execute("SELECT count(*) FROM wassette_audit").fetchone()[0]
    out["secrets_key"] = state.box.key_id or "none"
    emit(out, args.output_format)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from wassette.runtime.state.records import Directories
    from wassette.runtime.state.transfer import import_local

    config, state = _shared(args)
    state.start()
    source = Directories(
        config.local_component_dir, config.local_secrets_dir, config.local_secrets_store_key_file
    )
    emit(import_local(state, source, config.local_data_dir / "audit.jsonl"), args.output_format)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from wassette.runtime.state.records import Directories
    from wassette.runtime.state.transfer import export_local

    config, state = _shared(args)
    state.start()
    target = Directories(
        config.local_component_dir, config.local_secrets_dir, config.local_secrets_store_key_file
    )
    emit(export_local(state, target), args.output_format)
    return 0


def cmd_new_key(args: argparse.Namespace) -> int:
    from wassette.runtime.state.sealed import key_id, new_key, parse_key

    key = new_key()
    emit({"key": key, "key_id": key_id(parse_key(key, "new key"))}, args.output_format)
    return 0
