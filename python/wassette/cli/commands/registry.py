"""`wassette registry search|get`: the component catalog."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wassette.cli.common import runtime
from wassette.cli.options import Parents, group
from wassette.cli.output import emit


def add(sub: Any, p: Parents) -> None:
    rgsub = group(sub, "registry", "search the component catalog, load by name")
    rsearch = rgsub.add_parser(
        "search", parents=[p.dirs, p.out], help="search the catalog by name or description"
    )
    rsearch.add_argument("query", nargs="*", help="words to look for (all entries without)")
    rsearch.set_defaults(handler=cmd_search)
    rget = rgsub.add_parser(
        "get", parents=[p.dirs, p.out, p.reg, p.loadopts], help="load a catalog component by name"
    )
    rget.add_argument("name", help="catalog name (see `wassette registry search`)")
    rget.set_defaults(handler=cmd_get)


def _entries(args: argparse.Namespace) -> Any:
    from wassette.distribution import catalog

    entries, warnings = catalog.load(runtime(args, refresh=False).settings)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return entries


def cmd_search(args: argparse.Namespace) -> int:
    from wassette.distribution import catalog

    rows = [e.to_json() for e in catalog.search(" ".join(args.query), _entries(args))]
    emit(rows, args.output_format, columns=["name", "description", "uri"])
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from wassette.cli.commands.component import load_and_report
    from wassette.distribution import catalog

    return load_and_report(args, catalog.get(args.name, _entries(args)).uri)
