"""`wassette inspect FILE`: a component's tools and schemas before loading it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def test_inspect_a_file_without_loading_it(cli, components: dict[str, Path], home: Path) -> None:
    """Path, file:// URI and relative path all show the tools, and nothing is installed."""
    wasm = components["iface"]
    by_path = cli("inspect", str(wasm))
    assert by_path.returncode == 0, by_path.stderr
    tools = json.loads(by_path.stdout)
    assert [t["name"] for t in tools] == ["test_iface_math_double"]
    assert tools[0]["component_id"] == "iface"
    assert tools[0]["inputSchema"]["required"] == ["x"]
    assert json.loads(cli("inspect", wasm.as_uri()).stdout) == tools
    # A relative path is relative to the working directory (the subprocess inherits ours).
    relative = cli("--component-dir", str(home / "elsewhere"), "inspect", os.path.relpath(wasm))
    assert relative.returncode == 0, relative.stderr
    assert json.loads(relative.stdout) == tools
    assert not (home / "data" / "wassette" / "components").exists()
    assert not (home / "elsewhere").exists()

    # Loading it shows the very same tools.
    assert cli("component", "load", wasm.as_uri()).returncode == 0
    assert json.loads(cli("inspect", "iface").stdout) == tools


def test_inspect_file_table_and_yaml(cli, components: dict[str, Path]) -> None:
    r = cli("inspect", str(components["arith"]), "-o", "table")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "EXPORT", "DESCRIPTION"]
    assert any(line.startswith("add ") for line in lines)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.wasm", "no such file"),
        (lambda d: d, "is a directory, not a component file"),
        (lambda d: (d / "notes.txt", (d / "notes.txt").write_text("hello"))[0], "not a WebAssembly binary"),
    ],
)
def test_inspect_bad_files(cli, tmp_path: Path, make, message: str) -> None:
    target = make(tmp_path)
    r = cli("inspect", str(target))
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_inspect_truncated_component(cli, components: dict[str, Path], tmp_path: Path) -> None:
    data = components["arith"].read_bytes()
    broken = tmp_path / "broken.wasm"
    broken.write_bytes(data[: len(data) // 2])
    r = cli("inspect", broken.as_uri())
    assert r.returncode == 1 and r.stderr.startswith("error: broken: ")
    assert len(r.stderr.strip().splitlines()) == 1
