"""`wassette policy learn` and `wassette policy diff`: the least policy a
component needs, from what it tried (runtime/learn.py), and what changes
between two policies (runtime/policy_diff.py). Neither changes anything: a
person applies a proposal with `wassette policy attach`."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from wassette.cli.options import Parents, with_id
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError

_FORMATS = ("text", "json", "yaml")


def add(psub: Any, p: Parents) -> None:
    learn = with_id(
        psub.add_parser(
            "learn",
            parents=[p.dirs, p.envs],
            help="propose the least policy for what a component tried (printed, never applied)",
        )
    )
    learn.add_argument(
        "--from-audit", action="store_true", help="learn from the refusals the audit log recorded"
    )
    learn.add_argument(
        "--cases",
        metavar="FILE",
        help="run these recorded cases (the `component test` format) in a learning sandbox",
    )
    learn.add_argument(
        "--since",
        metavar="TIME",
        help="with --from-audit: only records after this time (ISO 8601, or 30m, 2h, 7d)",
    )
    learn.add_argument(
        "-o",
        "--output-format",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml: the policy on stdout, the diff on stderr (default); json: everything on stdout",
    )
    learn.set_defaults(handler=cmd_learn)
    diff = with_id(
        psub.add_parser(
            "diff",
            parents=[p.dirs],
            help="show what a policy file adds, removes, widens or narrows against a component's policy",
        )
    )
    diff.add_argument(
        "file",
        help="path or file:// URI of a policy.yaml, an https:// or oci:// one (verified as `policy attach` "
        "verifies it), or `pending` for a shipped one",
    )
    diff.add_argument(
        "--digest", metavar="SHA256", help="the sha256 a remote policy must have (as for `policy attach`)"
    )
    diff.add_argument(
        "-o",
        "--output-format",
        "--output",
        choices=_FORMATS,
        default="text",
        help="output format (default: text)",
    )
    diff.set_defaults(handler=cmd_diff)


def _policy_file(given: str) -> Path:
    if not given.startswith("file://"):
        return Path(given)
    from wassette.distribution.sources import local_path

    path = local_path(given)
    if path is None:
        raise WassetteError(f"{given!r}: give a local path or file:// URI")
    return Path(path)


def cmd_diff(args: argparse.Namespace) -> int:
    from wassette.cli.common import runtime
    from wassette.runtime.policy_diff import diff

    rt = runtime(args, refresh=False)
    current = rt.permissions.get(args.id)
    if args.file == "pending":
        proposed = rt.permissions.pending(args.id)
        if proposed is None:
            raise WassetteError(f"component {args.id} has no policy waiting for acceptance")
    else:
        proposed = _proposed(args, rt)
    changes = diff(current, proposed, base=rt.settings.storage_base, defaults=_defaults(rt))
    if args.output_format == "text":
        print("\n".join(changes.lines()))
    else:
        emit({"component_id": args.id, **changes.to_json()}, args.output_format)
    return 0


def _proposed(args: argparse.Namespace, rt: Any) -> Any:
    """The policy to compare: a local file, or a remote one verified as
    `policy attach` would verify it (what the diff shows is what attach would take)."""
    from wassette.distribution.remote_policy import fetch_policy, is_remote
    from wassette.runtime import policy as policy_mod

    if not is_remote(args.file):
        if args.digest:
            raise WassetteError("--digest applies to an https:// or oci:// policy")
        return policy_mod.load_file(_policy_file(args.file))
    from wassette.distribution.sources import FetchOptions

    remote = fetch_policy(args.file, rt.settings, FetchOptions(digest=args.digest))
    for warning in remote.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return remote.policy


def _defaults(rt: Any) -> Any:
    from wassette.runtime.policy import Limits

    return Limits(memory_bytes=rt.settings.memory_limit_bytes, timeout_ms=rt.settings.timeout_ms)


def cmd_learn(args: argparse.Namespace) -> int:
    from wassette.cli.common import require_component, runtime
    from wassette.runtime import learn as learn_mod
    from wassette.runtime import policy as policy_mod
    from wassette.runtime.policy_diff import diff

    if not args.from_audit and not args.cases:
        raise WassetteError("say what to learn from: --from-audit, --cases FILE, or both")
    if args.since and not args.from_audit:
        raise WassetteError("--since applies to --from-audit")
    rt = runtime(args, refresh=False)
    require_component(rt, args.id)
    current = rt.permissions.get(args.id)
    carried = current.document
    grants = learn_mod.Grants()
    report: dict[str, Any] = {"component_id": args.id}
    stopped: list[str] = []
    if args.from_audit:
        since = learn_mod.parse_since(args.since) if args.since else None
        records = rt.audit_records(1_000_000, component=args.id)
        report["audit_denials"], stopped = learn_mod.from_audit(records, grants, since)
    results: tuple[Any, ...] = ()
    env: list[str] = []
    if args.cases:
        learning, outcomes = _learn_from_cases(args, rt, carried, grants)
        results, env = learning.results, list(learning.env)
        report["rounds"], report["settled"] = learning.rounds, learning.settled
        report["cases"] = outcomes
    effective = rt.effective_policy(args.id)
    proposed_doc = learn_mod.proposal(
        grants,
        carried=carried,
        env=env,
        base=rt.settings.storage_base,
        results=results,
        stopped=stopped,
        current_limits=(int(effective["memory_limit_bytes"]), int(effective["timeout_ms"])),
        description=f"learned by `wassette policy learn` for {args.id}; review before attaching",
    )
    proposed = policy_mod.validate(proposed_doc, source="the learned policy")
    changes = diff(current, proposed, base=rt.settings.storage_base, defaults=_defaults(rt))
    report["unlearned"] = [f"{what}: {why}" for what, why in sorted(grants.unlearnable.items())]
    report["observed"] = _observed(results)
    if args.output_format == "json":
        emit({**report, "policy": proposed.document, "diff": changes.to_json()}, "json")
        return 0
    print(policy_mod.dump(proposed), end="")
    err = sys.stderr
    print(f"# against the policy in force for {args.id}:", file=err)
    for line in changes.lines():
        print(f"#   {line}", file=err)
    for line in report["unlearned"]:
        print(f"# not learned: {line}", file=err)
    for outcome in report.get("cases", []):
        print(f"# case {outcome['case']}: {outcome['outcome']} {outcome['detail']}", file=err)
    if args.cases and not report["settled"]:
        print(f"# warning: still refused new accesses after {report['rounds']} rounds", file=err)
    print(f"# nothing was applied; to apply it: wassette policy attach {args.id} FILE", file=err)
    return 0


def _observed(results: Any) -> dict[str, Any]:
    """What the cases' last learning round reached (as `tool invoke --trace` shows it)."""
    return {
        "memory_bytes": max((r.memory_bytes for r in results), default=0),
        "duration_ms": round(max((r.duration_ms for r in results), default=0.0), 1),
        "storage": sorted({str(a["resource"]) for r in results for a in r.accesses}),
        "network": sorted({f"{e['transport']} {e['host']}:{e['port']}" for r in results for e in r.egress}),
    }


