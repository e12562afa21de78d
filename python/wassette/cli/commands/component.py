"""`wassette component load|verify|publish|unload|list|sync|test`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wassette.cli.common import fetch_options, runtime
from wassette.cli.options import Parents, group, with_id
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError


def add(sub: Any, p: Parents) -> None:
    csub = group(sub, "component", "load, unload and list components")
    load = csub.add_parser(
        "load",
        parents=[p.dirs, p.out, p.reg, p.loadopts],
        help="load a component from a URI (file://, https://, oci://)",
    )
    load.add_argument(
        "uri",
        help="file:///path/tool.wasm, https://host/tool.wasm, oci://registry/repo:tag or registry/repo@sha256:...",
    )
    load.set_defaults(handler=cmd_load)
    verify = csub.add_parser(
        "verify",
        parents=[p.dirs, p.out, p.reg],
        help="show who signed an OCI component and whether that is trusted",
    )
    verify.add_argument("uri", help="oci://registry/repository:tag (or @sha256:...)")
    verify.set_defaults(handler=cmd_verify)
    publish = csub.add_parser(
        "publish", parents=[p.dirs, p.out, p.reg], help="push a component as a wasm OCI artifact"
    )
    publish.add_argument("file", help="the component (.wasm)")
    publish.add_argument("uri", help="oci://registry/repository:tag")
    publish.add_argument("--policy", metavar="FILE", help="a policy.yaml to ship as an extra layer")
    publish.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    publish.set_defaults(handler=cmd_publish)
    unload = with_id(
        csub.add_parser("unload", parents=[p.dirs, p.out], help="unload a component and remove its files")
    )
    unload.set_defaults(handler=cmd_unload)
    lst = csub.add_parser("list", parents=[p.dirs, p.out], help="list loaded components")
    lst.add_argument(
        "--imports",
        action="store_true",
        help="also show each interface a component imports from another, and the loaded "
        "component that exports it (reads the compiled components: slower)",
    )
    lst.set_defaults(handler=cmd_list)
    sync = csub.add_parser(
        "sync",
        parents=[p.dirs, p.out],
        help="load the drop directory's components (NAME.wasm, NAME.policy.yaml), unload those gone from it",
    )
    sync.add_argument(
        "--force", action="store_true", help="reload unchanged files; replace components loaded another way"
    )
    sync.add_argument(
        "--link",
        metavar="WASM",
        help="put a symbolic link to WASM (and its .policy.yaml) in the directory first",
    )
    sync.set_defaults(handler=cmd_sync)
    from wassette.cli.commands.component_test import add_parser

    add_parser(csub, p)


def cmd_load(args: argparse.Namespace) -> int:
    return load_and_report(args, args.uri)


def load_and_report(args: argparse.Namespace, uri: str) -> int:
    """`component load` and `registry get`: progress, the shipped-policy
    question, warnings, the report."""
    from wassette.cli.progress import ProgressPrinter, ask_policy
    from wassette.distribution.loading import load_component
    from wassette.runtime.install import InstallOptions, describe_request

    fetch = fetch_options(args)
    rt = runtime(args)
    accept: Any = bool(args.accept_policy)
    interactive = sys.stdin.isatty() and sys.stderr.isatty() and not args.registry_password_stdin
    if not accept and interactive:
        accept = lambda cid, policy: ask_policy(cid, policy, describe_request(rt, cid, policy))  # noqa: E731
    printer = ProgressPrinter(quiet=args.quiet)
    try:
        report = load_component(
            rt, uri, progress=printer, fetch=fetch, install=InstallOptions(accept_policy=accept)
        )
    finally:
        printer.close()
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    emit(report.to_json(), args.output_format, columns=["status", "id", "tools", "source"])
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from wassette.distribution.sources import verify

    fetch = fetch_options(args)
    result = verify(args.uri, runtime(args, refresh=False).settings, fetch)
    if args.output_format == "table":
        rows = [c.to_json() for c in result.checks]
        emit(rows, "table", columns=["kind", "signer", "trusted", "found", "problem"])
        verdict = result.decision.message or "verified: signed by " + str(result.decision.signer)
        print(f"{result.reference}@{result.manifest_digest}: {verdict}", file=sys.stderr)
    else:
        emit(result.to_json(), args.output_format)
    if not result.decision.ok:
        print(f"error: {result.decision.message}", file=sys.stderr)
        return 1
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wassette.cli.progress import ProgressPrinter
    from wassette.distribution.publish import publish, read_component

    fetch = fetch_options(args)
    rt = runtime(args, refresh=False)
    path = Path(args.file)
    # A valid component? (refused here, before anything is pushed)
    rt.compiler.compile(read_component(path, rt.settings.max_component_bytes), path.name)
    printer = ProgressPrinter(quiet=args.quiet)
    try:
        result = publish(
            path,
            args.uri,
            rt.settings,
            policy_path=Path(args.policy) if args.policy else None,
            options=fetch,
            progress=printer,
        )
    finally:
        printer.close()
    emit(result, args.output_format, columns=["status", "reference", "digest"])
    return 0


def cmd_unload(args: argparse.Namespace) -> int:
    runtime(args).unload_component(args.id)
    emit({"status": "component unloaded successfully", "id": args.id}, args.output_format)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wassette.distribution import local_components

    rt = runtime(args)
    if args.link:
        local_components.link(rt, Path(args.link))
    report = local_components.sync(rt, force=args.force)
    for r in report.refused:
        print(f"warning: {r['file']} refused: {r['reason']}", file=sys.stderr)
    emit(
        report.to_json(), args.output_format, columns=["status", "directory", "loaded", "unloaded", "refused"]
    )
    return 1 if report.refused else 0


def cmd_list(args: argparse.Namespace) -> int:
    rt = runtime(args)
    rows = [c.to_json() for c in rt.components()]
    for row in rows if args.imports else ():
        # What each import of another component's interface is linked to.
        try:
            row["imports"] = rt.links.describe(row["id"])
        except WassetteError as e:
            row["imports"] = f"cannot be read: {e}"
    for cid, why in rt.broken_components().items():
        print(f"warning: component {cid} cannot be loaded: {why}", file=sys.stderr)
    emit(rows, args.output_format, columns=["id", "tools", "source", "sha256"])
    return 0
