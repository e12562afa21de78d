"""`wassette secret list|set|delete`: per-component secrets."""

from __future__ import annotations

import argparse
from typing import Any

from wassette.cli.common import require_component, runtime
from wassette.cli.options import Parents, group, with_id
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError


def add(sub: Any, p: Parents) -> None:
    ssub = group(sub, "secret", "per-component secrets (seen as environment variables)")
    sl = with_id(ssub.add_parser("list", parents=[p.dirs, p.out], help="list secret names"))
    # Wassette's flag: the user asks, on the machine that holds the key.
    sl.add_argument("--show-values", action="store_true", help="also print the values (decrypted)")
    sl.set_defaults(handler=cmd_list)
    ss = with_id(ssub.add_parser("set", parents=[p.dirs, p.out], help="set secrets: KEY=VALUE ..."))
    ss.add_argument("pairs", nargs="+", metavar="KEY=VALUE", help="secret names and values")
    ss.set_defaults(handler=cmd_set)
    sd = with_id(ssub.add_parser("delete", parents=[p.dirs, p.out], help="delete secrets: KEY ..."))
    sd.add_argument("keys", nargs="+", metavar="KEY", help="secret names")
    sd.set_defaults(handler=cmd_delete)


def cmd_list(args: argparse.Namespace) -> int:
    rt = runtime(args, refresh=False)
    require_component(rt, args.id)
    values = rt.secrets.get(args.id)
    if args.show_values:
        rows = [{"key": k, "value": v} for k, v in sorted(values.items())]
        emit(rows, args.output_format, columns=["key", "value"])
    else:
        emit([{"key": k} for k in sorted(values)], args.output_format, columns=["key"])
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    rt = runtime(args, refresh=False)
    require_component(rt, args.id)
    values: dict[str, str] = {}
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise WassetteError(f"{pair.split('=')[0]!r}: expected KEY=VALUE")
        values[key] = value
    keys = rt.secrets.set(args.id, values)
    rt.audit.record("secret_set", component=args.id, by="cli", keys=keys)
    emit({"status": "secrets set successfully", "component_id": args.id, "keys": keys}, args.output_format)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    rt = runtime(args, refresh=False)
    keys = rt.secrets.delete(args.id, args.keys)
    rt.audit.record("secret_deleted", component=args.id, by="cli", keys=keys)
    emit(
        {"status": "secrets deleted successfully", "component_id": args.id, "keys": keys}, args.output_format
    )
    return 0
