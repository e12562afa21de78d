"""The `wassette` command: the CLI tree of Wassette 0.8, on the same runtime
functions the MCP server uses. Each top-level command lives in its own module
under cli/commands/, imported only when that command runs (`wassette run`
starts every MCP session a client opens: it builds and imports nothing else).
"""

from __future__ import annotations

import argparse
import importlib
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
    "new": ("new", "add"),
    "dev": ("dev", "add"),
    "component": ("component", "add"),
    "inspect": ("inspect", "add"),
    "tool": ("tool", "add"),
    "policy": ("policy", "add"),
    "registry": ("registry", "add"),
    "permission": ("permission", "add"),
    "secret": ("secret", "add"),
    "state": ("state", "add"),
    "audit": ("audit", "add"),
    "console": ("console", "add"),
    "completion": ("completion", "add"),
}
# Commands that serve (they log at info by default).
SERVERS = frozenset({"run", "serve"})
# Wassette's flat command names (those of the built-in MCP tools), as articles about it show
# them: each is the hierarchical command it names, not in the main help (docs/cli.md lists them).
ALIASES: dict[str, tuple[str, ...]] = {
    "load-component": ("component", "load"),
    "unload-component": ("component", "unload"),
    "list-components": ("component", "list"),
    "search-components": ("registry", "search"),
    "get-policy": ("policy", "get"),
    "grant-storage-permission": ("permission", "grant", "storage"),
    "grant-network-permission": ("permission", "grant", "network"),
    "grant-environment-variable-permission": ("permission", "grant", "environment-variable"),
    "grant-memory-permission": ("permission", "grant", "memory"),
    "revoke-storage-permission": ("permission", "revoke", "storage"),
    "revoke-network-permission": ("permission", "revoke", "network"),
    "revoke-environment-variable-permission": ("permission", "revoke", "environment-variable"),
    "reset-permission": ("permission", "reset"),
    "test-component": ("component", "test"),
}


def expand_alias(argv: Sequence[str]) -> list[str]:
    """`wassette load-component URI` is `wassette component load URI`; the
    flat form of a storage grant names its access last
    (`grant-storage-permission ID URI read`), as Wassette's articles do."""
    if not argv or argv[0] not in ALIASES:
        return list(argv)
    name, rest = argv[0], list(argv[1:])
    if name == "grant-storage-permission" and "--access" not in rest:
        positional = [i for i, a in enumerate(rest) if not a.startswith("-")]
        if len(positional) == 3:
            rest[positional[2] : positional[2] + 1] = ["--access", rest[positional[2]]]
    return [*ALIASES[name], *rest]


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


def main(argv: Sequence[str] | None = None) -> int:
    if "_ARGCOMPLETE" in os.environ:  # the shell asks what to complete (`wassette completion`)
        from wassette.cli.commands.completion import complete

        complete(build_parser())
    argv = expand_alias(sys.argv[1:] if argv is None else argv)
    # `wassette run ...` needs only the `run` parser; anything else (options
    # first, --help, a typo) gets the whole CLI.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    from wassette.cli import logs

    logs.configure("info" if args.command in SERVERS else "warning")
    try:
        return handler(args)
    except WassetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`wassette ... | head`): no traceback, and no
        # second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
