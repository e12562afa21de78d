"""The component catalog: a bundled list (Wassette's published examples)
merged with catalogs the user configures, ranked by query for `registry
search` and the `search-components` tool; `registry get NAME` loads by name.

User catalogs are listed in config.toml (`catalogs = ["/path/catalog.json",
"https://example.com/catalog.json"]`). A catalog is JSON: a list of
`{"name", "description", "uri"}` objects, or `{"components": [...]}`. A user
entry replaces a bundled one of the same name.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wassette.runtime.errors import SourceError, WassetteError

log = logging.getLogger("wassette.catalog")

MAX_CATALOG_BYTES = 4 << 20


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    uri: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "uri": self.uri}


BUNDLED: tuple[Entry, ...] = (
    Entry(
        "time-server-js",
        "Current time and time-zone conversion (JavaScript)",
        "oci://ghcr.io/microsoft/time-server-js:latest",
    ),
    Entry(
        "get-weather-js",
        "Weather for a city from OpenWeather; needs network and an API key (JavaScript)",
        "oci://ghcr.io/microsoft/get-weather-js:latest",
    ),
    Entry(
        "fetch-rs",
        "Fetch a URL and return its content as text or markdown (Rust)",
        "oci://ghcr.io/microsoft/fetch-rs:latest",
    ),
    Entry(
        "filesystem-rs",
        "List, read, write and search files under granted directories (Rust)",
        "oci://ghcr.io/microsoft/filesystem-rs:latest",
    ),
    Entry(
        "eval-py",
        "Evaluate a Python expression in the sandbox (Python)",
        "oci://ghcr.io/microsoft/eval-py:latest",
    ),
    Entry("gomodule-go", "Look up Go module information (Go)", "oci://ghcr.io/microsoft/gomodule-go:latest"),
    Entry("arxiv-rs", "Search and fetch arXiv papers (Rust)", "oci://ghcr.io/microsoft/arxiv-rs:latest"),
    Entry(
        "brave-search-rs",
        "Web search through the Brave Search API (Rust)",
        "oci://ghcr.io/microsoft/brave-search-rs:latest",
    ),
    Entry(
        "context7-rs",
        "Library documentation lookup through Context7 (Rust)",
        "oci://ghcr.io/microsoft/context7-rs:latest",
    ),
)


def parse(data: bytes, origin: str) -> list[Entry]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise WassetteError(f"catalog {origin} is not valid JSON: {e}") from None
    items = doc.get("components") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise WassetteError(f'catalog {origin}: expected a list of components or {{"components": [...]}}')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in ("name", "uri")
        ):
            raise WassetteError(f"catalog {origin}: entry {i} needs string fields name and uri")
        desc = item.get("description", "")
        out.append(Entry(item["name"], desc if isinstance(desc, str) else "", item["uri"]))
    return out


def load(settings: Any) -> tuple[tuple[Entry, ...], list[str]]:
    """The bundled catalog merged with the configured ones, and one warning
    per configured catalog that could not be read (search still works)."""
    from wassette.distribution.sources import FetchOptions, http_client

    configured = settings.catalogs
    merged = {e.name: e for e in BUNDLED}
    warnings = []
    for origin in configured:
        try:
            if origin.startswith(("https://", "http://")):
                resp = http_client(settings, FetchOptions()).request("GET", origin)
                if resp.status != 200:
                    resp.close()
                    raise SourceError(f"HTTP {resp.status}")
                data = resp.read(MAX_CATALOG_BYTES)
            else:
                path = Path(origin).expanduser()
                path = path if path.is_absolute() else settings.config_dir / path
                try:
                    data = path.read_bytes()[: MAX_CATALOG_BYTES + 1]
                except OSError as e:
                    raise WassetteError(e.strerror or str(e)) from None
            for entry in parse(data, origin):
                merged[entry.name] = entry
        except WassetteError as e:
            warnings.append(f"catalog {origin} skipped: {e}")
            log.warning("catalog %s skipped: %s", origin, e)
    return tuple(merged.values()), warnings


def get(name: str, entries: tuple[Entry, ...]) -> Entry:
    for e in entries:
        if e.name == name:
            return e
    for e in entries:
        if e.name.lower() == name.lower():
            return e
    close = [e.name for e in search(name, entries)][:3]
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see `wassette registry search`)"
    raise WassetteError(f"no component named {name!r} in the catalog{hint}")


def _score(word: str, name: str) -> int:
    """How well one query word matches a name; 1 for a description match."""
    if name == word:
        return 10
    if name.startswith(word):
        return 6
    if word in re.split(r"[-_.]", name):
        return 5
    return 4 if word in name else 1


def search(query: str | None, entries: tuple[Entry, ...] = BUNDLED) -> list[Entry]:
    """Entries matching every word of `query`, best first (name matches rank
    above description matches); all entries, by name, without a query."""
    if not query or not query.strip():
        return sorted(entries, key=lambda e: e.name)
    words = [w.lower() for w in query.split()]
    scored: list[tuple[int, str, Entry]] = []
    for e in entries:
        name, desc = e.name.lower(), e.description.lower()
        if not all(w in name or w in desc for w in words):
            continue
        score = sum(_score(w, name) for w in words)
        scored.append((-score, e.name, e))
    return [e for _, _, e in sorted(scored)]
