"""The `wassette` CLI end to end, as a user runs it (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml


def test_load_list_inspect_invoke_unload(cli, components: dict[str, Path], component_dir: Path) -> None:
    """The whole journey of the foundation issue, command by command."""
    r = cli("component", "load", components["arith"].as_uri())
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["id"] == "arith"
    assert "add" in report["tools"]
    assert (component_dir / "arith.wasm").read_bytes() == components["arith"].read_bytes()
    assert (component_dir / "arith.metadata.json").is_file()

    r = cli("component", "list", "-o", "table")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()[:2]
    assert header.split()[:2] == ["ID", "TOOLS"]
    assert row.startswith("arith ")

    r = cli("inspect", "arith")
    tools = {t["name"]: t for t in json.loads(r.stdout)}
    assert tools["add"]["inputSchema"]["properties"]["a"] == {
        "type": "integer",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    assert tools["add"]["outputSchema"]["properties"]["result"]["type"] == "integer"

    r = cli("tool", "invoke", "add", "--args", '{"a": 40, "b": 2}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"result": 42}

    r = cli("component", "unload", "arith")
    assert r.returncode == 0, r.stderr
    assert not list(component_dir.glob("arith*"))
    assert json.loads(cli("component", "list").stdout) == []


def test_output_formats(cli, components: dict[str, Path]) -> None:
    """json (default), yaml and table render the same data."""
    cli("component", "load", components["strings"].as_uri())
    as_json = json.loads(cli("component", "list").stdout)
    as_yaml = yaml.safe_load(cli("component", "list", "-o", "yaml").stdout)
    assert as_json == as_yaml
    assert as_json[0]["id"] == "strings"
    assert as_json[0]["tools"] == ["echo", "length"]
    table = cli("tool", "list", "-o", "table").stdout
    assert "echo" in table and "strings" in table


def test_state_survives_restart(cli, components: dict[str, Path], component_dir: Path) -> None:
    """A component loaded by one process is listed and callable by the next,
    from cached metadata (no recompile needed to list)."""
    cli("component", "load", components["iface"].as_uri())
    meta = json.loads((component_dir / "iface.metadata.json").read_text())
    assert meta["exports"][0]["interface"] == "test:iface/math@0.1.0"
    r = cli("tool", "invoke", "test_iface_math_double", "--args", '{"x": 21}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"result": 42}


def test_invoke_reports_guest_output_on_stderr(cli, components: dict[str, Path]) -> None:
    """Guest stdout never mixes with the command's own output."""
    cli("component", "load", components["io"].as_uri())
    r = cli("tool", "invoke", "print-stdout", "--args", '{"text": "hello from the guest"}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"result": None}
    assert "[guest stdout] hello from the guest" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ('{"a": 4294967296, "b": 1}', "args.a: 4294967296 is out of range for s32"),
        ('{"a": 1}', 'args: missing required field "b"'),
        ("not json", "--args is not valid JSON"),
        ("[1, 2]", "--args must be a JSON object"),
    ],
)
def test_invoke_bad_arguments(cli, components: dict[str, Path], args: str, message: str) -> None:
    """Bad arguments: one clear line, non-zero exit."""
    cli("component", "load", components["arith"].as_uri())
    r = cli("tool", "invoke", "add", "--args", args)
    assert r.returncode == 1
    assert message in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_invoke_err_and_trap(cli, components: dict[str, Path]) -> None:
    """A WIT `err` and a trap are errors with distinct messages."""
    cli("component", "load", components["trap"].as_uri())
    r = cli("tool", "invoke", "boom")
    assert r.returncode == 1
    assert "the component crashed" in r.stderr and "unreachable" in r.stderr


