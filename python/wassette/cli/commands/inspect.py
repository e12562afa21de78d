"""`wassette inspect ID|FILE`: a component's tools and their schemas."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wassette.cli.common import runtime, tool_json
from wassette.cli.options import Parents
from wassette.cli.output import emit


def add(sub: Any, p: Parents) -> None:
    inspect = sub.add_parser(
        "inspect", parents=[p.dirs, p.out], help="show a component's tools and their schemas"
    )
    inspect.add_argument(
        "id",
        metavar="ID|FILE",
        help="id of a loaded component, or a component to inspect without loading it: "
        "a .wasm path, file://, https:// or oci:// URI",
    )
    inspect.set_defaults(handler=cmd_inspect)


def source_of(target: str) -> str | None:
    """The URI `inspect` should fetch, or None when `target` is a component id
    (an id never contains `/` or `://`, nor ends in `.wasm`)."""
    from pathlib import Path

    from wassette.distribution.reference import looks_like_reference

    if "://" in target:
        return target
    path = Path(target).expanduser()
    if path.exists() or (("/" in target or target.endswith(".wasm")) and not looks_like_reference(target)):
        return path.absolute().as_uri()
    return target if looks_like_reference(target) else None


def cmd_inspect(args: argparse.Namespace) -> int:
    source = source_of(args.id)
    if source is not None:
        from wassette.distribution.loading import inspect_source

        catalog = inspect_source(runtime(args, refresh=False), source)
        for _cid, export, why in catalog.skipped:
            print(f"warning: export {export} is not offered as a tool: {why}", file=sys.stderr)
        tools = [tool_json(t) for t in sorted(catalog.tools.values(), key=lambda t: t.name)]
    else:
        tools = [tool_json(t) for t in runtime(args).component_tools(args.id)]
    emit(tools, args.output_format, columns=["name", "export", "description"])
    return 0
