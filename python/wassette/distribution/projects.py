"""Component projects as `wassette new` makes them: the templates of each
language (wassette/templates/: `common/` for every language, one folder per
language) filled in for a name. The CLI writes them out; the server's
authoring prompts show them to agents.

Fields are `{{name}}`-style; a file named `__name__.*` takes the project's
name, `gitignore` is `.gitignore`, and `.tmpl` is dropped (a template of
Python source is no module of ours).
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable

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
    "typescript": {
        "language": "TypeScript",
        "source": "{{name}}.ts",
        "build_line": "tsc checks it, jco componentize builds it (npm install: package.json pins both)",
    },
    "c": {
        "language": "C",
        "source": "{{name}}.c",
        "build_line": "wit-bindgen c, clang + wasi-libc, wasm-tools component new + the preview1 adapter",
    },
    "go": {
        "language": "Go",
        "source": "main.go",
        "build_line": "go build (Go 1.24+, GOOS=wasip1), wasm-tools component new with adapter/",
    },
}
ALIASES = {"js": "javascript", "py": "python", "rs": "rust", "ts": "typescript"}
# Where each common file goes in the project.
COMMON = {"README.md": "README.md", "world.wit": "wit/world.wit", "policy.yaml": "policy.yaml",
          "wassette-cases.yaml": "wassette-cases.yaml"}  # fmt: skip


def language_of(word: str) -> str | None:
    """The language a word names (an alias too), if it has a template."""
    language = ALIASES.get(word, word)
    return language if language in LANGUAGES else None


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and NAME.fullmatch(name) is not None


def name_problem(name: str) -> str:
    return (
        f"{name!r} is not a component name: lower-case letters and digits, words joined by '-', "
        f"starting with a letter, at most {MAX_NAME} characters (e.g. weather-tool)"
    )


def fields_of(language: str, name: str) -> dict[str, str]:
    fields = {"name": name, "snake": name.replace("-", "_")}
    fields.update({k: fill(v, fields) for k, v in LANGUAGES[language].items()})
    return fields


def render(language: str, name: str) -> dict[str, str]:
    """The project's files for `name`: relative path -> text."""
    return render_fields(language, fields_of(language, name))


def render_fields(language: str, fields: dict[str, str]) -> dict[str, str]:
    """The project's files: relative path -> text."""
    root = resources.files("wassette") / "templates"
    out: dict[str, str] = {}
    for source, target in COMMON.items():
        out[target] = fill((root / "common" / source).read_text(encoding="utf-8"), fields)
    for relative, item in _walk(root / language, ""):
        target = relative.replace("__name__", fields["name"]).removesuffix(".tmpl")
        if target == "gitignore":
            target = ".gitignore"
        out[target] = fill(item.read_text(encoding="utf-8"), fields)
    return out


def _walk(folder: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for item in folder.iterdir():
        if item.name == "__pycache__":
            continue
        path = f"{prefix}{item.name}"
        found += _walk(item, f"{path}/") if item.is_dir() else [(path, item)]
    return found


def fill(text: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", value)
    return text
