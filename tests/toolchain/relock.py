#!/usr/bin/env python3
"""Regenerate tests/toolchain/package-lock.json (or that of another package
directory, e.g. tests/toolchain/inspector) so that `npm ci` accepts it.

Why this exists: the npm registry reachable from our machines does not serve
some platform-specific optional packages (e.g. `@rolldown/binding-darwin-arm64`).
`npm install` silently leaves such optional dependencies out of the lockfile,
and `npm ci` then refuses the lockfile as "out of sync" ("Missing: X@ from lock
file"). We add a stub entry (version + os/cpu/libc, marked optional) for every
optional dependency the lockfile lacks; `npm ci` skips those on non-matching
platforms without fetching them, exactly as with a complete lockfile.

Usage: python tests/toolchain/relock.py [DIR]   (needs npm and registry access;
       DIR defaults to tests/toolchain)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def platform_fields(name: str) -> dict[str, list[str]]:
    """Infer npm os/cpu/libc fields from a napi-rs style package name."""
    tail = name.rsplit("/", 1)[-1]
    for prefix in ("binding-", "jco-node-fs-", "wizer-", "lzma-"):
        if prefix in tail:
            tail = tail.split(prefix, 1)[1]
    parts = tail.split("-")
    if parts[0] == "wasm32":
        return {"cpu": ["wasm32"]}
    fields = {"os": [parts[0]], "cpu": [parts[1]]} if len(parts) > 1 else {"os": [parts[0]]}
    if tail.endswith("musl"):
        fields["libc"] = ["musl"]
    elif tail.endswith(("gnu", "gnueabihf")):
        fields["libc"] = ["glibc"]
    return fields


def resolves(packages: dict[str, dict[str, object]], parent: str, dep: str) -> bool:
    """True if `dep` required from `parent` is found by node's upward lookup."""
    base = parent
    while True:
        if f"{base}/node_modules/{dep}".lstrip("/") in packages:
            return True
        if not base:
            return False
        idx = base.rfind("/node_modules/")
        base = base[:idx] if idx >= 0 else ""


def add_stubs(lock: dict[str, object]) -> list[str]:
    packages = lock["packages"]
    if not isinstance(packages, dict):
        raise TypeError("package-lock.json has no 'packages' map")
    added: list[str] = []
    for path, meta in list(packages.items()):
        for dep, version in (meta.get("optionalDependencies") or {}).items():
            if not resolves(packages, path, dep):
                packages[f"node_modules/{dep}"] = {
                    "version": version,
                    "dev": True,
                    "optional": True,
                    **platform_fields(dep),
                }
                added.append(f"{dep}@{version}")
    lock["packages"] = dict(sorted(packages.items()))
    return added


def main() -> int:
    here = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE
    lock_path = here / "package-lock.json"
    lock_path.unlink(missing_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--package-lock-only",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
        ],
        cwd=here,
        check=True,
    )
    lock = json.loads(lock_path.read_text())
    added = add_stubs(lock)
    lock_path.write_text(json.dumps(lock, indent=2) + "\n")
    for item in added:
        print(f"stubbed unavailable optional package {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
