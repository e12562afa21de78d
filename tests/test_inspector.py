"""The MCP Inspector CLI (@modelcontextprotocol/inspector 2.12, a TypeScript
client) lists and calls tools over stdio and over Streamable HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import HttpServer, http_server

TOKEN = "inspector-test-token"


def run_inspector(bin_dir: Path, home: Path, *args: str, status: int = 0) -> Any:
    """Runs `mcp-inspector --cli ARGS`; its JSON output. (It exits 5 when a
    tool answers isError.)"""
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),  # the inspector keeps its catalog under ~/.mcp-inspector
    }
    out = subprocess.run(
        [str(bin_dir / "mcp-inspector"), "--cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == status, out.stderr + out.stdout
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def loaded(module_env, module_cli, components) -> dict[str, str]:
    for name in ("arith", "io"):
        assert module_cli("component", "load", components[name].as_uri()).returncode == 0
    return module_env


@pytest.fixture(scope="module")
def server(loaded, tmp_path_factory) -> Iterator[HttpServer]:
    env = {**loaded, "WASSETTE_AUTH_TOKEN": TOKEN}
    with http_server(env, tmp_path_factory.mktemp("log") / "serve.log") as s:
        yield s


def stdio_target(env: dict[str, str]) -> list[str]:
    """Inspector arguments that start `wassette run` with the test's state dirs."""
    passed = [f"{k}={v}" for k, v in env.items() if k not in ("PATH", "HOME")]
    return [*(a for kv in passed for a in ("-e", kv)), "--", sys.executable, "-m", "wassette", "run"]


def check_listing(listing: dict[str, Any]) -> None:
    tools = {t["name"]: t for t in listing["tools"]}
    assert {"add", "print-stdout", "load-component", "grant-network-permission"} <= set(tools)
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]
    assert tools["list-components"]["annotations"]["readOnlyHint"] is True


def test_stdio(inspector: Path, loaded, tmp_path: Path) -> None:
    check_listing(run_inspector(inspector, tmp_path, "--method", "tools/list", *stdio_target(loaded)))
    call = ["--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=40", "b=2"]
    result = run_inspector(inspector, tmp_path, *call, *stdio_target(loaded))
    assert result["structuredContent"] == {"result": 42} and result["isError"] is False


def test_http(inspector: Path, server: HttpServer, tmp_path: Path) -> None:
    auth = ["--header", f"Authorization: Bearer {TOKEN}"]
    check_listing(run_inspector(inspector, tmp_path, server.url, *auth, "--method", "tools/list"))
    call = ["--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=1", "b=2"]
    result = run_inspector(inspector, tmp_path, server.url, *auth, *call)
    assert result["structuredContent"] == {"result": 3} and result["isError"] is False
    too_big = ["--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=99999999999", "b=1"]
    r = run_inspector(inspector, tmp_path, server.url, *auth, *too_big, status=5)
    assert r["isError"] is True and "args.a" in r["content"][0]["text"]