def error_lines(stderr: str) -> list[str]:
    """The error lines (loads also print one `wassette: <step>` line per step)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _core_module(tmp: Path) -> Path:
    p = tmp / "core.wasm"
    p.write_bytes(b"\0asm\x01\0\0\0")
    return p


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.wasm", "no such file"),
        (_core_module, "core WebAssembly module, not a component"),
        (
            lambda tmp: (tmp / "junk.wasm").write_bytes(os.urandom(256)) and tmp / "junk.wasm",
            "not a WebAssembly",
        ),
        (lambda tmp: tmp, "is a directory"),
    ],
    ids=["missing", "core-module", "random-bytes", "directory"],
)
def test_load_bad_input(cli, tmp_path: Path, component_dir: Path, make, message: str) -> None:
    """Bad input: one-line error, non-zero exit, nothing left in the store."""
    target = make(tmp_path)
    r = cli("component", "load", Path(target).resolve().as_uri())
    assert r.returncode == 1
    assert message in r.stderr
    assert len(error_lines(r.stderr)) == 1
    assert not component_dir.exists() or not [
        p for p in component_dir.iterdir() if not p.name.startswith(".")
    ]


def test_load_truncated_component(
    cli, tmp_path: Path, components: dict[str, Path], component_dir: Path
) -> None:
    """A component cut in half is refused and nothing is stored."""
    data = components["io"].read_bytes()
    half = tmp_path / "half.wasm"
    half.write_bytes(data[: len(data) // 2])
    r = cli("component", "load", half.as_uri())
    assert r.returncode == 1
    assert error_lines(r.stderr)[0].startswith("error: half:")
    assert not (component_dir / "half.wasm").exists()


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        (
            ["component", "load", "oci://127.0.0.1:1/x/y:1"],
            "cannot reach https://127.0.0.1:1: connection refused",
        ),
        (["component", "load", "ftp://host/x.wasm"], "unsupported component URI 'ftp://'"),
        (["component", "unload", "nope"], "no component with id 'nope'"),
        (["inspect", "nope"], "no component with id 'nope'"),
        (["tool", "invoke", "nope"], "no tool named 'nope'"),
        (["tool", "read", "nope"], "no tool named 'nope'"),
        (["component", "unload", "../etc"], "no component with id '../etc'"),
    ],
)
def test_unknown_things(cli, cmd: list[str], message: str) -> None:
    """Unknown ids, tools and URI schemes: one line, exit 1."""
    r = cli(*cmd)
    assert r.returncode == 1
    assert message in r.stderr
    assert len(error_lines(r.stderr)) == 1


def test_plugin_dir_and_env_var(
    cli, env: dict[str, str], components: dict[str, Path], tmp_path: Path
) -> None:
    """--component-dir, the older --plugin-dir and WASSETTE_COMPONENT_DIR all pick the store."""
    d1, d2 = tmp_path / "one", tmp_path / "two"
    assert cli("component", "load", components["arith"].as_uri(), "--component-dir", str(d1)).returncode == 0
    assert cli("component", "load", components["spin"].as_uri(), "--plugin-dir", str(d2)).returncode == 0
    assert (d1 / "arith.wasm").exists() and (d2 / "spin.wasm").exists()
    env2 = {**env, "WASSETTE_COMPONENT_DIR": str(d2)}
    r = subprocess.run(
        [sys.executable, "-m", "wassette", "component", "list"], env=env2, capture_output=True, text=True
    )
    assert [c["id"] for c in json.loads(r.stdout)] == ["spin"]


def test_reload_replaces(cli, components: dict[str, Path], tmp_path: Path) -> None:
    """Loading the same id again replaces the component and says so."""
    first = json.loads(cli("component", "load", components["arith"].as_uri()).stdout)
    assert first["status"] == "component loaded successfully"
    again = json.loads(cli("component", "load", components["arith"].as_uri()).stdout)
    assert again["status"] == "component reloaded successfully"


def test_collisions_are_qualified(cli, components: dict[str, Path], tmp_path: Path) -> None:
    """Two components exporting `add` both get `<id>__add`, reported, and both work."""
    other = tmp_path / "calc.wasm"
    other.write_bytes(components["arith"].read_bytes())
    cli("component", "load", components["arith"].as_uri())
    r = cli("component", "load", other.as_uri())
    assert r.returncode == 0
    assert "tool name 'add' is exported by arith, calc" in r.stderr
    names = {t["name"] for t in json.loads(cli("tool", "list").stdout)}
    assert {"arith__add", "calc__add"} <= names
    assert "add" not in names
    r = cli("tool", "invoke", "calc__add", "--args", '{"a": 1, "b": 2}')
    assert json.loads(r.stdout) == {"result": 3}


def test_concurrent_loads_do_not_corrupt(
    env: dict[str, str], components: dict[str, Path], tmp_path: Path
) -> None:
    """Several CLI processes loading at once leave a consistent store."""
    copies = []
    for i in range(6):
        p = tmp_path / f"c{i}.wasm"
        p.write_bytes(components["arith"].read_bytes())
        copies.append(p)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "wassette", "component", "load", p.as_uri()],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for p in copies
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    r = subprocess.run(
        [sys.executable, "-m", "wassette", "component", "list"], env=env, capture_output=True, text=True
    )
    listed = json.loads(r.stdout)
    assert sorted(c["id"] for c in listed) == [f"c{i}" for i in range(6)]
    assert all(len(c["tools"]) == 7 for c in listed)


def test_help_and_version(cli) -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("wassette ")
    r = cli("--help")
    for word in ("run", "serve", "component", "inspect", "tool"):
        assert word in r.stdout
    r = cli("component")
    assert r.returncode == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "--component-dir", "/tmp/c", "--env", "A=1", "--agent-grants", "deny"],
        ["serve", "--bind-address", "127.0.0.1:9", "--disable-builtin-tools"],
        ["permission", "grant", "network", "x", "api.example.com"],
        ["policy", "schema"],
    ],
)
def test_a_command_alone_parses_as_the_whole_cli(argv: list[str]) -> None:
    """`main` builds only the parser of the command it is given (a faster
    start for `wassette run`): the arguments come out the same."""
    from wassette.cli.main import build_parser

    assert vars(build_parser(argv[0]).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_tool_descriptions_are_those_mcp_clients_see(cli, components: dict[str, Path]) -> None:
    """`tool list`, `tool read` and `inspect` describe a tool with the same
    text `tools/list` gives MCP clients (for a tool without a WIT doc
    comment too: never `null`)."""
    import json

    from wassette.runtime.config import Settings
    from wassette.runtime.runtime import Runtime
    from wassette.server.core.server import McpServer

    assert cli("component", "load", components["arith"].as_uri()).returncode == 0
    listed = {t["name"]: t["description"] for t in json.loads(cli("tool", "list").stdout)}
    runtime = Runtime(Settings.load(env=cli.env))
    runtime.refresh()
    served = {t["name"]: t["description"] for t in McpServer(runtime).tools() if t["name"] in listed}
    assert listed == served and listed["add"] == "add (component arith)"
    assert json.loads(cli("tool", "read", "add").stdout)["description"] == served["add"]
    inspected = {t["name"]: t["description"] for t in json.loads(cli("inspect", "arith").stdout)}
    assert inspected == served


def test_wassettes_flat_command_names(cli, components: dict[str, Path], component_dir: Path) -> None:
    """The forms articles about Wassette show (`wassette load-component ...`,
    `wassette grant-storage-permission ID fs://... read`) do what the
    hierarchical commands do; the main help does not list them."""

    def ok(*args: str) -> Any:
        done = cli(*args)
        assert done.returncode == 0, (args, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else None

    ok("load-component", components["io"].as_uri())
    assert [c["id"] for c in ok("list-components")] == ["io"]
    ok("grant-storage-permission", "io", "fs:///srv/data/**", "read")
    ok("grant-network-permission", "io", "api.example.com")
    ok("grant-environment-variable-permission", "io", "API_KEY")
    ok("grant-memory-permission", "io", "64Mi")
    policy = yaml.safe_load((component_dir / "io.policy.yaml").read_text())
    assert ok("get-policy", "io") == policy
    perms = policy["permissions"]
    assert perms["storage"]["allow"] == [{"uri": "fs:///srv/data/**", "access": ["read"]}]
    assert perms["network"]["allow"] == [{"host": "api.example.com"}]
    assert perms["environment"]["allow"] == [{"key": "API_KEY"}]
    ok("revoke-network-permission", "io", "api.example.com")
    ok("revoke-environment-variable-permission", "io", "API_KEY")
    ok("revoke-storage-permission", "io", "fs:///srv/data/**")
    ok("reset-permission", "io")
    ok("unload-component", "io")
    assert ok("list-components") == []
    listed = cli("--help").stdout
    assert "load-component" not in listed and "component" in listed
    refused = cli("grant-storage-permission", "io", "fs:///x", "read")
    assert refused.returncode == 1 and "no component with id 'io'" in refused.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_code(cli, shell: str) -> None:
    done = cli("completion", shell)
    assert done.returncode == 0 and "wassette" in done.stdout and "_ARGCOMPLETE" in done.stdout


def test_completion_in_bash(cli, tmp_path: Path) -> None:
    """bash takes the code (`complete -p` names the function), and the
    completions it would ask for are this CLI's own commands and options."""
    code = tmp_path / "wassette.bash"
    code.write_text(cli("completion", "bash").stdout)
    done = subprocess.run(
        ["bash", "-c", f"source {code} && complete -p wassette"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and "wassette" in done.stdout, done.stderr

    def complete(line: str) -> set[str]:
        out = tmp_path / "completions"
        asked = {
            "_ARGCOMPLETE": "1",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        }
        assert cli(env_extra=asked).returncode == 0
        return {c.strip() for c in out.read_text().split("\x0b")}

    assert complete("wassette comp") == {"component", "completion"}
    assert {"load", "unload", "list"} <= complete("wassette component ")
    assert "--workers" in complete("wassette serve --w")
