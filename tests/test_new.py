"""`wassette new LANGUAGE NAME`: each template, made as a user would, builds
with its own build.sh (the language's standard tool, as installed by
scripts/setup-toolchain.sh), passes its recorded cases with `wassette
component test`, loads, and answers a call — the README's steps; and
docs/first-component.md, run command by command as the page shows it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest

from homes import DEV_CACHE, Cli


def installed(directory: Path, what: str) -> Path:
    if not directory.exists():
        pytest.fail(f"{what} is not installed in {directory}: run scripts/setup-toolchain.sh")
    return directory


def typescript_bin() -> Path:
    """tests/toolchain/typescript, as scripts/setup-toolchain.sh installs it."""
    lock = Path(__file__).parent / "toolchain/typescript/package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    return installed(DEV_CACHE / f"typescript-{digest}" / "node_modules" / ".bin", "TypeScript")


def build_env(env: dict[str, str], toolchain: Any) -> dict[str, str]:
    """The tools a user installs, found as the fixtures' build finds them:
    componentize-py and wasm-tools next to this Python, jco and tsc from the
    npm toolchains, cargo and wit-bindgen on PATH (cargo's target directory
    kept in the dev cache between runs), the preview1 adapter jco ships."""
    scripts = sysconfig.get_path("scripts")
    wit_bindgen = installed(DEV_CACHE / "wit-bindgen-cli" / "bin", "wit-bindgen-cli")
    return {
        **env,
        "PATH": f"{scripts}:{wit_bindgen}:{os.environ.get('PATH', '')}",
        "JCO": str(toolchain.jco),
        "TSC": str(typescript_bin() / "tsc"),
        "WASI_ADAPTER": str(toolchain.reactor_adapter),
        "CARGO_TARGET_DIR": str(DEV_CACHE / "new-rust-target"),
        # Go's build cache shared with the examples' builds (build.py): the
        # standard library compiles for wasip1 once.
        "GOCACHE": str(DEV_CACHE / "go" / "cache"),
        "CARGO_HOME": os.environ.get("CARGO_HOME", str(Path.home() / ".cargo")),
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", str(Path.home() / ".rustup")),
    }


@pytest.mark.parametrize("language", ["rust", "python", "javascript", "typescript", "c", "go"])
def test_a_new_project_builds_passes_its_cases_and_serves(
    language: str, env: dict[str, str], tmp_path: Path, toolchain: Any
) -> None:
    cli = Cli(env)
    name = f"greeter-{language[:2]}"
    made = cli("new", language, name, "--dir", str(tmp_path / name))
    assert made.returncode == 0, made.stderr
    project = tmp_path / name
    report = json.loads(made.stdout)
    assert {"README.md", "build.sh", "policy.yaml", "wassette-cases.yaml", "wit/world.wit"} <= set(
        report["files"]
    )
    assert f"world {name}" in (project / "wit/world.wit").read_text()
    started = time.monotonic()
    built = subprocess.run(
        ["bash", "build.sh"],
        cwd=project,
        env=build_env(env, toolchain),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wasm = project / f"{name}.wasm"
    assert wasm.is_file(), built.stdout
    print(
        f"{language}: built in {time.monotonic() - started:.1f} s, {wasm.stat().st_size} bytes",
        file=sys.stderr,
    )
    tested = cli("component", "test", str(wasm), "-o", "json")  # finds wassette-cases.yaml next to it
    assert tested.returncode == 0, tested.stdout + tested.stderr
    rows = json.loads(tested.stdout)
    assert len(rows) == 2 and all(row["outcome"] == "PASS" for row in rows), tested.stdout
    assert cli("component", "load", wasm.as_uri()).returncode == 0
    called = cli("tool", "invoke", "greet", "--args", '{"name": "Ada"}')
    assert called.returncode == 0 and json.loads(called.stdout) == {"result": "Hello, Ada!"}, called.stderr
    assert cli("policy", "attach", name, str(project / "policy.yaml")).returncode == 0


def test_what_new_refuses(env: dict[str, str], tmp_path: Path) -> None:
    cli = Cli(env)
    unknown = cli("new", "cobol", "x")
    assert unknown.returncode != 0 and "the languages are rust, python, javascript" in unknown.stderr
    for bad in ("Hello", "9lives", "a_b", "a--b", "a-", "a" * 65, "../up"):
        refused = cli("new", "rust", bad, "--dir", str(tmp_path / "bad"))
        assert refused.returncode != 0 and "is not a component name" in refused.stderr, bad
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    taken = cli("new", "python", "taken", "--dir", str(tmp_path / "taken"))
    assert taken.returncode != 0 and "nothing was written" in taken.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    assert not (tmp_path / "bad").exists()


def test_a_build_without_its_tools_says_what_to_install(
    env: dict[str, str], tmp_path: Path, toolchain: Any
) -> None:
    """build.sh finds the tools on PATH (or in node_modules, or where a variable
    says); one that is missing stops it with the way to get it, before any step runs."""
    cli = Cli(env)
    bare = {**env, "PATH": "/usr/bin:/bin"}  # clang, node; no wit-bindgen, wasm-tools, jco or tsc
    old_go = tmp_path / "go1.21"
    old_go.write_text("#!/bin/sh\necho go1.21.13\n")  # all build.sh asks: `go env GOVERSION`
    old_go.chmod(0o755)
    wants = {
        ("c", "wit-bindgen"): ("c", bare, "wit-bindgen not found: cargo install wit-bindgen-cli"),
        ("c", "adapter"): (
            "c",
            {k: v for k, v in build_env(env, toolchain).items() if k != "WASI_ADAPTER"},
            "the WASI preview1 reactor adapter not found",
        ),
        ("typescript", "jco"): ("typescript", bare, "jco not found: run `npm install` here"),
        ("go", "go"): (
            "go",
            {**build_env(env, toolchain), "GO": str(tmp_path / "no-go")},
            "no-go not found: install Go 1.24 or newer",
        ),
        # A Go without go:wasmexport (it would try to download a newer one).
        ("go", "go-1.21"): (
            "go",
            {**build_env(env, toolchain), "GO": str(old_go)},
            "is go1.21.13; install a newer Go",
        ),
    }
    for (language, missing), (template, run_env, message) in wants.items():
        project = tmp_path / f"{language}-{missing}"
        assert cli("new", template, "no-tools", "--dir", str(project)).returncode == 0
        built = subprocess.run(
            ["bash", "build.sh"], cwd=project, env=run_env, capture_output=True, text=True, timeout=60
        )
        assert built.returncode == 1 and message in built.stderr, (language, missing, built.stderr)
        assert not (project / "no-tools.wasm").exists() and not (project / "target").exists()


def test_the_go_example_uses_the_go_template_s_abi_helpers() -> None:
    """examples/gomodule-go is built with the template's adapter (build.py) and
    carries a copy of its canonical ABI helpers: the same file, byte for byte."""
    repo = Path(__file__).resolve().parent.parent
    template = repo / "python" / "wassette" / "templates" / "go" / "cabi.go"
    assert (repo / "examples" / "gomodule-go" / "cabi.go").read_bytes() == template.read_bytes()


def test_the_typescript_template_pins_the_tools_tested_here() -> None:
    """`npm install` in a new TypeScript project gets the jco and TypeScript
    this suite builds with (tests/toolchain and tests/toolchain/typescript)."""
    from wassette.distribution.projects import render

    pins = json.loads(render("typescript", "x")["package.json"])["devDependencies"]
    toolchain = Path(__file__).parent / "toolchain"
    tested = {
        **json.loads((toolchain / "package.json").read_text())["devDependencies"],
        **json.loads((toolchain / "typescript/package.json").read_text())["devDependencies"],
    }
    assert pins == {name: tested[name] for name in pins} and set(pins) == {
        "@bytecodealliance/jco",
        "typescript",
    }


def test_dev_rebuilds_and_reloads_into_a_running_server(
    env: dict[str, str], tmp_path: Path, toolchain: Any
) -> None:
    """`wassette dev` builds and loads a project; a saved change is built and
    served by the running server from its next call; a change that does not
    build leaves the last good one serving; Ctrl-C stops it."""
    import signal

    from servers import RawSession, http_server, messages

    cli = Cli(env)
    project = tmp_path / "dev-loop"
    assert cli("new", "python", "dev-loop", "--dir", str(project)).returncode == 0
    log = tmp_path / "dev.log"

    def greeting(session: RawSession) -> str | None:
        answer = messages(session.call(1, "greet", {"name": "Ada"}))[-1]["result"]
        return None if answer.get("isError") else str(answer["structuredContent"]["result"])

    def until(session: RawSession, want: str) -> None:
        deadline = time.monotonic() + 180
        while greeting(session) != want:
            assert dev.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)

    with (
        http_server({**env, "WASSETTE_WORKERS": "1"}, tmp_path / "serve.log") as server,
        log.open("wb") as sink,
    ):
        dev = subprocess.Popen(
            [sys.executable, "-m", "wassette", "dev", str(project), "--interval", "0.2"],
            env=build_env(env, toolchain),
            stdout=sink,
            stderr=sink,
        )
        try:
            session = RawSession(server.url)
            until(session, "Hello, Ada!")
            app = project / "app.py"
            app.write_text(app.read_text().replace('f"Hello, {name}!"', 'f"Hi, {name}!"'))
            until(session, "Hi, Ada!")
            app.write_text(app.read_text() + "\nthis is not python\n")
            deadline = time.monotonic() + 180
            while "build failed" not in log.read_text():
                assert dev.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            assert greeting(session) == "Hi, Ada!"  # the last good build serves on
        finally:
            dev.send_signal(signal.SIGINT)
            assert dev.wait(30) == 0
    assert "loaded dev-loop" in log.read_text()


# --- docs/first-component.md, executed -------------------------------------------------------

FIRST = Path(__file__).resolve().parent.parent / "docs" / "first-component.md"
# A fenced block the page marks for this test: `run` (its `$ ` commands, each followed by what
# it prints), `file PATH` (the block is that file's new text), `append PATH`.
STEP = re.compile(r"^<!-- doc-test: (run|file|append) ?(\S*) -->\n```\w*\n(.*?)^```", re.M | re.S)


def page_steps(page: Path) -> list[tuple[str, str, str]]:
    return [(kind, arg, body) for kind, arg, body in STEP.findall(page.read_text(encoding="utf-8"))]


def commands_of(block: str) -> list[tuple[str, str]]:
    """A console block as (command, what the page shows it printing)."""
    found: list[tuple[str, str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], ""))
        else:
            assert found, f"output before any command: {line!r}"
            found[-1] = (found[-1][0], found[-1][1] + line + "\n")
    return found


def normal(text: str, homes: tuple[str, ...]) -> list[str]:
    """What is the same on every run and machine: the home is /home/me (the
    page's), timings and sizes are N, and table columns (as wide as their
    longest value) are single spaces."""
    for home in homes:
        text = text.replace(home, "/home/me")
    lines = []
    for line in text.splitlines():
        line = re.sub(r"\(\d+ bytes\)", "(N bytes)", re.sub(r"\b\d+\.\d+\b", "N", line))
        if line.strip():
            lines.append(" ".join(line.split()))
    return lines


def test_the_first_component_page_runs_as_shown(env: dict[str, str], home: Path) -> None:
    steps = page_steps(FIRST)
    run_env = {**env, "PATH": f"{sysconfig.get_path('scripts')}:{env['PATH']}"}  # componentize-py
    homes = (str(home.resolve()), str(home))
    cwd, ran = home, []
    for kind, arg, body in steps:
        if kind == "file":
            (cwd / arg).write_text(body, encoding="utf-8")
        elif kind == "append":
            with (cwd / arg).open("a", encoding="utf-8") as out:
                out.write(body)
        for command, shown in commands_of(body) if kind == "run" else []:
            ran.append(" ".join(command.split()[:3]))
            if command.startswith("cd "):
                cwd = cwd / command[3:]
                continue
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=run_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # interleaved, as on the terminal the page shows
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"$ {command}\n{done.stdout[-3000:]}"
            printed = iter(normal(done.stdout, homes))
            # Every line the page shows, in its order, among the lines printed.
            for line in normal(shown, homes):
                assert any(line == got for got in printed), f"$ {command}: {line!r} not in\n{done.stdout}"
    assert ran == [
        "wassette new python",
        "cd word-count",
        "bash build.sh",
        "wassette component test",
        "wassette component load",
        "wassette tool invoke",
    ], ran
    assert [kind for kind, _, _ in steps].count("file") == 2
