"""`wassette permission grant|revoke|reset`."""

from __future__ import annotations

import argparse
from typing import Any

from wassette.cli.common import runtime
from wassette.cli.options import Parents, group, with_id
from wassette.cli.output import emit

# What can be granted: the kind, its argument, and their help.
GRANTS = (
    ("storage", "uri", "allow a path: fs:///abs/dir, fs://rel/**", "fs:// URI of a file, directory or glob"),
    (
        "network",
        "host",
        "allow a host: api.x.com, *.x.com, https://x:8443, 10.0.0.0/8",
        "host, *.wildcard, host:port, scheme://host[:port], IP address or CIDR",
    ),
    (
        "environment-variable",
        "key",
        "allow an environment variable (or PREFIX_*)",
        "variable name, or a PREFIX_* glob",
    ),
    (
        "memory",
        "limit",
        "set the memory limit: 512Mi, 1Gi, bytes",
        "memory size: 512Mi, 1Gi, 2048Ki or bytes",
    ),
)


def add(sub: Any, p: Parents) -> None:
    permsub = group(sub, "permission", "grant, revoke or reset permissions")
    gsub = group(permsub, "grant", "grant a permission", dest="kind", metavar="KIND")
    for kind, arg, helptext, arghelp in GRANTS:
        g = with_id(gsub.add_parser(kind, parents=[p.dirs, p.out], help=helptext))
        g.add_argument(arg, help=arghelp)
        if kind == "storage":
            g.add_argument("--access", required=True, help="read, write or read,write")
        g.set_defaults(handler=cmd_grant)
    rsub = group(permsub, "revoke", "revoke a permission", dest="kind", metavar="KIND")
    for kind, arg, helptext in (
        ("storage", "uri", "remove all access to an fs:// URI"),
        ("network", "host", "remove a host"),
        ("environment-variable", "key", "remove an environment variable"),
    ):
        r = with_id(rsub.add_parser(kind, parents=[p.dirs, p.out], help=helptext))
        r.add_argument(arg, help=f"the {arg} exactly as granted")
        r.set_defaults(handler=cmd_revoke)
    reset = with_id(
        permsub.add_parser("reset", parents=[p.dirs, p.out], help="remove every permission of a component")
    )
    reset.set_defaults(handler=cmd_reset)


# Each kind: the Permissions method suffix and the argument it takes.
_KINDS = {
    "storage": ("storage", "uri"),
    "network": ("network", "host"),
    "environment-variable": ("environment", "key"),
    "memory": ("memory", "limit"),
}


def _change(args: argparse.Namespace, verb: str) -> int:
    suffix, arg = _KINDS[args.kind]
    change = getattr(runtime(args, refresh=False).permissions, f"{verb}_{suffix}")
    extra = (
        [[a.strip() for a in args.access.split(",") if a.strip()]] if verb == "grant" and arg == "uri" else []
    )
    emit(change(args.id, getattr(args, arg), *extra), args.output_format)
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    return _change(args, "grant")


def cmd_revoke(args: argparse.Namespace) -> int:
    return _change(args, "revoke")


def cmd_reset(args: argparse.Namespace) -> int:
    emit(runtime(args, refresh=False).permissions.reset(args.id), args.output_format)
    return 0
