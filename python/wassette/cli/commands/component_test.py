"""`wassette component test <wasm|id> [--case FILE]`: a component's tools
against recorded cases (runtime/cases.py), in a runtime of its own (a
temporary component directory, the shared compiled cache), with a pass/fail
table and exit status 1 when any case fails: usable in a component's CI."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError

# Next to a component, the cases file found without --case.
DEFAULT_CASES = "wassette-cases.yaml"


def add_parser(csub: Any, p: Any) -> None:
    from wassette.cli.output import FORMATS

    test = csub.add_parser(
        "test",
        parents=[p.dirs, p.envs],
        help="run a component's tools against recorded cases (arguments, expected result or error, policy)",
    )
    test.add_argument("component", help="a .wasm file (or file:// URI), or the id of a loaded component")
    test.add_argument(
        "--case",
        metavar="FILE",
        help=f"the cases (YAML); default: {DEFAULT_CASES} next to the .wasm, else only check that it loads",
    )
    # Its own -o (a table by default): the shared option's default is every command's.
    test.add_argument(
        "-o", "--output-format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    test.set_defaults(handler=cmd_test)


def cmd_test(args: argparse.Namespace) -> int:
    from wassette.cli.common import settings
    from wassette.runtime import cases as cases_mod
    from wassette.runtime.install import Package
    from wassette.runtime.runtime import Runtime

    base = settings(args)
    cid, wasm, origin = _component(args.component, base)
    case_file = Path(args.case) if args.case else (origin.parent / DEFAULT_CASES if origin else None)
    cases: list[cases_mod.Case] = []
    default_policy: dict[str, Any] | None = None
    if case_file is not None and (args.case or case_file.is_file()):
        cases, default_policy = cases_mod.load(case_file)
    with tempfile.TemporaryDirectory(prefix="wassette-test-") as tmp:
        root = Path(tmp)
        own = base._replace(
            component_dir=root / "components",
            secrets_dir=root / "secrets",
            data_dir=root / "data",
            state=None,
        )
        rt = Runtime(own)
        report = rt.install(Package(cid, wasm, origin.as_uri() if origin else f"component {cid}"))

        def call(case: cases_mod.Case, policy: dict[str, Any] | None) -> Any:
            import yaml

            path = rt.permissions.path(cid)
            if policy is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(yaml.safe_dump(policy), encoding="utf-8")
            return rt.call_tool(case.tool, case.arguments)

        try:
            outcomes = cases_mod.run(cases, default_policy, call)
        finally:
            # Its audit log lives in the temporary directory: written out
            # before the directory goes (the writer thread would race it).
            rt.close()
    rows = [o.to_json() for o in outcomes] or [
        {
            "case": "loads",
            "tool": ", ".join(report.tools),
            "outcome": "PASS",
            "detail": "compiled; no cases",
            "ms": 0,
        }
    ]
    emit(rows, args.output_format, columns=["case", "tool", "outcome", "detail", "ms"])
    failed = sum(not o.passed for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _component(given: str, base: Any) -> tuple[str, bytes, Path | None]:
    """(id, bytes, file) of a .wasm path or file:// URI, or of a loaded component."""
    path = Path(unquote(urlsplit(given).path)) if given.startswith("file://") else Path(given)
    if path.suffix == ".wasm" or path.is_file():
        try:
            wasm = path.read_bytes()
        except OSError as e:
            raise WassetteError(f"cannot read {path}: {e.strerror}") from None
        stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip(".-") or "component"
        return stem[:128], wasm, path.resolve()
    from wassette.runtime.store import ComponentStore

    return given, ComponentStore(base.component_dir).read_wasm(given), None
