"""`wassette console`: the web console on a loopback port (for a stdio
server; `wassette serve --console` mounts the same pages in the server)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wassette.cli.options import Parents


def add(sub: Any, p: Parents) -> None:
    console = sub.add_parser(
        "console",
        parents=[p.dirs],
        help="open the web console (components, audit log, grants) on a loopback port",
    )
    console.add_argument("--port", type=int, default=0, help="the loopback port (default: any free one)")
    console.set_defaults(handler=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    from wassette.cli.common import runtime
    from wassette.console.standalone import serve_console

    def announce(url: str) -> None:
        print(f"wassette console at {url}", flush=True)
        print("(open it in a browser; Ctrl-C stops the console)", file=sys.stderr, flush=True)

    serve_console(runtime(args), args.port, announce)
    return 0
