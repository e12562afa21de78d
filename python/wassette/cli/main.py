"""The `wassette` command: the CLI tree of Wassette 0.8, on the same runtime
functions the MCP server uses. Each top-level command lives in its own module
under cli/commands/, imported only when that command runs (`wassette run`
starts every MCP session a client opens: it builds and imports nothing else).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from wassette import __version__
from wassette.cli.options import parents
from wassette.runtime.errors import WassetteError

Handler = Callable[[argparse.Namespace], int]

# Each top-level command: the module and function that add its parser, in
# the order `wassette --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("serve", "add_run"),
    "serve": ("serve", "add_serve"),
    "component": ("component", "add"),
    "inspect": ("inspect", "add"),
    "tool": ("tool", "add"),
    "policy": ("policy", "add"),
    "registry": ("registry", "add"),
    "permission": ("permission", "add"),
    "secret": ("secret", "add"),
}
# Commands that serve (they log at info by default).
SERVERS = frozenset({"run", "serve"})


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with `command`, only that top-level command (building
    every command's parser took 10 ms of `wassette run`'s ~80 ms start, paid
    by every MCP client that starts a session)."""
    p = parents()
    parser = argparse.ArgumentParser(
        prog="wassette",
        description="A secure MCP server that runs tools as WebAssembly Components in a deny-by-default sandbox.",
        parents=[p.dirs],
    )
    parser.add_argument("--version", action="version", version=f"wassette {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, function) in COMMANDS.items():
        if command is None or name == command:
            add = getattr(importlib.import_module(f"wassette.cli.commands.{module}"), function)
            add(sub, p)
    return parser


def _configure_logging(default: str) -> None:
    level_name = (os.environ.get("WASSETTE_LOG") or os.environ.get("RUST_LOG") or default).split(",")[0]
    level = getattr(logging, level_name.strip().upper(), logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # `wassette run ...` needs only the `run` parser; anything else (options
    # first, --help, a typo) gets the whole CLI.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    _configure_logging("info" if args.command in SERVERS else "warning")
    try:
        return handler(args)
    except WassetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
