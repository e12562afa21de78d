"""Consent on upgrade: a policy records the component digest it was granted
for; a new version (new digest) whose shipped policy asks for more than the
accepted one shows the permission diff, and the accepted policy stays in
force (the wider one pending) until a person accepts it: on the CLI with
`wassette policy accept`, or through MCP elicitation from `load-component`."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
import yaml
from mcp import ClientSession, StdioServerParameters, stdio_client
from oci_helpers import Registry, unique_component

V1 = {"version": "1.0", "permissions": {"network": {"allow": [{"host": "api.example.com"}]}}}
# Version 2 asks for one more host and a variable.
V2 = {
    "version": "1.0",
    "permissions": {
        "network": {"allow": [{"host": "api.example.com"}, {"host": "upload.example.net"}]},
        "environment": {"allow": [{"key": "GREETING"}]},
    },
}
# Version 3 asks for less than version 2.
V3 = {"version": "1.0", "permissions": {"network": {"allow": [{"host": "https://api.example.com"}]}}}


def publish(
    cli: Any, registry: Registry, wasm: Path, tmp_path: Path, tag: str, policy: dict[str, Any]
) -> str:
    """Pushes a distinct build (its own digest) of `wasm` with `policy` as `calc:<tag>`."""
    build = tmp_path / f"calc-{tag}.wasm"
    build.write_bytes(unique_component(wasm.read_bytes(), f"{tmp_path.name}-{tag}"))
    shipped = tmp_path / f"policy-{tag}.yaml"
    shipped.write_text(yaml.safe_dump(policy))
    ref = f"oci://{registry.host}/upgrade-{tmp_path.name[-8:]}/calc:{tag}"
    done = cli("component", "publish", str(build), ref, "--policy", str(shipped))
    assert done.returncode == 0, done.stderr
    return ref


def bound_digest(component_dir: Path) -> str:
    return str(json.loads((component_dir / "calc.policy.meta.json").read_text())["component_sha256"])


def installed_digest(component_dir: Path) -> str:
    return str(json.loads((component_dir / "calc.metadata.json").read_text())["sha256"])


def test_a_wider_policy_of_a_new_version_waits_for_consent(
    cli: Any,
    oenv: dict[str, str],
    registry: Registry,
    components: dict[str, Path],
    component_dir: Path,
    tmp_path: Path,
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    v1 = publish(cli, registry, components["arith"], tmp_path, "1", V1)
    v2 = publish(cli, registry, components["arith"], tmp_path, "2", V2)
    v3 = publish(cli, registry, components["arith"], tmp_path, "3", V3)

    done = cli("component", "load", v1, "--accept-policy")
    assert json.loads(done.stdout)["policy"] == "applied", done.stderr
    first = installed_digest(component_dir)
    assert bound_digest(component_dir) == first  # the policy is bound to what it was accepted for

    # Version 2: a new digest asking for more. Not applied; the diff is shown.
    done = cli("component", "load", v2)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["policy"] == "pending"
    assert report["policy_diff"]["wider"] is True
    added = [(c["change"], c["rule"]) for c in report["policy_diff"]["changes"]]
    assert added == [("added", "upload.example.net"), ("added", "GREETING")]
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning: this version")]
    assert "added network upload.example.net; added environment GREETING" in warning
    assert "wassette policy diff calc pending" in warning and "wassette policy accept calc" in warning
    assert installed_digest(component_dir) != first
    # The accepted grants stay in force, still bound to the old digest.
    assert yaml.safe_load(cli("policy", "get", "calc", "-o", "yaml").stdout) == V1
    assert bound_digest(component_dir) == first
    done = cli("policy", "diff", "calc", "pending")
    assert done.stdout.splitlines() == [
        "+ network allow     upload.example.net (http:80, https:443, tcp:443, tcp:80)  [added, wider]",
        "+ environment allow GREETING  [added, wider]",
    ]

    # A person accepts: the wider policy applies, bound to the new digest.
    assert cli("policy", "accept", "calc").returncode == 0
    assert yaml.safe_load(cli("policy", "get", "calc", "-o", "yaml").stdout) == V2
    assert bound_digest(component_dir) == installed_digest(component_dir)

    # Version 3 asks for less than what is in force: nothing to consent to.
    done = cli("component", "load", v3)
    report = json.loads(done.stdout)
    assert report["policy"] == "unchanged" and "policy_diff" not in report, done.stderr
    assert yaml.safe_load(cli("policy", "get", "calc", "-o", "yaml").stdout) == V2
    assert not (component_dir / "calc.policy.pending.yaml").exists()


@asynccontextmanager
async def session(env: dict[str, str], **kwargs: Any) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "wassette", "run"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write, **kwargs) as s:
        await s.initialize()
        yield s


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_load_component_asks_through_elicitation(
    cli: Any,
    oenv: dict[str, str],
    registry: Registry,
    components: dict[str, Path],
    tmp_path: Path,
    action: str,
) -> None:
    env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    cli.env = env
    v1 = publish(cli, registry, components["arith"], tmp_path, "1", V1)
    v2 = publish(cli, registry, components["arith"], tmp_path, "2", V2)
    assert cli("component", "load", v1, "--accept-policy").returncode == 0
    asked: list[types.ElicitRequestParams] = []

    async def elicit(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action=action, content={} if action == "accept" else None)

    async def load() -> dict[str, Any]:
        async with session(env, elicitation_callback=elicit) as s:
            r = await s.call_tool("load-component", {"path": v2})
            assert not r.is_error
            report: dict[str, Any] = json.loads(
                "\n".join(c.text for c in r.content if isinstance(c, types.TextContent))
            )
            return report

    report = anyio.run(load)
    assert report["policy"] == ("applied" if action == "accept" else "pending")
    [question] = asked
    assert "'calc' ships a policy that asks for" in question.message
    assert "upload.example.net" in question.message and "GREETING" in question.message
    assert "api.example.com" not in question.message  # only what is new
    expected = V2 if action == "accept" else V1
    assert yaml.safe_load(cli("policy", "get", "calc", "-o", "yaml").stdout) == expected
