"""The components every part measures, and the one call made to each.

The same call goes to both servers and to the floor: `arith` (a WAT add), `io`
(C, wasi-libc), `time-server` (JavaScript, StarlingMonkey via jco) and `eval`
(Python, componentize-py). All are built from source by
tests/components/build.py.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Call:
    fixture: str
    tool: str  # the MCP tool name (the same on both servers for these exports)
    arguments: dict[str, Any]
    interface: str | None = None  # the export, for the in-process floor
    function: str = ""


CALLS: dict[str, Call] = {
    "arith": Call("arith", "add", {"a": 1, "b": 2}, None, "add"),
    "io": Call("io", "env-count", {}, None, "env-count"),
    "time-server": Call("time-server", "get-current-time", {}, None, "get-current-time"),
    "eval": Call("eval", "eval", {"req": {"expression": "1+2", "variables": None}}, None, "eval"),
}
FIXTURES = tuple(CALLS)
LABELS = {"arith": "WAT add", "io": "C io", "time-server": "JS time-server", "eval": "Python eval"}
# A component whose tool no copy shares: Wassette 0.8 refuses to call a tool
# name that several components export ("Multiple components found").
UNIQUE = Call("strings", "length", {"s": "hello"}, None, "length")


def build(names: list[str] | None = None) -> dict[str, Path]:
    """Builds (or takes from the fixture cache) the fixture components."""
    spec = importlib.util.spec_from_file_location("fixtures_build", REPO / "tests/components/build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    paths: dict[str, Path] = mod.build(names or [*FIXTURES, UNIQUE.fixture])
    return paths


def component_set(count: int) -> list[tuple[str, str]]:
    """`count` components as (component id, fixture): `strings` (whose tool
    can be called on both servers), then copies of the four fixtures in
    turn with their own ids (arith-1, io-1, time-server-1, eval-1, arith-2, ...)."""
    copies = [(f"{FIXTURES[i % 4]}-{i // 4 + 1}", FIXTURES[i % 4]) for i in range(max(0, count - 1))]
    return [(UNIQUE.fixture, UNIQUE.fixture), *copies] if count else []


def call_for(component_id: str) -> Call:
    """The call made to a component of a set (by the fixture it copies)."""
    if component_id == UNIQUE.fixture:
        return UNIQUE
    return CALLS[component_id if component_id in CALLS else component_id.rsplit("-", 1)[0]]
