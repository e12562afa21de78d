"""The catalog (`registry search|get`, `search-components`) and OCI loading
over MCP (`load-component` with progress notifications), with the official
MCP client over stdio."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from oci_helpers import Registry, write_config


def _catalog(tmp_path: Path, host: str) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(
        json.dumps(
            {
                "components": [
                    {
                        "name": "calculator",
                        "description": "Adds numbers (WAT)",
                        "uri": f"oci://{host}/cat/arith:1",
                    },
                    {
                        "name": "weather-teller",
                        "description": "Never right",
                        "uri": f"oci://{host}/cat/none:1",
                    },
                ]
            }
        )
    )
    return path


def test_registry_search_and_get(
    cli, oenv, home: Path, registry: Registry, components: dict[str, Path], tmp_path: Path, https_server
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    r = cli("registry", "search", "weather")
    assert r.returncode == 0, r.stderr
    assert [e["name"] for e in json.loads(r.stdout)] == ["get-weather-js"]

    assert (
        cli("component", "publish", str(components["arith"]), f"oci://{registry.host}/cat/arith:1").returncode
        == 0
    )
    https_server.files["/catalog.json"] = json.dumps([{"name": "remote-calc", "uri": "oci://x/y:1"}]).encode()
    write_config(
        home,
        f'catalogs = ["{_catalog(tmp_path, registry.host)}", "{https_server.url}/catalog.json", "missing.json"]\n'
        f'ca_bundle = "{https_server.ca}"\n',
    )
    r = cli("registry", "search", "weather")
    names = [e["name"] for e in json.loads(r.stdout)]
    assert names == ["weather-teller", "get-weather-js"]  # name matches rank above description matches
    assert "warning: catalog missing.json skipped" in r.stderr
    r = cli("registry", "search")
    names = [e["name"] for e in json.loads(r.stdout)]
    assert {"calculator", "remote-calc", "time-server-js"} <= set(names) and names == sorted(names)

    r = cli("registry", "get", "calculator")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tools"][0] == "add"
    r = cli("registry", "get", "calculater")
    assert r.returncode == 1 and "no component named 'calculater' in the catalog" in r.stderr


def test_mcp_load_from_registry_reports_progress_and_searches_catalog(
    oenv, home: Path, registry: Registry, components: dict[str, Path], tmp_path: Path, cli
) -> None:
    env = cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    cli("component", "publish", str(components["io"]), f"oci://{registry.host}/cat/io:1")
    write_config(home, f'catalogs = ["{_catalog(tmp_path, registry.host)}"]\n')
    progress: list[tuple[float, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, message))

    async def session() -> tuple[Any, Any, Any]:
        params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", "run"], env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            search = await s.call_tool("search-components", {"query": "calculator"})
            loaded = await s.call_tool(
                "load-component", {"path": f"oci://{registry.host}/cat/io:1"}, progress_callback=on_progress
            )
            refused = await s.call_tool("load-component", {"path": f"oci://{registry.host}/cat/none:1"})
            return search, loaded, refused

    search, loaded, refused = anyio.run(session)
    found = json.loads(search.content[0].text)["components"]
    assert found[0]["name"] == "calculator"
    assert not loaded.is_error, loaded.content
    assert json.loads(loaded.content[0].text)["id"] == "io"
    messages = [m for _, m in progress]
    size = components["io"].stat().st_size
    assert messages[:2] == [f"fetching oci://{registry.host}/cat/io:1", f"resolving {registry.host}/cat/io:1"]
    assert f"downloading: {size} of {size} bytes" in messages  # byte progress of the download
    assert messages[-2:] == [f"compiling io ({size} bytes)", "loaded io"]
    values = [p for p, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert refused.is_error and "not found in registry" in refused.content[0].text
