"""The wheel `scripts/release.sh` makes installs and works where no Rust
toolchain exists: a fresh virtual environment, a PATH without cargo or
rustc, `pip install wassette-*.whl`, then a component loaded and called and
`wassette serve` answering over HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from servers import http_server

# The wheel (conftest.py: `wheel`) is built by the first test that needs it.
pytestmark = pytest.mark.timeout(1800)


def test_the_wheel_is_abi3_manylinux_with_the_engine(wheel: Path) -> None:
    assert re.fullmatch(r"wassette-[\d.]+-cp311-abi3-manylinux_2_\d+_x86_64\.whl", wheel.name), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert "wassette/_engine.abi3.so" in names
    assert "wassette/runtime/policy.schema.json" in names and "wassette/py.typed" in names
    # `wassette new`'s templates travel with the package.
    assert {"wassette/templates/rust/Cargo.toml", "wassette/templates/python/app.py.tmpl"} <= set(names)
    assert not [n for n in names if n.endswith((".rs", ".pyc")) or "/tests/" in n]


def test_installs_and_runs_without_rust(wheel: Path, tmp_path: Path, components: dict[str, Path]) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # Nothing of Rust reachable: only the venv and the system's own directories.
    path = f"{venv / 'bin'}:/usr/bin:/bin"
    assert not any(shutil.which(tool, path=path) for tool in ("cargo", "rustc", "maturin"))
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": path, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if "PIP_FIND_LINKS" in os.environ:  # this machine's local wheel mirror, if any
        env["PIP_FIND_LINKS"] = os.environ["PIP_FIND_LINKS"]
    pip = subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr
    wassette = str(venv / "bin/wassette")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([wassette, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("--version").stdout.startswith("wassette ")
    loaded = run("component", "load", components["arith"].as_uri())
    assert loaded.returncode == 0, loaded.stderr
    invoked = run("tool", "invoke", "add", "--args", '{"a": 40, "b": 2}')
    assert invoked.returncode == 0 and json.loads(invoked.stdout) == {"result": 42}, invoked
    made = run("new", "javascript", "from-wheel", "--dir", str(tmp_path / "from-wheel"))
    assert made.returncode == 0 and (tmp_path / "from-wheel" / "from-wheel.js").is_file(), made.stderr
    with http_server(env, tmp_path / "serve.log", executable=wassette) as server:
        import httpx2 as httpx

        info = httpx.get(f"{server.base}/info").json()
        assert info["components"] == 1 and info["tools"] >= 1
