"""Helpers shared by the distribution tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SIGSTORE = FIXTURES / "sigstore"
USER, PASSWORD = "alice", "s3cret-pa55"


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    data: Path
    process: subprocess.Popen[bytes]
    log: Path
    auth: dict[str, Any] = field(default_factory=dict)

    def blob_path(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.data / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"


def unique_component(wasm: bytes, label: str) -> bytes:
    """The same component with a custom section naming `label`: different
    bytes (and blob digests) per test, so tests that tamper with a registry's
    storage never touch a blob another test uses."""
    name = b"wassette-test"
    payload = bytes([len(name)]) + name + label.encode()
    return wasm + b"\x00" + _leb(len(payload)) + payload


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "wassette" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def stored(component_dir: Path) -> list[str]:
    """Files in the component directory (the lock file aside)."""
    if not component_dir.exists():
        return []
    return sorted(p.name for p in component_dir.iterdir() if p.name != ".wassette.lock")
