"""Headless provisioning: `wassette run --manifest FILE` (Wassette's manifest
format) installs and verifies the listed components before serving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from oci_helpers import Registry


def _publish(cli, wasm: Path, ref: str) -> str:
    r = cli("component", "publish", str(wasm), ref)
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["digest"])


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`wassette run` with stdin at end of file: provisions, then stops serving."""
    return subprocess.run(
        [sys.executable, "-m", "wassette", "run", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manifest_provisions_and_serves(
    cli, oenv, registry: Registry, components: dict[str, Path], component_dir: Path, tmp_path: Path
) -> None:
    cli.env = env = {**oenv, "WASSETTE_SIGNATURES": "off", "SERVER_GREETING": "hello from the host"}
    host = registry.host
    _publish(cli, components["arith"], f"oci://{host}/prov/arith:1")
    io_digest = _publish(cli, components["io"], f"oci://{host}/prov/io:1")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        f"""version: 1
components:
  - uri: oci://{host}/prov/arith:1
    name: calc
    permissions: {{}}
  - uri: oci://{host}/prov/io:1
    digest: {io_digest}
    permissions:
      environment:
        allow:
          - key: GREETING
            value_from: SERVER_GREETING
      resources: {{ memory_bytes: 67108864, cpu_time_ms: 5000 }}
    retry_policy: {{ attempts: 2, backoff: {{ type: exponential, base_ms: 10 }} }}
"""
    )

    async def session() -> tuple[set[str], str, str]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "wassette", "run", "--manifest", str(manifest)], env=env
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            tools = {t.name for t in (await s.list_tools()).tools}
            greeting = await s.call_tool("get-env", {"key": "GREETING"})
            server_var = await s.call_tool("get-env", {"key": "SERVER_GREETING"})
            return tools, greeting.content[0].text, server_var.content[0].text  # type: ignore[union-attr]

    tools, greeting, server_var = anyio.run(session)
    assert {"add", "get-env", "load-component"} <= tools
    assert json.loads(greeting) == "hello from the host"  # value_from: read from SERVER_GREETING
    assert json.loads(server_var) is None  # not granted itself
    listed = {c["id"]: c for c in json.loads(cli("component", "list").stdout)}
    assert set(listed) == {"calc", "io"}
    assert listed["io"]["provenance"]["manifest_digest"] == io_digest
    policy = json.loads(cli("policy", "get", "io").stdout)
    assert policy["permissions"]["resources"] == {"memory_bytes": 67108864, "cpu_time_ms": 5000}
    assert policy["permissions"]["environment"] == {"allow": [{"key": "GREETING"}]}


def test_failures_abort_unless_told_to_continue(
    cli, oenv, registry: Registry, components: dict[str, Path], component_dir: Path, tmp_path: Path
) -> None:
    cli.env = env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    host = registry.host
    _publish(cli, components["arith"], f"oci://{host}/prov/arith:1")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        f"""version: 1
components:
  - uri: oci://{host}/prov/arith:1
    permissions: {{}}
  - uri: oci://{host}/prov/missing:1
    permissions: {{}}
  - uri: oci://{host}/prov/arith@sha256:{"0" * 64}
    name: pinned
    permissions: {{}}
  - uri: oci://127.0.0.1:1/prov/unreachable:1
    permissions: {{}}
    retry_policy: {{ attempts: 3, backoff: {{ type: linear, increment_ms: 1 }} }}
  - uri: {host}/prov/arith:1
    permissions: {{ environment: {{ allow: [ {{ key: TOKEN, value_from: NOT_SET_ANYWHERE }} ] }} }}
"""
    )
    r = _run(env, "--manifest", str(manifest))
    assert r.returncode == 1
    assert f"error: provisioning from {manifest} failed" in r.stderr
    assert "provisioned 1 of 5 components" in r.stderr
    assert f"failed: oci://{host}/prov/missing:1: manifest prov/missing:1 not found" in r.stderr
    assert "attempt 2 of 3 for oci://127.0.0.1:1/prov/unreachable:1 failed" in r.stderr
    assert "environment variable NOT_SET_ANYWHERE (value_from for TOKEN) is not set" in r.stderr

    r = _run(env, "--manifest", str(manifest), "--continue-on-provisioning-failure")
    assert r.returncode == 0, r.stderr
    assert "provisioned 1 of 5 components" in r.stderr
    assert [c["id"] for c in json.loads(cli("component", "list").stdout)] == ["arith"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\ncomponents: []\n", "version: must be the integer 1, got 2"),
        ("version: 1\ncomponents: []\n", "components: must be a non-empty list"),
        ("version: 1\ncomponents:\n  - uri: file:///x.wasm\n", "components[0].permissions: is required"),
        (
            "version: 1\ncomponents:\n  - uri: file:///x.wasm\n    permisions: {}\n",
            "components[0].permisions: unknown field",
        ),
        (
            "version: 1\ncomponents:\n  - uri: file:///x.wasm\n    permissions: {network: {allow: [{hots: a}]}}\n",
            "permissions.network.allow[0].hots",
        ),
        (
            "version: 1\ncomponents:\n  - uri: file:///x.wasm\n    digest: md5:abc\n    permissions: {}\n",
            "components[0].digest: must be sha256:",
        ),
        (
            "version: 1\ncomponents:\n  - uri: file:///x.wasm\n    permissions: {}\n"
            "    retry_policy: {attempts: 2, backoff: {type: random}}\n",
            "retry_policy.backoff.type: 'random' is not exponential or linear",
        ),
        ("version: 1\ncomponents: [\n", "invalid YAML"),
    ],
)
def test_broken_manifests(env, tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    r = _run(env, "--manifest", str(manifest))
    assert r.returncode == 1
    [error] = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert message in error and str(manifest) in error


def test_serve_takes_the_manifest_too(env, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\ncomponents:\n  - uri: file:///nonexistent/x.wasm\n    permissions: {}\n")
    r = subprocess.run(
        [sys.executable, "-m", "wassette", "serve", "--stdio", "--manifest", str(manifest)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert "failed: file:///nonexistent/x.wasm: no such file: /nonexistent/x.wasm" in r.stderr