def _env_candidates(args: argparse.Namespace, rt: Any, current: Any) -> list[str]:
    """The keys offered to the learning runs: those given with --env and
    --env-file, and those the current policy grants by name (with a value)."""
    from wassette.runtime.config import read_env_file

    keys = [item.partition("=")[0] for item in args.env or ()]
    if args.env_file:
        keys += list(read_env_file(Path(args.env_file)))
    keys += [r.key for r in current.env_allow if not r.key.endswith("*") and r.key in rt.settings.environment]
    return list(dict.fromkeys(k for k in keys if k))


def _learn_from_cases(args: argparse.Namespace, rt: Any, carried: Any, grants: Any) -> tuple[Any, list[Any]]:
    """Runs the learning rounds in a runtime of its own (a temporary
    component directory, audit log and no secrets: nothing of the user's
    state is touched), then every case under the proposal."""
    from wassette.runtime import cases as cases_mod
    from wassette.runtime.runtime import Runtime

    cases, _ = cases_mod.load(Path(args.cases))
    cid = args.id
    wasm = rt.store.read_wasm(cid)
    current = rt.permissions.get(cid)
    env = _env_candidates(args, rt, current)
    with tempfile.TemporaryDirectory(prefix="wassette-learn-") as tmp:
        root = Path(tmp)
        own = rt.settings._replace(
            component_dir=root / "components",
            secrets_dir=root / "secrets",
            data_dir=root / "data",
            state=None,
        )
        sandbox = Runtime(own)
        try:
            return _learn_in(sandbox, cid, wasm, cases, env, carried, grants, rt.settings.storage_base)
        finally:
            # Its audit log lives in the temporary directory: written out
            # before the directory goes (the writer thread would race it).
            sandbox.close()


def _learn_in(
    sandbox: Any, cid: str, wasm: bytes, cases: Any, env: list[str], carried: Any, grants: Any, base: Path
) -> tuple[Any, list[Any]]:
    from wassette.runtime import cases as cases_mod
    from wassette.runtime import learn as learn_mod
    from wassette.runtime import policy as policy_mod
    from wassette.runtime.install import Package
    from wassette.runtime.store import write_atomic

    sandbox.install(Package(cid, wasm, f"learning copy of {cid}"))

    def call(case: cases_mod.Case, document: dict[str, Any]) -> Any:
        # A new file (a new inode) each time: the policy cache sees every change.
        policy = policy_mod.validate(document, source="the learning policy")
        write_atomic(sandbox.permissions.path(cid), policy_mod.dump(policy).encode(), durable=False)
        return sandbox.call_tool(case.tool, case.arguments)

    learning = learn_mod.learn(call, cases, carried=carried, grants=grants, env=env)
    proposed = learn_mod.proposal(
        learning.grants, carried=carried, env=learning.env, base=base, results=learning.results
    )
    outcomes = [o.to_json() for o in cases_mod.run(cases, None, lambda case, _: call(case, proposed))]
    return learning, outcomes
