"""A component's state as one record, read from and written to the files of
a component directory and a secrets directory (the layout of the local
state, `store.py`, `permissions.py`, `secrets.py`).

The shared state (`postgres.py`) moves records between these files and the
database; `export`/`import` move them between a database and any directory.
Writing a record changes only the files whose content differs, so a replica
that already has it touches nothing (no stamp moves, nothing is recompiled).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wassette.runtime.permissions import PENDING_SUFFIX, POLICY_META_SUFFIX, POLICY_SUFFIX
from wassette.runtime.secrets import SecretStore
from wassette.runtime.store import SUFFIXES, ComponentStore, FileStamp, Metadata, file_stamp, valid_id

# Metadata fields that describe the local file, not the component: each
# replica writes its own.
_LOCAL_FIELDS = ("size", "mtime_ns")


@dataclass
class Record:
    """Everything about one component id. `sha256` None: no component (it
    was unloaded, or only its secrets exist)."""

    id: str
    sha256: str | None = None
    metadata: dict[str, Any] | None = None
    policy: str | None = None
    policy_meta: dict[str, Any] | None = None
    pending: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.sha256 is None and not self.secrets


class Directories:
    """A component directory and a secrets directory, as one state."""

    def __init__(self, component_dir: Path, secrets_dir: Path, secrets_key_file: Path | None = None) -> None:
        self.store = ComponentStore(component_dir)
        self.secrets = SecretStore(secrets_dir, key_file=secrets_key_file)

    def ids(self) -> set[str]:
        """Every id with a file here (components, policies or secrets)."""
        return {cid for cid, _ in self.snapshot()}

    def snapshot(self) -> frozenset[tuple[str, tuple[str, FileStamp | None]]]:
        """Every file of every id with its stamp: two snapshots differ
        exactly for the ids whose files changed."""
        out: set[tuple[str, tuple[str, FileStamp | None]]] = set()
        for directory, suffixes in ((self.store.dir, SUFFIXES), (self.secrets.dir, (".yaml",))):
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                for suffix in suffixes:
                    cid = name[: -len(suffix)]
                    if name.endswith(suffix) and valid_id(cid):
                        out.add((cid, (str(directory / name), file_stamp(directory / name))))
                        break
        return frozenset(out)

    # -- reading -------------------------------------------------------------------

    def read(self, cid: str) -> tuple[Record, Path | None]:
        """The record of `cid`, and the wasm file it names (its bytes are
        read only when the other side lacks them)."""
        store = self.store
        record = Record(id=cid, secrets=self.secrets.get(cid))
        wasm = store.path(cid)
        if wasm.is_file():
            meta = store.metadata(cid)
            if meta is not None:
                record.sha256 = meta.sha256
                record.metadata = {k: v for k, v in meta.to_json().items() if k not in _LOCAL_FIELDS}
            else:  # dropped in by hand: the runtime describes it later
                record.sha256 = hashlib.sha256(wasm.read_bytes()).hexdigest()
            record.policy = _text(store.path(cid, POLICY_SUFFIX))
            record.pending = _text(store.path(cid, PENDING_SUFFIX))
            meta_text = _text(store.path(cid, POLICY_META_SUFFIX))
            record.policy_meta = json.loads(meta_text) if meta_text else None
        return record, wasm if record.sha256 is not None else None

    def local_sha256(self, cid: str) -> str | None:
        meta = self.store.metadata(cid)
        return meta.sha256 if meta is not None else None

    # -- writing -------------------------------------------------------------------

    def write(self, record: Record, wasm: bytes | None) -> bool:
        """Makes the files of `record.id` say what the record says (`wasm`:
        the component's bytes, None when the local file already has them).
        True when any file changed."""
        store, cid = self.store, record.id
        changed = False
        if record.sha256 is None:
            for suffix in reversed(SUFFIXES):  # the wasm last, as store.remove does
                with contextlib.suppress(FileNotFoundError):
                    store.path(cid, suffix).unlink()
                    changed = True
        else:
            store.ensure()
            if wasm is not None:
                store.write_file(cid, ".wasm", wasm)
                changed = True
            if record.metadata is not None:
                st = store.path(cid).stat()
                meta = Metadata.from_json({**record.metadata, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
                if meta is not None and store.metadata(cid) != meta:
                    store.write_metadata(meta)
                    changed = True
            for suffix, text in (
                (POLICY_SUFFIX, record.policy),
                (PENDING_SUFFIX, record.pending),
                (POLICY_META_SUFFIX, json.dumps(record.policy_meta) if record.policy_meta else None),
            ):
                changed |= _put(store, cid, suffix, text)
        if self.secrets.get(cid) != record.secrets:
            self.secrets.replace(cid, record.secrets)
            changed = True
        return changed


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _put(store: ComponentStore, cid: str, suffix: str, text: str | None) -> bool:
    path = store.path(cid, suffix)
    if text is None:
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False
    if _text(path) == text:
        return False
    store.write_file(cid, suffix, text.encode())
    return True
