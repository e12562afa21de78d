"""`wassette new LANGUAGE NAME`: each template, made as a user would, builds
with its own build.sh (the language's standard tool, as installed by
scripts/setup-toolchain.sh), passes its recorded cases with `wassette
component test`, loads, and answers a call — the README's steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest

from homes import DEV_CACHE, Cli


def build_env(env: dict[str, str], toolchain: Any) -> dict[str, str]:
    """The tools a user installs, found as the fixtures' build finds them:
    componentize-py next to this Python, jco from the npm toolchain, cargo on
    PATH (its target directory kept in the dev cache between runs)."""
    scripts = sysconfig.get_path("scripts")
    return {
        **env,
        "PATH": f"{scripts}:{os.environ.get('PATH', '')}",
        "JCO": str(toolchain.jco),
        "CARGO_TARGET_DIR": str(DEV_CACHE / "new-rust-target"),
        "CARGO_HOME": os.environ.get("CARGO_HOME", str(Path.home() / ".cargo")),
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", str(Path.home() / ".rustup")),
    }


@pytest.mark.parametrize("language", ["rust", "python", "javascript"])
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
