"""The `wassette` command: the CLI tree of Wassette 0.8, on the same runtime
functions the MCP server uses."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from wassette import __version__
from wassette.cli.output import FORMATS, emit
from wassette.runtime.errors import WassetteError

Handler = Callable[[argparse.Namespace], int]


def _component_dir_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--component-dir",
        "--plugin-dir",
        dest="component_dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="component directory (default: $XDG_DATA_HOME/wassette/components; env WASSETTE_COMPONENT_DIR)",
    )
    return p


def _output_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-o", "--output-format", choices=FORMATS, default="json", help="output format (default: json)"
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    dirs, out = _component_dir_options(), _output_options()
    parser = argparse.ArgumentParser(
        prog="wassette",
        description="A secure MCP server that runs tools as WebAssembly Components in a deny-by-default sandbox.",
        parents=[dirs],
    )
    parser.add_argument("--version", action="version", version=f"wassette {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", parents=[dirs], help="serve MCP over stdio")
    run.add_argument("--disable-builtin-tools", action="store_true", help="offer only component tools")
    run.set_defaults(handler=cmd_run)

    serve = sub.add_parser("serve", parents=[dirs], help="serve MCP (the seed-documented `serve --stdio`)")
    serve.add_argument("--stdio", action="store_true", help="serve over stdio (same as `wassette run`)")
    serve.add_argument("--disable-builtin-tools", action="store_true", help="offer only component tools")
    serve.set_defaults(handler=cmd_serve)

    component = sub.add_parser("component", help="load, unload and list components")
    csub = component.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    load = csub.add_parser("load", parents=[dirs, out], help="load a component from a URI (file://)")
    load.add_argument("uri", help="file:///path/to/tool.wasm")
    load.set_defaults(handler=cmd_component_load)
    unload = csub.add_parser("unload", parents=[dirs, out], help="unload a component and remove its files")
    unload.add_argument("id", help="component id")
    unload.set_defaults(handler=cmd_component_unload)
    lst = csub.add_parser("list", parents=[dirs, out], help="list loaded components")
    lst.set_defaults(handler=cmd_component_list)

    inspect = sub.add_parser(
        "inspect", parents=[dirs, out], help="show a component's tools and their schemas"
    )
    inspect.add_argument("id", help="component id")
    inspect.set_defaults(handler=cmd_inspect)

    tool = sub.add_parser("tool", help="list, describe and invoke tools")
    tsub = tool.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    tlist = tsub.add_parser("list", parents=[dirs, out], help="list every tool of every component")
    tlist.set_defaults(handler=cmd_tool_list)
    tread = tsub.add_parser("read", parents=[dirs, out], help="show one tool with its schemas")
    tread.add_argument("name", help="tool name")
    tread.set_defaults(handler=cmd_tool_read)
    invoke = tsub.add_parser("invoke", parents=[dirs, out], help="call a tool in the sandbox")
    invoke.add_argument("name", help="tool name")
    invoke.add_argument(
        "--args", default="{}", metavar="JSON", help="arguments as a JSON object, e.g. '{\"a\": 1}'"
    )
    invoke.set_defaults(handler=cmd_tool_invoke)
    return parser


# -- helpers -------------------------------------------------------------


def _runtime(args: argparse.Namespace) -> Any:
    from wassette.runtime.config import Settings
    from wassette.runtime.lifecycle import Runtime

    runtime = Runtime(Settings.load(component_dir=getattr(args, "component_dir", None)))
    runtime.refresh()
    return runtime


def _tool_json(tool: Any) -> dict[str, Any]:
    return {
        "name": tool.name,
        "component_id": tool.component_id,
        "export": tool.export,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
    }


def _configure_logging(default: str) -> None:
    level_name = (os.environ.get("WASSETTE_LOG") or os.environ.get("RUST_LOG") or default).split(",")[0]
    level = getattr(logging, level_name.strip().upper(), logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# -- commands ------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from wassette.server.stdio import serve_stdio

    runtime = _runtime(args)
    serve_stdio(runtime, builtin_tools=not args.disable_builtin_tools)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if not args.stdio:
        raise WassetteError("only `wassette serve --stdio` is available in this build; use `wassette run`")
    return cmd_run(args)


def cmd_component_load(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    report = runtime.load_component(args.uri, progress=lambda m: logging.getLogger("wassette").info("%s", m))
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    emit(report.to_json(), args.output_format, columns=["status", "id", "tools"])
    return 0


def cmd_component_unload(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    runtime.unload_component(args.id)
    emit({"status": "component unloaded successfully", "id": args.id}, args.output_format)
    return 0


def cmd_component_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    rows = [c.to_json() for c in runtime.components()]
    for cid, why in runtime.broken_components().items():
        print(f"warning: component {cid} cannot be loaded: {why}", file=sys.stderr)
    emit(rows, args.output_format, columns=["id", "tools", "source", "sha256"])
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    tools = [_tool_json(t) for t in runtime.component_tools(args.id)]
    emit(tools, args.output_format, columns=["name", "export", "description"])
    return 0


def cmd_tool_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    rows = [
        {"name": t.name, "component_id": t.component_id, "description": t.description}
        for t in runtime.tools()
    ]
    emit(rows, args.output_format, columns=["name", "component_id", "description"])
    return 0


def cmd_tool_read(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    emit(_tool_json(runtime.tool(args.name)), args.output_format)
    return 0


def cmd_tool_invoke(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as e:
        raise WassetteError(f"--args is not valid JSON: {e}") from None
    if not isinstance(arguments, dict):
        raise WassetteError("--args must be a JSON object, e.g. '{\"a\": 1}'")
    runtime = _runtime(args)
    result = runtime.call_tool(args.name, arguments)
    for label, data, dropped in (
        ("stdout", result.stdout, result.stdout_dropped),
        ("stderr", result.stderr, result.stderr_dropped),
    ):
        text = data.decode("utf-8", "replace").rstrip("\n")
        if text:
            print("\n".join(f"[guest {label}] {line}" for line in text.split("\n")), file=sys.stderr)
        if dropped:
            print(f"[guest {label}] ... {dropped} more bytes dropped", file=sys.stderr)
    if result.value is not None or not result.is_error:
        emit({"result": result.value}, args.output_format)
    if result.is_error:
        print(f"error: {result.message()}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    _configure_logging("info" if handler in (cmd_run, cmd_serve) else "warning")
    try:
        return handler(args)
    except WassetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
