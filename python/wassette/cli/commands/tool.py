"""`wassette tool list|read|invoke`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from wassette.cli.common import runtime, tool_json
from wassette.cli.options import Parents, group
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError


def add(sub: Any, p: Parents) -> None:
    tsub = group(sub, "tool", "list, describe and invoke tools")
    tlist = tsub.add_parser("list", parents=[p.dirs, p.out], help="list every tool of every component")
    tlist.set_defaults(handler=cmd_list)
    tread = tsub.add_parser("read", parents=[p.dirs, p.out], help="show one tool with its schemas")
    tread.add_argument("name", help="tool name")
    tread.set_defaults(handler=cmd_read)
    invoke = tsub.add_parser("invoke", parents=[p.dirs, p.out, p.envs], help="call a tool in the sandbox")
    invoke.add_argument("name", help="tool name")
    invoke.add_argument(
        "--args", default="{}", metavar="JSON", help="arguments as a JSON object, e.g. '{\"a\": 1}'"
    )
    invoke.add_argument(
        "--trace",
        action="store_true",
        help="also show what the call reached and what the sandbox refused (on stderr): paths, "
        "hosts with bytes, environment offered, memory, time",
    )
    invoke.set_defaults(handler=cmd_invoke)


def cmd_list(args: argparse.Namespace) -> int:
    rows = [
        {"name": t.name, "component_id": t.component_id, "description": t.summary}
        for t in runtime(args).tools()
    ]
    emit(rows, args.output_format, columns=["name", "component_id", "description"])
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    emit(tool_json(runtime(args).tool(args.name)), args.output_format)
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as e:
        raise WassetteError(f"--args is not valid JSON: {e}") from None
    if not isinstance(arguments, dict):
        raise WassetteError("--args must be a JSON object, e.g. '{\"a\": 1}'")
    rt = runtime(args)
    result = rt.call_tool(args.name, arguments)
    if args.trace:
        print(trace(rt, result), file=sys.stderr)
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


def trace(rt: Any, result: Any) -> str:
    """What one call reached and was refused, for a person reading it (and
    for the least policy it needs)."""
    lines = [
        f"trace of {result.tool.name} ({result.tool.component_id}): {result.status}, "
        f"{result.duration_ms:.1f} ms, memory {result.memory_bytes / 2**20:.1f} MiB"
    ]
    for a in result.accesses:
        lines.append(f"  allowed  storage  {'+'.join(a['access']):<10} {a['resource']}")
    for e in result.egress:
        size = (
            f"{e['connections']} connection(s), {e['sent']} B out, {e['received']} B in"
            if e.get("sent") is not None
            else f"{e['connections']} connection(s)"
        )
        lines.append(f"  allowed  network  {e['transport']:<10} {e['host']}:{e['port']}  {size}")
    # The names only: values (secrets among them) never go to a terminal.
    offered = sorted(str(pair[0]) for pair in rt.effective_policy(result.tool.component_id).get("env", []))
    if offered:
        lines.append(f"  offered  env      {', '.join(offered)}")
    for d in result.denials:
        lines.append(
            f"  DENIED   {d.get('kind', ''):<8} {d.get('access', ''):<10} {d.get('resource', '')}: {d.get('reason', '')}"
        )
    for f in result.failures:
        lines.append(
            f"  failed   {f.get('kind', ''):<8} {f.get('access', ''):<10} {f.get('resource', '')}: {f.get('reason', '')}"
        )
    if len(lines) == 1:
        lines.append("  (no file, network or environment access: the sandbox had nothing to decide)")
    return "\n".join(lines)
