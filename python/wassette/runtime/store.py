"""The component directory: Wassette-compatible file names, atomic writes.

Layout: ``<id>.wasm`` (the component), ``<id>.metadata.json`` (source, hash
and cached tool schemas, so a restart lists tools without compiling), and
later ``<id>.policy.yaml``. Writes go to a temp file, are fsynced and renamed;
changes are made under an exclusive lock so two processes cannot interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from wassette.runtime.errors import StoreError, UnknownComponentError

# Bumped whenever the cached export descriptions change shape or meaning.
METADATA_FORMAT = 1

_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SUFFIXES = (".wasm", ".metadata.json", ".policy.yaml", ".policy.pending.yaml", ".policy.meta.json", ".cwasm")


def valid_id(component_id: str) -> bool:
    return bool(_ID_RE.match(component_id)) and not component_id.endswith(".")


class Metadata(NamedTuple):
    """What the store records about an installed component."""

    id: str
    sha256: str
    size: int
    mtime_ns: int
    source: str
    installed_at: str
    exports: list[dict[str, Any]]
    # Where the component came from: for OCI the reference, manifest and
    # layer digests and the signature check (see distribution.sources).
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"format": METADATA_FORMAT, **self._asdict()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metadata | None:
        if data.get("format") != METADATA_FORMAT:
            return None
        try:
            return cls(
                id=str(data["id"]),
                sha256=str(data["sha256"]),
                size=int(data["size"]),
                mtime_ns=int(data["mtime_ns"]),
                source=str(data["source"]),
                installed_at=str(data["installed_at"]),
                exports=list(data["exports"]),
                provenance=dict(data.get("provenance") or {}),
            )
        except (KeyError, TypeError, ValueError):
            return None


FileStamp = tuple[int, int, int, int]


def file_stamp(path: str | Path) -> FileStamp | None:
    """Identifies a file's current content without reading it: inode, mtime,
    ctime and size (atomic writes make a new inode, in-place edits move
    ctime); None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


TEMP_SUFFIX = ".tmp"
# A temp file this much older than now, that no process holds locked, was
# left by a writer that died; younger ones may be a writer's that has not
# taken its lock yet (it does so right after creating the file).
STALE_TEMP_S = 60.0


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Readers see the old file or the new one, never a partial write. The
    temp file is locked while it is written, so a writer killed midway
    leaves a file `sweep_temp_files` can tell from one still being written.
    `durable=False`: no fsync, for files that need not outlive the machine
    (a running server's session records)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class SharedState(Protocol):
    """A state shared with other replicas (`state/postgres.py`): each change
    to the directory, made under `ComponentStore.locked()`, is one of its
    transactions."""

    def change(self, directory: ComponentStore) -> contextlib.AbstractContextManager[None]: ...


class ComponentStore:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        # Set when the directory is a replica's working copy of a shared state.
        self.shared: SharedState | None = None

    def path(self, component_id: str, suffix: str = ".wasm") -> Path:
        return self.dir / f"{component_id}{suffix}"

    def ensure(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create component directory {self.dir}: {e.strerror}") from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock over changes to the directory, across processes;
        with a shared state, also one transaction of it."""
        with self.flocked():
            if self.shared is None:
                yield
            else:
                with self.shared.change(self):
                    yield

    @contextlib.contextmanager
    def flocked(self) -> Iterator[None]:
        """The directory's lock alone (threads and processes)."""
        self.ensure()
        with open(self.dir / ".wassette.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ids(self) -> list[str]:
        """Ids of installed components, sorted."""
        if not self.dir.is_dir():
            return []
        return sorted(
            p.name[: -len(".wasm")]
            for p in self.dir.iterdir()
            if p.name.endswith(".wasm") and p.is_file() and valid_id(p.name[: -len(".wasm")])
        )

    def stamp(self) -> frozenset[tuple[str, int]]:
        """Changes whenever a component file is added, removed or replaced."""
        try:
            with os.scandir(self.dir) as entries:
                return frozenset((e.name, e.stat().st_mtime_ns) for e in entries if e.name.endswith(".wasm"))
        except OSError:
            return frozenset()

    def sweep_temp_files(self) -> list[str]:
        """Removes temp files of writes that never finished (their writer
        died): older than STALE_TEMP_S and locked by nobody. Returns their names."""
        removed: list[str] = []
        try:
            entries = list(os.scandir(self.dir))
        except OSError:
            return removed
        now = time.time()
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < STALE_TEMP_S or not entry.is_file(
                    follow_symlinks=False
                ):
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a live writer holds it
                os.unlink(entry.path)
                removed.append(entry.name)
            except OSError:
                pass
            finally:
                os.close(fd)
        return removed

    def recorded_source(self, component_id: str) -> str | None:
        """Where the component came from, as its metadata file last said
        (also when that metadata no longer describes the wasm)."""
        try:
            data = json.loads(self.path(component_id, ".metadata.json").read_bytes())
            return str(data["source"]) if isinstance(data, dict) and "source" in data else None
        except (OSError, ValueError):
            return None

    def exists(self, component_id: str) -> bool:
        return valid_id(component_id) and self.path(component_id).is_file()

    def read_wasm(self, component_id: str) -> bytes:
        try:
            return self.path(component_id).read_bytes()
        except FileNotFoundError:
            raise UnknownComponentError(component_id) from None
        except OSError as e:
            raise StoreError(f"cannot read {self.path(component_id)}: {e.strerror}") from None

    def metadata(self, component_id: str) -> Metadata | None:
        """The recorded metadata, if it still describes the wasm on disk."""
        try:
            st = self.path(component_id).stat()
            data = json.loads(self.path(component_id, ".metadata.json").read_bytes())
        except (OSError, ValueError):
            return None
        meta = Metadata.from_json(data) if isinstance(data, dict) else None
        if meta is None or meta.size != st.st_size or meta.mtime_ns != st.st_mtime_ns:
            return None
        return meta

    def install(
        self,
        component_id: str,
        wasm: bytes,
        *,
        sha256: str,
        source: str,
        installed_at: str,
        exports: list[dict[str, Any]],
        provenance: dict[str, Any] | None = None,
    ) -> Metadata:
        """Writes the component, then its metadata (call under `locked()`)."""
        try:
            write_atomic(self.path(component_id), wasm)
            st = self.path(component_id).stat()
            meta = Metadata(
                id=component_id,
                sha256=sha256,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                source=source,
                installed_at=installed_at,
                exports=exports,
                provenance=provenance or {},
            )
            self.write_metadata(meta)
        except OSError as e:
            raise StoreError(f"cannot write to component directory {self.dir}: {e.strerror}") from None
        return meta

    def write_file(self, component_id: str, suffix: str, data: bytes) -> None:
        write_atomic(self.path(component_id, suffix), data)

    def write_metadata(self, meta: Metadata) -> None:
        data = json.dumps(meta.to_json(), indent=1, sort_keys=True).encode()
        write_atomic(self.path(meta.id, ".metadata.json"), data)

    def remove(self, component_id: str) -> None:
        """Removes every file of the component (call under `locked()`)."""
        if not self.exists(component_id):
            raise UnknownComponentError(component_id)
        # The wasm goes last: until then the component is still listed.
        for suffix in reversed(SUFFIXES):
            with contextlib.suppress(FileNotFoundError):
                self.path(component_id, suffix).unlink()
