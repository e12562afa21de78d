"""`wassette policy attach ID FILE|https://...|oci://...`: a policy from a file,
or from elsewhere verified first (distribution/remote_policy.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wassette.cli.common import fetch_options, runtime
from wassette.cli.options import Parents, with_id
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError


def add(psub: Any, p: Parents) -> None:
    pattach = with_id(
        psub.add_parser(
            "attach",
            parents=[p.dirs, p.out, p.reg],
            help="install a policy for a component: a file, or https:// or oci:// verified first",
        )
    )
    pattach.add_argument(
        "file",
        metavar="SOURCE",
        help="path (or file:// URI) of a policy.yaml, https://host/policy.yaml, or "
        "oci://registry/repository:tag (an artifact with a policy layer)",
    )
    pattach.add_argument(
        "--digest",
        metavar="sha256:HEX",
        help="the expected sha256 of a remote policy (OCI: of the manifest or the policy layer); "
        "other content is refused, and a pinned policy needs no signature",
    )
    pattach.set_defaults(handler=cmd_attach)


def cmd_attach(args: argparse.Namespace) -> int:
    from wassette.distribution.remote_policy import is_remote

    if is_remote(args.file):
        return _attach_remote(args)
    if args.digest is not None:
        raise WassetteError("--digest is for https:// and oci:// policies; a local file is taken as it is")
    from wassette.distribution.sources import local_path

    source = local_path(args.file) if args.file.startswith("file://") else Path(args.file)
    if source is None:
        raise WassetteError(f"{args.file!r}: give a local path or file:// URI")
    emit(runtime(args, refresh=False).permissions.attach(args.id, source), args.output_format)
    return 0


def _attach_remote(args: argparse.Namespace) -> int:
    import dataclasses

    from wassette.distribution.remote_policy import fetch_policy

    options = dataclasses.replace(fetch_options(args), digest=args.digest)
    rt = runtime(args, refresh=False)
    if not rt.store.exists(args.id):  # before any download
        from wassette.runtime.errors import UnknownComponentError

        raise UnknownComponentError(args.id)
    fetched = fetch_policy(args.file, rt.settings, options)
    for w in fetched.warnings:
        print(f"warning: {w}", file=sys.stderr)
    result = rt.permissions.attach_policy(args.id, fetched.policy, fetched.source, verified=fetched.verified)
    emit(result, args.output_format)
    return 0
