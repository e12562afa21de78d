"""The layering written down in docs/architecture.md, checked on every
import statement of the package (lazy ones inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "wassette"

# Layer of a module -> what it may import: module prefixes, or exactly the
# package root (`wassette!`: its version).
ALLOWED: dict[str, tuple[str, ...]] = {
    "wassette.runtime": ("wassette!", "wassette._engine", "wassette.runtime"),
    "wassette.distribution": ("wassette!", "wassette.runtime", "wassette.distribution"),
    "wassette.server.core": (
        "wassette!",
        "wassette._engine",
        "wassette.runtime",
        "wassette.distribution",
        "wassette.server.core",
    ),
    "wassette.server.stdio": ("wassette.runtime", "wassette.server.core"),
    "wassette.server.http": (
        "wassette!",
        "wassette.runtime",
        "wassette.server.core",
        "wassette.server.http",
        "wassette.console",
    ),
    "wassette.console": ("wassette.runtime", "wassette.distribution", "wassette.console"),
    "wassette.cli": ("wassette!", "wassette"),
}
# The MCP SDK and the libraries it is built on: the server speaks the
# protocol itself (the tests use the SDK as client and reference).
FORBIDDEN_EVERYWHERE = ("mcp", "mcp_types", "pydantic", "starlette", "anyio", "sse_starlette")


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def imports(path: Path, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = name.split(".")[: -node.level if path.name != "__init__.py" else len(name.split("."))]
                found.append(".".join([*base, node.module or ""]).rstrip("."))
            elif node.module == "wassette":  # the root: its version, or the engine
                found += ["wassette._engine" if a.name == "_engine" else "wassette" for a in node.names]
            elif node.module:
                found.append(node.module)
    return found


def layer(name: str) -> str | None:
    matches = [prefix for prefix in ALLOWED if name == prefix or name.startswith(prefix + ".")]
    return max(matches, key=len) if matches else None


def permitted(imported: str, allowed: tuple[str, ...]) -> bool:
    for prefix in allowed:
        if prefix.endswith("!"):
            if imported == prefix[:-1]:
                return True
        elif imported == prefix or imported.startswith(prefix + "."):
            return True
    return False


@pytest.mark.parametrize(("name", "path"), modules(), ids=[n for n, _ in modules()])
def test_imports_follow_the_layers(name: str, path: Path) -> None:
    mine = layer(name)
    for imported in imports(path, name):
        assert imported.split(".")[0] not in FORBIDDEN_EVERYWHERE, f"{name} imports {imported}"
        if mine is not None and imported.split(".")[0] == "wassette":
            assert permitted(imported, ALLOWED[mine]), f"{name} ({mine}) may not import {imported}"


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from wassette.server.core.server import McpServer\n    from wassette import _engine\n"
    )
    found = imports(bad, "wassette.runtime.bad")
    assert found == ["wassette.server.core.server", "wassette._engine"]
    assert layer("wassette.runtime.bad") == "wassette.runtime"
    assert not permitted(found[0], ALLOWED["wassette.runtime"]) and permitted(
        found[1], ALLOWED["wassette.runtime"]
    )
    assert not permitted("wassette.server.http.app", ALLOWED["wassette.distribution"])
    assert not permitted("wassette.server.http.guard", ALLOWED["wassette.console"])
