"""`wassette new LANGUAGE NAME`: a component project ready to build — a WIT
world, its function in the language, a build script with the language's
standard tool, a starting policy, recorded test cases and a README.

The templates are files of the package (wassette/templates/: `common/` for
every language, one folder per language), with `{{name}}`-style fields; a
file named `__name__.*` takes the project's name, `gitignore` is `.gitignore`,
and `.tmpl` is dropped (a template of Python source is no module of ours).
"""

from __future__ import annotations

import argparse
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from wassette.cli.options import Parents
from wassette.cli.output import emit
from wassette.runtime.errors import WassetteError

# A WIT identifier (the world's name), also a crate, file and component id.
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*")
MAX_NAME = 64

LANGUAGES: dict[str, dict[str, str]] = {
    "rust": {
        "language": "Rust",
        "source": "src/lib.rs",
        "build_line": "cargo build --release --target wasm32-wasip2 (wit-bindgen)",
    },
    "python": {
        "language": "Python",
        "source": "app.py",
        "build_line": "componentize-py (pip install componentize-py)",
    },
    "javascript": {
        "language": "JavaScript",
        "source": "{{name}}.js",
        "build_line": "jco componentize (npm install @bytecodealliance/jco)",
    },
}
ALIASES = {"js": "javascript", "py": "python", "rs": "rust"}
# Where each common file goes in the project.
COMMON = {"README.md": "README.md", "world.wit": "wit/world.wit", "policy.yaml": "policy.yaml",
          "wassette-cases.yaml": "wassette-cases.yaml"}  # fmt: skip


def add(sub: Any, p: Parents) -> None:
    new = sub.add_parser(
        "new",
        parents=[p.out],
        help="start a component project: WIT world, source, build script, policy, test cases",
    )
    new.add_argument("language", metavar="LANGUAGE", help="rust, python or javascript (also: rs, py, js)")
    new.add_argument("name", metavar="NAME", help="the component's name: lower-case words joined by '-'")
    new.add_argument(
        "--dir", metavar="DIR", help="where to make it (default: ./NAME; must not exist, or be empty)"
    )
    new.set_defaults(handler=cmd_new)


def cmd_new(args: argparse.Namespace) -> int:
    language = ALIASES.get(args.language, args.language)
    if language not in LANGUAGES:
        known = ", ".join(LANGUAGES)
        raise WassetteError(
            f"no template for {args.language!r}: the languages are {known} (Go and C: see docs/writing-components.md)"
        )
    name = args.name
    if len(name) > MAX_NAME or not NAME.fullmatch(name):
        raise WassetteError(
            f"{name!r} is not a component name: lower-case letters and digits, words joined by '-', "
            f"starting with a letter, at most {MAX_NAME} characters (e.g. weather-tool)"
        )
    target = Path(args.dir) if args.dir else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise WassetteError(f"{target} exists and is not an empty directory: nothing was written")
    fields = {"name": name, "snake": name.replace("-", "_")}
    fields.update({k: _fill(v, fields) for k, v in LANGUAGES[language].items()})
    files = _render(language, fields)
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


def _render(language: str, fields: dict[str, str]) -> dict[str, str]:
    """The project's files: relative path -> text."""
    root = resources.files("wassette") / "templates"
    out: dict[str, str] = {}
    for source, target in COMMON.items():
        out[target] = _fill((root / "common" / source).read_text(encoding="utf-8"), fields)
    for relative, item in _walk(root / language, ""):
        target = relative.replace("__name__", fields["name"]).removesuffix(".tmpl")
        if target == "gitignore":
            target = ".gitignore"
        out[target] = _fill(item.read_text(encoding="utf-8"), fields)
    return out


def _walk(folder: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for item in folder.iterdir():
        if item.name == "__pycache__":
            continue
        path = f"{prefix}{item.name}"
        found += _walk(item, f"{path}/") if item.is_dir() else [(path, item)]
    return found


def _fill(text: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", value)
    return text
