"""A policy shipped as an extra OCI layer is installed with the component but
applies only once the user accepts it: by `--accept-policy`, by answering the
question on a terminal, or later with `wassette policy accept`."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import yaml
from oci_helpers import Registry

POLICY = """version: "1.0"
description: arith needs nothing, but asks anyway
permissions:
  network:
    allow: [{host: api.example.com}]
  environment:
    allow: [{key: GREETING}]
"""


def _publish_with_policy(cli, registry: Registry, arith: Path, tmp_path: Path, repo: str) -> str:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    ref = f"oci://{registry.host}/{repo}:1"
    r = cli("component", "publish", str(arith), ref, "--policy", str(policy))
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["layers"]) == 2
    return ref


def test_shipped_policy_waits_for_acceptance(
    cli, oenv, registry: Registry, components: dict[str, Path], component_dir: Path, tmp_path: Path
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    ref = _publish_with_policy(cli, registry, components["arith"], tmp_path, "policy/arith")

    r = cli("component", "load", ref)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["policy"] == "pending"
    assert "wassette policy accept arith" in report["policy_hint"]
    [warning] = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert "network api.example.com; environment GREETING" in warning
    assert (component_dir / "arith.policy.pending.yaml").read_text() == POLICY
    assert not (component_dir / "arith.policy.yaml").exists()
    assert json.loads(cli("policy", "get", "arith").stdout)["permissions"] == {}  # not in force

    r = cli("policy", "accept", "arith")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "policy accepted"
    assert yaml.safe_load(cli("policy", "get", "arith", "-o", "yaml").stdout)["permissions"]["network"] == {
        "allow": [{"host": "api.example.com"}]
    }
    assert not (component_dir / "arith.policy.pending.yaml").exists()
    r = cli("policy", "accept", "arith")
    assert r.returncode == 1 and "has no policy waiting for acceptance" in r.stderr

    # the same policy again: nothing to decide
    r = cli("component", "load", ref)
    assert json.loads(r.stdout)["policy"] == "unchanged"

    cli("component", "unload", "arith")
    assert list(component_dir.glob("arith*")) == []
    r = cli("component", "load", ref, "--accept-policy")
    assert json.loads(r.stdout)["policy"] == "applied"
    assert (component_dir / "arith.policy.yaml").read_text() == POLICY


def _run_on_terminal(args: list[str], env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """Runs the CLI with stdin and stderr on a pseudo-terminal, answering the
    first question; returns the exit code and what the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wassette", *args], stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(master, answer)
                answered = True
        elif proc.poll() is not None:
            break
    proc.wait(30)
    assert proc.stdout is not None
    proc.stdout.close()
    os.close(master)
    return proc.returncode, seen.decode(errors="replace")


def test_terminal_asks_and_shows_a_progress_bar(
    cli, oenv, registry: Registry, components: dict[str, Path], component_dir: Path, tmp_path: Path
) -> None:
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    ref = _publish_with_policy(cli, registry, components["arith"], tmp_path, "policy/tty")
    code, screen = _run_on_terminal(["component", "load", ref], cli.env, b"y\n")
    assert code == 0, screen
    assert "ships a policy that asks for:" in screen
    assert "  - network api.example.com" in screen and "  - environment GREETING" in screen
    assert "\r" in screen and "100% 604 B/604 B" in screen  # the download bar
    assert (component_dir / "tty.policy.yaml").read_text() == POLICY

    cli("component", "unload", "tty")
    code, screen = _run_on_terminal(["component", "load", ref], cli.env, b"n\n")
    assert code == 0, screen
    assert not (component_dir / "tty.policy.yaml").exists()
    assert (component_dir / "tty.policy.pending.yaml").exists()


def test_broken_shipped_policy_refuses_the_load(
    cli, oenv, registry: Registry, components: dict[str, Path], component_dir: Path, tmp_path: Path
) -> None:
    """A policy layer that is not a valid policy is refused (publish checks it
    too, so this one is pushed with oras)."""
    import oras.client

    (tmp_path / "arith.wasm").write_bytes(components["arith"].read_bytes())
    (tmp_path / "policy.yaml").write_text('version: "1.0"\npermissions: {network: {allow: [{hots: x}]}}\n')
    (tmp_path / "config.json").write_text("{}")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        oras.client.OrasClient(hostname=registry.host, insecure=True).push(
            target=f"{registry.host}/policy/broken:1",
            files=["arith.wasm:application/wasm", "policy.yaml:application/vnd.wasm.policy.v1+yaml"],
            manifest_config="config.json:application/vnd.wasm.config.v0+json",
        )
    finally:
        os.chdir(cwd)
    cli.env = {**oenv, "WASSETTE_SIGNATURES": "off"}
    r = cli("component", "load", f"oci://{registry.host}/policy/broken:1")
    assert r.returncode == 1
    assert "error: refused: policy shipped with" in r.stderr and "hots" in r.stderr
    assert not component_dir.exists() or not list(component_dir.glob("broken*"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\n")
    r = cli(
        "component",
        "publish",
        str(components["arith"]),
        f"oci://{registry.host}/policy/x:1",
        "--policy",
        str(bad),
    )
    assert r.returncode == 1 and "is not supported" in r.stderr
