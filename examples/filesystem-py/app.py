"""Exports of world example:filesystem/filesystem (wit/filesystem.wit), for componentize-py.

Plain `os` calls: the sandbox maps each granted directory at its real path,
so the paths an agent passes are the paths on the host. Every failure is an
`Err` with the OS message (a refused access reads "Permission denied"; the
server adds which permission was missing and the command that grants it).
"""

import fnmatch
import os
import stat

import wit_world
from componentize_py_types import Err
from wit_world import Entry, EntryKind

MAX_READ = 4 * 1024 * 1024


def _fail(exc: BaseException, path: str) -> Err[str]:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return Err(f"{path}: {reason}")


def _kind(mode: int) -> EntryKind:
    if stat.S_ISLNK(mode):
        return EntryKind.SYMLINK
    if stat.S_ISDIR(mode):
        return EntryKind.DIRECTORY
    if stat.S_ISREG(mode):
        return EntryKind.FILE
    return EntryKind.OTHER


class WitWorld(wit_world.WitWorld):
    def list_directory(self, path: str) -> list[Entry]:
        try:
            entries = []
            with os.scandir(path) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    kind = _kind(st.st_mode)
                    entries.append(Entry(e.name, kind, st.st_size if kind != EntryKind.DIRECTORY else 0))
        except OSError as exc:
            raise _fail(exc, path) from None
        return sorted(entries, key=lambda e: e.name)

    def read_file(self, path: str) -> str:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_READ + 1)
        except OSError as exc:
            raise _fail(exc, path) from None
        if len(data) > MAX_READ:
            raise Err(f"{path}: larger than {MAX_READ} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise Err(f"{path}: not a UTF-8 text file") from None

    def write_file(self, path: str, content: str) -> int:
        data = content.encode("utf-8")
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise _fail(exc, path) from None
        return len(data)

    def create_directory(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise _fail(exc, path) from None

    def search_files(self, root: str, pattern: str, containing: str | None, limit: int | None) -> list[str]:
        wanted = 100 if limit is None else limit
        found: list[str] = []
        errors: list[OSError] = []
        # Directories the policy hides are simply not listed; ones that fail
        # to open are skipped, and only reported if nothing could be searched.
        for directory, dirs, files in os.walk(root, onerror=errors.append):
            dirs.sort()
            for name in sorted(files):
                if len(found) >= wanted:
                    return found
                if not fnmatch.fnmatch(name, pattern):
                    continue
                path = os.path.join(directory, name)
                if containing is not None and not _contains(path, containing):
                    continue
                found.append(path)
        if not found and errors and errors[0].filename == root:
            raise _fail(errors[0], root)
        return found


def _contains(path: str, needle: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return needle in f.read(MAX_READ)
    except OSError:
        return False
