"""`wassette component test`: a component's tools against recorded cases,
in a runtime of its own, with a pass/fail table and an exit status for CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from homes import Cli

CASES = """
cases:
  - name: no env by default
    tool: env-count
    expect: {result: 0}
  - name: file read refused without a grant
    tool: read-file
    arguments: {path: /etc/hostname}
    expect: {error: true, denied: storage}
  - name: file read with a grant
    tool: read-file
    arguments: {path: /etc/hostname}
    policy: {permissions: {storage: {allow: [{uri: "fs:///etc/hostname", access: [read]}]}}}
    expect: {error: false}
  - name: a granted variable
    tool: get-env
    arguments: {key: GREETING}
    policy: granted.yaml
    expect: {result: hello}
  - name: a wrong expectation
    tool: env-count
    expect: {result: 7}
  - name: a tool that does not exist
    tool: nope
    expect: {error: true}
"""


def test_cases_pass_and_fail_with_an_exit_status(
    cli: Cli, components: dict[str, Path], tmp_path: Path
) -> None:
    wasm = tmp_path / "io.wasm"
    shutil.copy(components["io"], wasm)
    (tmp_path / "wassette-cases.yaml").write_text(CASES)  # found next to the .wasm
    (tmp_path / "granted.yaml").write_text(
        'version: "1.0"\npermissions: {environment: {allow: [{key: GREETING}]}}\n'
    )
    r = cli("component", "test", str(wasm), "-o", "json", "--env", "GREETING=hello")
    assert r.returncode == 1, r.stderr
    rows = {row["case"]: row for row in json.loads(r.stdout)}
    passed = {name for name, row in rows.items() if row["outcome"] == "PASS"}
    assert passed == {
        "no env by default",
        "file read refused without a grant",
        "file read with a grant",
        "a granted variable",
    }
    assert rows["a wrong expectation"]["detail"] == "expected result 7, got 0"
    assert "no tool named 'nope'" in rows["a tool that does not exist"]["detail"]
    assert r.stderr.strip().endswith("4 passed, 2 failed")
    table = cli("component", "test", wasm.as_uri(), "--env", "GREETING=hello")
    assert table.stdout.splitlines()[0].split() == ["CASE", "TOOL", "OUTCOME", "DETAIL", "MS"]


def test_a_loaded_component_is_tested_without_touching_it(
    cli: Cli, components: dict[str, Path], component_dir: Path, tmp_path: Path
) -> None:
    assert cli("component", "load", components["arith"].as_uri()).returncode == 0
    cases = tmp_path / "arith.yaml"
    cases.write_text(
        "cases:\n  - {tool: add, arguments: {a: 40, b: 2}, expect: {result: 42}, policy: {permissions: {}}}\n"
    )
    r = cli("component", "test", "arith", "--case", str(cases))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (component_dir / "arith.policy.yaml").exists()  # its own runtime, its own policy files
    r = cli("component", "test", "arith")  # no cases: it loads, and its tools are named
    assert r.returncode == 0 and "loads" in r.stdout and "add" in r.stdout


def test_bad_cases_files_are_clear_errors(cli: Cli, components: dict[str, Path], tmp_path: Path) -> None:
    bad = {
        "cases: [\n": "not valid YAML",
        "tests: []\n": "expected a mapping with a non-empty list `cases`",
        "cases:\n  - {tool: add, expect: {result: 1}, extra: 1}\n": "unknown key(s) extra",
        "cases:\n  - {tool: add, expect: {maybe: 1}}\n": "`expect` must be a mapping of",
        "cases:\n  - {tool: add, expect: {result: 1}, policy: {permissions: {network: {allow: [{bogus: 1}]}}}}\n": "case 1 policy",
        "cases:\n  - {name: x, tool: add, expect: {result: 1}}\n  - {name: x, tool: add, expect: {result: 1}}\n": "case names must differ: x",
    }
    for text, message in bad.items():
        path = tmp_path / "cases.yaml"
        path.write_text(text)
        r = cli("component", "test", str(components["arith"]), "--case", str(path))
        assert r.returncode == 1 and message in r.stderr, (text, r.stderr)
        assert "Traceback" not in r.stderr
    r = cli("component", "test", "no-such-component")
    assert r.returncode == 1 and "no component with id 'no-such-component'" in r.stderr
