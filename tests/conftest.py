"""Shared test fixtures: real components built from source, isolated state dirs.

Compiled artifacts go to one cache shared by the whole run (and kept between
runs), so each large component is compiled once; component and config dirs
are fresh per test.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DEV_CACHE = Path(
    os.environ.get("WASSETTE_DEV_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wassette-dev"
)
# Compiled-artifact cache shared by every test of every run: keyed by wasm hash
# and engine fingerprint, so sharing it is safe.
COMPILED_CACHE = DEV_CACHE / "compiled"


def _load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixtures_build", REPO / "tests/components/build.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def components() -> dict[str, Path]:
    """Every test component, built (or taken from the source-hash cache)."""
    built: dict[str, Path] = _load_build_module().build(None)
    return built


@pytest.fixture(scope="session")
def examples() -> dict[str, Path]:
    """Every example in examples/, built (or taken from the cache) in one go."""
    mod = _load_build_module()
    built: dict[str, Path] = mod.build(list(mod.EXAMPLES))
    return built


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from wassette import _engine

    return _engine.Engine(str(COMPILED_CACHE))


@pytest.fixture(scope="session")
def compiled(engine: Any, components: dict[str, Path]) -> Callable[[str], Any]:
    """Compiles (or takes from the shared artifact cache) a fixture once per run."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = engine.compile(components[name].read_bytes())
        return cache[name]

    return get


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An isolated HOME/XDG tree for one test."""
    for sub in ("data", "config", "cache"):
        (tmp_path / sub).mkdir()
    return tmp_path


def isolated_env(home: Path) -> dict[str, str]:
    """Environment for `wassette` subprocesses: isolated state, shared compile cache."""
    for sub in ("data", "config", "cache"):
        (home / sub).mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "WASSETTE_CACHE_DIR": str(COMPILED_CACHE),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return isolated_env(home)


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Like `env`, shared by the tests of one module (e.g. one server for all)."""
    return isolated_env(tmp_path_factory.mktemp("home"))


@pytest.fixture
def component_dir(home: Path) -> Path:
    return home / "data" / "wassette" / "components"


class Cli:
    """Runs `wassette ...` as a user would, in a subprocess."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wassette", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def cli(env: dict[str, str]) -> Cli:
    return Cli(env)


@pytest.fixture(scope="module")
def module_cli(module_env: dict[str, str]) -> Cli:
    return Cli(module_env)


@pytest.fixture
def runtime(home: Path) -> Iterator[object]:
    """A runtime on an isolated component dir with the shared compile cache."""
    from wassette.runtime.config import Settings
    from wassette.runtime.lifecycle import Runtime

    settings = Settings.load(
        env={
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "WASSETTE_CACHE_DIR": str(COMPILED_CACHE),
        }
    )
    yield Runtime(settings)


@pytest.fixture(scope="session")
def inspector() -> Path:
    """The MCP Inspector CLI (`mcp-inspector`, with its own Node 22) that
    scripts/setup-toolchain.sh installs from tests/toolchain/inspector."""
    import hashlib

    lock = REPO / "tests/toolchain/inspector/package-lock.json"
    directory = DEV_CACHE / f"inspector-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    if not (directory / ".complete").is_file():
        pytest.fail(f"the MCP Inspector is not installed in {directory}: run scripts/setup-toolchain.sh")
    return directory / "node_modules" / ".bin"
