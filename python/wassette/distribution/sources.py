"""Turns a component URI into bytes, an id and a recorded source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from wassette.runtime.errors import SourceError

SUPPORTED_SCHEMES = ("file://",)


@dataclass(frozen=True)
class Fetched:
    component_id: str
    wasm: bytes
    source: str


def component_id_for(path: Path) -> str:
    """The Wassette convention: the file stem, made safe as a file name."""
    stem = path.name[: -len(".wasm")] if path.name.endswith(".wasm") else path.stem
    cid = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip(".")
    if not cid:
        raise SourceError(f"cannot derive a component id from {path.name!r}")
    return cid[:128].rstrip(".")


def local_path(uri: str) -> Path | None:
    """The file a `file://` URI (or plain path to a .wasm file) names, if any."""
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc and parts.netloc not in ("localhost",):
            # `file://relative/dir/x.wasm` and `file://./x.wasm`: a relative path.
            return Path(unquote(parts.netloc + parts.path))
        return Path(unquote(parts.path))
    if "://" not in uri and uri.endswith(".wasm"):
        return Path(uri)
    return None


def fetch(uri: str, *, max_bytes: int) -> Fetched:
    """Reads the component named by `uri`."""
    path = local_path(uri)
    if path is None:
        scheme = uri.split("://", 1)[0] + "://" if "://" in uri else uri
        raise SourceError(
            f"unsupported component URI {scheme!r}: use file:///absolute/path/to/tool.wasm "
            f"(supported schemes: {', '.join(SUPPORTED_SCHEMES)})"
        )
    path = path.expanduser().resolve()
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise SourceError(f"{path} is a directory, not a component file")
        if not path.is_file():
            raise SourceError(f"{path} is not a regular file")
        if size > max_bytes:
            raise SourceError(f"{path} is {size} bytes, over the limit of {max_bytes} bytes")
        wasm = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"no such file: {path}") from None
    except PermissionError:
        raise SourceError(f"permission denied reading {path}") from None
    return Fetched(component_id=component_id_for(path), wasm=wasm, source=path.as_uri())
