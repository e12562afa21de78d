"""The drop directory: components a user puts in a folder are loaded.

`NAME.wasm` in the directory becomes component `NAME`; `NAME.policy.yaml`
beside it, if any, is its policy (applied: the user put both there). A
sync loads what is new or changed (the wasm or the policy file), unloads
what was loaded from the directory and is gone from it, and leaves alone
components loaded some other way (`--force` replaces them).

What is picked up must be the user's own: the directory and every file
(a symbolic link's target too) owned by this user or root and writable by
nobody else, so another account on the machine cannot plant a tool. What
fails a check is refused with the reason, never loaded.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wassette.distribution.sources import component_id_for
from wassette.runtime.errors import WassetteError
from wassette.runtime.install import InstallOptions, Package
from wassette.runtime.runtime import Runtime

KIND = "local-components"
POLICY_SUFFIX = ".policy.yaml"
# The largest policy file read (policies are a few hundred bytes).
MAX_POLICY_BYTES = 1 << 20

Stamp = frozenset[tuple[str, int, int]]


@dataclass
class SyncReport:
    """What a sync did: ids loaded (new or changed), unloaded, unchanged,
    and files refused with why."""

    directory: str
    loaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.unloaded)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "synced",
            "directory": self.directory,
            "loaded": self.loaded,
            "unloaded": self.unloaded,
            "unchanged": self.unchanged,
            "refused": self.refused,
        }


def stamp(directory: Path) -> Stamp:
    """Changes whenever a file in the directory is added, removed or
    replaced (what the watcher compares)."""
    try:
        with os.scandir(directory) as entries:
            return frozenset((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries)
    except OSError:
        return frozenset()


def _unsafe(st: os.stat_result, what: str) -> str | None:
    """Why a file or directory another account could have written is
    refused (None: it is the user's own)."""
    if st.st_uid not in (os.getuid(), 0):
        return f"{what} is owned by uid {st.st_uid}, not by this user ({os.getuid()}) or root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"{what} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}; run chmod go-w on it)"
        )
    return None


def _read_owned(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file that passes the ownership checks (a
    symbolic link: the link and its target both)."""
    link = os.lstat(path)
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (os.getuid(), 0):
        # (A link's own mode means nothing on Linux: only its owner counts.)
        raise WassetteError(f"the link {path.name} is owned by uid {link.st_uid}, not by this user or root")
    # The checks are made on the open file, not the name: no swap between.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise WassetteError(f"{path.name} is not a regular file")
        why = _unsafe(st, path.name if not stat.S_ISLNK(link.st_mode) else f"{path.name}'s target")
        if why:
            raise WassetteError(why)
        if st.st_size > max_bytes:
            raise WassetteError(f"{path.name} is {st.st_size} bytes, over the limit of {max_bytes}")
        data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise WassetteError(f"{path.name} grew over the limit of {max_bytes} bytes while read")
        return data


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sync(runtime: Runtime, directory: Path | None = None, *, force: bool = False) -> SyncReport:
    """Brings the loaded components in line with the drop directory (see
    the module's text). Never raises for one bad file: it is refused."""
    directory = directory or runtime.settings.local_components_dir
    report = SyncReport(str(directory))
    try:
        dir_stat = directory.stat()
    except FileNotFoundError:
        dir_stat = None
    except OSError as e:
        raise WassetteError(f"cannot read the drop directory {directory}: {e.strerror}") from None
    wanted: dict[str, Path] = {}
    if dir_stat is not None:
        why = _unsafe(dir_stat, f"the drop directory {directory}")
        if why:
            raise WassetteError(f"refused: {why}")
        for path in sorted(directory.glob("*.wasm")):
            try:
                cid = component_id_for(path)
            except WassetteError as e:
                report.refused.append({"file": path.name, "reason": str(e)})
                continue
            if cid in wanted:
                report.refused.append({"file": path.name, "reason": f"another file also gives the id {cid}"})
                continue
            wanted[cid] = path
    for cid, path in wanted.items():
        try:
            if _sync_one(runtime, cid, path, force):
                report.loaded.append(cid)
            else:
                report.unchanged.append(cid)
        except WassetteError as e:
            report.refused.append({"file": path.name, "reason": str(e)})
    for info in runtime.components():
        if info.provenance.get("kind") == KIND and info.id not in wanted:
            # Loaded from here and gone: unloaded. (A file refused above is
            # still wanted: a bad edit does not take a working tool away.)
            try:
                runtime.unload_component(info.id)
                report.unloaded.append(info.id)
            except WassetteError as e:
                report.refused.append({"file": f"{info.id}.wasm", "reason": f"cannot unload: {e}"})
    return report


def _sync_one(runtime: Runtime, cid: str, path: Path, force: bool) -> bool:
    """Loads one file of the drop directory if it is new or changed; True
    when it was loaded."""
    max_bytes = runtime.settings.max_component_bytes
    try:
        wasm = _read_owned(path, max_bytes)
        policy_path = path.with_name(path.name[: -len(".wasm")] + POLICY_SUFFIX)
        policy = _read_owned(policy_path, MAX_POLICY_BYTES) if os.path.lexists(policy_path) else None
    except OSError as e:
        raise WassetteError(f"cannot read it: {e.strerror}") from None
    provenance = {
        "kind": KIND,
        "path": str(path),
        "sha256": _digest(wasm),
        "policy_sha256": _digest(policy) if policy is not None else None,
    }
    current = runtime.store.metadata(cid) or runtime.known(cid)
    if current is not None:
        ours = current.provenance.get("kind") == KIND
        if not ours and not force:
            raise WassetteError(
                f"a component {cid} is already loaded from {current.source}; "
                f"`wassette component sync --force` replaces it with this file"
            )
        same = (
            ours
            and current.provenance.get("sha256") == provenance["sha256"]
            and current.provenance.get("policy_sha256") == provenance["policy_sha256"]
        )
        if same and not force:
            return False
    package = Package(component_id=cid, wasm=wasm, source=path.as_uri(), provenance=provenance, policy=policy)
    runtime.install(package, InstallOptions(accept_policy=policy is not None))
    return True


def link(runtime: Runtime, wasm: Path) -> Path:
    """Puts a symbolic link to `wasm` (and to its `.policy.yaml`, if any) in
    the drop directory, made if missing (mode 0700)."""
    directory = runtime.settings.local_components_dir
    target = wasm.expanduser().resolve()
    if not target.is_file() or not target.name.endswith(".wasm"):
        raise WassetteError(f"--link needs a .wasm file; {wasm} is not one")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = directory / target.name
    for source, dest in (
        (target, made),
        (
            target.with_name(target.name[: -len(".wasm")] + POLICY_SUFFIX),
            made.with_name(made.stem + POLICY_SUFFIX),
        ),
    ):
        if source == target or source.exists():
            if os.path.lexists(dest):
                if dest.is_symlink() and dest.resolve() == source:
                    continue
                raise WassetteError(f"{dest} exists already; remove it first")
            dest.symlink_to(source)
    return made
