"""`wassette tool invoke --trace`: what one call reached (paths with their
access, hosts with bytes, environment names offered), what the sandbox
refused and what failed, its memory and time — from the engine's record of
the call, never a value of the environment."""

from __future__ import annotations

import json
from pathlib import Path

from homes import Cli
from servers import static_web


def test_trace_shows_what_a_call_reached_and_was_refused(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path]
) -> None:
    cli = Cli(env)
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("hello")
    assert cli("component", "load", components["io"].as_uri()).returncode == 0
    assert cli("permission", "grant", "storage", "io", f"fs://{work}", "--access", "read").returncode == 0
    assert cli("permission", "grant", "environment-variable", "io", "API_KEY").returncode == 0
    done = cli(
        "tool", "invoke", "read-file", "--args", json.dumps({"path": str(work / "a.txt")}),
        "--trace", "--env", "API_KEY=not-to-be-shown",
    )  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout) == {"result": {"ok": "hello"}}, done.stderr
    lines = done.stderr.splitlines()
    head = next(line for line in lines if line.startswith("trace of read-file (io): ok,"))
    assert " ms, memory " in head and "MiB" in head
    assert any(line.split() == ["allowed", "storage", "read", str(work / "a.txt")] for line in lines), lines
    assert "  offered  env      API_KEY" in lines and "not-to-be-shown" not in done.stderr
    refused = cli("tool", "invoke", "read-file", "--args", '{"path": "/etc/hostname"}', "--trace")
    assert refused.returncode == 1
    assert any(
        line.startswith("  DENIED   storage  read       /etc/hostname")
        for line in refused.stderr.splitlines()
    )


def test_trace_shows_hosts_with_bytes(env: dict[str, str], components: dict[str, Path]) -> None:
    body = b"y" * 3000
    with static_web(body) as port:
        cli = Cli(env)
        assert cli("component", "load", components["http-probe"].as_uri()).returncode == 0
        assert cli("permission", "grant", "network", "http-probe", f"http://127.0.0.1:{port}").returncode == 0
        args = json.dumps({"url": f"http://127.0.0.1:{port}/x", "method": "GET"})
        done = cli("tool", "invoke", "fetch-url", "--args", args, "--trace")
        assert done.returncode == 0, done.stderr
        [line] = [x for x in done.stderr.splitlines() if x.startswith("  allowed  network")]
        words = line.split()
        assert words[2:4] == ["http", f"127.0.0.1:{port}"] and "1 connection(s)," in line
        received = int(line.split(" B out, ")[1].split(" B in")[0])
        assert received > len(body)
