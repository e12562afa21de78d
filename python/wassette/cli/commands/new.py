"""`wassette new LANGUAGE NAME`: a component project ready to build — a WIT
world, its function in the language, a build script with the language's
standard tool, a starting policy, recorded test cases and a README
(the templates: distribution/projects.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wassette.cli.options import Parents
from wassette.cli.output import emit
from wassette.distribution.projects import LANGUAGES, language_of, name_problem, render, valid_name
from wassette.runtime.errors import WassetteError


def add(sub: Any, p: Parents) -> None:
    new = sub.add_parser(
        "new",
        parents=[p.out],
        help="start a component project: WIT world, source, build script, policy, test cases",
    )
    new.add_argument(
        "language",
        metavar="LANGUAGE",
        help="rust, python, javascript, typescript, c or go (also: rs, py, js, ts)",
    )
    new.add_argument("name", metavar="NAME", help="the component's name: lower-case words joined by '-'")
    new.add_argument(
        "--dir", metavar="DIR", help="where to make it (default: ./NAME; must not exist, or be empty)"
    )
    new.set_defaults(handler=cmd_new)


def cmd_new(args: argparse.Namespace) -> int:
    language = language_of(args.language)
    if language is None:
        known = ", ".join(LANGUAGES)
        raise WassetteError(
            f"no template for {args.language!r}: the languages are {known} (others: see docs/writing-components.md)"
        )
    name = args.name
    if not valid_name(name):
        raise WassetteError(name_problem(name))
    target = Path(args.dir) if args.dir else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise WassetteError(f"{target} exists and is not an empty directory: nothing was written")
    files = render(language, name)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if path.name == "build.sh":
            path.chmod(0o755)
    emit(
        {
            "created": str(target),
            "language": language,
            "files": sorted(files),
            "next": [f"cd {target}", "bash build.sh", f"wassette component test {name}.wasm"],
        },
        args.output_format,
    )
    return 0
