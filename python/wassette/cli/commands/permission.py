"""`wassette permission grant|revoke|reset`."""

from __future__ import annotations

import argparse
from typing import Any

from wassette.cli.common import runtime
from wassette.cli.options import Parents
from wassette.cli.output import emit


def add(sub: Any, p: Parents) -> None:
    perm = sub.add_parser("permission", help="grant, revoke or reset permissions")
    permsub = perm.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    grant = permsub.add_parser("grant", help="grant a permission")
    gsub = grant.add_subparsers(dest="kind", metavar="KIND", required=True)
    g = gsub.add_parser("storage", parents=[p.dirs, p.out], help="allow a path: fs:///abs/dir, fs://rel/**")
    g.add_argument("id", help="component id")
    g.add_argument("uri", help="fs:// URI of a file, directory or glob")
    g.add_argument("--access", required=True, help="read, write or read,write")
    g.set_defaults(handler=cmd_grant)
    g = gsub.add_parser(
        "network",
        parents=[p.dirs, p.out],
        help="allow a host: api.x.com, *.x.com, https://x:8443, 10.0.0.0/8",
    )
    g.add_argument("id", help="component id")
    g.add_argument("host", help="host, *.wildcard, host:port, scheme://host[:port], IP address or CIDR")
    g.set_defaults(handler=cmd_grant)
    g = gsub.add_parser(
        "environment-variable", parents=[p.dirs, p.out], help="allow an environment variable (or PREFIX_*)"
    )
    g.add_argument("id", help="component id")
    g.add_argument("key", help="variable name, or a PREFIX_* glob")
    g.set_defaults(handler=cmd_grant)
    g = gsub.add_parser("memory", parents=[p.dirs, p.out], help="set the memory limit: 512Mi, 1Gi, bytes")
    g.add_argument("id", help="component id")
    g.add_argument("limit", help="memory size: 512Mi, 1Gi, 2048Ki or bytes")
    g.set_defaults(handler=cmd_grant)
    revoke = permsub.add_parser("revoke", help="revoke a permission")
    rsub = revoke.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, arg, helptext in (
        ("storage", "uri", "remove all access to an fs:// URI"),
        ("network", "host", "remove a host"),
        ("environment-variable", "key", "remove an environment variable"),
    ):
        r = rsub.add_parser(kind, parents=[p.dirs, p.out], help=helptext)
        r.add_argument("id", help="component id")
        r.add_argument(arg, help=f"the {arg} exactly as granted")
        r.set_defaults(handler=cmd_revoke)
    reset = permsub.add_parser(
        "reset", parents=[p.dirs, p.out], help="remove every permission of a component"
    )
    reset.add_argument("id", help="component id")
    reset.set_defaults(handler=cmd_reset)


def cmd_grant(args: argparse.Namespace) -> int:
    perms = runtime(args, refresh=False).permissions
    if args.kind == "storage":
        access = [a.strip() for a in args.access.split(",") if a.strip()]
        result = perms.grant_storage(args.id, args.uri, access)
    elif args.kind == "network":
        result = perms.grant_network(args.id, args.host)
    elif args.kind == "environment-variable":
        result = perms.grant_environment(args.id, args.key)
    else:
        result = perms.grant_memory(args.id, args.limit)
    emit(result, args.output_format)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    perms = runtime(args, refresh=False).permissions
    if args.kind == "storage":
        result = perms.revoke_storage(args.id, args.uri)
    elif args.kind == "network":
        result = perms.revoke_network(args.id, args.host)
    else:
        result = perms.revoke_environment(args.id, args.key)
    emit(result, args.output_format)
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    emit(runtime(args, refresh=False).permissions.reset(args.id), args.output_format)
    return 0
