"""`wassette policy get|attach|accept|schema`."""

from __future__ import annotations

import argparse
from typing import Any

from wassette.cli.common import runtime
from wassette.cli.options import Parents, group, with_id
from wassette.cli.output import emit


def add(sub: Any, p: Parents) -> None:
    psub = group(sub, "policy", "show or attach a component's policy")
    pget = with_id(psub.add_parser("get", parents=[p.dirs, p.out], help="show the policy of a component"))
    pget.set_defaults(handler=cmd_get)
    from wassette.cli.commands import policy_attach

    policy_attach.add(psub, p)
    paccept = with_id(
        psub.add_parser(
            "accept",
            parents=[p.dirs, p.out],
            help="apply the policy a component shipped with (see `component load`)",
        )
    )
    paccept.set_defaults(handler=cmd_accept)
    pschema = psub.add_parser("schema", help="print the JSON Schema of policy.yaml")
    pschema.set_defaults(handler=cmd_schema)
    from wassette.cli.commands import policy_learn

    policy_learn.add(psub, p)


def cmd_get(args: argparse.Namespace) -> int:
    policy = runtime(args, refresh=False).permissions.get(args.id)
    if args.output_format == "table":
        rows = [
            *({"kind": "storage", "rule": r.uri, "access": ",".join(r.access)} for r in policy.storage_allow),
            *({"kind": "storage", "rule": r.uri, "access": "deny"} for r in policy.storage_deny),
            *({"kind": "network", "rule": r.text, "access": "allow"} for r in policy.network_allow),
            *({"kind": "network", "rule": r.text, "access": "deny"} for r in policy.network_deny),
            *({"kind": "environment", "rule": r.key, "access": "allow"} for r in policy.env_allow),
            *({"kind": "environment", "rule": r.key, "access": "deny"} for r in policy.env_deny),
        ]
        emit(rows, "table", columns=["kind", "rule", "access"])
    else:
        emit(policy.document, args.output_format)
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    emit(runtime(args, refresh=False).permissions.accept_pending(args.id), args.output_format)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from wassette.runtime.policy import schema_text

    print(schema_text(), end="")
    return 0
