"""Isolated homes for `wassette` subprocesses, and the CLI as a user runs it
(shared by conftest.py and the tests that make several homes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEV_CACHE = Path(
    os.environ.get("WASSETTE_DEV_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wassette-dev"
)
# Compiled-artifact cache shared by every test of every run: keyed by wasm hash
# and engine fingerprint, so sharing it is safe.
COMPILED_CACHE = DEV_CACHE / "compiled"
NO_KEYRING = "keyring.backends.fail.Keyring"


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
        # Never the developer's own keyring: the secrets key goes to a file in the home.
        "PYTHON_KEYRING_BACKEND": NO_KEYRING,
    }


class Cli:
    """Runs `wassette ...` as a user would, in a subprocess."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 120,
        env_extra: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wassette", *args],
            env={**self.env, **(env_extra or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
